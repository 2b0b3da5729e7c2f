"""Evaluation: the models compared (`subjects`), Tele-Eval's Ans-PPL / SemScore / LLM-Eval
(`tele_eval`, `metrics`, `embed`), telecom MCQ benchmarks (`mcq`, `choice`), classifier metrics against
human labels (`classification`). Model calls go through the LLM stage's result store (`calls`).
"""
