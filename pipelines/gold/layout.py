"""The public Tele-Data layout (paper §III-E, Appendix B): metadata keys per category. Pure."""
from __future__ import annotations

import re

import orjson

from schemas.gold import GENERAL_CATEGORY, PUBLIC_METADATA_KEYS

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_ARXIV_VERSION = re.compile(r"v\d+$")


def public_metadata(category: str, *, title: str | None, url: str | None, source_id: str | None,
                    metadata: dict) -> dict:
    """The metadata object of a Tele-Data row. `metadata` is the bronze/silver metadata of the document
    (arXiv listing fields; 3GPP file name, series, release; SlimPajama meta). Every key of the category
    is present (null when unknown) so readers and the data-quality suite can rely on them."""
    if category == "arxiv":
        aid = metadata.get("arxiv_id") or source_id
        values = {"Arxiv_id": _ARXIV_VERSION.sub("", aid) if aid else None,
                  "Title": title or metadata.get("title"), "Abstract": metadata.get("abstract")}
    elif category == "standard":
        name = metadata.get("file_name") or source_id
        values = {"Series": metadata.get("series"), "Release": metadata.get("release"),
                  "File_name": name.rsplit(".", 1)[0] if name and name.lower().endswith((".doc", ".docx", ".zip"))
                  else name}
    elif category == "wiki":
        values = {"Title": title, "Url": url}
    elif category == "web":
        values = {"Url": url}
    elif category == GENERAL_CATEGORY:
        values = {"Set": metadata.get("redpajama_set_name") or metadata.get("set")}
    else:
        raise ValueError(f"category {category!r} has no public layout; known: {sorted(PUBLIC_METADATA_KEYS)}")
    return {k: values.get(k) for k in PUBLIC_METADATA_KEYS[category]}


def recency(category: str, metadata: dict) -> int:
    """A sortable release number: the 3GPP version V18.4.0 → 180400 (newer releases win dedup); 0 otherwise."""
    if category != "standard":
        return 0
    m = _VERSION.match(str(metadata.get("version") or ""))
    return int(m.group(1)) * 10_000 + int(m.group(2)) * 100 + int(m.group(3)) if m else 0


def dumps(obj) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
