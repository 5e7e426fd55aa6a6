"""Worker processes forked from the runner before a run, for Beam's multi-processing mode (`--workers N`).

Beam starts each worker as a new `python -m apache_beam.runners.worker.sdk_worker_main`: an interpreter
that imports Beam (0.5 s of CPU here) and then every module the pipeline's steps need, before its first
bundle, and at the end runs Python's full shutdown. At 50 MB on 2 workers that was ~1 s of a ~6.5 s curate,
and a small run (the demo, the tests) was slower on 2 workers than on 1. A fork of the runner, made once
its imports are done and before it starts gRPC, has all of that loaded already (copy-on-write). It waits
on a pipe for the environment Beam would have given the new interpreter, then runs the same SDK worker
main, and leaves with `os._exit` once the runner has stopped it.

Only Beam's own worker command is served from the pool, and only while the runner process has neither a
Python thread besides its main one nor a gRPC thread (a fork copies locks other threads may hold; an earlier
run in the same process leaves both behind): otherwise every worker starts as before, but without Beam's
/bin/sh in between (a stop killed the shell, not the worker; see `_Subprocess.Popen`).
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import traceback
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

WORKER_COMMAND = "-m apache_beam.runners.worker.sdk_worker_main"
GRPC_THREADS = ("grpc", "event_engine", "lifeguard", "default-executo", "resolver-execu")  # gRPC core's names
_MALLOPT = {"MALLOC_ARENA_MAX": -8, "MALLOC_MMAP_THRESHOLD_": -3}  # glibc's M_ARENA_MAX, M_MMAP_THRESHOLD


class _Forked:
    """The part of `subprocess.Popen` Beam's `SubprocessSdkWorker.run` uses, for a pooled worker."""

    def __init__(self, pid: int, pipe: int, env: Mapping[str, str]) -> None:
        self.pid, self.returncode = pid, None
        with os.fdopen(pipe, "wb") as w:  # OSError (a fork that died waiting): the caller starts a subprocess
            w.write(json.dumps(dict(env)).encode())

    def _reap(self, flags: int) -> int | None:
        self.returncode = _reap(self.pid, flags)
        return self.returncode

    def wait(self) -> int:
        return self.returncode if self.returncode is not None else self._reap(0)

    def poll(self) -> int | None:
        return self.returncode if self.returncode is not None else self._reap(os.WNOHANG)

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


def _reap(pid: int, flags: int = 0) -> int | None:
    """The exit code, None while running; 0 when the process cannot be waited for (SIGCHLD ignored by whoever
    started us reaps children automatically), as `subprocess` does."""
    try:
        done, status = os.waitpid(pid, flags)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if done else None


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):  # None when the descriptor was closed at start
        if stream is not None:
            stream.flush()


class WorkerPool:
    """`size` forked workers waiting for their environment; `popen` hands one out, `close` ends the rest."""

    def __init__(self, size: int) -> None:
        self._idle: list[tuple[int, int]] = []  # (pid, write end of its pipe)
        self._lock = threading.Lock()
        _flush_std()  # or the children would write the runner's buffered output a second time
        # the children's collections skip what they inherit, which stays shared, not copied; a caller's own
        # frozen objects stay frozen
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            for _ in range(size):
                read, write = os.pipe()
                pid = os.fork()
                if pid == 0:
                    _child(read, [*(w for _, w in self._idle), write])
                os.close(read)
                self._idle.append((pid, write))
        except BaseException:  # Ctrl-C during the forks: end those made
            self.close()
            raise
        finally:
            if freeze:
                gc.unfreeze()

    def popen(self, env: Mapping[str, str]) -> _Forked | None:
        """A worker given `env`, or None (none left, or it died waiting): Beam then starts a subprocess."""
        with self._lock:
            if not self._idle:
                return None
            pid, write = self._idle.pop()
        if _reap(pid, os.WNOHANG) is not None:
            os.close(write)
            return None
        try:
            return _Forked(pid, write, env)
        except OSError:  # it died just now
            _reap(pid)
            return None

    def close(self) -> None:
        """Workers never handed out read end-of-file and exit."""
        with self._lock:
            idle, self._idle = self._idle, []
        for pid, write in idle:
            os.close(write)
            _reap(pid)


