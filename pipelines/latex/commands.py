"""Remove floats and uninformative commands, keep the text of formatting commands. Pure.

The lists live in `conf/latex/commands.yaml` (`CommandRules.load`): environments dropped with
their content (figures, tables, tikz pictures), environments unwrapped (center, minipage…),
commands dropped with their arguments (`\\vspace{..}`, `\\includegraphics[..]{..}`), and commands
whose text stays (`\\textbf{x}` → `x`, `\\href{url}{text}` → `text`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import SHIPPED_CONF, read_yaml
from pipelines.latex.macros import bracket, group

DEFAULT_RULES = SHIPPED_CONF / "latex" / "commands.yaml"


@dataclass(frozen=True)
class CommandRules:
    version: str
    drop_environments: frozenset[str]
    unwrap_environments: dict[str, int] = field(default_factory=dict)
    drop_commands: dict[str, int] = field(default_factory=dict)
    keep_text_commands: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_RULES) -> CommandRules:
        raw = read_yaml(Path(path))
        try:
            return cls(version=str(raw["version"]), drop_environments=frozenset(raw.get("drop_environments", [])),
                       unwrap_environments={str(k): int(v) for k, v in (raw.get("unwrap_environments") or {}).items()},
                       drop_commands={str(k): int(v) for k, v in (raw.get("drop_commands") or {}).items()},
                       keep_text_commands={str(k): int(v) for k, v in (raw.get("keep_text_commands") or {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad command rules ({exc}); see the comments at the top of "
                             f"conf/latex/commands.yaml for the format") from exc


_ENV = re.compile(r"\\(begin|end)\s*\{([^{}]+)\}")


def _skip_options(tex: str, i: int) -> int:
    """Past any [optional] arguments at tex[i]."""
    while (b := bracket(tex, i)) is not None:
        i = b[1]
    return i


def drop_environments(tex: str, names: frozenset[str], warnings: list[str]) -> tuple[str, int]:
    """(text without the named environments and their content, how many were removed)."""
    out, pos, removed = [], 0, 0
    for m in _ENV.finditer(tex):
        if m.start() < pos or m.group(1) != "begin" or m.group(2).strip() not in names:
            continue
        name, depth, end = m.group(2).strip(), 0, -1
        for e in _ENV.finditer(tex, m.start()):
            if e.group(2).strip() == name:
                depth += 1 if e.group(1) == "begin" else -1
                if depth == 0:
                    end = e.end()
                    break
        out.append(tex[pos:m.start()])
        if end < 0:  # never closed: drop the \begin only, the text may matter
            warnings.append(f"\\begin{{{name}}} at character {m.start()} is never closed: only the \\begin removed")
            pos = m.end()
            continue
        removed += 1
        pos = end
    out.append(tex[pos:])
    return "".join(out), removed


def unwrap_environments(tex: str, names: dict[str, int]) -> str:
    """\begin{name}[..]{..} and \end{name} removed (with the begin's arguments), content kept."""
    out, pos = [], 0
    for m in _ENV.finditer(tex):
        name = m.group(2).strip()
        if m.start() < pos or name not in names:
            continue
        out.append(tex[pos:m.start()])
        pos = m.end()
        if m.group(1) == "begin":
            pos = _skip_options(tex, pos)
            for _ in range(names[name]):
                g = group(tex, pos)
                if g is None:
                    break
                pos = _skip_options(tex, g[1])
    out.append(tex[pos:])
    return "".join(out)


def apply_commands(tex: str, rules: CommandRules) -> str:
    names = set(rules.drop_commands) | set(rules.keep_text_commands)
    if not names:
        return tex
    pattern = re.compile(r"\\(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")(?![a-zA-Z@])")
    for _ in range(8):  # nested formatting (\textbf{\emph{x}}) unwraps from the outside in
        new = _apply_once(tex, pattern, rules)
        if new == tex:
            break
        tex = new
    return tex


def _apply_once(tex: str, pattern: re.Pattern, rules: CommandRules) -> str:
    out, pos = [], 0
    for m in pattern.finditer(tex):
        if m.start() < pos:
            continue
        name = m.group(1)
        nargs = rules.drop_commands.get(name, rules.keep_text_commands.get(name, 0))
        j, args = m.end(), []
        if nargs == 0 and tex[j:j + 1] == "[":  # \linebreak[4]; "\newline [x]" keeps its text
            j = _skip_options(tex, j)
        for _ in range(nargs):  # options sit before the braced arguments, never after the last
            g = group(tex, _skip_options(tex, j))
            if g is None:
                break
            args.append(g[0])
            j = g[1]
        if len(args) < nargs:
            continue  # malformed use: left for a reader to see
        out.append(tex[pos:m.start()])
        if name in rules.keep_text_commands:
            out.append(args[rules.keep_text_commands[name] - 1] if args else "")
        pos = j
    out.append(tex[pos:])
    return "".join(out)


def clean_commands(tex: str, rules: CommandRules, warnings: list[str]) -> tuple[str, int]:
    """Floats and dropped environments first (their commands go with them), then unwrapping and commands."""
    tex, floats = drop_environments(tex, rules.drop_environments, warnings)
    return format_commands(tex, rules), floats


def format_commands(tex: str, rules: CommandRules) -> str:
    """Layout environments unwrapped, commands dropped or reduced to their text (floats already gone)."""
    return apply_commands(unwrap_environments(tex, rules.unwrap_environments), rules)
