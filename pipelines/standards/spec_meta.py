"""3GPP specification metadata from the file name and the cover page. Pure.

File names: `38331-i40` is spec 38.331, version i.4.0 where each character is one base-36 digit
(i = 18) → V18.4.0; versions with a field above 35 use two decimal digits per field (`38331-190400`).
The cover page says "3GPP TS 38.331 V18.4.0 (2024-12)", "(Release 18)" and the title. Where both
carry a value the cover page wins and a disagreement is recorded as a warning. Word often splits a
token over several runs and some converters put spaces between them: `rejoin_split_tokens` turns
"V1 8 . 4 . 0" back into "V18.4.0" and "38 . 331" into "38.331".
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_FILE = re.compile(r"^(?P<series>\d{2})(?P<number>\d{3}(?:-\d{1,2})?)-(?P<version>[0-9a-z]{3}|\d{6})"
                   r"(?:\.(?:zip|docx?))?$", re.I)
_COVER_SPEC = re.compile(r"3GPP\s+(?P<type>TS|TR)\s+(?P<spec>\d{2}\.\d{3}(?:-\d{1,2})?)"
                         r"(?:\s+V(?P<version>\d+\.\d+\.\d+))?(?:\s+\((?P<date>\d{4}-\d{2})\))?")
_RELEASE = re.compile(r"\(\s*Release\s+(?P<release>\d{2,4})\s*\)", re.I)
_SPLIT_VERSION = re.compile(r"\bV\s?(\d(?:\s?\d)?)\s?\.\s?(\d(?:\s?\d)?)\s?\.\s?(\d(?:\s?\d)?)(?!\s?\d)")
_SPLIT_SPEC = re.compile(r"\b(TS|TR)\s+(\d)\s?(\d)\s?\.\s?(\d)\s?(\d)\s?(\d)\b")


@dataclass
class SpecMeta:
    file_name: str
    series: str | None = None
    spec: str | None = None
    spec_type: str | None = None
    version: str | None = None
    release: str | None = None
    date: str | None = None
    title: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def source_id(self) -> str:
        return f"{self.spec_type or 'TS'} {self.spec}" if self.spec else self.file_name

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


def rejoin_split_tokens(text: str) -> str:
    """Undo spaces inside version and spec numbers that Word run splits leave behind."""
    text = _SPLIT_VERSION.sub(lambda m: "V" + ".".join(g.replace(" ", "") for g in m.groups()), text)
    return _SPLIT_SPEC.sub(lambda m: f"{m.group(1)} {m.group(2)}{m.group(3)}.{m.group(4)}{m.group(5)}{m.group(6)}", text)


def release_of(major: int) -> str:
    """3GPP version major number → release: 3 is Release 1999, 4 and up are Release 4, 5, …"""
    return "1999" if major == 3 else str(major)


def from_file_name(name: str) -> SpecMeta:
    base = name.rsplit("/", 1)[-1]
    meta = SpecMeta(file_name=base)
    m = _FILE.match(base)
    if not m:
        meta.warnings.append(f"file name {base!r} is not in 3GPP form SSNNN-VVV (e.g. 38331-i40.docx)")
        return meta
    meta.series = m.group("series")
    meta.spec = f"{m.group('series')}.{m.group('number')}"
    v = m.group("version").lower()
    parts = [int(c, 36) for c in v] if len(v) == 3 else [int(v[i:i + 2]) for i in (0, 2, 4)]
    meta.version = ".".join(str(p) for p in parts)
    meta.release = release_of(parts[0])
    number = int(m.group("number")[:3])
    meta.spec_type = "TR" if number >= 800 else "TS"
    return meta


def from_cover(meta: SpecMeta, cover: str) -> SpecMeta:
    """Fill and check `meta` from the cover page text (the document's front matter)."""
    cover = rejoin_split_tokens(cover)
    m = _COVER_SPEC.search(cover)
    if m:
        for key, value in (("spec_type", m.group("type")), ("spec", m.group("spec")), ("version", m.group("version"))):
            if value is None:
                continue
            old = getattr(meta, key)
            if old is not None and old != value:
                meta.warnings.append(f"{key}: file name says {old}, cover page says {value}; the cover page wins")
            setattr(meta, key, value)
        meta.series = meta.spec.split(".")[0]
        meta.date = m.group("date")
    r = _RELEASE.search(cover)
    if r:
        if meta.release is not None and meta.release != r.group("release"):
            meta.warnings.append(f"release: version says {meta.release}, cover page says {r.group('release')}; "
                                 "the cover page wins")
        meta.release = r.group("release")
    title = _cover_title(cover)
    if title:
        meta.title = title
    return meta


def _cover_title(cover: str) -> str | None:
    """The line naming the project and the specification ("3rd Generation Partnership Project; …")."""
    for line in cover.splitlines():
        line = line.strip()
        if line.lower().startswith(("3rd generation partnership project", "technical specification group")):
            return _RELEASE.sub("", line).strip(" ;")
    return None