def _child(pipe: int, write_ends: list[int]) -> None:
    """In the fork: never return into the runner's code, whatever happens (an exception here would otherwise
    unwind through the runner's own stack and run it a second time)."""
    code = 1
    try:
        # Ctrl-C and SIGTERM (sent to the whole process group by `timeout`, Slurm, a terminal) are the runner's:
        # it stops its workers (SIGKILL, `_Forked.kill`); a worker dying first left tracebacks in every thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for fd in write_ends:  # only the runner may hold a write end, or a reader never sees end-of-file
            os.close(fd)
        _serve(pipe)
        code = 0
    except BaseException:  # noqa: BLE001 - reported like a worker process's crash: a traceback, exit 1
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            _flush_std()
        os._exit(code)


def _serve(pipe: int) -> None:
    """Read the environment and become Beam's SDK worker; nothing to do when the pool closed without handing
    this fork out (end-of-file, no environment)."""
    with os.fdopen(pipe, "rb") as r:
        data = r.read()
    if data:
        env = json.loads(data)
        os.environ.clear()
        os.environ.update(env)
        _apply_malloc(env)
        for handler in logging.root.handlers[:]:  # a new interpreter has none; Beam adds its own
            logging.root.removeHandler(handler)
        from apache_beam.runners.worker import sdk_worker_main

        sdk_worker_main.main([])


def _apply_malloc(env: Mapping[str, str]) -> None:
    """glibc reads MALLOC_* from the environment only when a process starts: apply them as a new worker would."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    for key, param in _MALLOPT.items():
        if env.get(key, "").isdigit():
            libc.mallopt(param, int(env[key]))


def _fork_safe() -> bool:
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return False
    try:
        names = [(task / "comm").read_text().strip() for task in Path("/proc/self/task").iterdir()]
    except OSError:  # no /proc: no way to see native threads
        return False
    return not any(name.startswith(GRPC_THREADS) for name in names)


class _Subprocess(types.ModuleType):
    """`subprocess` as Beam's local job service sees it: its worker command comes from the pool, else runs
    without a shell, and every worker it starts is remembered, so a stop can end them (`kill_workers`)."""

    pool: WorkerPool | None = None
    started: list[_Forked | subprocess.Popen] = []

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    def Popen(self, args, *rest, env=None, **kwargs):  # noqa: N802 - subprocess's name
        worker = None
        if isinstance(args, str) and args.endswith(WORKER_COMMAND):
            if self.pool is not None and env is not None:
                worker = self.pool.popen(env)
            # Beam passes shell=True, and /bin/sh (dash) forks the interpreter rather than exec it: the process
            # Beam and `kill_workers` killed was that shell, and the worker under it ran on after a stop (a step in
            # native code to its end). The command is `sys.executable -m ...` (Beam's fn_runner), no shell syntax.
            args, kwargs["shell"] = shlex.split(args), False
        worker = worker or subprocess.Popen(args, *rest, env=env, **kwargs)
        self.started.append(worker)
        return worker


_SUBPROCESS = _Subprocess("subprocess")


def kill_workers() -> None:
    """SIGKILL the worker processes of the run in progress. On Ctrl-C or SIGTERM the runner would otherwise wait
    for the bundles in flight (a worker ignores both, see `_child`), minutes on a large input; killed, a
    worker's data stream ends and the runner's waits for it fail within a second."""
    for worker in _SUBPROCESS.started:
        if worker.poll() is None:
            worker.kill()


@contextlib.contextmanager
def forked_workers(size: int) -> Iterator[None]:
    """Serve Beam's first `size` worker starts from forks made now (see module doc); ends those not used."""
    from apache_beam.runners.portability import local_job_service

    pool = WorkerPool(size) if _fork_safe() else None
    _SUBPROCESS.pool, _SUBPROCESS.started, local_job_service.subprocess = pool, [], _SUBPROCESS
    try:
        yield
    finally:
        _SUBPROCESS.pool, _SUBPROCESS.started, local_job_service.subprocess = None, [], subprocess
        if pool is not None:
            pool.close()
