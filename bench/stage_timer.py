"""Wall time and memory of every stage the local runner executes, for one `jcorpus` command.

Wraps `FnApiRunner._execute_bundle` and prints, per fused stage, when it started (seconds since this
script began), how long it ran, and the peak resident memory (VmHWM, MB) of the runner and of each worker
process during that stage (the peaks are reset after every stage), then the run's overall peaks. It shows
what a second worker does not share (runner start-up, worker start, regroups in the driver, commit) next to
the stages it does, and which stage needs the memory.

    .venv/bin/python bench/stage_timer.py curate --config CFG --out OUT --workers 2 --overwrite
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procmem import after_each_stage, peak_mb, reset_peak, worker_peaks  # noqa: E402

START = time.perf_counter()
OVERALL: dict[int | str, int] = {}


def _print_stage(name: str, start: float, seconds: float) -> None:
    """This stage's peaks of the runner and of each worker; the peaks restart, the overall ones are kept."""
    runner, workers = peak_mb("self"), worker_peaks()
    for pid, mb in [("runner", runner), *workers.items()]:
        OVERALL[pid] = max(OVERALL.get(pid, 0), mb)
        reset_peak("self" if pid == "runner" else pid)
    peaks = " ".join(map(str, workers.values()))
    print(f"{start - START:7.2f} {seconds:6.2f} {runner:6d} [{peaks}]  {name[:100]}", file=sys.stderr)


def main() -> int:
    after_each_stage(_print_stage)
    from pipeline.cli import main as jcorpus

    try:
        code = jcorpus(sys.argv[1:])
    finally:
        runner = max(OVERALL.pop("runner", 0), peak_mb("self"))
        workers = " ".join(str(mb) for _, mb in sorted(OVERALL.items()))
        print(f"{time.perf_counter() - START:7.2f} end; overall peaks: runner {runner} MB, workers [{workers}] MB",
              file=sys.stderr)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
