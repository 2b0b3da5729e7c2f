"""JSONL reader (.jsonl, .json, .gz, .zst): one JSON object per line."""
from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import orjson
import zstandard

from pipelines.ingest.formats import FieldMap
from pipelines.ingest.readers.common import open_binary, to_doc
from pipelines.ingest.records import Limits, Record, Reject


def read_jsonl(path: str, fields: FieldMap, limits: Limits,
               storage_options: dict[str, str]) -> Iterator[Record]:
    raw = open_binary(path, storage_options)
    if path.endswith(".gz"):
        stream = _Lines(gzip.GzipFile(fileobj=raw))
    elif path.endswith(".zst") or path.endswith(".zstd"):
        stream = _Lines(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    else:
        stream = _Lines(raw)
    line_no, offset = 0, 0
    try:
        while True:
            try:
                line = stream.readline()
            except (EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
                partial = getattr(exc, "partial", b"")
                yield Reject("truncated_file", f"file ends or breaks after line {line_no} "
                             f"(decompressed offset {offset:,}): {exc}", f"line={line_no + 1}",
                             line_no + 1, partial[: limits.max_raw_bytes], len(partial))
                return
            if not line:
                return
            line_no += 1
            start, offset = offset, offset + len(line)
            loc = f"line={line_no}"
            if not line.strip():
                continue
            body = line.rstrip(b"\r\n")
            if len(body) > limits.max_doc_bytes:
                yield Reject("document_too_large", f"line of {len(body):,} bytes > max_doc_bytes "
                             f"{limits.max_doc_bytes:,} (offset {start:,})", loc, line_no,
                             body[: limits.max_raw_bytes], len(body))
                continue
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Reject("invalid_utf8", f"{exc.reason} at byte {exc.start} of the line",
                             loc, line_no, body[: limits.max_raw_bytes], len(body))
                continue
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                yield Reject("malformed_json", str(exc), loc, line_no, body[: limits.max_raw_bytes], len(body))
                continue
            if not isinstance(obj, dict):
                yield Reject("not_an_object", f"line holds a JSON {type(obj).__name__}, expected an object",
                             loc, line_no, body[: limits.max_raw_bytes], len(body))
                continue
            yield to_doc(obj, fields, loc, line_no, body, limits)
    finally:
        raw.close()


class _Lines:
    """readline() over any stream with read(n), in 64 KiB chunks so long lines are fine.

    When the stream fails (a truncated .gz), the complete lines read before the failure are still
    returned; then the error is raised with the incomplete tail attached as `exc.partial`.
    """

    def __init__(self, reader, chunk: int = 64 << 10) -> None:
        self.reader, self.chunk = reader, chunk
        self.buf = bytearray()
        self.pos = 0
        self.error: Exception | None = None

    def readline(self) -> bytes:
        scan_from = self.pos
        while True:
            nl = self.buf.find(b"\n", scan_from)
            if nl >= 0:
                line = bytes(self.buf[self.pos: nl + 1])
                self.pos = nl + 1
                if self.pos > (1 << 20):  # drop consumed bytes now and then
                    del self.buf[: self.pos]
                    self.pos = 0
                return line
            scan_from = len(self.buf)
            if self.error is None:
                try:
                    more = self.reader.read(self.chunk)
                except (EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
                    self.error, more = exc, b""
                if more:
                    self.buf += more
                    continue
            tail = bytes(self.buf[self.pos:])
            self.buf.clear()
            self.pos = 0
            if self.error is not None:
                exc, self.error = self.error, None
                exc.partial = tail
                raise exc
            return tail
