"""Tele-Eval metrics: eq. 5-7 on literal values, the models evaluated (folders, adapters: checked and
merged), and the stage end to end on a real release with the embedded judge and MiniLM: per-item
predictions, the counts each metric rests on, recorded failures, and a rerun served from the store."""
import json
import math

import pyarrow.parquet as pq
import pytest

from eval.calls import LakeCalls
from eval import metrics
from eval.subjects import Subject, resolve_subject
from pipelines.llm.models import ModelError


def test_ans_ppl_is_the_mean_of_per_pair_means_as_eq_5():
    pairs = [metrics.pair_mean_logprob(-2.0, 2), metrics.pair_mean_logprob(-9.0, 3)]  # -1 and -3
    assert metrics.ans_ppl(pairs) == pytest.approx(math.exp(2.0))  # not exp(11/5), the token-pooled value
    assert math.isnan(metrics.ans_ppl([]))
    with pytest.raises(ValueError, match="no tokens"):
        metrics.pair_mean_logprob(-1.0, 0)


def test_llm_eval_is_the_share_judged_correct_from_yes_no_logprobs():
    v = metrics.verdict(math.log(0.6), math.log(0.2))
    assert v.p_yes == pytest.approx(0.75) and v.label_mass == pytest.approx(0.8) and v.correct
    assert not metrics.verdict(math.log(0.1), math.log(0.3)).correct
    assert metrics.llm_eval([True, False, False, True]) == 50.0 and math.isnan(metrics.llm_eval([]))


def test_the_papers_prompts_5_and_6_have_named_slots():
    from pipelines.config import SHIPPED_CONF
    from pipelines.llm.prompts import PromptError, load_prompt_set

    ps = load_prompt_set(SHIPPED_CONF / "prompts" / "tele_llms_v1.yaml")
    assert ps.get("answer").fill(statement="What is the AMF?").endswith("Question: What is the AMF?\n\nAnswer:")
    judge = ps.get("llm_eval")
    assert judge.labels == ("Yes", "No") and judge.slots == ("question", "ground_truth", "prediction")
    with pytest.raises(PromptError, match="slots"):
        judge.fill(question="q")


def _tiny(folder, hidden=64, seed=0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pipelines.llm.models import ModelSpec, resolve
    from training.export import copy_tokenizer

    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=hidden, intermediate_size=2 * hidden,
                                 num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                 tie_word_embeddings=True)).save_pretrained(folder)
    copy_tokenizer(resolve(ModelSpec()).path, folder)
    return folder


