"""Prompt sets, label checks, truncation by tokens, and clear errors for bad model folders."""
import shutil

import pytest

from pipelines.llm.models import ModelError, ModelSpec, check_folder, resolve
from pipelines.llm.prompts import Prompt, PromptError, Renderer, load_prompt_set
from tests.conftest import ROOT

PAPER = ROOT / "conf" / "prompts" / "tele_llms_v1.yaml"


def test_paper_prompt_set_loads_and_labels_are_single_tokens(backend):
    ps = load_prompt_set(PAPER)
    assert ps.version == "tele-llms-v1" and set(ps.prompts) == {"relevance_arxiv", "relevance_web", "qna_generation",
                                                                          "answerability", "answer", "llm_eval"}
    assert "Answer by Yes or No" in ps.get("relevance_web").template
    r = Renderer(backend.tokenizer(), 512)
    yes, no = r.label_ids(ps.get("relevance_web"))
    assert backend.tokenizer().decode([yes]) == "Yes" and backend.tokenizer().decode([no]) == "No"


def test_multi_token_label_is_refused(backend):
    r = Renderer(backend.tokenizer(), 512)
    with pytest.raises(PromptError, match="label 'Affirmative indeed' .* not a single token"):
        r.label_ids(Prompt("p", "Is {content} telecom?", ("Affirmative indeed", "No"), 100))


def test_long_documents_are_cut_by_tokens_and_say_so(backend):
    r = Renderer(backend.tokenizer(), 200)
    p = Prompt("p", "Is this telecom? {content} Answer Yes or No.", ("Yes", "No"), 100_000)
    short = r.render(p, "The gNB serves the UE.")
    assert not short.truncated and short.tokens < 200
    long = r.render(p, "The gNB serves the UE over the air interface. " * 200)
    assert long.truncated and long.tokens <= 200 and long.content_tokens > 1000
    assert long.text.rstrip().endswith("assistant") or "Answer Yes or No." in long.text
    assert r.render(p, "x" * 50_000).truncated  # a single very long token run


def test_prompt_file_errors(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: x\nprompts:\n  a: {template: 'no slot here'}\n")
    with pytest.raises(PromptError, match=r"prompt a: the template needs each slot exactly once \(\{content\}\)"):
        load_prompt_set(bad)
    bad.write_text("version: x\nprompts:\n  a: {template: 'Q {question} A {answer} {answer}', slots: [question, answer]}\n")
    with pytest.raises(PromptError, match=r"exactly once \(\{answer\}\)"):
        load_prompt_set(bad)
    good = tmp_path / "g.yaml"
    good.write_text("version: x\nprompts:\n  a: {template: 'Q {question} A {answer}', slots: [question, answer]}\n")
    p = load_prompt_set(good).get("a")
    assert p.fill(question="why?", answer="because") == "Q why? A because"
    with pytest.raises(PromptError, match=r"has slots \['question', 'answer'\]; got \['question'\]"):
        p.fill(question="why?")


def test_model_folder_errors_name_what_is_missing(tmp_path, backend):
    with pytest.raises(ModelError, match="does not exist"):
        resolve(ModelSpec(path=str(tmp_path / "nope")))
    model = resolve(ModelSpec())
    copy = tmp_path / "m"
    shutil.copytree(model.path, copy)
    (copy / "chat_template.jinja").unlink()
    with pytest.raises(ModelError, match="lacks: chat template"):
        check_folder(copy)
    (copy / "config.json").unlink()
    with pytest.raises(ModelError, match="lacks: config.json, chat template"):
        check_folder(copy)
    with pytest.raises(ModelError, match="unknown embedded model 'gpt-9'"):
        resolve(ModelSpec(path="embedded:gpt-9"))
