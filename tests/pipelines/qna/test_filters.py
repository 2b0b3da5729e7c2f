"""The rule filters of Tele-Eval on literal pairs: each asserts the reason that drops the pair, and
that well-formed telecom questions pass every one of the shipped 100+ regex filters."""
import pytest

from pipelines.qna.decontam import BenchmarkIndex
from pipelines.qna.filter_stage import FilterSpec, rule_verdict
from pipelines.qna.filters import FilterConfError, RegexFilters, example_keys, reference
from tests.conftest import ROOT

REGEX = RegexFilters.load(ROOT / "conf" / "qna" / "filters.yaml")
SPEC = FilterSpec()
EXAMPLES = example_keys(["What frequency band does Bluetooth use?"])
TEXT = ("The access and mobility management function (AMF) terminates the NAS signalling of the UE and handles "
         "registration, connection and mobility management in the 5G core network. The SMF manages PDU sessions.")
CHUNK = reference(TEXT)

GOOD = [
    ("What is the role of the AMF in the 5G core network?", "It handles registration, connection and mobility."),
    ("Which frequency band does Bluetooth Low Energy use for advertising?", "The 2.4 GHz ISM band."),
    ("How does a cyclic prefix protect OFDM symbols against multipath delay spread?",
     "It absorbs echoes shorter than the prefix, so symbols do not interfere."),
    ("Which 3GPP release introduced the first 5G NR specifications?", "Release 15."),
    ("What is the purpose of the Nmfaf_3daDataManagement_Deconfigure service operation?",
     "To stop mapping data or analytics received by the MFAF to notification endpoints."),
    ("Under what circumstances should the UE insert a public GRUU value in the Contact header field?",
     "When a public GRUU value has been saved for the public user identity and privacy is not requested."),
    ("Why can a TDD base station estimate the downlink channel from uplink pilots?", "Because of channel reciprocity."),
    ("What does the near-RT RIC host to control RAN functions over the E2 interface?", "xApps."),
]


def test_the_shipped_regex_set_has_over_100_named_filters():
    assert len(REGEX.filters) >= 100 and len({f.name for f in REGEX.filters}) == len(REGEX.filters)


@pytest.mark.parametrize("question, answer", GOOD)
def test_good_telecom_pairs_pass_every_rule(question, answer):
    v = rule_verdict(question, answer, CHUNK, REGEX, SPEC, EXAMPLES)
    assert (v["stage"], v["reason"], v["regex_hits"]) == ("kept", "kept", []) and v["language"] == "en"


LOCAL = [
    ("In this context, what does the AMF terminate?", "NAS signalling.", "in_this_context"),
    ("What is the main contribution of this paper?", "A new scheduler.", "this_paper"),
    ("As highlighted in the survey, which function manages PDU sessions?", "The SMF.", "as_highlighted_in"),
    ("What does equation (3) describe in the uplink model?", "The SINR.", "equation_ref"),
    ("What is plotted in Fig. 4 for the massive MIMO case?", "The spectral efficiency.", "figure_ref"),
    ("Which parameters are listed in Table 2 for the simulation?", "Bandwidth and power.", "table_ref"),
    ("What is explained in Section 3 about handover?", "Its signalling.", "section_ref"),
    ("What does Algorithm 1 compute at each base station?", "The beam weights.", "algorithm_ref"),
    ("Which results are reported in Appendix B of the study?", "Proofs.", "appendix_ref"),
    ("What do the authors propose for uplink power control?", "A learning scheme.", "the_authors"),
    ("How does the proposed scheme reduce the beam sweep overhead?", "By 40%.", "the_proposed"),
    ("What does the AMF terminate in the given text?", "NAS signalling.", "in_the_passage"),
    ("Which function manages PDU sessions in the 5G core network?", "The passage does not say.", "answer_the_passage"),
    ("Which interface connects the gNB-CU and gNB-DU as described in [12]?", "F1.", "citation_brackets"),
]


@pytest.mark.parametrize("question, answer, reason", LOCAL)
def test_local_references_are_dropped_by_the_named_regex(question, answer, reason):
    v = rule_verdict(question, answer, CHUNK, REGEX, SPEC, EXAMPLES)
    assert v["stage"] == "regex" and reason in v["regex_hits"] and v["reason"] == v["regex_hits"][0]


