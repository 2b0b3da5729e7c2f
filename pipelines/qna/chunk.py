"""Cut a document into segments of at most `size` characters on paragraph boundaries. Pure.

Paper §IV segments papers, standards and Wikipedia articles into 20,000-character chunks and asks
for five questions per chunk. A document of length L becomes ceil(L / size) chunks of about equal
length: each cut is the paragraph break nearest the even split point that keeps the chunk within
`size`; where a stretch has no paragraph break the cut falls at a line break, then a sentence end,
then a space, and only as a last resort inside a word. Offsets index the document's content, and
whitespace at a chunk's edges is left out of it, so `content[start:end]` is exactly the chunk.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

_BREAKS = (re.compile(r"\n[ \t]*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s"), re.compile(r"\s"))
"""Where a cut may fall, best first: paragraph break, line break, sentence end, any space."""


@dataclass(frozen=True, kw_only=True)
class ChunkSpec:
    size: int = 20_000
    """Most characters in a chunk (paper §IV: 20,000)."""
    min_chars: int = 200
    """Chunks shorter than this are recorded but not sent to generation (chunk_too_short)."""

    def __post_init__(self) -> None:
        if self.size < 100 or not 0 <= self.min_chars <= self.size:
            raise ValueError(f"chunk size {self.size} must be >= 100 and min_chars {self.min_chars} within [0, size]")


def chunk_spans(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) offsets of the chunks of `text`; [] for a text of only whitespace."""
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    n = len(text)
    while n - start > size:
        left = math.ceil((n - start) / size)
        target = start + (n - start) / left
        cut = _cut(text, start, start + size, target)
        spans.append(_trim(text, start, cut))
        start = _skip_space(text, cut)
    if start < n:
        spans.append(_trim(text, start, n))
    return [s for s in spans if s[1] > s[0]]


def _cut(text: str, start: int, limit: int, target: float) -> int:
    window = text[start:limit]
    for pattern in _BREAKS:
        ends = [start + m.end() for m in pattern.finditer(window) if m.end() > len(window) // 10]
        if ends:
            return min(ends, key=lambda e: abs(e - target))
    return limit


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
