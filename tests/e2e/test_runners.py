"""Curate and pack on other runners give the default runner's bytes: Dask (a local dask.distributed cluster),
the PortableRunner with the embedded job service, and multi-processing."""
import json
import subprocess
import sys
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


def test_dask_run_ends_without_tracebacks(tmp_path):
    """Beam's DaskRunner leaves its client open; the CLI closes it before the cluster (no reconnect noise)."""
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "a", "text": "吾輩は猫である。名前はまだ無い。"},
                                                  ensure_ascii=False) + "\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(json.dumps({
        "sources": [{"name": "s", "kind": "web", "format": "jsonl", "paths": ["in.jsonl"], "license": "x"}],
        "filters": {"enabled": False}}))
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "curate", "--config", str(tmp_path / "c.yaml"),
                          "--out", str(tmp_path / "out"), "--runner", "DaskRunner", "--workers", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "CommClosedError" not in run.stderr, run.stderr[-2000:]
    assert "INFO:distributed" not in run.stderr, run.stderr[-2000:]  # 30-40 lines of cluster start and stop


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


def test_the_dask_cluster_we_start_has_no_worker_profiler():
    """The workers' profiler holds task frames from its own thread, where resiliparse objects freed then print
    "unsendable" tracebacks (see pipeline/extract.py); the cluster jcorpus starts runs without it."""
    from apache_beam.runners.dask.dask_runner import DaskOptions
    from dask.distributed import Client

    from pipeline.runner import pipeline_options

    with pipeline_options("DaskRunner", 1, []) as (_, options):
        address = options.view_as(DaskOptions).address  # --dask_client_address
        with Client(address) as client:
            enabled = client.run(lambda: __import__("dask").config.get("distributed.worker.profile.enabled"))
    assert list(enabled.values()) == [False]
