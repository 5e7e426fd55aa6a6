"""Beam's worker processes forked from the runner (`pipeline.worker_pool`): used by a process's first
multi-worker run, never after a run has left threads behind, and forks nobody took end with the run."""
from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import worker_pool
from pipeline.worker_pool import WorkerPool
from tests.conftest import ROOT, wiki_config

SCRIPT = """
import json, os
import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from pipeline.runner import new_pipeline, pipeline_options, run

def cmdline():
    with open("/proc/self/cmdline", "rb") as f:
        return f.read().decode()

RUNNER = cmdline()

def worker(_):  # a fork keeps the runner's command line; Beam starts python -m ...sdk_worker_main
    return json.dumps({"pid": os.getpid(), "forked": cmdline() == RUNNER, "arena": os.environ.get("MALLOC_ARENA_MAX")})

runs = []
for _ in range(2):
    with pipeline_options(None, 2, []) as (runner, options), new_pipeline(runner, options, None) as p:
        squares = p | "N" >> beam.Create(range(200)) | "Sq" >> beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([x * x for x in range(200)]))
        seen = (p | "Keys" >> beam.Create(range(64)) | beam.Reshuffle() | beam.Map(worker)
                | beam.combiners.ToList())
        seen | beam.Map(lambda s: print("SEEN", json.dumps(sorted(set(s)))))
        run(p, None)
"""


def test_first_run_uses_forked_workers_and_a_later_run_starts_new_ones() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MALLOC_ARENA_MAX", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = [[json.loads(w) for w in json.loads(line[5:])] for line in out.stdout.splitlines() if line.startswith("SEEN ")]
    assert len(runs) == 2
    first, second = runs
    assert {w["forked"] for w in first} == {True}  # forks of the runner: its command line, not Beam's
    assert {w["forked"] for w in second} == {False}  # the first run left gRPC threads: Beam starts them
    assert {w["arena"] for w in first + second} == {"2"}  # runner.WORKER_MALLOC reaches forked workers too


def _in_a_one_thread_process(check: Callable[[], None]) -> None:
    """Run `check`, which makes a pool, in a new process of one thread, as the runner forks only then
    (`worker_pool._fork_safe`): pytest's process holds the threads earlier tests left (gRPC's), and a fork
    there may deadlock (Python 3.12 warns so, and does not raise under `-W error`: hence the count)."""
    code = (f"import os\nfrom tests.pipeline.test_worker_pool import {check.__name__}, _threads\n"
            f"assert _threads() == 1, 'threads before the fork'\nparent = os.getpid()\n"
            f"try:\n    {check.__name__}()\n"
            "finally:  # a fork that unwound into this code must not pass for the caller (exit 1 either way)\n"
            "    if os.getpid() != parent:\n        os._exit(99)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]


def _threads() -> int:
    """The process's threads, native ones included (what Python 3.12 counts before it warns of a fork)."""
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[17])


def test_forks_never_taken_exit_when_the_pool_closes() -> None:
    _in_a_one_thread_process(_forks_never_taken_exit)


def _forks_never_taken_exit() -> None:
    pool = WorkerPool(2)
    pids = [pid for pid, _ in pool._idle]
    pool.close()
    assert len(pids) == 2 and not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert pool.popen({}) is None


FAILING = """
import apache_beam as beam
from pipeline.runner import new_pipeline, pipeline_options, run

def fail(x):
    raise ValueError("boom in a forked worker")

with pipeline_options(None, 2, []) as (runner, options), new_pipeline(runner, options, None) as p:
    p | beam.Create(range(8)) | beam.Reshuffle() | beam.Map(fail)
    run(p, None)
"""


def test_a_failing_step_fails_the_run_and_leaves_no_worker_behind() -> None:
    marker = f"# worker-pool-test {os.getpid()}"
    out = subprocess.run([sys.executable, "-c", FAILING + marker], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, timeout=300)
    assert out.returncode != 0 and "boom in a forked worker" in out.stderr
    left = [p for p in Path("/proc").glob("[0-9]*/cmdline") if marker.encode() in _read(p)]
    assert not left  # forks keep the runner's command line, marker included


