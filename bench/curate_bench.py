"""Spine throughput: read → extract → normalize → language gate → exact dedup → write.

Replicates the shared corpora (as extra sources reading the same files, so ids stay distinct) to about
--target-mb of raw input and runs curate with 1 and 2 workers, --repeats times each; prints medians of
wall time, MB/s and documents/s per core, and the per-stage CPU seconds from stats.json. A second run
measures the WARC source alone (raw WARC MB/s per core end to end; target ≥ 3), and a third the demo
curate on the default runner and on a local Dask cluster with 1 and 2 workers.

    .venv/bin/python bench/curate_bench.py --corpora ../shared/corpora --target-mb 50 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FILES = {  # (kind, format, glob under the corpora folder, licence)
    "laws": ("government", "jsonl", "government/*.jsonl", "public-domain"),
    "abstracts": ("academic", "jsonl", "academic/*.jsonl", "CC-BY-4.0"),
    "wiki": ("reference", "jsonl", "reference/jawiki*.jsonl", "CC-BY-SA-4.0"),
    "aozora": ("reference", "jsonl", "reference/aozora*.jsonl", "public-domain"),
    "fineweb2": ("web", "jsonl", "web/fineweb2*.jsonl", "ODC-BY-1.0"),
    "warc": ("web", "warc", "web/*.warc.gz", "fixture"),
}


def _config(corpora: Path, names: list[str], target_mb: float) -> tuple[dict, int]:
    size = sum(p.stat().st_size for n in names for p in corpora.glob(FILES[n][2]))
    copies = max(1, round(target_mb * 1e6 / size))
    sources = [
        {"name": f"{n}_{i}", "kind": FILES[n][0], "format": FILES[n][1], "paths": [str(corpora / FILES[n][2])],
         "license": FILES[n][3]}
        for i in range(copies) for n in names
    ]
    return {"sources": sources, "filters": {"enabled": False}, "dedup": {"near": {"enabled": False}}}, size * copies


def _run(config: Path, out: Path, workers: int, runner: str = "FnApiRunner") -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "curate", "--config", str(config), "--out", str(out),
                    "--workers", str(workers), "--runner", runner, "--overwrite"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, json.loads((out / "stats.json").read_text())


def bench(corpora: Path, names: list[str], target_mb: float, repeats: int, label: str) -> list[str]:
    cfg, raw_bytes = _config(corpora, names, target_mb)
    rows = [f"### {label}: {raw_bytes / 1e6:.1f} MB raw input, {len(cfg['sources'])} sources", "",
            "| workers | wall s (median) | MB/s | MB/s per core | docs/s per core | docs | kept |",
            "|---|---|---|---|---|---|---|"]
    stage_rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(cfg))
        for workers in (1, 2):
            runs = [_run(config, Path(tmp) / f"out{workers}", workers) for _ in range(repeats)]
            wall = statistics.median(t for t, _ in runs)
            stats = runs[-1][1]
            cores = min(workers, os.cpu_count() or 1)
            mbs = raw_bytes / 1e6 / wall
            rows.append(f"| {workers} | {wall:.2f} | {mbs:.2f} | {mbs / cores:.2f} | "
                        f"{stats['input_docs'] / wall / cores:.0f} | {stats['input_docs']} | {stats['kept_docs']} |")
            if workers == 1:
                total = sum(s["seconds"] for s in stats["stages"].values())
                stage_rows = ["", "| stage (workers=1) | CPU s | share | docs/s |", "|---|---|---|---|"]
                stage_rows += [f"| {name} | {s['seconds']:.2f} | {s['seconds'] / total:.0%} | "
                               f"{s['docs'] / s['seconds']:.0f} |" for name, s in stats["stages"].items() if s["seconds"]]
    return rows + stage_rows + [""]


def bench_runners(repeats: int) -> list[str]:
    """The demo curate (examples/demo.yaml, all filters on) on the default runner and on Dask."""
    rows = ["### Demo curate by runner (examples/demo.yaml)", "",
            "| runner | workers | wall s (median) | kept |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for runner in ("FnApiRunner", "DaskRunner"):
            for workers in (1, 2):
                runs = [_run(ROOT / "examples" / "demo.yaml", Path(tmp) / "o", workers, runner) for _ in range(repeats)]
                rows.append(f"| {runner} | {workers} | {statistics.median(t for t, _ in runs):.2f} | "
                            f"{runs[-1][1]['kept_docs']} |")
    return rows + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--target-mb", type=float, default=50)
    ap.add_argument("--warc-mb", type=float, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="all,warc,runners", help="which of all,warc,runners to run")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if "all" in parts:
        print("\n".join(bench(args.corpora, list(FILES), args.target_mb, args.repeats, "All shared corpora")), flush=True)
    if "warc" in parts:
        print("\n".join(bench(args.corpora, ["warc"], args.warc_mb, args.repeats, "WARC only (read, charset, extract)")),
              flush=True)
    if "runners" in parts:
        print("\n".join(bench_runners(args.repeats)))


if __name__ == "__main__":
    main()
