import re

import pytest

from pipelines.filters.lexicon import LexiconError, load_lexicon, term_regex


def test_shipped_lexicon_has_100_plus_terms(lexicon_path):
    lex = load_lexicon(lexicon_path)
    kinds = [e.kind for e in lex.entries]
    assert kinds.count("term") >= 100
    assert {"RAN", "MAC", "AMF", "SIP"} <= lex.ambiguous()
    assert any(e.group == "spec_number" for e in lex.entries)
    assert lex.version == "telecom-v1"


@pytest.mark.parametrize("term,text,hit", [
    ("Wi-Fi", "our wifi router", True),
    ("Wi-Fi", "Wi Fi and WI-FI", True),
    ("base station", "two base-stations", True),
    ("base station", "base\n station", True),
    ("5G", "the 5GHz band", False),
    ("LTE", "ALTERNATE", False),
    ("telecom", "telecoms", True),
])
def test_term_regex(term, text, hit):
    assert bool(re.search(term_regex(term), text, re.IGNORECASE)) is hit


def test_duplicates_and_bad_patterns_are_refused(tmp_path):
    p = tmp_path / "lex.yaml"
    p.write_text("version: v\nterms: {a: [LTE, lte]}\n")
    with pytest.raises(LexiconError, match="listed twice"):
        load_lexicon(p)
    p.write_text("version: v\npatterns: {x: ['(unclosed']}\n")
    with pytest.raises(LexiconError, match="invalid pattern"):
        load_lexicon(p)
    p.write_text("version: v\nterm: [x]\n")
    with pytest.raises(LexiconError, match="expected keys"):
        load_lexicon(p)
