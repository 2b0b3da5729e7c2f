"""The Table III-shaped report: values and counts from the summaries, best bold, charts beside."""
import json

from eval.report import collect, write_report


def test_the_report_takes_every_number_from_a_results_file(tmp_path):
    for name, ppl, llm, mmlu in (("base", 12.5, 10.0, 0.30), ("tele", 9.25, 14.0, 0.29)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "tele_eval.json").write_text(json.dumps(
            {"ans_ppl": ppl, "ans_ppl_n": 100, "semscore": 0.6, "semscore_n": 98, "llm_eval": llm, "llm_eval_n": 97}))
        (tmp_path / name / "general.json").write_text(json.dumps(
            {"scores": {"mmlu": mmlu, "hellaswag": 0.5, "gsm8k": float("nan")}, "items": {"mmlu": 50, "hellaswag": 40,
                                                                                       "gsm8k": 0}}))
    (tmp_path / "tele" / "mcq_generate.json").write_text(json.dumps({"groups": [
        {"category": "all", "split": "test", "pass_at_1": 0.41, "maj_at_k": 0.45, "items": 200},
        {"category": "teleqna", "split": "test", "pass_at_1": 0.4, "maj_at_k": 0.44, "items": 100}]}))
    table = collect(tmp_path, ["base", "tele"])
    assert table["tele"]["Ans-PPL"][:2] == (9.25, 100) and table["tele"]["MCQ Pass@1 unseen"][:2] == (0.41, 200)
    assert "GSM8K" not in table["base"] and "MCQ Pass@1 unseen" not in table["base"]  # nan and missing stay out
    md = write_report(tmp_path, ["base", "tele"], "Tele-LLMs").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith(("| base", "| tele"))}
    assert "**9.25**" in rows["tele"] and "12.50 <sub>n=100</sub>" in rows["base"]  # lower Ans-PPL is best
    assert "**14.00**" in rows["tele"] and "**0.3000**" in rows["base"]  # higher LLM-Eval and MMLU are best
    assert "–" in rows["base"] and "GSM8K" not in md.splitlines()[2]
    assert (tmp_path / "report_ans-ppl.png").is_file() and "![Ans-PPL](report_ans-ppl.png)" in md
