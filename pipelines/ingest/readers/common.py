"""Helpers shared by readers: mapping a parsed record onto a Doc, opening files."""
from __future__ import annotations

import json

from pipelines.ingest.formats import FieldMap
from pipelines.ingest.records import Doc, Limits, Reject, check_text
from pipelines.lake.storage import filesystem


def open_binary(path: str, storage_options: dict[str, str]):
    """A raw binary input stream (no decompression) for a local path or URI."""
    fs, inner = filesystem(path, storage_options)
    return fs.open_input_stream(inner, compression=None)


def to_doc(obj: dict, fields: FieldMap, location: str, ordinal: int, raw: bytes,
           limits: Limits) -> Doc | Reject:
    """Map one parsed record (dict) onto a Doc, or a Reject saying what is wrong with it."""
    text = obj.get(fields.text)
    bad = check_text(text, location, ordinal, raw, limits)
    if bad is not None:
        if bad.reason == "missing_field":
            bad = Reject("missing_field", f"field {fields.text!r} is missing or null; record has "
                         f"{sorted(obj)[:20]}", location, ordinal, bad.raw, bad.raw_bytes)
        return bad
    meta: dict = {}
    if fields.metadata:
        given = obj.get(fields.metadata)
        if isinstance(given, str):
            try:
                given = json.loads(given)
            except ValueError:
                given = {"raw_metadata": given}
        if isinstance(given, dict):
            meta.update(given)
        elif given is not None:
            meta["raw_metadata"] = given
    named = fields.named()
    meta.update({k: v for k, v in obj.items() if k not in named})
    return Doc(
        text=text,
        location=location,
        ordinal=ordinal,
        source_id=_opt_str(obj.get(fields.id)) if fields.id else None,
        url=_opt_str(obj.get(fields.url)) if fields.url else None,
        title=_opt_str(obj.get(fields.title)) if fields.title else None,
        category=_opt_str(obj.get(fields.category)) if fields.category else None,
        metadata=meta,
    )


def _opt_str(value) -> str | None:
    return None if value is None else str(value)