STUCK = """
import ctypes, os, pathlib, signal, sys
import apache_beam as beam
from pipeline.runner import new_pipeline, pipeline_options, run

signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises in the runner, as `jcorpus` makes it
SEEN = sys.argv[1]  # pickled with `stuck`: a worker Beam starts has argv of its own

def stuck(x):
    pathlib.Path(SEEN, str(os.getpid())).touch()
    ctypes.PyDLL(None).sleep(600)  # native code holding the GIL: the worker cannot exit when the runner goes

if sys.argv[2] == "again":  # a run first: it leaves threads behind, so the pool is not used (`_fork_safe`)
    with pipeline_options(None, 2, []) as (runner, options), new_pipeline(runner, options, None) as p:
        p | beam.Create(range(2)) | beam.Map(str)
        run(p, None)
with pipeline_options(None, 2, []) as (runner, options), new_pipeline(runner, options, None) as p:
    p | beam.Create(range(2)) | beam.Reshuffle() | beam.Map(stuck)
    run(p, None)
"""


@pytest.mark.parametrize("again", [False, True], ids=["forked", "started"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_ends_the_bundles_in_flight_instead_of_waiting_for_them(sig, again: bool, tmp_path: Path) -> None:
    """Both workers in a step that takes 10 minutes: the run stops within seconds of the signal (it used to wait
    for the bundles, minutes on a large input) and the workers are dead. Also when Beam started them itself (a
    process's second run): the runner killed the `/bin/sh -c` they run under, and they ran on (a step in native
    code to its end, any other ~1 s, until their stream closed) after the run had said it stopped."""
    marker = f"# worker-pool-test {os.getpid()} stuck"
    seen, said = tmp_path / "seen", tmp_path / "stderr"  # a file: a worker left alive would hold a pipe open
    seen.mkdir()
    with said.open("w") as stderr:
        run = subprocess.Popen([sys.executable, "-c", STUCK + marker, str(seen), "again" if again else "first"],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                               stderr=stderr)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while len(list(seen.iterdir())) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in seen.iterdir()]
        assert len(workers) == 2, "both workers never reached the step"
        # a fork keeps the runner's command line
        assert [b"sdk_worker_main" in _read(Path(f"/proc/{pid}/cmdline")) for pid in workers] == [again] * 2
        stopped = time.monotonic()
        run.send_signal(sig)
        run.wait(timeout=120)
        err = said.read_text()
        assert time.monotonic() - stopped < 30 and run.returncode != 0 and "KeyboardInterrupt" in err, err[-3000:]
        deadline = time.monotonic() + 5  # killed before the runner exits; maybe not yet reaped (a zombie)
        while [pid for pid in workers if _running(pid)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _running(pid)]
        assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if marker.encode() in _read(p)]
    finally:
        run.kill()
        for pid in workers:  # left by a failure, as the old code left them
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive and not a zombie (one whose parent has not reaped it yet is dead all the same)."""
    stat = _read(Path(f"/proc/{pid}/stat"))
    return bool(stat) and stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize(("sig", "group", "workers", "code", "said"), [
    (signal.SIGINT, True, 2, 130, "interrupted"), (signal.SIGTERM, False, 2, 143, "terminated"),
    (signal.SIGTERM, True, 2, 143, "terminated"), (signal.SIGTERM, False, 1, 143, "terminated")])
def test_a_stop_signal_ends_the_run_in_one_line_and_leaves_nothing(sig, group, workers, code, said, tmp_path: Path,
                                                                   beam_leftovers) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM, to the runner or to
    the whole group (`timeout`, Slurm): the forked workers ignore both, the runner stops them and says so in
    one line; no process and no temporary output is left. SIGTERM to the whole group used to kill the workers
    first (a traceback from every runner thread), and on one worker Beam re-raised it inside a step as a
    RuntimeError (three tracebacks)."""
    config = wiki_config(tmp_path, copies=400)
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "curate", "--config", str(config), "--out",
                            str(out), "--workers", str(workers)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    forked = workers if workers > 1 else 0  # one worker runs in the runner
    deadline = time.monotonic() + 120
    while len(_children(run.pid)) < forked and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = _children(run.pid)
    time.sleep(0.5 if forked else 3)  # into the steps
    assert len(pids) == forked and run.poll() is None, "the run ended before it was stopped"
    os.killpg(run.pid, sig) if group else run.send_signal(sig)
    _, err = run.communicate(timeout=60)  # about a second; the runner no longer waits for the bundles in flight
    assert run.returncode == code and err.strip().splitlines() == [f"jcorpus curate: {said}"], err[-3000:]
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()] and not list(out.glob("_temporary-*"))
    assert beam_leftovers() == []  # the run's TMPDIR


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


def _closed_stdout() -> None:
    os.close(1)  # Python then starts with sys.stdout = None


def _closed_stderr() -> None:
    os.close(2)


def _sigchld_ignored() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kept across exec: children are reaped automatically


