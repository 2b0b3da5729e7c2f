"""The embedded SmolLM2-135M-Instruct, converted once per machine into the model cache."""
import pytest


@pytest.fixture(scope="session")
def backend():
    from pipelines.llm.backend import BackendConfig, load_backend

    return load_backend(BackendConfig(kind="transformers", max_context_tokens=512, max_batch_tokens=2048))
