"""Wall time and memory of every stage the local runner executes, for one `jcorpus` command.

Wraps `FnApiRunner._execute_bundle` and prints, per fused stage, when it started (seconds since this
script began), how long it ran, and the peak resident memory (VmHWM, MB) of the runner and of each worker
process during that stage (the peaks are reset after every stage), then the run's overall peaks. It shows
what a second worker does not share (runner start-up, worker start, regroups in the driver, commit) next to
the stages it does, and which stage needs the memory.

    .venv/bin/python bench/stage_timer.py curate --config CFG --out OUT --workers 2 --overwrite
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apache_beam.runners.portability.fn_api_runner import fn_runner  # noqa: E402

START = time.perf_counter()


def _peak_mb(pid: int | str) -> int:
    """VmHWM of a process in MB (0 if it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def _reset_peak(pid: int | str) -> None:
    """Start a new VmHWM from the current RSS (Linux `clear_refs` 5), so the next reading is one stage's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _workers() -> list[int]:
    """The worker processes: descendants of this process (Beam's multi-processing mode starts each through a
    shell), in pid order."""
    parents: dict[str, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(fields[1], []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(str(os.getpid()), []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(str(pid), [])
    return sorted(found)


OVERALL: dict[str, int] = {}


def _stage_peaks() -> tuple[int, list[int]]:
    """This stage's peak of the runner and of each worker (shells and helpers under 16 MB left out); the
    peaks restart, and the overall ones are kept for the end of the run."""
    runner = _peak_mb("self")
    OVERALL["runner"] = max(OVERALL.get("runner", 0), runner)
    workers = []
    for pid in _workers():
        mb = _peak_mb(pid)
        if mb >= 16:
            workers.append(mb)
            OVERALL[str(pid)] = max(OVERALL.get(str(pid), 0), mb)
        _reset_peak(pid)
    _reset_peak("self")
    return runner, workers


_execute_bundle = fn_runner.FnApiRunner._execute_bundle


def _timed(self, runner_execution_context, bundle_context_manager, bundle_input):
    began = time.perf_counter()
    result = _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input)
    name = bundle_context_manager.stage.name
    runner, workers = _stage_peaks()
    peaks = " ".join(map(str, workers))
    print(f"{began - START:7.2f} {time.perf_counter() - began:6.2f} {runner:6d} [{peaks}]  {name[:100]}",
          file=sys.stderr)
    return result


def main() -> int:
    fn_runner.FnApiRunner._execute_bundle = _timed
    from pipeline.cli import main as jcorpus

    try:
        code = jcorpus(sys.argv[1:])
    finally:
        runner = max(OVERALL.pop("runner", 0), _peak_mb("self"))
        workers = " ".join(str(OVERALL[pid]) for pid in sorted(OVERALL, key=int))
        print(f"{time.perf_counter() - START:7.2f} end; overall peaks: runner {runner} MB, workers [{workers}] MB",
              file=sys.stderr)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
