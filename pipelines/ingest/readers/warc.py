"""WARC / WET reader: response records (HTML → main text) and conversion records (plain text)."""
from __future__ import annotations

from collections.abc import Iterator

from warcio.archiveiterator import ArchiveIterator

from pipelines.ingest.readers.common import open_binary
from pipelines.ingest.records import Doc, Drop, Limits, Record, Reject, check_text
from pipelines.lake.storage import filesystem

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


def read_warc(path: str, limits: Limits, storage_options: dict[str, str]) -> Iterator[Record]:
    fs, inner = filesystem(path, storage_options)
    file_size = fs.get_file_info(inner).size or 0
    raw = open_binary(path, storage_options)
    ordinal = 0
    offset = 0
    end = 0  # where the last complete record ended (compressed bytes for .gz)
    try:
        records = ArchiveIterator(raw, arc2warc=True)
        while True:
            try:
                record = next(records)
                wanted = record.rec_type in ("response", "conversion", "resource")
                # Read the payload before asking for the offset: warcio's get_record_offset()
                # consumes the rest of the record.
                payload = record.content_stream().read(limits.max_doc_bytes + 1) if wanted else b""
                offset = records.get_record_offset()
                end = offset + records.get_record_length()
            except StopIteration:
                if end < file_size:  # warcio stops quietly on a cut gzip member: say so
                    yield Reject("corrupt_warc", f"{file_size - end:,} trailing bytes after offset "
                                 f"{end:,} do not form a complete record", f"offset={end}", ordinal + 1,
                                 b"", file_size - end)
                return
            except Exception as exc:  # warcio raises ArchiveLoadFailed, zlib and EOF errors
                yield Reject("corrupt_warc", f"unreadable WARC data after offset {offset:,}: {exc}; "
                             "the rest of the file is skipped", f"offset={offset}", ordinal + 1)
                return
            if not wanted:
                continue
            ordinal += 1
            loc = f"offset={offset}"
            missing = getattr(record.raw_stream, "limit", 0)
            if missing and len(payload) <= limits.max_doc_bytes:
                yield Reject("truncated_record", f"record ends {missing:,} bytes short of its "
                             "Content-Length", loc, ordinal, payload[: limits.max_raw_bytes], len(payload))
                continue
            try:
                yield _document(record, payload, loc, ordinal, limits)
            except Exception as exc:
                yield Reject("corrupt_warc", f"record unreadable: {exc}", loc, ordinal,
                             payload[: limits.max_raw_bytes], len(payload))
    finally:
        raw.close()


def _document(record, payload: bytes, loc: str, ordinal: int, limits: Limits) -> Record:
    url = record.rec_headers.get_header("WARC-Target-URI")
    date = record.rec_headers.get_header("WARC-Date")
    rec_id = record.rec_headers.get_header("WARC-Record-ID")
    meta = {"warc_type": record.rec_type, "warc_date": date, "warc_record_id": rec_id}
    if record.rec_type == "response" and record.http_headers is not None:
        status = record.http_headers.get_statuscode()
        ctype = (record.http_headers.get_header("Content-Type") or "").lower()
        meta.update(http_status=status, content_type=ctype)
        if status and not status.startswith("2"):
            return Drop("http_status_not_2xx", loc, ordinal)
    else:
        ctype = (record.rec_headers.get_header("Content-Type") or "text/plain").lower()
        meta["content_type"] = ctype
    if not any(t in ctype for t in TEXT_TYPES):
        return Drop("not_text_content", loc, ordinal)
    if len(payload) > limits.max_doc_bytes:
        return Reject("document_too_large", f"payload over max_doc_bytes {limits.max_doc_bytes:,}",
                      loc, ordinal, payload[: limits.max_raw_bytes], len(payload))
    if "html" in ctype:
        text, title = _html_text(payload, ctype)
    else:
        try:
            text, title = payload.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return Reject("invalid_utf8", f"{exc.reason} at byte {exc.start}", loc, ordinal,
                          payload[: limits.max_raw_bytes], len(payload))
    bad = check_text(text, loc, ordinal, payload, limits)
    if bad is not None:
        return bad
    return Doc(text=text, location=loc, ordinal=ordinal, source_id=rec_id, url=url, title=title,
               metadata=meta)


def _html_text(payload: bytes, ctype: str) -> tuple[str, str | None]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    charset = ctype.split("charset=", 1)[1].split(";")[0].strip() if "charset=" in ctype else None
    html = bytes_to_str(payload, charset or detect_encoding(payload))
    tree = HTMLTree.parse(html)
    title = tree.title.strip() if tree.title else None
    return extract_plain_text(tree, main_content=True, alt_texts=False), title or None