def test_the_first_matching_filter_in_conf_order_is_the_reason():
    v = rule_verdict("What does the AMF terminate according to the passage?", "NAS signalling.", CHUNK, REGEX, SPEC,
                     EXAMPLES)
    assert v["regex_hits"] == ["according_to_the_source", "the_passage"] and v["reason"] == "according_to_the_source"


@pytest.mark.parametrize("question, answer, stage, reason", [
    ("What is NR?", "New Radio.", "length", "question_too_short"),
    ("What is the role of the " + "very " * 90 + "long function?", "A function.", "length", "question_too_long"),
    ("Which network function handles UE registration?", "", "length", "answer_too_short"),
    ("The AMF handles registration and mobility of the UE", "Yes it does.", "form", "not_a_question"),
    ("What frequency band does Bluetooth use?", "2.4 GHz", "form", "copies_example"),
    ("Is it true that the access and mobility management function (AMF) terminates the NAS signalling of the UE?",
     "It does, towards the UE.",
     "form", "copies_passage"),
    ("What manages PDU sessions in the 5G core network?", "What manages PDU sessions in the 5G core network?",
     "form", "answer_repeats_question"),
    ("Quelle fonction du cœur de réseau 5G gère les sessions PDU des terminaux ?",
     "La fonction SMF gère les sessions PDU.", "language", "not_en"),
])
def test_length_form_and_language_checks(question, answer, stage, reason):
    v = rule_verdict(question, answer, CHUNK, REGEX, SPEC, EXAMPLES)
    assert (v["stage"], v["reason"]) == (stage, reason)


def test_malformed_filter_files_fail_naming_the_filter(tmp_path):
    bad = tmp_path / "f.yaml"
    bad.write_text("version: v\nfilters:\n  - {name: broken, pattern: '(unclosed'}\n")
    with pytest.raises(FilterConfError, match="broken.*does not compile"):
        RegexFilters.load(bad)
    bad.write_text("version: v\nfilters:\n  - {name: a, pattern: x}\n  - {name: a, pattern: y}\n")
    with pytest.raises(FilterConfError, match="unique"):
        RegexFilters.load(bad)
    bad.write_text("version: v\nfilters:\n  - {name: a, pattern: x, fields: [title]}\n")
    with pytest.raises(FilterConfError, match="fields"):
        RegexFilters.load(bad)


def test_decontamination_matches_shared_word_runs_and_short_exact_questions():
    index = BenchmarkIndex([("teleqna_1", "What is the purpose of the Nmfaf_3daDataManagement_Deconfigure service "
                                          "operation? [3GPP Release 18]"),
                            ("oranbench_2", "What is the O-DU?")], ngram=8)
    assert index.match("Can you tell what is the purpose of the Nmfaf_3daDataManagement_Deconfigure service "
                       "operation in 5G?") == "teleqna_1"
    assert index.match("what is the o-du") == "oranbench_2"
    assert index.match("What is the purpose of the AMF registration procedure in the 5G core?") is None


def test_hyperscan_prefilter_finds_exactly_the_matches_of_python_re():
    pairs = GOOD + [(q, a) for q, a, _ in LOCAL] + [
        ("What is the role of the AMF (see Fig. 3) in 5G?", "As described above, mobility."),
        ("Qu'est-ce que l'AMF dans le cœur 5G ?", "La fonction d'accès — voir l'Annexe B."),
        ("Which lemma 2 bounds the SINR?", "I'm sorry, I cannot say."),
        ("Explain the O-RAN E2 interface", "[12] and \\cite{x} describe it."),
    ]
    teleqna = ROOT.parent / "shared" / "data" / "benchmarks" / "teleqna" / "TeleQnA.txt"
    if teleqna.is_file():  # and 3,000 real questions with their explanations
        import json

        items = list(json.loads(teleqna.read_text()).values())[:3000]
        pairs += [(x["question"], x.get("explanation") or "") for x in items]
    for q, a in pairs:
        assert REGEX.hits(q, a) == REGEX.hits_re(q, a), q
