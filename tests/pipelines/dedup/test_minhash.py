"""MinHash + LSH: near duplicates found, different texts not, deterministic across processes."""
from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from pipelines.dedup.minhash import (MinHashParams, band_keys, candidate_probability, clusters,
                                     jaccard_estimate, normalize, shingles, signature)
from tests.conftest import ROOT, subprocess_env

P = MinHashParams()
WORDS = ("radio access network base station carrier bandwidth subcarrier spacing beam management handover "
         "scheduler uplink downlink modulation coding scheme channel state information reference signal "
         "core network session management user plane function slice latency throughput").split()


def _doc(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _true_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, P.ngram).tolist()), set(shingles(b, P.ngram).tolist())
    return len(sa & sb) / len(sa | sb)


def test_normalization_ignores_case_accents_punctuation_and_spacing():
    assert normalize("The  gNB, schedules\tthe UE; réseau!") == ["the", "gnb", "schedules", "the", "ue", "reseau"]
    assert np.array_equal(shingles("A b. C d e f", 5), shingles("a B c   d, E F!", 5))
    assert shingles("", 5).size == 0 and shingles("two words", 5).size == 1


def test_near_duplicates_share_a_band_and_different_texts_do_not():
    base = _doc(1)
    words = base.split()
    edited = " ".join(w if i % 50 else "edited" for i, w in enumerate(words))  # ~2% of words changed
    other = _doc(2)
    coeffs = P.coefficients()
    s_base, s_edit, s_other = (signature(t, P, coeffs) for t in (base, edited, other))
    assert abs(jaccard_estimate(s_base, s_edit) - _true_jaccard(base, edited)) < 0.12
    assert set(band_keys(s_base, P)) & set(band_keys(s_edit, P))
    assert not set(band_keys(s_base, P)) & set(band_keys(s_other, P))
    assert jaccard_estimate(s_base, s_other) < 0.1


def test_s_curve_matches_the_fineweb_setting():
    assert candidate_probability(0.75, P) > 0.75 and candidate_probability(0.9, P) > 0.99
    assert candidate_probability(0.5, P) < 0.06  # 14 bands of 8: threshold near 0.72


def test_signatures_are_stable_across_processes():
    code = ("from pipelines.dedup.minhash import MinHashParams, signature;"
            "print(signature('the gNB schedules the UE on the PDSCH every slot', MinHashParams())[:4].tolist())")
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                          cwd=ROOT, timeout=60).stdout for _ in range(2)}
    assert len(out) == 1 and out.pop().startswith("[")
    assert signature("", P).tolist() == [0xFFFFFFFF] * P.num_hashes


def test_clusters_join_connected_candidates_under_the_smallest_id():
    roots = clusters([("d3", "d1"), ("d2", "d3"), ("d9", "d8")])
    assert roots == {"d1": "d1", "d2": "d1", "d3": "d1", "d8": "d8", "d9": "d8"}


@pytest.mark.parametrize("n", [1000])
def test_unrelated_documents_get_distinct_signatures(n):
    coeffs = P.coefficients()
    sigs = [signature(_doc(i, 200), P, coeffs) for i in range(n)]
    assert len({s.tobytes() for s in sigs}) == n
