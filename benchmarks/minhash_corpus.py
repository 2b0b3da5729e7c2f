#!/usr/bin/env python
"""Deterministic synthetic corpus with planted exact and near duplicates (MinHash dedup benchmark).

    python corpus.py --docs N --shards K --out DIR [--seed 0] [--exact-frac 0.10] [--near-frac 0.10]

Writes
    DIR/jsonl/part-XXXXX.jsonl        {"id", "text", "category"} one per line, no compression
    DIR/parquet/part-XXXXX.parquet    same columns (snappy)
    DIR/ground_truth.parquet          one row per document (see GT_SCHEMA below)
    DIR/manifest.json                 parameters, counts, timings

Model
    * vocabulary of 30k synthetic lowercase "words" (syllable strings, a few hundred numeric tokens such as
      "38.331", "5g"), ranked so that short words are frequent; token draws follow a Zipf-Mandelbrot law
      p(r) ~ 1/(r+2.7)^1.05, mixed (25%) with a per-category Zipf over a category-specific permutation of
      the content words (topic words). Unrelated documents share a 5-gram only by chance (rare) and never
      get near a MinHash-relevant Jaccard.
    * documents of 150-400 words, sentences (geometric length, mean ~14), commas, paragraph breaks,
      capitalised sentence starts, final full stop.
    * document i is an "exact" copy (prob exact-frac) or a "near" duplicate (prob near-frac) of a uniformly
      chosen EARLIER "original" document (so duplicates cross shard boundaries), otherwise an original.
      exact copies: variant verbatim / whitespace (runs of spaces, newlines, trailing blank) / case
      (all lower, ALL UPPER or Title Case) / both; identical after lower-casing + whitespace normalisation.
      near copies: 3-5% of the words edited (each edit a replacement, an insertion or a deletion, equally
      likely, at uniformly random positions). The 5-gram shingle Jaccard between the copy and its source
      (computed on the generator's word ids) is recorded.
Everything is drawn from one seeded numpy Generator, processed in fixed-size chunks: same arguments ->
byte-identical output.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

VOCAB_SIZE = 30_000
ZIPF_S = 1.05
ZIPF_Q = 2.7
TOPIC_MIX = 0.25
TOPIC_FROM_RANK = 300          # the 300 most frequent words are "function words", shared by all topics
N_NUMERIC = 300
MIN_WORDS, MAX_WORDS = 150, 400
SENT_END_P = 1 / 14            # geometric sentence length, mean ~14 words
PARA_END_P = 0.2               # a sentence end is a paragraph end with this probability
COMMA_P = 0.05
WS_PERTURB_P = 0.15            # whitespace variant: fraction of separators changed
CHUNK = 8_192                  # documents rendered at a time
CATEGORIES = np.array(["3gpp_spec", "ietf_rfc", "arxiv_paper", "standard", "web_article", "forum_qa"])
CATEGORY_P = np.array([0.25, 0.10, 0.20, 0.10, 0.25, 0.10])

# separator ("suffix") codes after each word; the alternates are used by whitespace-variant exact copies
SUFFIX = [" ", ", ", ". ", ".\n\n", ".",          # 0 space, 1 comma, 2 sentence end, 3 paragraph end, 4 doc end
          "  ", "\n", ",\n", ".  ", ".\n \n", ". \n"]  # 5..10 whitespace alternates
SENT_END_CODES = (2, 3, 8, 9)  # the next word is capitalised
WS_ALT = np.array([5, 7, 8, 9, 10, 5, 6, 7, 8, 9, 10], dtype=np.uint8)
WS_ALT2 = np.array([6, 7, 8, 9, 10, 5, 6, 7, 8, 9, 10], dtype=np.uint8)  # second choice for code 0

KIND_ORIGINAL, KIND_EXACT, KIND_NEAR = 0, 1, 2
KIND_NAMES = np.array(["original", "exact", "near"])
EXACT_VARIANTS = np.array(["verbatim", "whitespace", "case", "whitespace+case"])
CASE_NORMAL, CASE_LOWER, CASE_UPPER, CASE_TITLE = 0, 1, 2, 3
CASE_NAMES = np.array(["normal", "lower", "upper", "title"])


# ----------------------------------------------------------------------------------------------- vocabulary
def build_vocab(rng: np.random.Generator) -> list[str]:
    onsets = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
              "br", "ch", "cr", "dr", "fl", "gr", "kl", "pl", "pr", "sh", "sk", "sl", "sp", "st", "str", "th",
              "tr", "vl", "zh"]
    nuclei = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "oa", "ou", "y"]
    codas = ["", "", "", "", "n", "r", "s", "t", "l", "m", "nd", "nt", "rk", "st", "x", "ng"]
    words: dict[str, None] = {}
    while len(words) < VOCAB_SIZE - N_NUMERIC:
        m = 50_000
        nsyl = rng.choice([1, 2, 3, 4], size=m, p=[0.25, 0.45, 0.24, 0.06])
        o = rng.integers(0, len(onsets), size=(m, 4))
        nu = rng.integers(0, len(nuclei), size=(m, 4))
        c = rng.integers(0, len(codas), size=(m, 4))
        for k in range(m):
            w = "".join(onsets[o[k, j]] + nuclei[nu[k, j]] + codas[c[k, j]] for j in range(nsyl[k]))
            if len(w) >= 2 and w not in words:
                words[w] = None
                if len(words) == VOCAB_SIZE - N_NUMERIC:
                    break
    words_l = list(words)
    # frequent words are short: rank by length + noise
    key = np.array([len(w) for w in words_l], dtype=np.float64) + rng.normal(0, 2.0, size=len(words_l))
    words_l = [words_l[i] for i in np.argsort(key, kind="stable")]
    # numeric tokens (spec numbers, versions, "5g"), placed at random mid/low-frequency ranks
    nums: dict[str, None] = {}
    while len(nums) < N_NUMERIC:
        t = rng.integers(0, 4)
        a, b = int(rng.integers(1, 40)), int(rng.integers(0, 1000))
        s = (f"{a}.{b:03d}", f"{a * 100 + b % 100}", f"{a % 9 + 2}g", f"v{a}.{b % 20}")[t]
        if s not in words:
            nums[s] = None
    pos = np.sort(rng.choice(np.arange(200, VOCAB_SIZE), size=N_NUMERIC, replace=False))
    out = words_l[:]
    for p, s in zip(pos, nums):
        out.insert(int(p), s)
    assert len(out) == VOCAB_SIZE and len(set(out)) == VOCAB_SIZE
    return out


def piece_table(vocab: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte table of all pieces: 3 case variants of each word (lower, Capitalised, UPPER), then separators."""
    pieces = vocab + [w.capitalize() for w in vocab] + [w.upper() for w in vocab] + SUFFIX
    enc = [p.encode("utf-8") for p in pieces]
    lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    offs = np.zeros(len(enc), dtype=np.int64)
    np.cumsum(lens[:-1], out=offs[1:])
    data = np.frombuffer(b"".join(enc), dtype=np.uint8)
    return data, offs, lens


