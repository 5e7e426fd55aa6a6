"""Run every benchmark with its default (short) settings, one after the other; outputs to bench/out/<name>.txt.

The machine is small and noisy: benchmarks run sequentially, never beside the test suite. Peers that need
a separate environment (datatrove, HojiChar) are skipped by their scripts when that environment is absent.

    .venv/bin/python bench/run_all.py [--only curate,pack]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = {  # name: arguments
    "curate": ["curate_bench.py", "--target-mb", "50", "--warc-mb", "40", "--repeats", "3"],
    "extract": ["extract_bench.py", "--repeats", "3"],
    "filters": ["filters_bench.py"],
    "dedup_signatures": ["dedup_bench.py", "signatures"],
    "dedup_stage": ["dedup_bench.py", "stage", "--docs", "3000", "--workers", "1", "2"],
    "dedup_planted": ["dedup_planted.py"],
    "tokenizer": ["tokenizer_bench.py", "--input", "data/samples", "--sizes-mb", "1,3"],
    "pack": ["pack_bench.py", "--beam"],
    "kernels": ["kernels_bench.py", "--json", "bench/out/kernels.json"],
    "train": ["train_bench.py", "--mpi"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma list of " + ", ".join(RUNS))
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(RUNS)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    failed = []
    for name in names:
        start = time.perf_counter()
        with (out / f"{name}.txt").open("w") as fh:
            code = subprocess.run([sys.executable, str(BENCH / RUNS[name][0]), *RUNS[name][1:]], stdout=fh,
                                  stderr=subprocess.STDOUT, cwd=BENCH.parent).returncode
        print(f"{name:<18} {'ok' if code == 0 else f'exit {code}':>8} {time.perf_counter() - start:7.1f} s  "
              f"bench/out/{name}.txt", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
