"""LLM batch stage: one interface for scoring, generation and log-likelihood over local models.

`models` resolves and checks model folders (the embedded SmolLM2 default included), `prompts`
renders versioned prompt sets through the model's chat template, `backend` defines the interface
with a transformers backend (CPU, or GPU without vLLM) and a vLLM backend (GPU), `store` keeps
results keyed by what produced them so reruns skip finished work, and `judge` is the Yes/No
relevance stage built on them.
"""