# ------------------------------------------------------------------------------------------------ sampling
class Sampler:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        r = np.arange(1, VOCAB_SIZE + 1, dtype=np.float64)
        p = 1.0 / (r + ZIPF_Q) ** ZIPF_S
        self.cdf = np.cumsum(p / p.sum())
        n_topic = VOCAB_SIZE - TOPIC_FROM_RANK
        rt = np.arange(1, n_topic + 1, dtype=np.float64)
        pt = 1.0 / (rt + ZIPF_Q) ** ZIPF_S
        self.cdf_topic = np.cumsum(pt / pt.sum())
        self.topic_perm = np.stack([rng.permutation(n_topic) + TOPIC_FROM_RANK
                                    for _ in range(len(CATEGORIES))]).astype(np.uint16)

    def words(self, n: int, cats: np.ndarray | None = None) -> np.ndarray:
        rng = self.rng
        ids = np.minimum(np.searchsorted(self.cdf, rng.random(n)), VOCAB_SIZE - 1).astype(np.uint16)
        if cats is not None:
            topical = rng.random(n) < TOPIC_MIX
            k = int(topical.sum())
            tr = np.minimum(np.searchsorted(self.cdf_topic, rng.random(k)), len(self.cdf_topic) - 1)
            ids[topical] = self.topic_perm[cats[topical], tr]
        return ids

    def separators(self, lengths: np.ndarray) -> np.ndarray:
        rng = self.rng
        n = int(lengths.sum())
        u = rng.random(n)
        suf = np.zeros(n, dtype=np.uint8)
        suf[u < COMMA_P] = 1
        end = u > 1.0 - SENT_END_P
        recent = np.zeros(n, dtype=bool)                 # no sentence shorter than 4 words
        for k in range(1, 4):
            recent[k:] |= end[:-k]
        end &= ~recent
        suf[end] = 2
        suf[end & (rng.random(n) < PARA_END_P)] = 3
        suf[np.cumsum(lengths) - 1] = 4
        return suf


