import pyarrow as pa
import pytest

from pipelines.demo.corpus import load_corpus
from pipelines.filters.keywords import scan
from pipelines.filters.lexicon import LexiconError, load_lexicon
from pipelines.filters.matchers import AhoCorasickMatcher, HyperscanMatcher


@pytest.fixture(scope="module")
def lex(lexicon_path):
    return load_lexicon(lexicon_path)


@pytest.fixture(scope="module", params=[HyperscanMatcher, AhoCorasickMatcher])
def matcher(request, lex):
    return request.param(lex)


def _named(lex, counts):
    return {lex.entries[i].term: n for i, n in counts.items()}


def test_counts_terms_patterns_and_exact_case_acronyms(lex, matcher):
    text = ("The gNB talks to the AMF; see 3GPP TS 38.331 and TS 23.501 v17.1.0. Wi-Fi, WiFi and "
            "base-stations. He ran to the mac store. RAN")
    got = _named(lex, matcher.count(text))
    assert got["gNB"] == 1 and got["Wi-Fi"] == 2 and got["base station"] == 1
    assert got["spec_number#0"] == 2          # each spec number once, version suffix or not
    assert got["AMF"] == 1 and got["RAN"] == 1  # exact case only: "ran", "mac" are not hits
    assert "MAC" not in got


def test_hyperscan_and_aho_corasick_agree_on_demo_corpus(lex):
    hs, ac = HyperscanMatcher(lex), AhoCorasickMatcher(lex)
    corpus = load_corpus()
    texts = [p["text"] for p in corpus["wikipedia"]] + [p["content"] for p in corpus["refinedweb"]]
    for text in texts:
        assert _named(lex, hs.count(text)) == _named(lex, ac.count(text)), text[:60]


def test_scan_marks_wikipedia_urls(lex, matcher):
    ev = scan("LTE", "https://en.m.wikipedia.org/wiki/LTE", lex, matcher)
    assert ev.wikipedia_url and ev.term_counts == {"LTE": 1}
    assert not scan("LTE", "https://example.org/wikipedia.org", lex, matcher).wikipedia_url


def _demo_texts():
    corpus = load_corpus()
    return [p["text"] for p in corpus["wikipedia"]] + [p["content"] for p in corpus["refinedweb"]]


# Neighbours that would form a term, a spec number or a word-boundary change if a batch were
# scanned as one string without separators.
BOUNDARY_TEXTS = ["we saw LT", "E and more", "per TS", "38.331 says", "5G", "NR", "", "gNB", "s",
                  "naïve café ünïcode LTE ✓", "RAN", "MAC", "TS 38.331", " v17.1.0", "O-RAN.WG", "4 x",
                  "ends with Wi-", "Fi", "3GPP Release", "15 is out", "使用LTE网络", "éLTE", "TS 38.331TS 38.331"]


@pytest.mark.parametrize("texts", [BOUNDARY_TEXTS, _demo_texts(), [], ["LTE"], ["", ""]],
                         ids=["boundaries", "demo", "empty-batch", "one", "empty-docs"])
def test_batch_counts_equal_per_document_counts(lex, matcher, texts):
    batch = matcher.count_batch(texts).counters(len(texts))
    assert batch == [matcher.count(t) for t in texts]


def test_hyperscan_and_aho_corasick_agree_at_boundaries(lex):
    hs, ac = HyperscanMatcher(lex), AhoCorasickMatcher(lex)
    assert [hs.count(t) for t in BOUNDARY_TEXTS] == [ac.count(t) for t in BOUNDARY_TEXTS]
    # ASCII word boundaries: a term beside CJK or accented letters still counts
    assert _named(lex, hs.count("使用LTE网络")) == {"LTE": 1}


def test_batch_takes_arrow_arrays_with_nulls(lex, matcher):
    arr = pa.chunked_array([pa.array(["LTE and 5G", None]), pa.array(["gNB"], pa.string())])
    got = [_named(lex, c) for c in matcher.count_batch(arr).counters(3)]
    assert got == [{"LTE": 1, "5G": 1}, {}, {"gNB": 1}]


def test_lexicon_refuses_patterns_that_can_cross_documents(tmp_path):
    path = tmp_path / "lex.yaml"
    path.write_text("version: x\npatterns:\n  bad: ['TS.38']\n")
    with pytest.raises(LexiconError, match=r"bad#0 .*can match across documents"):
        load_lexicon(path)
