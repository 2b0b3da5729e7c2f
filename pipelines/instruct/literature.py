"""Literature tasks from Tele-Data's papers (paper 000 §VIII-D, Appendix E). Pure.

A paper gives title generation (abstract → title), abstract completion (title and the first half
of the abstract → the rest) and introduction → abstract. Its citations give edges to the other
papers of the corpus: a bibliography entry (`silver.cleaned.bibliography`, kept by the cleaning
stage for every cited key) points at a corpus paper when it names the paper's arXiv id or its
title. Each edge gives a citation link prediction example (and one negative: the same citing
paper with a random paper it does not cite), a citation sentence example (the sentence of the
citing paper around the citation, from both papers' titles and abstracts) and a citation
recommendation example (the cited paper among 10 random papers it does not cite).
"""
from __future__ import annotations

import random
import re

from pipelines.dedup.minhash import normalize

_ABSTRACT = re.compile(r"\\begin\s*\{abstract\}(.*?)\\end\s*\{abstract\}", re.S)
_SECTION = re.compile(r"\\section\*?\s*\{([^{}]*)\}")
_CITE = re.compile(r"\\cite\{([^{}]*)\}")
_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])|\b([a-z-]+(?:\.[A-Z]{2})?/\d{7})\b")
_SEGMENT = re.compile(r"[\"“”‘’]|\\newblock|[.;:](?=\s)|,\s(?=[A-Z])|\bIn\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\])")


def title_key(title: str) -> str:
    """A title as the index compares it: normalized words, at least four of them."""
    words = normalize(title or "")
    return " ".join(words) if len(words) >= 4 else ""


def abstract_of(metadata_abstract: str | None, content: str) -> str | None:
    if metadata_abstract and metadata_abstract.strip():
        return " ".join(metadata_abstract.split())
    m = _ABSTRACT.search(content or "")
    return " ".join(m.group(1).split()) if m and m.group(1).strip() else None


def introduction_of(content: str, max_chars: int) -> str | None:
    """The text of the section titled Introduction, up to the next section (cut at `max_chars`, at a
    sentence end where there is one)."""
    sections = list(_SECTION.finditer(content or ""))
    for i, m in enumerate(sections):
        if "introduction" in m.group(1).lower():
            end = sections[i + 1].start() if i + 1 < len(sections) else len(content)
            text = content[m.end():end].strip()
            if len(text) > max_chars:
                cut = text[:max_chars]
                ends = [e.start() for e in _SENTENCE_END.finditer(cut)]
                text = cut[:ends[-1]] if ends and ends[-1] > max_chars // 2 else cut
            return text or None
    return None


def split_abstract(abstract: str) -> tuple[str, str] | None:
    """(first half, rest) at the sentence end nearest the middle; None for a one-sentence abstract."""
    ends = [m.start() for m in _SENTENCE_END.finditer(abstract)]
    if not ends:
        return None
    cut = min(ends, key=lambda e: abs(e - len(abstract) / 2))
    head, tail = abstract[:cut].strip(), abstract[cut:].strip()
    return (head, tail) if head and tail else None


def entry_candidates(text: str) -> tuple[list[str], list[str]]:
    """(arXiv ids, title keys) a bibliography entry may name: its arXiv identifiers, and each segment
    between quotes, sentence punctuation or \\newblock that reads as a title."""
    ids = [a or b for a, b in _ARXIV_ID.findall(text or "")]
    keys = {title_key(s) for s in _SEGMENT.split(text or "")}
    keys.add(title_key(text or ""))  # a .bib entry's text is its title
    return ids, sorted(k for k in keys if k)


def citing_sentences(content: str, key: str, max_chars: int = 600) -> list[str]:
    """Sentences of `content` that cite `key`, with every citation shown as [citation]."""
    out = []
    for sentence in _SENTENCE_END.split(content or ""):
        for m in _CITE.finditer(sentence):
            if key in [k.strip() for k in m.group(1).split(",")]:
                s = " ".join(_CITE.sub("[citation]", sentence).split())
                if 20 <= len(s) <= max_chars:
                    out.append(s)
                break
    return out


def pick_negatives(rng_key: str, pool: list[str], exclude: set[str], n: int) -> list[str]:
    """`n` ids of `pool` not in `exclude`, drawn with a generator seeded by `rng_key` (fewer when the
    pool holds fewer)."""
    rng = random.Random(rng_key)
    if len(pool) - len(exclude) <= 4 * n:
        choices = [p for p in pool if p not in exclude]
        rng.shuffle(choices)
        return choices[:n]
    out: list[str] = []
    while len(out) < n:
        c = pool[rng.randrange(len(pool))]
        if c not in exclude and c not in out:
            out.append(c)
    return out


def paper_text(title: str, abstract: str, max_chars: int = 2000) -> str:
    return f"Title: {title}\nAbstract: {abstract[:max_chars]}"
