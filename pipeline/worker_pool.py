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
run in the same process leaves both behind): otherwise every worker starts as before.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
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
        with os.fdopen(pipe, "wb") as w:
            w.write(json.dumps(dict(env)).encode())

    def _reap(self, flags: int) -> int | None:
        pid, status = os.waitpid(self.pid, flags)
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        return self.returncode if self.returncode is not None else self._reap(0)

    def poll(self) -> int | None:
        return self.returncode if self.returncode is not None else self._reap(os.WNOHANG)

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


class WorkerPool:
    """`size` forked workers waiting for their environment; `take` hands one out, `close` ends the rest."""

    def __init__(self, size: int) -> None:
        self._idle: list[tuple[int, int]] = []  # (pid, write end of its pipe)
        self._lock = threading.Lock()
        sys.stdout.flush()
        sys.stderr.flush()  # or the children would write the runner's buffered output a second time
        gc.freeze()  # the children's collections then skip what they inherit, which stays shared, not copied
        try:
            for _ in range(size):
                read, write = os.pipe()
                pid = os.fork()
                if pid == 0:
                    for _, earlier in [*self._idle, (0, write)]:  # only the runner may hold a write end
                        os.close(earlier)
                    _serve(read)
                os.close(read)
                self._idle.append((pid, write))
        finally:
            gc.unfreeze()

    def popen(self, env: Mapping[str, str]) -> _Forked | None:
        with self._lock:
            if not self._idle:
                return None
            pid, write = self._idle.pop()
        return _Forked(pid, write, env)

    def close(self) -> None:
        """Workers never handed out read end-of-file and exit."""
        with self._lock:
            idle, self._idle = self._idle, []
        for pid, write in idle:
            os.close(write)
            os.waitpid(pid, 0)


def _serve(pipe: int) -> None:
    """In the child: read the environment, become Beam's SDK worker, exit without Python's shutdown."""
    code = 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's: it stops its workers, as on any failure
    try:
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
        code = 0
    except BaseException:  # noqa: BLE001 - reported like a worker process's crash: a traceback, exit 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    """`subprocess` as Beam's local job service sees it: its worker command comes from the pool."""

    pool: WorkerPool | None = None

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    def Popen(self, args, *rest, env=None, **kwargs):  # noqa: N802 - subprocess's name
        if self.pool is not None and isinstance(args, str) and args.endswith(WORKER_COMMAND) and env is not None:
            forked = self.pool.popen(env)
            if forked is not None:
                return forked
        return subprocess.Popen(args, *rest, env=env, **kwargs)


_SUBPROCESS = _Subprocess("subprocess")


@contextlib.contextmanager
def forked_workers(size: int) -> Iterator[None]:
    """Serve Beam's first `size` worker starts from forks made now (see module doc); ends those not used."""
    from apache_beam.runners.portability import local_job_service

    if not _fork_safe():
        yield
        return
    pool = WorkerPool(size)
    _SUBPROCESS.pool, local_job_service.subprocess = pool, _SUBPROCESS
    try:
        yield
    finally:
        _SUBPROCESS.pool, local_job_service.subprocess = None, subprocess
        pool.close()
