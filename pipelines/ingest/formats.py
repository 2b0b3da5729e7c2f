"""Input formats and the field each document attribute comes from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["wikipedia_parquet", "refinedweb_parquet", "parquet", "jsonl", "teledata_jsonl", "slimpajama_jsonl", "warc"]


@dataclass(frozen=True, kw_only=True)
class FieldMap:
    """Record field → document attribute. Fields not named here go into `metadata` as JSON."""

    text: str = "text"
    id: str | None = "id"
    url: str | None = "url"
    title: str | None = "title"
    category: str | None = None
    """Per-record category field (Tele-Data JSONL); otherwise the source's category applies."""
    metadata: str | None = None
    """A field that already holds a metadata object (Tele-Data JSONL)."""

    def named(self) -> set[str]:
        return {f for f in (self.text, self.id, self.url, self.title, self.category, self.metadata) if f}


PRESETS: dict[str, FieldMap] = {
    "wikipedia_parquet": FieldMap(text="text", id="id", url="url", title="title"),
    "refinedweb_parquet": FieldMap(text="content", id=None, url="url", title=None),
    "parquet": FieldMap(),
    "jsonl": FieldMap(),
    "teledata_jsonl": FieldMap(text="content", id="id", url=None, title=None, category="category",
                               metadata="metadata"),
    # SlimPajama / RedPajama: {"text": ..., "meta": {"redpajama_set_name": "RedPajamaC4"}}
    "slimpajama_jsonl": FieldMap(text="text", id=None, url=None, title=None, metadata="meta"),
    "warc": FieldMap(),
}

PARQUET_FORMATS = {"wikipedia_parquet", "refinedweb_parquet", "parquet"}
JSONL_FORMATS = {"jsonl", "teledata_jsonl", "slimpajama_jsonl"}