def _adapter(base, folder, r=4, targets=("q_proj", "v_proj"), std=0.5):
    """A LoRA adapter of `base` with random, non-zero updates, saved to `folder`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    m = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                       LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), init_lora_weights=False))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, std)
    m.save_pretrained(folder)
    return m


def test_an_adapter_is_checked_against_its_base_and_merged_once(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    base = _tiny(tmp_path / "base")
    peft_model = _adapter(base, tmp_path / "adapter")
    model = resolve_subject(Subject(name="tuned", path=str(tmp_path / "adapter")), cache_dir=str(tmp_path / "cache"))
    assert model.name == "tuned" and "+" in model.revision
    merged = AutoModelForCausalLM.from_pretrained(model.path).eval()
    x = torch.tensor([[1, 5, 9, 200, 7]])
    with torch.no_grad():
        assert torch.allclose(merged(x).logits, peft_model.eval()(x).logits, atol=1e-4)
    again = resolve_subject(Subject(name="tuned", path=str(tmp_path / "adapter")), cache_dir=str(tmp_path / "cache"))
    assert again.path == model.path  # merged once, reused

    other = _tiny(tmp_path / "other", hidden=32)
    with pytest.raises(ModelError, match="does not fit base .*trained on another base"):
        resolve_subject(Subject(name="x", path=str(tmp_path / "adapter"), base=str(other)),
                        cache_dir=str(tmp_path / "cache"))


def test_a_checkpoint_without_tokenizer_or_weights_is_refused_saying_what_is_missing(tmp_path):
    base = _tiny(tmp_path / "m")
    (base / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="lacks: tokenizer"):
        resolve_subject(Subject(name="m", path=str(base)))
    (base / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="weights"):
        resolve_subject(Subject(name="m", path=str(base)))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    with pytest.raises(ModelError, match="adapter_model.safetensors"):
        resolve_subject(Subject(name="a", path=str(tmp_path / "a")))


def test_empty_huge_and_failed_answers_are_recorded_per_item_and_counted():
    from eval.embed import Embedder
    from eval.tele_eval import Item, TeleEvalSpec, score
    from pipelines.llm.models import ResolvedModel

    items = [Item(f"i{n}", "wiki_1", f"Question {n}?", "The AMF.") for n in range(4)]
    answers = {"i0": {"prediction": "The AMF handles registration.", "logprob": -4.0, "tokens": 4, "error": None},
               "i1": {"prediction": "", "logprob": -8.0, "tokens": 4, "error": None},
               "i2": {"prediction": "AMF " * 50_000, "logprob": -2.0, "tokens": 4, "error": None},
               "i3": {"prediction": None, "logprob": None, "tokens": 4, "error": "generate: BackendError: too long"}}
    verdicts = {"i0": ((math.log(0.7), math.log(0.1)), None), "i2": ((math.log(0.001), math.log(0.002)), None)}
    table, s = score(items, answers, verdicts, Embedder(), TeleEvalSpec(release="r"), ResolvedModel("m", "p", "rev"))
    rows = {r["item_id"]: r for r in table.to_pylist()}
    assert rows["i1"]["failure"] == "empty_answer" and rows["i1"]["semscore"] is None
    assert rows["i2"]["semscore"] is not None and rows["i2"]["failure"] == "judge_not_yes_no"
    assert rows["i3"]["failure"].startswith("generate: BackendError")
    assert (s.ans_ppl_n, s.semscore_n, s.llm_eval_n) == (3, 2, 1) and s.llm_eval == 100.0
    assert s.ans_ppl == pytest.approx(math.exp((1.0 + 2.0 + 0.5) / 3))
    assert s.failures == {"empty_answer": 1, "judge_not_yes_no": 1, "generate": 1}


@pytest.mark.spark
def test_the_stage_scores_every_pair_records_failures_and_reruns_from_the_store(spark, lake_cfg, tmp_path):
    from eval.tele_eval import TeleEvalSpec, evaluate
    from pipelines.release.create import ReleaseSpec, create_release
    from schemas import TELE_EVAL
    from tests.pipelines.gold.conftest import write_rows
    from tests.pipelines.release.test_release import gold_rows, write_gold
    from tests.pipelines.release.test_release_datasets import tele_eval_rows

    write_gold(spark, lake_cfg, gold_rows(1, 6), "g")
    rows = tele_eval_rows(["wiki_1", "wiki_2", "wiki_3", "wiki_4"])
    rows[1]["Statement"], rows[1]["Answer"] = "What does AMF stand for in 5G?", "Access and Mobility Management Function"
    write_rows(spark, lake_cfg, TELE_EVAL, rows, "te")
    create_release(spark, lake_cfg, "r1", ReleaseSpec())
    base = _tiny(tmp_path / "tiny")
    subjects = [Subject(name="embedded", path="embedded:smollm2-135m-instruct"), Subject(name="tiny", path=str(base))]
    spec = TeleEvalSpec(release="r1", source_ids=["wiki_1", "wiki_2", "wiki_3"], max_new_tokens=12)
    out = tmp_path / "results"
    first = evaluate(LakeCalls(spark, lake_cfg), lake_cfg, spec, subjects, out)
    assert [s.model for s in first] == ["embedded", "tiny"] and all(s.items == 3 for s in first)
    for s in first:
        table = pq.read_table(out / s.model / "tele_eval.parquet").to_pylist()
        assert len(table) == 3 and {r["source_id"] for r in table} == {"wiki_1", "wiki_2", "wiki_3"}
        scored = [r for r in table if r["pair_mean_logprob"] is not None]
        assert s.ans_ppl_n == len(scored) == 3 and s.ans_ppl == pytest.approx(
            math.exp(-sum(r["pair_mean_logprob"] for r in scored) / 3))
        assert all(r["answer_tokens"] > 0 and r["pair_mean_logprob"] < 0 for r in scored)
        answered = [r for r in table if (r["prediction"] or "").strip()]
        assert s.semscore_n == len(answered) and all(-1.0 <= r["semscore"] <= 1.0 for r in answered)
        judged = [r for r in table if r["judge_correct"] is not None]
        assert s.llm_eval_n == len(judged) and s.llm_eval == pytest.approx(
            100 * sum(r["judge_correct"] for r in judged) / max(1, len(judged)), nan_ok=True)
        assert sum(s.failures.values()) >= 3 - min(s.semscore_n, s.llm_eval_n)  # every gap has a reason
        assert json.loads((out / s.model / "tele_eval.json").read_text())["items"] == 3

    from pipelines.llm.runner import stored_results
    calls = stored_results(spark, lake_cfg).count()
    again = evaluate(LakeCalls(spark, lake_cfg), lake_cfg, spec, subjects, out)
    assert stored_results(spark, lake_cfg).count() == calls  # nothing new was asked of any model
    values = [[s.ans_ppl, s.semscore, s.llm_eval] for s in first]
    assert [v for s in again for v in (s.ans_ppl, s.semscore, s.llm_eval)] == pytest.approx(sum(values, []),
                                                                                           nan_ok=True)
    assert first[0].ans_ppl < first[1].ans_ppl  # the trained model is far less surprised than a random one
