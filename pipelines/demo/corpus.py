"""Turn corpus.yaml into the raw files the ingest jobs read (Parquet, JSONL, WARC, SlimPajama-style
JSONL), plus the arXiv source (a .tar.gz of corpus/arxiv/2411.01234 and its listing) and the 3GPP-like
.docx specs."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

CORPUS = Path(__file__).with_name("corpus") / "corpus.yaml"


def load_corpus() -> dict:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def materialize(raw_dir: Path) -> dict[str, Path]:
    """Write the raw inputs under raw_dir; return {source: folder}.

    Existing files are left alone, so a second demo run sees the same inputs (same batch ids) and
    shows that a rerun commits nothing.
    """
    corpus = load_corpus()
    out = {name: raw_dir / name for name in ("wikipedia", "refinedweb", "forum", "commoncrawl", "arxiv",
                                             "arxiv_listing", "arxiv_papers", "standards", "slimpajama", "benchmarks",
                                             "instruct")}
    for folder in out.values():
        folder.mkdir(parents=True, exist_ok=True)

    wiki = corpus["wikipedia"]
    _write_parquet(pa.table({
        "id": [p["id"] for p in wiki],
        "url": [f"https://en.wikipedia.org/wiki/{p['title'].replace(' ', '_')}" for p in wiki],
        "title": [p["title"] for p in wiki],
        "text": [p["text"] for p in wiki],
    }), out["wikipedia"] / "enwiki-sample.parquet")

    web = corpus["refinedweb"]
    _write_parquet(pa.table({
        "content": [p["content"] for p in web],
        "url": [p["url"] for p in web],
        "timestamp": pa.array([p["timestamp"] for p in web]).cast(pa.timestamp("s", tz="UTC")),
        "dump": [p["dump"] for p in web],
        "segment": [p["segment"] for p in web],
        "image_urls": [[] for _ in web],
    }), out["refinedweb"] / "refinedweb-sample.parquet")

    lines = [json.dumps(p) for p in corpus["forum_jsonl"]] + list(corpus["forum_bad_lines"])
    data = ("\n".join(lines) + "\n").encode() + b'{"id": "p7", "text": "Latin-1 bytes: caf\xe9"}\n'
    _write_bytes(out["forum"] / "posts.jsonl", data)

    _write_bytes(out["commoncrawl"] / "crawl-sample.warc.gz", _warc(corpus["warc"]))
    general = [json.dumps({"text": p["text"], "meta": {"redpajama_set_name": p["set"]}}) for p in corpus["slimpajama"]]
    _write_bytes(out["slimpajama"] / "slimpajama-sample.jsonl", ("\n".join(general) + "\n").encode())

    items = {f"question {i}": {"question": q["question"], **{f"option {j + 1}": o for j, o in enumerate(q["options"])},
                               "answer": f"option {q['answer']}: " + (q["options"][q["answer"] - 1]
                                                                       if q["answer"] <= len(q["options"]) else "?"),
                               "category": q["category"]} for i, q in enumerate(corpus["mcq"])}
    _write_bytes(out["benchmarks"] / "teleqna-sample.json", json.dumps(items, indent=1).encode())
    lines = [json.dumps(r) for r in corpus["alpaca"]] + ['{"instruction": "Name the 5G core function that", ']
    _write_bytes(out["instruct"] / "alpaca-sample.jsonl", ("\n".join(lines) + "\n").encode())
    lines = [json.dumps(r) for r in corpus["open_instruct"]] + ['{"prompt": "What is a gNB?", "response": 42}']
    _write_bytes(out["instruct"] / "open-instruct-sample.jsonl", ("\n".join(lines) + "\n").encode())

    from pipelines.demo.standard_docx import build_docx

    _write_bytes(out["arxiv"] / "2411.01234.tar.gz", arxiv_tarball(ARXIV_SOURCE))
    _write_bytes(out["arxiv"] / "2411.09999.tar.gz", tar_gz({"../../outside.tex": b"\\documentclass{article}"}))
    papers = load_papers()
    for paper in papers:
        _write_bytes(out["arxiv_papers"] / f"{paper['id']}.tar.gz", tar_gz(paper_source(paper)))
    listing = [ARXIV_LISTING] + [{"id": p["id"], "title": p["title"], "abstract": " ".join(p["abstract"].split()),
                                  "categories": "eess.SP cs.NI", "authors": "Demo Author"} for p in papers]
    _write_bytes(out["arxiv_listing"] / "listing.jsonl", "".join(json.dumps(r) + "\n" for r in listing).encode())
    _write_bytes(out["standards"] / "38331-i40.docx", build_docx())
    _write_bytes(out["standards"] / "38999-i00.docx", build_docx("xxe"))  # refused when cleaned: XXE
    return out


ARXIV_SOURCE = CORPUS.parent / "arxiv" / "2411.01234"
ARXIV_LISTING = {"id": "2411.01234", "title": "Beam Management for NR Massive MIMO in the Upper Mid-Band",
                 "abstract": "We study beam management for NR base stations operating between 7 and 24 GHz.",
                 "categories": "eess.SP cs.NI", "authors": "A. Author"}


PAPERS = CORPUS.parent / "papers.yaml"


def load_papers() -> list[dict]:
    """The demo's short papers that cite one another (corpus/papers.yaml)."""
    return yaml.safe_load(PAPERS.read_text(encoding="utf-8"))


def paper_source(paper: dict) -> dict[str, bytes]:
    """main.tex and refs.bib of one demo paper."""
    tex = "\n".join([
        "\\documentclass{article}", "\\usepackage{cite}", f"\\title{{{paper['title']}}}", "\\begin{document}",
        "\\maketitle", "\\begin{abstract}", paper["abstract"].strip(), "\\end{abstract}",
        "\\section{Introduction}", paper["intro"].strip(), "\\section{System Model}", paper["body"].strip(),
        "\\bibliographystyle{IEEEtran}", "\\bibliography{refs}", "\\end{document}", ""])
    bib = "".join(f"@article{{{r['key']}, title = {{{r['title']}}}, year = {{2024}}}}\n" for r in paper["refs"])
    return {"main.tex": tex.encode(), "refs.bib": bib.encode()}


def arxiv_tarball(folder: Path) -> bytes:
    """The folder as arXiv serves a source: a gzipped tar, byte-for-byte reproducible."""
    return tar_gz({p.relative_to(folder).as_posix(): p.read_bytes()
                    for p in sorted(folder.rglob("*")) if p.is_file()})


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def _warc(pages: list[dict]) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    records = [(p["url"], "200 OK", "text/html; charset=utf-8", p["html"].encode()) for p in pages]
    records.insert(1, ("https://www.example-operator.com/logo.png", "200 OK", "image/png", b"\x89PNG\r\n..."))
    records.append(("https://www.example-operator.com/missing", "404 Not Found", "text/html", b"<html>gone</html>"))
    for url, status, ctype, body in records:
        headers = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
        rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers,
                                        warc_headers_dict={"WARC-Date": "2023-05-01T00:00:00Z"})
        writer.write_record(rec)
    return buf.getvalue()


def _write_parquet(table: pa.Table, path: Path) -> None:
    if not path.exists():
        pq.write_table(table, path)


def _write_bytes(path: Path, data: bytes) -> None:
    if not path.exists():
        path.write_bytes(data)
