"""What readers yield: a document, a rejected record, or a dropped non-document, with its location."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Per-record limits; records beyond them are quarantined, not crashed on."""

    max_doc_bytes: int = 16 << 20
    """Largest accepted document (UTF-8 bytes). A 3GPP spec is a few MB; 16 MiB leaves room."""
    max_raw_bytes: int = 1 << 20
    """Raw bytes kept with a rejected record; its full size and location are always kept."""


@dataclass(frozen=True, slots=True)
class Doc:
    text: str
    location: str
    ordinal: int
    source_id: str | None = None
    url: str | None = None
    title: str | None = None
    category: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    detail: str
    location: str
    ordinal: int
    raw: bytes = b""
    raw_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Drop:
    """A record that is readable but not a document (e.g. an image response in a WARC)."""

    reason: str
    location: str
    ordinal: int


Record = Doc | Reject | Drop


def normalize_text(text: str) -> str:
    """NFKC, whitespace runs collapsed to one space, trimmed: the form doc_id hashes."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def doc_id(source: str, text: str) -> str:
    """Stable document id: sha256(source NUL normalized text), first 32 hex characters."""
    h = hashlib.sha256(source.encode())
    h.update(b"\x00")
    h.update(normalize_text(text).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def reject_id(job: str, source_file: str, location: str) -> str:
    return hashlib.sha256(f"{job}\x00{source_file}\x00{location}".encode()).hexdigest()[:32]


def check_text(text: object, location: str, ordinal: int, raw: bytes, limits: Limits) -> Reject | None:
    """Shared checks on a candidate document text: present, a string, not empty, not too big."""
    if text is None:
        return Reject("missing_field", "text field is missing or null", location, ordinal, raw[: limits.max_raw_bytes], len(raw))
    if not isinstance(text, str):
        return Reject("wrong_type", f"text field is {type(text).__name__}, expected a string",
                      location, ordinal, raw[: limits.max_raw_bytes], len(raw))
    if not text.strip():
        return Reject("empty_text", "text is empty or whitespace only", location, ordinal,
                      raw[: limits.max_raw_bytes], len(raw))
    # Exact UTF-8 size only when the character count cannot settle it.
    size = len(text) if len(text) * 4 <= limits.max_doc_bytes else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_doc_bytes:
        sample = raw or text[: limits.max_raw_bytes].encode("utf-8", "replace")
        return Reject("document_too_large", f"{size:,} bytes > max_doc_bytes {limits.max_doc_bytes:,}",
                      location, ordinal, sample[: limits.max_raw_bytes], max(size, len(raw)))
    return None