@pytest.mark.parametrize("setup", [_closed_stdout, _closed_stderr, _sigchld_ignored])
def test_runs_under_odd_process_settings(setup, tmp_path: Path) -> None:
    """A closed stdout or stderr (sys.stdout is None) and SIGCHLD inherited as ignored (waitpid: ECHILD) are how
    some supervisors start jobs; Beam's own workers ran there, so the forks must too."""
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "curate", "--config", str(wiki_config(tmp_path)),
                          "--out", str(out), "--workers", "2"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=setup is _sigchld_ignored, text=True, preexec_fn=setup, timeout=300)
    assert run.returncode == 0 and (out / "_SUCCESS").exists()
    if setup is _sigchld_ignored:
        assert "Traceback" not in run.stderr, run.stderr[-2000:]


def test_a_fork_that_died_waiting_is_replaced_by_a_subprocess() -> None:
    _in_a_one_thread_process(_a_fork_that_died_waiting)


def _a_fork_that_died_waiting() -> None:
    pool = WorkerPool(1)
    (pid, _), = pool._idle
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # until it can be reaped (a leader shows Z while its other threads exit)
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.popen({"A": "1"}) is None  # Beam then starts its own worker process
    assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie


def test_a_callers_frozen_objects_stay_frozen() -> None:
    _in_a_one_thread_process(_frozen_objects_stay_frozen)


def _frozen_objects_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        WorkerPool(1).close()
        assert gc.get_freeze_count() > frozen // 2  # not unfrozen (a few frozen objects may be freed meanwhile)
    finally:
        gc.unfreeze()


def test_a_fork_that_fails_exits_instead_of_running_the_callers_code() -> None:
    """Anything raised in a fork ends it (exit 1): unwinding into the caller's stack would run the caller twice."""
    _in_a_one_thread_process(_a_fork_that_fails)


def _a_fork_that_fails() -> None:
    def broken(pipe: int) -> None:
        raise RuntimeError("a fork failed")

    worker_pool._serve = broken  # this process's own copy
    pool = WorkerPool(1)
    (pid, _), = pool._idle
    _, status = os.waitpid(pid, 0)
    pool.close()
    assert os.waitstatus_to_exitcode(status) == 1


@pytest.mark.parametrize(("extra", "mode", "workers"), [
    ([], "multi_processing", 2),
    (["--direct_running_mode=multi_threading"], "multi_threading", 2),
    (["--direct_running_mode", "in_memory"], "in_memory", 2),
    (["--direct_num_workers=3"], "multi_processing", 3)])
def test_the_users_direct_runner_flags_win_over_workers(extra: list[str], mode: str, workers: int) -> None:
    """Beam options pass through unchanged: `--workers 2` fills in only what the user's flags leave unset (an
    explicit multi_threading was silently replaced), and only multi-processing gets forked workers."""
    from apache_beam.options.pipeline_options import DirectOptions

    from pipeline.runner import pipeline_options

    with pipeline_options(None, 2, extra) as (_, options):
        direct = options.view_as(DirectOptions)
        assert (direct.direct_running_mode, direct.direct_num_workers) == (mode, workers)
        if mode != "multi_processing":
            assert worker_pool._SUBPROCESS.pool is None


def test_a_stop_lost_on_its_way_up_is_raised_again() -> None:
    """Under load, a SIGTERM was seen to end a run with exit 0 and its outputs committed: the exception was lost
    on its way up through the runner. Here a step of the runner's teardown swallows it; the signal handler's
    record of the stop makes the run raise it again before anything is committed. (That Beam's teardown errors
    after a stop are not shown is the stop-signal test's: pytest keeps log records off stderr here.)"""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from pipeline import cli, errors
    from pipeline.runner import new_pipeline, pipeline_options, run

    def close_swallowing_a_stop(self) -> None:
        try:
            cli._terminate(signal.SIGTERM, None)
        except errors.Terminated:
            pass
        raise RuntimeError("stream closed under the runner's reader")  # what Beam logs as it tears down

    try:
        with pipeline_options(None, 1, ()) as (runner, options), new_pipeline(runner, options, None) as p:
            _ = p | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
            original = worker_handlers.EmbeddedWorkerHandler.close
            worker_handlers.EmbeddedWorkerHandler.close = close_swallowing_a_stop
            try:
                with pytest.raises(errors.Terminated):
                    run(p, None)
            finally:
                worker_handlers.EmbeddedWorkerHandler.close = original
    finally:
        errors.STOPS.clear()
