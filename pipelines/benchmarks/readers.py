"""Read benchmark files into raw MCQ items, each with its location. Pure apart from reading the file.

Formats (the layouts of ../shared/data/benchmarks and of GSMA ot-full):

- `teleqna_json`: one JSON object `{"question N": {question, "option 1".., answer: "option k: text",
  explanation, category}}`.
- `oran_jsonl`: JSON lines `[question, ["1. opt", ...], "k"]` with a 1-based answer (ORAN-Bench-13K,
  srsRANBench); a file holding one JSON array of such lists is read too.
- `gsma_parquet`: Parquet with `question`, `choices` (list), `answer` (0-based index) and `subject`.

Nothing is validated here beyond the shape needed to find the fields (`items.py` decides); a record
whose shape is unreadable comes back as a `Reject` with its location and raw bytes.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import orjson

from pipelines.ingest.readers.common import open_binary
from pipelines.ingest.records import Reject
from pipelines.lake.storage import filesystem

Format = Literal["teleqna_json", "oran_jsonl", "gsma_parquet"]
MAX_RAW = 64 << 10


@dataclass(frozen=True, slots=True)
class RawItem:
    question: object
    choices: object
    answer: object
    """As found: an index (1-based where `one_based`), a numeric string, or None."""
    location: str
    ordinal: int
    raw: bytes
    one_based: bool
    answer_text: str | None = None
    """The answer's text where the source repeats it (TeleQnA "option 2: …")."""
    subject: str | None = None
    difficulty: str | None = None
    explanation: str | None = None


def read_items(fmt: Format, path: str, storage_options: dict[str, str]) -> Iterator[RawItem | Reject]:
    if fmt == "gsma_parquet":
        yield from _gsma(path, storage_options)
        return
    with open_binary(path, storage_options) as fh:
        data = fh.read()
    yield from (_teleqna(data) if fmt == "teleqna_json" else _oran(data))


_OPTION = re.compile(r"^option (\d+)$")
_ANSWER = re.compile(r"^\s*option\s+(\d+)\s*:?\s*(.*)$", re.S | re.I)


def _teleqna(data: bytes) -> Iterator[RawItem | Reject]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield Reject("malformed_json", f"the file is not one JSON object: {exc}", "file", -1, data[:MAX_RAW], len(data))
        return
    if not isinstance(obj, dict):
        yield Reject("wrong_shape", f"top level is {type(obj).__name__}, expected an object of questions", "file", -1,
                     data[:MAX_RAW], len(data))
        return
    for n, (key, item) in enumerate(obj.items()):
        raw = orjson.dumps({key: item})
        location = f"key={key}"
        if not isinstance(item, dict):
            yield Reject("wrong_shape", f"{key} is {type(item).__name__}, expected an object", location, n, raw[:MAX_RAW],
                         len(raw))
            continue
        numbered = sorted((int(m.group(1)), v) for k, v in item.items() if (m := _OPTION.match(k)))
        if [i for i, _ in numbered] != list(range(1, len(numbered) + 1)):
            yield Reject("option_gap", f"option numbers {[i for i, _ in numbered]} are not 1..k", location, n,
                         raw[:MAX_RAW], len(raw))
            continue
        answer, text = item.get("answer"), None
        if isinstance(answer, str) and (m := _ANSWER.match(answer)):
            answer, text = int(m.group(1)), m.group(2).strip() or None
        yield RawItem(question=item.get("question"), choices=[v for _, v in numbered], answer=answer, location=location,
                      ordinal=n, raw=raw, one_based=True, answer_text=text, subject=_str(item.get("category")),
                      explanation=_str(item.get("explanation")))


def _oran(data: bytes) -> Iterator[RawItem | Reject]:
    stripped = data.lstrip()
    if stripped.startswith(b"[["):  # one JSON array of items
        try:
            rows = orjson.loads(data)
        except orjson.JSONDecodeError:
            rows = None
        if isinstance(rows, list):
            for n, row in enumerate(rows):
                yield _oran_row(row, f"index={n}", n, orjson.dumps(row))
            return
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Reject("malformed_json", str(exc), f"line={n}", n, line[:MAX_RAW], len(line))
            continue
        yield _oran_row(row, f"line={n}", n, line)


def _oran_row(row, location: str, n: int, raw: bytes) -> RawItem | Reject:
    if not isinstance(row, list) or len(row) != 3:
        return Reject("wrong_shape", "expected [question, [options], answer]", location, n, raw[:MAX_RAW], len(raw))
    question, choices, answer = row
    return RawItem(question=question, choices=choices, answer=answer, location=location, ordinal=n, raw=raw,
                   one_based=True)


def _gsma(path: str, storage_options: dict[str, str]) -> Iterator[RawItem | Reject]:
    import pyarrow.parquet as pq

    fs, inner = filesystem(path, storage_options)
    with fs.open_input_file(inner) as fh:  # Parquet needs random access
        table = pq.read_table(fh)
    missing = [c for c in ("question", "choices", "answer") if c not in table.column_names]
    if missing:
        yield Reject("missing_field", f"columns {missing} missing; the file has {table.column_names}", "file", -1)
        return
    for n, row in enumerate(table.to_pylist()):
        raw = orjson.dumps(row, default=str)
        yield RawItem(question=row.get("question"), choices=row.get("choices"), answer=row.get("answer"),
                      location=f"row={n}", ordinal=n, raw=raw, one_based=False, subject=_str(row.get("subject")),
                      difficulty=_str(row.get("difficulty")), explanation=_str(row.get("explanation")))


def _str(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
