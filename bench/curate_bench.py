"""Spine throughput: read → extract → normalize → language gate → exact dedup → write.

Replicates the shared corpora (as extra sources reading the same files, so ids stay distinct) to about
--target-mb of raw input and runs curate with 1 and 2 workers, --repeats times each; prints medians of
wall time, MB/s and documents/s per core, and the per-stage CPU seconds from stats.json. A second run
measures the WARC source alone (raw WARC MB/s per core end to end; target ≥ 3), and a third the demo
curate on the default runner and on a local Dask cluster with 1 and 2 workers. `--parts steady` runs the
WARC at --warc-mb and three times that and reports the seconds per extra MB (the steady-state gain);
`--parts ceiling` sets `--workers 2` beside two independent processes on half the input each (what the
machine's second core gives work that shares nothing); `--parts write` times the shard writer alone.

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
from collections import Counter
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


def _curate(config: Path, out: Path, workers: int, runner: str = "FnApiRunner") -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "curate", "--config", str(config), "--out", str(out),
            "--workers", str(workers), "--runner", runner, "--overwrite"]


def _run(config: Path, out: Path, workers: int, runner: str = "FnApiRunner") -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run(_curate(config, out, workers, runner), check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, json.loads((out / "stats.json").read_text())


def bench(corpora: Path, names: list[str], target_mb: float, repeats: int, label: str,
          walls: dict[int, tuple[float, float]] | None = None) -> list[str]:
    """Markdown rows; `walls` (if given) receives {workers: (raw MB, median wall s)}."""
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
            if walls is not None:
                walls[workers] = (raw_bytes / 1e6, wall)
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


def steady_state(corpora: Path, small_mb: float, repeats: int) -> list[str]:
    """WARC at small_mb and 3x: seconds per extra MB for 1 and 2 workers, i.e. the gain once fixed costs
    (imports, graph, starting and stopping worker processes) are out of the comparison."""
    small: dict[int, tuple[float, float]] = {}
    large: dict[int, tuple[float, float]] = {}
    rows = bench(corpora, ["warc"], small_mb, repeats, "WARC, small", small)
    rows += bench(corpora, ["warc"], 3 * small_mb, repeats, "WARC, 3x", large)
    slope = {w: (large[w][1] - small[w][1]) / (large[w][0] - small[w][0]) for w in (1, 2)}
    rows += ["| workers | s per extra MB | MB/s per core, steady state | gain from the 2nd worker |", "|---|---|---|---|"]
    rows += [f"| {w} | {slope[w]:.3f} | {1 / slope[w] / w:.2f} | {slope[1] / slope[w]:.2f}x |" for w in (1, 2)]
    return rows + [""]


CPU_PROBE = "import time; t = time.perf_counter(); sum(range(60_000_000)); print(time.perf_counter() - t)"


def _together(commands: list[list[str]]) -> float:
    """Wall seconds until the last of `commands`, started at once, has ended."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    if any(p.wait() for p in procs):
        raise SystemExit(f"failed: {commands}")
    return time.perf_counter() - start


