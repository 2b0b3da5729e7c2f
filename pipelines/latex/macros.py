"""Expand author macros and remove their definitions. Pure.

Definitions read: `\\newcommand`, `\\renewcommand`, `\\providecommand` (starred too; `{\\name}` or
`\\name`; `[n]` arguments; `[default]` for an optional first argument), `\\def\\name#1#2{…}` with
simple parameter text (delimited parameters are left alone and reported), and
`\\DeclareMathOperator(*){\\name}{text}` → `\\operatorname(*){text}`. Later definitions win, as
in TeX. Expansion repeats until nothing changes or `max_passes`; a macro that calls itself stops
there (reported), and output may grow at most `max_growth` times, so no definition can hang it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_NEWCMD = re.compile(r"\\(?:re)?(?:newcommand|providecommand)\*?\s*")
_DEF = re.compile(r"\\(?:g|e|x)?def\s*\\([a-zA-Z@]+)")
_MATHOP = re.compile(r"\\DeclareMathOperator(\*?)\s*")
_NAME = re.compile(r"\\([a-zA-Z@]+)|\\(.)")


@dataclass(frozen=True)
class Macro:
    name: str
    nargs: int
    body: str
    default: str | None = None
    """Default of an optional first argument (`\\newcommand{\\x}[2][d]{…}`)."""


@dataclass
class Expanded:
    text: str
    macros: dict[str, Macro] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    unexpanded: list[str] = field(default_factory=list)
    """Names still used after expansion stopped (recursion or growth limit)."""


def group(text: str, i: int) -> tuple[str, int] | None:
    """The balanced `{…}` at text[i] (after spaces): (content, index after it), or None."""
    return _delimited(text, i, "{", "}")


def bracket(text: str, i: int) -> tuple[str, int] | None:
    """An optional `[…]` at text[i] (after spaces), braces inside respected."""
    return _delimited(text, i, "[", "]")


def _delimited(text: str, i: int, open_: str, close: str) -> tuple[str, int] | None:
    """The `open_ … close` at text[i] after spaces, skipping escapes and nested brace groups."""
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text) or text[i] != open_:
        return None
    depth, j = 0, i + 1  # depth: open brace groups inside
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if depth == 0 and c == close:
            return text[i + 1:j], j + 1
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        j += 1
    return None


def _argument(text: str, i: int) -> tuple[str, int] | None:
    """A macro argument: a braced group or one token (a control sequence or a character)."""
    g = group(text, i)
    if g:
        return g
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text) or text[i] in "{}":  # "{" here is a group that never closes
        return None
    m = _NAME.match(text, i)
    if m:
        return m.group(0), m.end()
    return text[i], i + 1


def _definition_name(text: str, i: int) -> tuple[str, int] | None:
    g = group(text, i)
    raw, end = g if g else (None, i)
    if raw is None:
        m = _NAME.match(text, i)
        if not m:
            return None
        raw, end = m.group(0), m.end()
    m = _NAME.fullmatch(raw.strip())
    return (m.group(1) or m.group(2), end) if m else None


def collect(text: str, warnings: list[str]) -> tuple[str, dict[str, Macro]]:
    """(text without the definitions it could read, the macros by name)."""
    macros: dict[str, Macro] = {}
    out, pos = [], 0
    pattern = re.compile(f"{_NEWCMD.pattern}|{_DEF.pattern}|{_MATHOP.pattern}")
    for m in pattern.finditer(text):
        if m.start() < pos:
            continue
        parsed = _parse_definition(text, m, warnings)
        if parsed is None:
            continue
        macro, end, provide = parsed
        if not (provide and macro.name in macros):
            macros[macro.name] = macro
        out.append(text[pos:m.start()])
        pos = end
    out.append(text[pos:])
    return "".join(out), macros


def _parse_definition(text: str, m: re.Match, warnings: list[str]) -> tuple[Macro, int, bool] | None:
    head = m.group(0)
    if head.startswith("\\DeclareMathOperator"):
        name = _definition_name(text, m.end())
        body = name and group(text, name[1])
        if not body:
            return None
        star = "*" if "*" in head else ""
        return Macro(name[0], 0, f"\\operatorname{star}{{{body[0]}}}"), body[1], False
    if "def" in head[:5]:
        name = m.group(1)
        j = m.end()
        params = re.match(r"(?:#[1-9])*", text[j:]).group(0)
        after = j + len(params)
        body = group(text, after)
        if body is None or params != "".join(f"#{k}" for k in range(1, len(params) // 2 + 1)):
            warnings.append(f"\\def\\{name} has delimited parameters: left as it is")
            return None
        return Macro(name, len(params) // 2, body[0]), body[1], False
    name = _definition_name(text, m.end())
    if not name:
        return None
    j, nargs, default = name[1], 0, None
    n = bracket(text, j)
    if n and n[0].strip().isdigit():
        nargs, j = int(n[0].strip()), n[1]
        d = bracket(text, j)
        if d:
            default, j = d
    body = group(text, j)
    if body is None:
        warnings.append(f"\\{name[0]}: definition without a braced body: left as it is")
        return None
    return Macro(name[0], nargs, body[0], default), body[1], "provide" in head


def expand(text: str, macros: dict[str, Macro], max_passes: int = 20, max_growth: float = 10.0) -> Expanded:
    out = Expanded(text=text, macros=macros)
    if not macros:
        return out
    use = re.compile(r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![a-zA-Z@])")
    limit = max(10_000, int(len(text) * max_growth))
    for _ in range(max_passes):
        new = _expand_once(out.text, use, macros)
        if new == out.text:
            return out
        if len(new) > limit:
            out.warnings.append(f"expansion would grow the text past {limit:,} characters: stopped")
            break
        out.text = new
    out.unexpanded = sorted({m.group(1) for m in use.finditer(out.text)})
    if out.unexpanded:
        out.warnings.append(f"macros still used after {max_passes} passes (recursive?): {out.unexpanded}")
    return out


def _expand_once(text: str, use: re.Pattern, macros: dict[str, Macro]) -> str:
    out, pos = [], 0
    for m in use.finditer(text):
        if m.start() < pos:
            continue
        macro = macros[m.group(1)]
        args, j = [], m.end()
        if macro.default is not None:
            b = bracket(text, j)
            args.append(b[0] if b else macro.default)
            j = b[1] if b else j
        while len(args) < macro.nargs:
            a = _argument(text, j)
            if a is None:
                break
            args.append(a[0])
            j = a[1]
        if len(args) < macro.nargs:
            continue  # best effort: a use without its arguments stays
        if macro.nargs == 0 and macro.default is None and text.startswith("{}", j):
            j += 2  # "\gnb{} sweeps": the empty group only ended the control word
        body = re.sub(r"#([1-9])", lambda g: args[int(g.group(1)) - 1] if int(g.group(1)) <= len(args) else "",
                      macro.body)
        out.append(text[pos:m.start()])
        out.append(body)
        pos = j
    out.append(text[pos:])
    return "".join(out)


_IFNUM = re.compile(r"\\ifnum\s*(-?\d+)\s*([<=>])\s*(-?\d+)\s*((?:(?!\\if[a-z]*(?![a-zA-Z@])|\\else(?![a-zA-Z@])|\\fi(?![a-zA-Z@])).)*?)"
                    r"(?:\\else(?![a-zA-Z@])((?:(?!\\if[a-z]*(?![a-zA-Z@])|\\fi(?![a-zA-Z@])).)*?))?\\fi(?![a-zA-Z@])", re.S)


def resolve_conditionals(text: str) -> str:
    """`\\ifnum 0=0 f,t\\else f,t0\\fi` → `f,t`: after expansion, a macro with an optional number often
    leaves a comparison of two literals; decide it (innermost first, nesting bounded by passes)."""
    def decide(m: re.Match) -> str:
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        true = a < b if op == "<" else a > b if op == ">" else a == b
        return (m.group(4) if true else (m.group(5) or "")).strip()

    for _ in range(10):
        new = _IFNUM.sub(decide, text)
        if new == text:
            break
        text = new
    return text


def expand_macros(text: str, max_passes: int = 20) -> Expanded:
    """Read and remove the definitions, then expand every use; literal \\ifnum comparisons decided."""
    warnings: list[str] = []
    body, macros = collect(text, warnings)
    out = expand(body, macros, max_passes)
    if macros:
        out.text = resolve_conditionals(out.text)
    out.warnings = warnings + out.warnings
    return out
