"""Evaluation (Ans-PPL, SemScore, LLM-Eval, MCQ Pass@1/Maj@k, generation metrics, reports).

Empty until the evaluation issue lands; the package exists so the layout and imports are stable.
"""
