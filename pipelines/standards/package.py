"""Read 3GPP specification files safely: .zip as published (holding .doc/.docx), .doc, .docx.

A .docx is itself a zip of XML parts. Both zip layers are read in memory under the same limits
as arXiv archives (file count, unpacked size, unpacked/packed ratio: a zip bomb is refused before
it is inflated, and again while inflating, since declared sizes can lie). Every XML part that is
parsed is parsed without DTDs, entities or network: a part that declares a DOCTYPE (Word never
writes one; an external entity is an XXE attempt) is refused, as is a part that is not XML.
"""
from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from pipelines.latex.archive import ArchiveRefused, ExtractLimits

DOC_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound file: Word 97-2003 .doc
ZIP_MAGIC = b"PK\x03\x04"
WORD_EXTENSIONS = (".doc", ".docx")


@dataclass(frozen=True)
class WordFile:
    """One Word document: its name (inside the .zip when it came from one), kind and bytes."""
    name: str
    kind: str  # doc | docx
    data: bytes


def read_standard_bytes(data: bytes, name: str, limits: ExtractLimits = ExtractLimits()) -> list[WordFile]:
    """The Word documents in a published file: a .zip may hold several (rarely), .doc/.docx is one."""
    if data.startswith(DOC_MAGIC):
        return [WordFile(posixpath.basename(name), "doc", data)]
    if not data.startswith(ZIP_MAGIC):
        raise ArchiveRefused("not_a_word_file", f"{name} is neither a .zip, a .docx nor a .doc "
                                                f"(starts with {data[:8]!r})")
    members = read_zip(data, name, limits)
    if "word/document.xml" in members or "[Content_Types].xml" in members:
        return [WordFile(posixpath.basename(name), "docx", data)]
    docs = []
    for path in sorted(members):
        inner = members[path]
        if not path.lower().endswith(WORD_EXTENSIONS):
            continue
        if inner.startswith(DOC_MAGIC):
            docs.append(WordFile(path, "doc", inner))
        elif inner.startswith(ZIP_MAGIC):
            docs.append(WordFile(path, "docx", inner))
        else:
            raise ArchiveRefused("not_a_word_file", f"{name}: member {path} is not a Word document")
    if not docs:
        raise ArchiveRefused("no_word_document", f"{name} holds no .doc or .docx (members: {sorted(members)[:10]})")
    return docs


def read_zip(data: bytes, name: str, limits: ExtractLimits = ExtractLimits()) -> dict[str, bytes]:
    """All members of a zip by normalised path, under `limits`; nothing touches the disk."""
    packed = max(1, len(data))
    cap = min(limits.max_total_bytes, int(packed * limits.max_ratio))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        raise ArchiveRefused("damaged_archive", f"{name}: zip: {exc}") from exc
    if len(infos) > limits.max_files:
        raise ArchiveRefused("too_many_files", f"{name}: {len(infos):,} members (limit {limits.max_files:,})")
    declared = sum(i.file_size for i in infos)
    if declared > cap:
        raise ArchiveRefused("decompression_limit", f"{name}: {declared:,} bytes declared unpacked from {packed:,} "
                                                    f"packed (limits: {limits.max_total_bytes:,} bytes, ratio {limits.max_ratio:g})")
    out: dict[str, bytes] = {}
    total = 0
    try:
        for info in infos:
            path = _safe_name(info.filename, name)
            chunks = []
            with zf.open(info) as fh:
                while chunk := fh.read(1 << 20):
                    total += len(chunk)
                    if total > cap:
                        raise ArchiveRefused("decompression_limit", f"{name}: over {total:,} bytes inflated from "
                                                                    f"{packed:,} packed (sizes declared falsely)")
                    chunks.append(chunk)
            out[path] = b"".join(chunks)
    except ArchiveRefused:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ArchiveRefused("damaged_archive", f"{name}: zip member: {exc}") from exc
    return out


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    """A deflated zip of `members` (name → content), in memory: a rebuilt .docx, a 3GPP-style .zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _safe_name(member: str, name: str) -> str:
    parts = [p for p in member.replace("\\", "/").split("/") if p not in ("", ".")]
    if member.startswith(("/", "\\")) or ".." in parts or (len(member) > 1 and member[1] == ":"):
        raise ArchiveRefused("unsafe_path", f"{name}: member path {member!r} leaves the archive")
    return "/".join(parts)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                          huge_tree=False, remove_blank_text=False)


def parse_part(data: bytes, part: str, name: str) -> etree._Element:
    """Parse one XML part of a .docx; refuse DOCTYPE/entities (XXE) and broken XML with a reason."""
    head = data[:4096].lstrip()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in data:
        raise ArchiveRefused("xml_entity", f"{name}: part {part} declares a DOCTYPE or entity; Word never "
                                           "writes one (external entity / XXE attempt); not read")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ArchiveRefused("damaged_part", f"{name}: part {part} is not well-formed XML: {exc}") from exc
    return root


def check_docx(parts: dict[str, bytes], name: str) -> dict[str, etree._Element]:
    """The parsed XML parts of a .docx by name; refused if the main part is missing or any XML part
    is unsafe or broken (pandoc would read them all)."""
    if "word/document.xml" not in parts:
        raise ArchiveRefused("damaged_part", f"{name}: no word/document.xml (parts: {sorted(parts)[:10]})")
    return {part: parse_part(data, part, name) for part, data in parts.items() if part.endswith((".xml", ".rels"))}
