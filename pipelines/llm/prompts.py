"""Versioned prompt sets (conf/prompts/*.yaml) rendered through a model's chat template.

A prompt has a template with one `{content}` slot, the label strings whose next-token
probabilities are read, and how many characters of a document it takes. Documents too long for
the model are cut by tokens, and the cut is reported, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


class PromptError(ValueError):
    """A prompt file is malformed, or its labels are not single tokens for the model."""


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str
    labels: tuple[str, ...]
    max_chars: int
    slots: tuple[str, ...] = ("content",)
    """The template's placeholders: `{content}` (a document), or named ones declared in the file."""

    def fill(self, **values: str) -> str:
        """The template with each slot replaced (each value cut to max_chars characters)."""
        if set(values) != set(self.slots):
            raise PromptError(f"prompt {self.name} has slots {list(self.slots)}; got {sorted(values)}")
        text = self.template
        for slot in self.slots:
            text = text.replace("{" + slot + "}", str(values[slot])[: self.max_chars])
        return text


@dataclass(frozen=True)
class PromptSet:
    version: str
    credit: str
    prompts: dict[str, Prompt]

    def get(self, name: str) -> Prompt:
        if name not in self.prompts:
            raise PromptError(f"prompt {name!r} not in prompt set {self.version}; it has {sorted(self.prompts)}")
        return self.prompts[name]


def load_prompt_set(path: str | Path) -> PromptSet:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PromptError(f"cannot read prompt set {path}: {exc}") from exc
    known = {"version", "credit", "prompts"}
    if not isinstance(data, dict) or set(data) - known or not {"version", "prompts"} <= set(data):
        raise PromptError(f"{path}: expected keys {sorted(known)} (version and prompts required)")
    prompts = {}
    for name, p in data["prompts"].items():
        extra = set(p) - {"template", "labels", "max_chars", "slots"}
        if extra or "template" not in p:
            raise PromptError(f"{path}: prompt {name}: unknown keys {sorted(extra)} or no template")
        slots = tuple(p.get("slots") or ("content",))
        bad = [s for s in slots if p["template"].count("{" + s + "}") != 1]
        if bad:
            raise PromptError(f"{path}: prompt {name}: the template needs each slot exactly once "
                              f"({', '.join('{' + s + '}' for s in bad)}); declare named slots under `slots:`")
        prompts[name] = Prompt(name, p["template"], tuple(p.get("labels") or ()), int(p.get("max_chars", 10_000)),
                               slots)
    return PromptSet(str(data["version"]), str(data.get("credit", "")), prompts)


@dataclass(frozen=True)
class Rendered:
    text: str
    """The full prompt as the model sees it (chat template applied, generation prompt added)."""
    tokens: int
    truncated: bool
    """The document was cut (beyond `max_chars`) to fit the model's context."""
    content_tokens: int
    """Tokens of the document before any cut by tokens."""


class Renderer:
    """Renders prompts for one tokenizer; `max_prompt_tokens` is the budget a prompt must fit."""

    def __init__(self, tokenizer, max_prompt_tokens: int) -> None:
        self.tok = tokenizer
        self.max_prompt_tokens = max_prompt_tokens

    def chat(self, user_message: str) -> str:
        try:
            return self.tok.apply_chat_template([{"role": "user", "content": user_message}], tokenize=False,
                                                add_generation_prompt=True)
        except ValueError as exc:  # no template
            raise PromptError(f"the model's tokenizer has no chat template ({exc}); use an instruct model") from exc

    def render(self, prompt: Prompt, content: str) -> Rendered:
        content = content[: prompt.max_chars]
        text = self.chat(prompt.template.replace("{content}", content))
        n = self._count(text)
        content_tokens = self._count(content)
        if n <= self.max_prompt_tokens:
            return Rendered(text, n, False, content_tokens)
        ids = self.tok(content, add_special_tokens=False)["input_ids"]
        keep = max(0, len(ids) - (n - self.max_prompt_tokens))
        while True:  # decoding can merge tokens differently; shrink until it fits
            text = self.chat(prompt.template.replace("{content}", self.tok.decode(ids[:keep])))
            n = self._count(text)
            if n <= self.max_prompt_tokens or keep == 0:
                break
            keep = max(0, keep - max(8, (n - self.max_prompt_tokens)))
        if n > self.max_prompt_tokens:
            raise PromptError(f"prompt {prompt.name} alone is {n} tokens, over the budget of "
                              f"{self.max_prompt_tokens}; raise llm.max_context_tokens or shorten the template")
        return Rendered(text, n, True, content_tokens)

    def label_ids(self, prompt: Prompt) -> list[int]:
        """Token id of each label as the first answer token; each must be exactly one token."""
        base = self.chat(prompt.fill(**dict.fromkeys(prompt.slots, "example")))
        head = self.tok(base, add_special_tokens=False)["input_ids"]
        out = []
        for label in prompt.labels:
            ids = self.tok(base + label, add_special_tokens=False)["input_ids"]
            if ids[: len(head)] != head or len(ids) != len(head) + 1:
                raise PromptError(f"label {label!r} of prompt {prompt.name} is not a single token after the "
                                  f"chat template of this model (got {len(ids) - len(head)} tokens); pick "
                                  f"labels the tokenizer keeps whole")
            out.append(ids[-1])
        return out

    def _count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])
