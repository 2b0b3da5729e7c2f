import pytest

from pipelines.demo.corpus import load_corpus
from pipelines.filters.keywords import scan
from pipelines.filters.lexicon import load_lexicon
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
