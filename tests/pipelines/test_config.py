from dataclasses import dataclass, field
from typing import Literal

import pytest

from pipelines import config


@dataclass(frozen=True, kw_only=True)
class Inner:
    n: int = 1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)


def test_load_with_include_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("inner: {n: 5, mode: b}\ntags: [x]\n")
    (tmp_path / "job.yaml").write_text("include: base.yaml\nname: job\ninner: {n: 7}\n")
    cfg = config.load(Outer, tmp_path / "job.yaml", ["tags=[y, z]"])
    assert cfg == Outer(name="job", inner=Inner(n=7, mode="b"), tags=["y", "z"])


def test_unknown_key_lists_known_keys(tmp_path):
    (tmp_path / "c.yaml").write_text("name: x\ninner: {nn: 1}\n")
    with pytest.raises(config.ConfigError, match=r"unknown key\(s\) \['nn'\] in inner; known: \['mode', 'n'\]"):
        config.load(Outer, tmp_path / "c.yaml")


def test_bad_literal_and_type_name_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("name: x\ninner: {mode: c}\n")
    with pytest.raises(config.ConfigError, match=r"inner.mode is 'c'; valid values: \['a', 'b'\]"):
        config.load(Outer, tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("name: x\ninner: {n: many}\n")
    with pytest.raises(config.ConfigError, match="inner.n must be int"):
        config.load(Outer, tmp_path / "d.yaml")


def test_missing_required_key(tmp_path):
    (tmp_path / "c.yaml").write_text("tags: []\n")
    with pytest.raises(config.ConfigError, match="name"):
        config.load(Outer, tmp_path / "c.yaml")


@pytest.mark.parametrize("conf, job", [
    ("conf/keyword_filter.yaml", "jobs.keyword_filter:KeywordJobConfig"),
    *[(f"conf/ingest/{n}.yaml", "jobs.ingest:IngestJobConfig") for n in ("wikipedia", "refinedweb", "commoncrawl_warc",
                                                                          "teledata", "slimpajama")],
    *[(f"conf/ingest/{n}.yaml", "jobs.ingest_sources:SourcesJobConfig") for n in ("arxiv", "standards")],
    *[(f"conf/clean/{n}.yaml", "jobs.clean:CleanJobConfig") for n in ("arxiv", "standards")],
    ("conf/clean/measure.yaml", "jobs.measure:MeasureJobConfig"),
    ("conf/gold/tele_data.yaml", "jobs.assemble:AssembleJobConfig"),
    ("conf/release.yaml", "jobs.release:ReleaseJobConfig"),
    ("conf/judge.yaml", "jobs.judge:JudgeJobConfig"),
    ("conf/cascade.yaml", "jobs.cascade:CascadeJobConfig"),
    ("conf/benchmarks.yaml", "jobs.benchmarks_import:BenchmarksJobConfig"),
    ("conf/qna/generate.yaml", "jobs.qna_generate:GenerateJobConfig"),
    ("conf/qna/filter.yaml", "jobs.qna_filter:FilterJobConfig"),
    ("conf/instruct.yaml", "jobs.instruct_build:InstructJobConfig"),
])
def test_shipped_confs_load(conf, job):
    import importlib

    from tests.conftest import ROOT

    module, name = job.split(":")
    cls = getattr(importlib.import_module(module), name)
    cfg = config.load(cls, ROOT / conf)
    assert cfg.lake.root == "lake"
