"""Wall time and memory of every stage the local runner executes, for one `jcorpus` command.

Wraps `FnApiRunner._execute_bundle` and prints, per fused stage, when it started (seconds since this
script began), how long it ran, and the peak resident memory so far (VmHWM, MB) of the runner and of each
worker process, then the end of the run. It shows what a second worker does not share (runner start-up,
worker start, regroups in the driver, commit) next to the stages it does, and which stage sets a peak.

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


def _worker_peaks() -> list[int]:
    """VmHWM (MB) of the worker processes: descendants of this process (Beam's multi-processing mode starts
    each through a shell), in pid order; shells and helpers under 16 MB are left out."""
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
    return [mb for mb in map(_peak_mb, sorted(found)) if mb >= 16]


_execute_bundle = fn_runner.FnApiRunner._execute_bundle


def _timed(self, runner_execution_context, bundle_context_manager, bundle_input):
    began = time.perf_counter()
    result = _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input)
    name = bundle_context_manager.stage.name
    peaks = " ".join(map(str, _worker_peaks()))
    print(f"{began - START:7.2f} {time.perf_counter() - began:6.2f} {_peak_mb('self'):6d} [{peaks}]  {name[:100]}",
          file=sys.stderr)
    return result


def main() -> int:
    fn_runner.FnApiRunner._execute_bundle = _timed
    from pipeline.cli import main as jcorpus

    try:
        code = jcorpus(sys.argv[1:])
    finally:
        print(f"{time.perf_counter() - START:7.2f} end", file=sys.stderr)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
