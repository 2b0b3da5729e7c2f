import pytest

from pipelines.filters.keywords import Evidence, Thresholds, decide


def ev(terms=None, amb=None, chars=1000, wiki=False):
    return Evidence(terms or {}, amb or {}, chars, wiki)


@pytest.mark.parametrize("evidence,category,expected", [
    (ev({"LTE": 1}), "wiki", ("keep", "keyword_match")),
    (ev(), "wiki", ("drop", "no_keyword")),
    (ev(amb={"MAC": 3}), "web", ("drop", "ambiguous_only")),
    (ev(amb={"MAC": 1, "RAN": 1}), "web", ("keep", "keyword_match")),
    (ev({"LTE": 1}, amb={"MAC": 1}), "web", ("keep", "keyword_match")),
    (ev({"LTE": 5}, wiki=True), "web", ("drop", "wikipedia_url")),
    (ev({"LTE": 5}, wiki=True), "wiki", ("keep", "keyword_match")),
])
def test_default_thresholds(evidence, category, expected):
    assert decide(evidence, category, Thresholds()) == expected


def test_stricter_thresholds_give_named_reasons():
    t = Thresholds(min_distinct_terms=2, min_hits=3, min_density_per_kchar=1.0)
    assert decide(ev({"LTE": 5}), "wiki", t) == ("drop", "below_min_distinct_terms")
    assert decide(ev({"LTE": 1, "5G": 1}), "wiki", t) == ("drop", "below_min_hits")
    assert decide(ev({"LTE": 2, "5G": 2}, chars=10_000), "wiki", t) == ("drop", "below_min_density")
    assert decide(ev({"LTE": 2, "5G": 2}, chars=1_000), "wiki", t) == ("keep", "keyword_match")
    # ambiguous acronyms count once other evidence is there
    assert decide(ev({"LTE": 1}, amb={"MAC": 2}), "wiki", t) == ("keep", "keyword_match")