def ceiling(corpora: Path, target_mb: float, repeats: int) -> list[str]:
    """What the second core gives two processes that share nothing, next to what `--workers 2` gets from it.

    Alternating, per round: curate on everything with 1 and with 2 workers; two independent 1-worker curates
    at once, each on half of the copies (even / odd); and a pure-Python loop alone and two at once. The pair
    of halves is the most any second worker can add here: no shuffle, no driver, no imbalance to pay."""
    cfg, raw_bytes = _config(corpora, list(FILES), target_mb)
    halves = [{**cfg, "sources": [s for s in cfg["sources"] if int(s["name"].rsplit("_", 1)[1]) % 2 == parity]}
              for parity in (0, 1)]
    if not halves[1]["sources"]:
        raise SystemExit(f"--parts ceiling needs at least 2 copies of the corpora: raise --target-mb above "
                         f"{raw_bytes / 1e6:.1f}")
    times: dict[str, list[float]] = {k: [] for k in ("w1", "w2", "halves", "loop", "loops")}
    with tempfile.TemporaryDirectory() as tmp:
        configs = [Path(tmp) / f"{name}.yaml" for name in ("all", "a", "b")]
        for path, c in zip(configs, [cfg, *halves], strict=True):
            path.write_text(yaml.safe_dump(c))
        loop, out = [sys.executable, "-c", CPU_PROBE], Path(tmp)
        for _ in range(repeats):
            times["w1"].append(_together([_curate(configs[0], out / "w1", 1)]))
            times["w2"].append(_together([_curate(configs[0], out / "w2", 2)]))
            times["halves"].append(_together([_curate(configs[1], out / "a", 1), _curate(configs[2], out / "b", 1)]))
            times["loop"].append(_together([loop]))
            times["loops"].append(_together([loop, loop]))
    med = {k: statistics.median(v) for k, v in times.items()}
    return [f"### The second core: jcorpus --workers 2 against two processes that share nothing "
            f"({raw_bytes / 1e6:.1f} MB, medians of {repeats})", "",
            "| run | wall s (median) | gain from the 2nd core |", "|---|---|---|",
            f"| curate, 1 worker | {med['w1']:.2f} | |",
            f"| curate, `--workers 2` | {med['w2']:.2f} | {med['w1'] / med['w2']:.2f}x |",
            f"| two 1-worker curates at once, half the copies each | {med['halves']:.2f} | "
            f"{med['w1'] / med['halves']:.2f}x |",
            f"| pure-Python loop, alone / two at once | {med['loop']:.2f} / {med['loops']:.2f} | "
            f"{2 * med['loop'] / med['loops']:.2f}x |", ""]


def write_step(corpora: Path, target_mb: float, repeats: int) -> list[str]:
    """The shard writer alone: the documents of a 1-worker spine run, spilled to 4 shards as the producing
    steps spill them, then `WriteShard` over every shard; CPU seconds, best of `repeats` (the machine is
    noisy; run it in a worktree of older code for a comparison)."""
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from pipeline.sinks import SpillDocuments, WriteShard

    cfg, raw_bytes = _config(corpora, list(FILES), target_mb)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(cfg))
        _run(config, Path(tmp) / "out", 1)
        docs = []
        for part in sorted((Path(tmp) / "out").glob("*/*.parquet")):
            for row in pq.read_table(part).to_pylist():
                docs.append({**{k: v for k, v in row.items() if k not in ("reject_reason", "error", "dup_cluster")},
                             "meta": json.loads(row["meta"])})
        spill = SpillDocuments(tmp, 4)
        spill.start_bundle()
        counts = Counter(shard for doc in docs for shard, _ in spill.process(doc))
        spill.finish_bundle()
        writer, best = WriteShard(tmp, 50), float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for shard, n in counts.items():
                list(writer.process((shard, {"count": [n], "decision": []})))
            best = min(best, time.process_time() - start)
    return [f"### Write step: {len(docs):,} documents ({raw_bytes / 1e6:.1f} MB raw input), 4 shards", "",
            f"CPU seconds, best of {repeats}: {best:.3f} ({len(docs) / best:,.0f} documents/s)", ""]


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
    ap.add_argument("--parts", default="all,warc,runners", help="which of all,warc,steady,ceiling,write,runners to run")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if "all" in parts:
        print("\n".join(bench(args.corpora, list(FILES), args.target_mb, args.repeats, "All shared corpora")), flush=True)
    if "warc" in parts:
        print("\n".join(bench(args.corpora, ["warc"], args.warc_mb, args.repeats, "WARC only (read, charset, extract)")),
              flush=True)
    if "steady" in parts:
        print("\n".join(steady_state(args.corpora, args.warc_mb, args.repeats)), flush=True)
    if "ceiling" in parts:
        print("\n".join(ceiling(args.corpora, args.target_mb, args.repeats)), flush=True)
    if "write" in parts:
        print("\n".join(write_step(args.corpora, args.target_mb, args.repeats)), flush=True)
    if "runners" in parts:
        print("\n".join(bench_runners(args.repeats)))


if __name__ == "__main__":
    main()
