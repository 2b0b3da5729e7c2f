"""arXiv source reading: every form arXiv ships, and the archives that must be refused."""
import gzip
import io
import os
import tarfile

import pytest

from pipelines.latex.archive import ArchiveRefused, ExtractLimits, read_source, read_source_bytes

MAIN = rb"\documentclass{article}\begin{document}\input{sec/intro}\end{document}"
INTRO = rb"\section{Intro} 5G NR."


def _tar(members: list[tuple[str, bytes | None, dict]], gz: bool = True) -> bytes:
    """members: (name, data or None, TarInfo attributes such as type/linkname)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def test_tar_gz_tar_gzipped_file_and_bare_file():
    members = [("main.tex", MAIN, {}), ("./sec/intro.tex", INTRO, {}), ("sec", None, {"type": tarfile.DIRTYPE})]
    for data in (_tar(members), _tar(members, gz=False)):
        src = read_source_bytes(data, "2401.00001")
        assert src.kind == "tar" and src.files == {"main.tex": MAIN, "sec/intro.tex": INTRO}
    single = read_source_bytes(gzip.compress(MAIN), "2401.00002.gz")     # arXiv's single-file form
    assert single.kind == "single_file" and single.files == {"2401.00002.tex": MAIN}
    assert read_source_bytes(MAIN, "paper.tex").files == {"paper.tex": MAIN}


def test_folder_and_links_inside_it(tmp_path):
    (tmp_path / "src" / "sec").mkdir(parents=True)
    (tmp_path / "src" / "main.tex").write_bytes(MAIN)
    (tmp_path / "src" / "sec" / "intro.tex").write_bytes(INTRO)
    os.symlink("sec/intro.tex", tmp_path / "src" / "alias.tex")
    src = read_source(tmp_path / "src")
    assert src.files == {"main.tex": MAIN, "sec/intro.tex": INTRO, "alias.tex": INTRO}
    (tmp_path / "secret.txt").write_text("key")
    os.symlink(tmp_path / "secret.txt", tmp_path / "src" / "leak.tex")
    with pytest.raises(ArchiveRefused, match="leak.tex links to .*outside the source folder") as err:
        read_source(tmp_path / "src")
    assert err.value.reason == "unsafe_link"


@pytest.mark.parametrize("members, reason, detail", [
    ([("../evil.tex", b"x", {})], "unsafe_path", "climbs out"),
    ([("a/../../evil.tex", b"x", {})], "unsafe_path", "climbs out"),
    ([("/etc/evil.tex", b"x", {})], "unsafe_path", "absolute member path"),
    ([("link.tex", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})], "unsafe_link", "/etc/passwd"),
    ([("sub/link.tex", None, {"type": tarfile.SYMTYPE, "linkname": "../../x"})], "unsafe_link", "outside"),
    ([("hard.tex", None, {"type": tarfile.LNKTYPE, "linkname": "../x"})], "unsafe_link", "outside"),
])
def test_archives_leaving_their_folder_are_refused(members, reason, detail):
    with pytest.raises(ArchiveRefused, match=detail) as err:
        read_source_bytes(_tar([("main.tex", MAIN, {})] + members), "evil.tar.gz")
    assert err.value.reason == reason


def test_links_inside_the_archive_read_their_target_and_specials_are_skipped():
    src = read_source_bytes(_tar([("main.tex", MAIN, {}), ("sec/intro.tex", INTRO, {}),
                                  ("sec/alias.tex", None, {"type": tarfile.SYMTYPE, "linkname": "intro.tex"}),
                                  ("dangling.tex", None, {"type": tarfile.SYMTYPE, "linkname": "nowhere.tex"}),
                                  ("pipe", None, {"type": tarfile.FIFOTYPE})]), "x.tar.gz")
    assert src.files["sec/alias.tex"] == INTRO and "dangling.tex" not in src.files
    assert any("dangling.tex" in s for s in src.skipped) and any("pipe" in s for s in src.skipped)


def test_bombs_and_limits():
    bomb = gzip.compress(b"\0" * (64 << 20))                          # 64 MiB of zeros in ~64 KiB
    with pytest.raises(ArchiveRefused, match="unpacked from") as err:
        read_source_bytes(bomb, "bomb.gz")
    assert err.value.reason == "decompression_limit"
    tar_bomb = _tar([("main.tex", MAIN, {}), ("zeros.tex", b"\0" * (32 << 20), {})])
    with pytest.raises(ArchiveRefused) as err:
        read_source_bytes(tar_bomb, "bomb.tar.gz")
    assert err.value.reason == "decompression_limit"
    many = _tar([(f"f{i}.tex", b"x", {}) for i in range(30)])
    with pytest.raises(ArchiveRefused, match="more than 20 files") as err:
        read_source_bytes(many, "many.tar.gz", ExtractLimits(max_files=20))
    assert err.value.reason == "too_many_files"


def test_damaged_archives_are_refused_not_crashed_on():
    good = _tar([("main.tex", MAIN * 50, {})])
    for data, name in ((good[: len(good) // 2], "cut.tar.gz"), (b"\x1f\x8b" + os.urandom(200), "junk.gz"),
                       (b"not a tar at all", "x.tar")):
        with pytest.raises(ArchiveRefused) as err:
            read_source_bytes(data, name)
        assert err.value.reason == "damaged_archive"
