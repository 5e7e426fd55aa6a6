"""Curate and pack on other runners give the default runner's bytes: Dask (a local dask.distributed cluster),
the PortableRunner with the embedded job service, and multi-processing."""
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.curate import run_curate
from pipeline.pack import PackOptions, run_pack
from tests.pipeline.test_pack import corpus  # noqa: F401  (fixture: curated Parquet + a small tokenizer)

pytest.importorskip("dask.distributed")
ROOT = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "stats.json"}  # stats.json holds timings


def test_curate_on_dask_matches_the_default_runner(tmp_path):
    cfg = load_config(str(ROOT / "examples" / "demo.yaml"))  # every stage: filters, site lines, near dedup
    default = run_curate(cfg, str(tmp_path / "default"))
    dask = run_curate(cfg, str(tmp_path / "dask"), runner="DaskRunner", workers=2)
    assert dask["conservation"]["ok"] and dask["kept_docs"] == default["kept_docs"]
    assert dask["reasons"] == default["reasons"]
    assert _tree(tmp_path / "dask") == _tree(tmp_path / "default")


def test_pack_on_dask_matches_the_default_runner(tmp_path, corpus):  # noqa: F811
    opts = {"input": str(corpus["curated"]), "tokenizer": str(corpus["model"]), "seq_len": 128,
            "formats": ("arrow", "megatron")}
    run_pack(PackOptions(out=str(tmp_path / "default"), **opts))
    run_pack(PackOptions(out=str(tmp_path / "dask"), **opts), runner="DaskRunner", workers=2)
    assert _tree(tmp_path / "dask") == _tree(tmp_path / "default")


def test_pack_on_the_portable_runner_and_two_processes_matches(tmp_path, corpus):  # noqa: F811
    opts = {"input": str(corpus["curated"]), "tokenizer": str(corpus["model"]), "seq_len": 128}
    run_pack(PackOptions(out=str(tmp_path / "default"), **opts))
    run_pack(PackOptions(out=str(tmp_path / "portable"), **opts), runner="PortableRunner",
             extra=["--job_endpoint=embed", "--environment_type=LOOPBACK"])
    run_pack(PackOptions(out=str(tmp_path / "two"), **opts), workers=2)
    assert _tree(tmp_path / "portable") == _tree(tmp_path / "default") == _tree(tmp_path / "two")