def shingle_set(ids: np.ndarray, n: int = 5) -> np.ndarray:
    x = ids.astype(np.uint64)
    if len(x) < n:
        return np.unique(x)
    w = np.lib.stride_tricks.sliding_window_view(x, n)
    mult = np.array([1_000_003 ** k % (1 << 64) for k in range(n)], dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = (w * mult).sum(axis=1, dtype=np.uint64)
    return np.unique(h)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = shingle_set(a), shingle_set(b)
    inter = len(np.intersect1d(sa, sb, assume_unique=True))
    return inter / (len(sa) + len(sb) - inter)


# ------------------------------------------------------------------------------------------------- render
def render(ids: np.ndarray, suf: np.ndarray, doc_len: np.ndarray, case: np.ndarray,
           table: tuple[np.ndarray, np.ndarray, np.ndarray]) -> pa.Array:
    """Vectorised text assembly: word piece (case variant) + separator piece per token -> arrow string array."""
    data, offs, lens = table
    n_tok = len(ids)
    starts = np.zeros(len(doc_len), dtype=np.int64)
    np.cumsum(doc_len[:-1], out=starts[1:])
    first = np.zeros(n_tok, dtype=bool)
    first[starts] = True
    prev_end = np.zeros(n_tok, dtype=bool)
    prev_end[1:] = np.isin(suf[:-1], SENT_END_CODES)
    cap = first | prev_end
    tok_case = np.repeat(case, doc_len)
    variant = np.where(tok_case == CASE_NORMAL, cap.astype(np.int64),
                       np.select([tok_case == CASE_LOWER, tok_case == CASE_UPPER], [0, 2], 1))
    pieces = np.empty(2 * n_tok, dtype=np.int64)
    pieces[0::2] = variant * VOCAB_SIZE + ids.astype(np.int64)
    pieces[1::2] = 3 * VOCAB_SIZE + suf.astype(np.int64)
    plen = lens[pieces]
    out_end = np.cumsum(plen)
    total = int(out_end[-1])
    out_start = out_end - plen
    idx = np.repeat(offs[pieces] - out_start, plen) + np.arange(total, dtype=np.int64)
    buf = data[idx]
    doc_end_tok = (starts + doc_len) * 2 - 1
    str_off = np.zeros(len(doc_len) + 1, dtype=np.int32)
    str_off[1:] = out_end[doc_end_tok]
    return pa.Array.from_buffers(pa.string(), len(doc_len),
                                 [None, pa.py_buffer(str_off.tobytes()), pa.py_buffer(buf.tobytes())])


# --------------------------------------------------------------------------------------------------- main
GT_SCHEMA = pa.schema([
    ("id", pa.string()), ("shard", pa.int32()), ("kind", pa.string()),          # original / exact / near
    ("dup_of", pa.string()),                 # source document id (an original), null for originals
    ("variant", pa.string()),                # exact: verbatim/whitespace/case/whitespace+case; near: "edit"
    ("case_mode", pa.string()),              # normal/lower/upper/title
    ("n_words", pa.int32()), ("n_edits", pa.int32()), ("edit_frac", pa.float32()),
    ("jaccard_5gram", pa.float32()),         # vs dup_of, on generator word ids (exact: 1.0)
    ("n_copies", pa.int32()),                # originals: how many exact/near copies point at it
    ("category", pa.string()),
])


def doc_id(i: int) -> str:
    return f"doc-{i:010d}"


def generate(n_docs: int, n_shards: int, out: str, seed: int = 0, exact_frac: float = 0.10,
             near_frac: float = 0.10, edit_lo: float = 0.03, edit_hi: float = 0.05,
             formats: tuple[str, ...] = ("jsonl", "parquet")) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    vocab = build_vocab(rng)
    table = piece_table(vocab)
    sampler = Sampler(rng)

    # ---- global plan: kinds, sources, lengths, categories
    u = rng.random(n_docs)
    kind = np.where(u < exact_frac, KIND_EXACT, np.where(u < exact_frac + near_frac, KIND_NEAR, KIND_ORIGINAL))
    kind[0] = KIND_ORIGINAL
    is_orig = kind == KIND_ORIGINAL
    orig_idx = np.flatnonzero(is_orig)
    n_orig_before = np.cumsum(is_orig) - is_orig          # originals strictly before i
    src_ord = np.minimum((rng.random(n_docs) * n_orig_before).astype(np.int64), np.maximum(n_orig_before - 1, 0))
    source = np.where(is_orig, -1, orig_idx[src_ord])
    length = rng.integers(MIN_WORDS, MAX_WORDS + 1, size=n_docs)
    category = rng.choice(len(CATEGORIES), size=n_docs, p=CATEGORY_P)
    category = np.where(is_orig, category, category[np.maximum(source, 0)])
    exact_variant = rng.integers(0, 4, size=n_docs)
    case_pick = rng.choice([CASE_LOWER, CASE_UPPER, CASE_TITLE], size=n_docs)
    case = np.where((kind == KIND_EXACT) & (exact_variant >= 2), case_pick, CASE_NORMAL)
    edit_frac = np.where(kind == KIND_NEAR, rng.uniform(edit_lo, edit_hi, size=n_docs), 0.0)
    n_copies = np.bincount(source[source >= 0], minlength=n_docs)

    # store of originals' tokens (word id uint16 + separator code uint8)
    ord_of = np.full(n_docs, -1, dtype=np.int64)
    ord_of[orig_idx] = np.arange(len(orig_idx))
    o_len = length[orig_idx]
    o_off = np.zeros(len(orig_idx) + 1, dtype=np.int64)
    np.cumsum(o_len, out=o_off[1:])
    store_ids = np.empty(int(o_off[-1]), dtype=np.uint16)
    store_suf = np.empty(int(o_off[-1]), dtype=np.uint8)

    shard_of = (np.arange(n_docs) * n_shards) // n_docs
    for fmt in formats:
        os.makedirs(os.path.join(out, fmt), exist_ok=True)
    doc_schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("category", pa.string())])

    gt_n_words = np.zeros(n_docs, dtype=np.int32)
    gt_n_edits = np.zeros(n_docs, dtype=np.int32)
    gt_jacc = np.full(n_docs, np.nan, dtype=np.float32)
    gt_jacc[kind == KIND_EXACT] = 1.0
    total_bytes = 0

    import orjson
    for shard in range(n_shards):
        s_lo = int(np.searchsorted(shard_of, shard, side="left"))
        s_hi = int(np.searchsorted(shard_of, shard, side="right"))
        jpath = os.path.join(out, "jsonl", f"part-{shard:05d}.jsonl")
        ppath = os.path.join(out, "parquet", f"part-{shard:05d}.parquet")
        with contextlib.ExitStack() as stack:
            jf = stack.enter_context(open(jpath, "wb")) if "jsonl" in formats else None
            pw = stack.enter_context(pq.ParquetWriter(ppath, doc_schema)) if "parquet" in formats else None
            for lo in range(s_lo, s_hi, CHUNK):
                hi = min(lo + CHUNK, s_hi)
                # 1) originals of this chunk -> store
                oi = orig_idx[(orig_idx >= lo) & (orig_idx < hi)]
                if len(oi):
                    ol = length[oi]
                    cats = np.repeat(category[oi], ol)
                    ids = sampler.words(int(ol.sum()), cats)
                    suf = sampler.separators(ol)
                    a, b = o_off[ord_of[oi[0]]], o_off[ord_of[oi[-1]] + 1]
                    store_ids[a:b] = ids
                    store_suf[a:b] = suf
                # 2) per-document token arrays
                d_ids, d_suf = [], []
                for i in range(lo, hi):
                    k = kind[i]
                    src = i if k == KIND_ORIGINAL else source[i]
                    o = ord_of[src]
                    ids = store_ids[o_off[o]:o_off[o + 1]]
                    suf = store_suf[o_off[o]:o_off[o + 1]]
                    if k == KIND_EXACT:
                        if exact_variant[i] in (1, 3):               # whitespace perturbation
                            suf = suf.copy()
                            m = rng.random(len(suf)) < WS_PERTURB_P
                            alt = np.where(rng.random(len(suf)) < 0.5, WS_ALT[suf], WS_ALT2[suf])
                            suf[m] = alt[m]
                            suf[-1] = 10
                    elif k == KIND_NEAR:
                        L = len(ids)
                        ne = max(1, int(round(edit_frac[i] * L)))
                        pos = rng.choice(L - 1, size=ne, replace=False)   # never touch the final word
                        op = rng.integers(0, 3, size=ne)                # 0 replace, 1 insert, 2 delete
                        new_ids = ids.copy()
                        rep = pos[op == 0]
                        new_ids[rep] = sampler.words(len(rep))
                        keep = np.ones(L, dtype=bool)
                        keep[pos[op == 2]] = False
                        ins = np.sort(pos[op == 1])
                        ins_ids = sampler.words(len(ins))
                        new_ids = np.insert(new_ids, ins, ins_ids)
                        new_suf = np.insert(suf, ins, np.zeros(len(ins), dtype=np.uint8))
                        keep = np.insert(keep, ins, True)
                        ids, suf = new_ids[keep], new_suf[keep]
                        gt_n_edits[i] = ne
                        gt_jacc[i] = jaccard(store_ids[o_off[o]:o_off[o + 1]], ids)
                    d_ids.append(ids)
                    d_suf.append(suf)
                    gt_n_words[i] = len(ids)
                dl = np.array([len(x) for x in d_ids], dtype=np.int64)
                text = render(np.concatenate(d_ids), np.concatenate(d_suf), dl, case[lo:hi], table)
                total_bytes += text.nbytes
                ids_arr = pa.array([doc_id(i) for i in range(lo, hi)], pa.string())
                cat_arr = pa.array(CATEGORIES[category[lo:hi]], pa.string())
                tbl = pa.Table.from_arrays([ids_arr, text, cat_arr], schema=doc_schema)
                if pw is not None:
                    pw.write_table(tbl)
                dumps = orjson.dumps
                if jf is not None:
                    jf.write(b"".join(dumps({"id": a, "text": t, "category": c}, option=orjson.OPT_APPEND_NEWLINE)
                                  for a, t, c in zip(ids_arr.to_pylist(), text.to_pylist(), cat_arr.to_pylist())))

    ids_all = [doc_id(i) for i in range(n_docs)]
    gt = pa.Table.from_arrays([
        pa.array(ids_all), pa.array(shard_of.astype(np.int32)), pa.array(KIND_NAMES[kind]),
        pa.array([ids_all[s] if s >= 0 else None for s in source], pa.string()),
        pa.array(np.where(kind == KIND_EXACT, EXACT_VARIANTS[exact_variant],
                          np.where(kind == KIND_NEAR, "edit", None)).tolist(), pa.string()),
        pa.array(CASE_NAMES[case]), pa.array(gt_n_words), pa.array(gt_n_edits),
        pa.array(edit_frac.astype(np.float32)), pa.array(gt_jacc, from_pandas=True),
        pa.array(n_copies.astype(np.int32)), pa.array(CATEGORIES[category]),
    ], schema=GT_SCHEMA)
    pq.write_table(gt, os.path.join(out, "ground_truth.parquet"))

    manifest = {
        "docs": n_docs, "shards": n_shards, "seed": seed, "exact_frac": exact_frac, "near_frac": near_frac,
        "edit_frac_range": [edit_lo, edit_hi], "vocab_size": VOCAB_SIZE, "zipf": [ZIPF_S, ZIPF_Q],
        "counts": {n: int((kind == k).sum()) for k, n in enumerate(KIND_NAMES)},
        "originals_with_copies": int((n_copies > 0).sum()),
        "words_total": int(gt_n_words.sum()), "text_bytes": int(total_bytes),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-frac", type=float, default=0.10)
    ap.add_argument("--near-frac", type=float, default=0.10)
    ap.add_argument("--edit-lo", type=float, default=0.03)
    ap.add_argument("--edit-hi", type=float, default=0.05)
    ap.add_argument("--formats", default="jsonl,parquet", help="comma list: jsonl, parquet (default both)")
    a = ap.parse_args()
    if a.shards > a.docs:
        ap.error("--shards must be <= --docs")
    formats = tuple(f for f in a.formats.split(",") if f)
    if not formats or set(formats) - {"jsonl", "parquet"}:
        ap.error("--formats: jsonl and/or parquet")
    m = generate(a.docs, a.shards, a.out, a.seed, a.exact_frac, a.near_frac, a.edit_lo, a.edit_hi, formats)
    print(json.dumps(m, indent=2))


if __name__ == "__main__":
    main()
