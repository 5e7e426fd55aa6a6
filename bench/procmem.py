"""Peak memory of this process and of the worker processes it started, read from /proc (Linux).

`getrusage(RUSAGE_CHILDREN).ru_maxrss` does not measure Beam's workers: each is started through a shell
forked from the runner, and Linux records the runner's peak RSS at the shell's exec as the shell's own, so
the "largest child" is at least the runner's size when the workers started. The workers' own VmHWM is read
instead, after every stage, while they are alive.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

MIN_WORKER_MB = 16  # the shells that start Beam's workers stay below this


def peak_mb(pid: int | str) -> int:
    """VmHWM of a process in MB (0 if it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def reset_peak(pid: int | str) -> None:
    """Start a new VmHWM from the current RSS (Linux `clear_refs` 5), so the next reading covers what follows."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def descendants() -> list[int]:
    """Every process under this one (Beam's multi-processing mode starts each worker through a shell), by pid."""
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


def private_mb(pid: int | str) -> int:
    """Memory only this process holds (Private_Clean + Private_Dirty, MB; 0 if it has gone). A worker forked from
    the runner (pipeline.worker_pool) counts the runner's pages it still shares in its RSS and VmHWM, so a
    runner holding a large input shows up in every worker's peak; this does not count them."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in rollup.splitlines()
               if line.startswith(("Private_Clean:", "Private_Dirty:"))) // 1024


def worker_private() -> dict[int, int]:
    """pid → private memory (MB) of the worker processes under this one, now."""
    return {pid: private_mb(pid) for pid in descendants() if peak_mb(pid) >= MIN_WORKER_MB}


def worker_peaks() -> dict[int, int]:
    """pid → VmHWM (MB) of the worker processes under this one."""
    return {pid: mb for pid in descendants() if (mb := peak_mb(pid)) >= MIN_WORKER_MB}


def after_each_stage(callback: Callable[[str, float, float], None]) -> None:
    """Call `callback(stage name, start, seconds)` after every stage the local runner executes, while its
    workers are still alive (`start` is `time.perf_counter()` at the stage's start)."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    execute = fn_runner.FnApiRunner._execute_bundle

    def timed(self, runner_execution_context, bundle_context_manager, bundle_input):
        start = time.perf_counter()
        result = execute(self, runner_execution_context, bundle_context_manager, bundle_input)
        callback(bundle_context_manager.stage.name, start, time.perf_counter() - start)
        return result

    fn_runner.FnApiRunner._execute_bundle = timed
