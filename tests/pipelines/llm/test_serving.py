"""Multi-adapter serving on one base: each request answered by its category's adapter (the same text as
that adapter merged and served alone), the base without adapters, an adapter of another base refused,
and requests without a category routed by a fastText router over the categories."""
import pytest

from pipelines.llm.backend import BackendConfig, SamplingParams
from pipelines.llm.models import ModelError, ResolvedModel
from pipelines.llm.serving import BASE, AdapterServer, Request
from tests.eval.test_tele_eval import _adapter, _tiny

GREEDY = SamplingParams(max_tokens=6, temperature=0.0)


def _model(folder) -> ResolvedModel:
    return ResolvedModel(name=folder.name, path=str(folder), revision="test")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    base = _tiny(root / "base")
    _adapter(base, root / "a", std=0.5)
    _adapter(base, root / "b", r=8, targets=("q_proj", "k_proj", "v_proj", "o_proj"), std=0.8)
    return root, base


def test_each_request_is_answered_by_its_categorys_adapter_on_one_base(pair, tmp_path):
    from eval.subjects import Subject, resolve_subject
    from pipelines.llm.hf_backend import HFBackend

    root, base = pair
    cfg = BackendConfig(kind="transformers")
    server = AdapterServer(_model(base), {"teleqna": str(root / "a"), "oranbench": str(root / "b")}, cfg)
    prompts = ["What does RRC stand for?", "Name an O-RAN interface.", "Define HARQ.", "What is a gNB?"]
    cats = ["teleqna", "oranbench", BASE, "teleqna"]
    answers = server.answer([Request(p, c) for p, c in zip(prompts, cats)], GREEDY)
    assert [a.category for a in answers] == cats and not any(a.routed for a in answers)
    assert dict(server.calls) == {"teleqna": 1, "oranbench": 1, BASE: 1}  # one batch per adapter
    # the same text as each adapter merged into the base and served on its own
    for folder, cat in ((root / "a", "teleqna"), (root / "b", "oranbench")):
        merged = resolve_subject(Subject(name=cat, path=str(folder)), cache_dir=str(tmp_path / "cache"))
        alone = HFBackend(merged, cfg).generate([p for p, c in zip(prompts, cats) if c == cat], GREEDY)
        assert alone == [a.completions for a in answers if a.category == cat]
    plain = HFBackend(_model(base), cfg).generate([prompts[2]], GREEDY)
    assert plain == [answers[2].completions]
    assert answers[0].completions != HFBackend(_model(base), cfg).generate([prompts[0]], GREEDY)[0]  # adapters matter


def test_an_adapter_of_another_base_or_a_request_without_category_and_router_is_refused(pair, tmp_path):
    root, base = pair
    other = _tiny(tmp_path / "other", hidden=32)
    with pytest.raises(ModelError, match="does not fit base"):
        AdapterServer(_model(other), {"teleqna": str(root / "a")}, BackendConfig(kind="transformers"))
    server = AdapterServer(_model(base), {"teleqna": str(root / "a")}, BackendConfig(kind="transformers"))
    with pytest.raises(ModelError, match="name no category .* no router"):
        server.answer([Request("q?")], GREEDY)


def test_requests_without_a_category_are_routed(pair, tmp_path):
    from pipelines.llm.router import load_router, measure, route, train_router

    root, base = pair
    radio = ["Which RRC message carries the measurement report?", "What does the PDCP layer do in LTE?",
             "How is HARQ feedback sent on PUCCH?", "What is the role of the AMF in 5G core?"]
    oran = ["Which O-RAN interface links the near-RT RIC and the E2 node?", "What is an xApp in O-RAN?",
            "What does the O1 interface of O-RAN manage?", "Which O-RAN component hosts rApps?"]
    texts, cats = radio * 5 + oran * 5, ["teleqna"] * 20 + ["oranbench"] * 20
    path = train_router(texts, cats, tmp_path / "router.bin")
    model = load_router(path)
    assert [c for c, _ in route(model, ["In O-RAN, what does the near-RT RIC host?", "What does RRC do in LTE?"])] == [
        "oranbench", "teleqna"]
    report = measure(model, path, texts, cats, train_items=len(texts))
    assert report.accuracy == 1.0 and report.confusion["teleqna"] == {"teleqna": 20}
    server = AdapterServer(_model(base), {"teleqna": str(root / "a"), "oranbench": str(root / "b")},
                           BackendConfig(kind="transformers"), router=path)
    answers = server.answer([Request("q1", text="Which O-RAN interface carries E2 messages to the near-RT RIC?"),
                             Request("q2", category="teleqna")], GREEDY)
    assert answers[0].category == "oranbench" and answers[0].routed and 0 < answers[0].router_probability <= 1
    assert answers[1].category == "teleqna" and not answers[1].routed
    with pytest.raises(ValueError, match="two or more categories"):
        train_router(["a b"], ["teleqna"], tmp_path / "one.bin")
