"""Evaluation: classifier metrics against human labels (`classification`) today; Ans-PPL, SemScore,
LLM-Eval, MCQ Pass@1/Maj@k and generation metrics arrive with the evaluation issue.
"""
