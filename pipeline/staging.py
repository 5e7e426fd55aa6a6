"""Staging folders (`OUT/_temporary-<run>`, `index_out/_temporary-<run>`): who owns one, and removing those
whose run is gone.

A run writes `OWNER` into each of its staging folders before anything else and rewrites it every
`HEARTBEAT_SECONDS` while it runs. A run killed with SIGKILL, or on a machine that died, never removed its
staging folder, which stayed forever (it can hold gigabytes of spill files). A later run into the same folder
removes a `_temporary-*` folder only when it is provably stale:

- its owner ran the workers itself (`local_workers`, see `runner.workers_local`: they end with it), on this
  machine (same boot id and pid namespace, so the pid means the same process), and that pid is gone, a
  zombie, or now a different process (its start time differs);
- its owner ran the workers itself, elsewhere (another host, container or boot: the pid cannot be checked),
  and the marker was last refreshed more than `STALE_SECONDS` ago;
- its job ran on a remote runner (Dataflow, Flink, Spark, a running Dask scheduler, a job endpoint), which
  writes on after its driver is killed, or its marker predates `local_workers` (any runner could have
  written it), and nothing in it changed for `STALE_SECONDS`: its newest file and the marker's refresh are
  both that old (the pid, and the refresh alone, say nothing of the job);
- it has no readable marker (killed before writing it, or written before markers existed) and its newest
  file is older than `STALE_SECONDS`;
- its run failed a check and kept it for inspection (`keep`) more than `KEPT_SECONDS` ago.

Anything else is left alone, in one line: two runs into one folder at once are a user error, but neither
destroys the other's files. The marker is JSON (no pickle): it is read from a folder anyone could write.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.fsutil import (
    GLOB_CHARACTERS,
    STAGING_PREFIX,
    join,
    read_json,
    remove_tree,
    staging_folders,
    write_json,
)
from trainer_bridge.userpaths import open_regular

OWNER = "_owner.json"
STALE_SECONDS = 24 * 3600  # a marker not refreshed for a day: its run is gone (a live one refreshes it often)
KEPT_SECONDS = 7 * 24 * 3600  # a staging folder kept for inspection after a failed check
HEARTBEAT_SECONDS = 600
MAX_MARKER_BYTES = 1 << 16  # a marker is ~300 bytes; a bigger one (or /dev/zero behind a symlink) is not one


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _machine() -> dict[str, Any]:
    """What makes a pid meaningful: the kernel's boot id and the pid namespace (Linux; None elsewhere)."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = None
    return {"host": socket.gethostname(), "boot_id": _read("/proc/sys/kernel/random/boot_id"), "pid_ns": pid_ns}


def _process_start(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of a process, from /proc; None when unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name, in parentheses, may hold spaces
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_marker(run_id: str, local_workers: bool) -> dict[str, Any]:
    """`local_workers`: whether the run's workers end with this process (`runner.workers_local`)."""
    now = time.time()
    start = _process_start(os.getpid())
    return {**_machine(), "pid": os.getpid(), "process_start": start[1] if start else None, "run_id": run_id,
            "local_workers": local_workers, "started": now, "refreshed": now, "kept": None}


def write_owner(stage: str, marker: dict[str, Any]) -> None:
    write_json(join(stage, OWNER), {**marker, "refreshed": time.time()})


@contextlib.contextmanager
def owned(stages: list[str], run_id: str, local_workers: bool,
          interval: float = HEARTBEAT_SECONDS) -> Iterator[dict[str, Any]]:
    """Write the owner marker into each staging folder, and refresh it every `interval` seconds until the block
    ends (the thread is stopped before the block's end returns, so it never writes into a folder removed after)."""
    marker = owner_marker(run_id, local_workers)
    for stage in stages:
        write_owner(stage, marker)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            for stage in stages:
                with contextlib.suppress(Exception):  # a missed heartbeat only makes the folder look older
                    if FileSystems.exists(join(stage, OWNER)):  # never recreate a folder removed meanwhile
                        write_owner(stage, marker)

    thread = threading.Thread(target=beat, name="staging-heartbeat", daemon=True)
    thread.start()
    try:
        yield marker
    finally:
        stop.set()
        thread.join()


def keep(stage: str, reason: str) -> None:
    """Mark a staging folder kept for inspection (a failed check names it): removed after `KEPT_SECONDS`, not
    as soon as its run is gone. A folder already removed is left removed."""
    path = join(stage, OWNER)
    with contextlib.suppress(Exception):
        if FileSystems.exists(path):
            write_json(path, {**read_json(path), "kept": reason, "refreshed": time.time()})


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def why_stale(marker: dict[str, Any] | None, newest: float | None, now: float | None = None) -> tuple[bool, str]:
    """(stale, why) for a staging folder with this owner marker (None: none readable) and the time of its newest
    file (or of any file younger than `STALE_SECONDS`, which is enough to keep it), needed only when
    `_judged_by_files(marker)`."""
    now = time.time() if now is None else now
    if not isinstance(marker, dict):
        if not newest:
            return False, "it has no owner marker and its files' times are unknown"
        age = now - newest
        if age > STALE_SECONDS:
            return True, f"it has no owner marker and its newest file is {_hours(age)} old"
        return False, f"it has no owner marker and holds a file only {_hours(age)} old"
    who = f"run {marker.get('run_id')} (pid {marker.get('pid')} on {marker.get('host')})"
    refreshed = marker.get("refreshed")
    age = now - refreshed if _finite(refreshed) else None
    if marker.get("kept"):
        if age is not None and age > KEPT_SECONDS:
            return True, f"{who} kept it for inspection {_hours(age)} ago ({marker['kept']})"
        return False, f"{who} kept it for inspection ({marker['kept']}); it goes after {_hours(KEPT_SECONDS)}"
    if _judged_by_files(marker):  # its job may write on after its driver (the pid) died: the pid says nothing
        what = ("ran on a remote runner" if marker.get("local_workers") is False
                else "does not say whether it ran on a remote runner (an older marker)")
        quiet = min(age, now - newest) if age is not None and newest else None
        if quiet is None:
            return False, f"{who} {what}, and its marker's or files' times are unknown"
        if quiet > STALE_SECONDS:
            return True, f"{who} {what}, and nothing in it changed for {_hours(quiet)}"
        return False, f"{who} {what}, whose job may outlive its driver: it changed {_hours(quiet)} ago"
    here = _machine()
    pid = marker.get("pid")
    valid_pid = type(pid) is int and 0 < pid < 2**31  # not a bool; os.kill(0 or -1, ...) names process groups
    same_machine = valid_pid and marker.get("pid_ns") == here["pid_ns"] and (
        marker.get("boot_id") == here["boot_id"] if here["boot_id"] else marker.get("host") == here["host"])
    if same_machine:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True, f"{who} is no longer running"
        except PermissionError:
            pass  # alive, another user's
        state = _process_start(pid)
        if state and state[0] in "ZX":
            return True, f"{who} is no longer running (a zombie)"
        if state and isinstance(marker.get("process_start"), int) and state[1] != marker["process_start"]:
            return True, f"{who} is no longer running (pid {pid} is now another process)"
        return False, f"{who} is still running"
    if age is None:
        return False, f"{who} ran on another machine and its marker has no time"
    if age > STALE_SECONDS:
        return True, f"{who} ran on another machine and was last seen {_hours(age)} ago"
    return False, f"{who} ran on another machine and was seen {_hours(age)} ago"


def _judged_by_files(marker: dict[str, Any] | None) -> bool:
    """Whether a folder's files decide: it has no marker, or its run's workers may have outlived the owner (a
    remote runner, or a marker older than `local_workers`, which any runner may have written)."""
    return marker is None or (not marker.get("kept") and marker.get("local_workers") is not True)


def _finite(value: Any) -> bool:
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def _stages(folder: str) -> dict[str, float | None]:
    """Every `_temporary-*` folder directly in `folder` -> the time of its newest object on an object store (None
    on local disk, where `_newest_local` walks the folder only when its files decide). On an object store a
    folder is the prefix of its objects, all listed to find the folders at all."""
    if "://" not in folder:
        return dict.fromkeys(staging_folders(folder))
    found: dict[str, float | None] = {}
    base = folder.rstrip("/") + "/"
    try:
        listed = FileSystems.match([join(folder, STAGING_PREFIX + "**")])[0].metadata_list
    except Exception:  # noqa: BLE001 - Beam raises various errors for "nothing there"; removing is best effort
        listed = []
    for meta in listed:
        name = meta.path[len(base):].split("/", 1)
        if len(name) < 2:  # an object named like a folder: not a staging folder
            continue
        stage = join(folder, name[0])
        found[stage] = max(found.get(stage) or 0.0, getattr(meta, "last_updated_in_seconds", 0.0) or 0.0) or None
    return found


def _newest_local(path: str, cutoff: float) -> float | None:
    """The newest modification time of `path` and everything under it (links not followed), or the first one
    found after `cutoff`: the folder is then not stale, and a live run's folder holds many spill files. A
    folder's own entries go before those of its subfolders: the top-level files (the marker, the
    statistics) are seen before the spill files."""
    newest, folders = 0.0, [path]
    with contextlib.suppress(OSError):
        newest = os.lstat(path).st_mtime
    while folders and newest <= cutoff:
        with contextlib.suppress(OSError), os.scandir(folders.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                if newest > cutoff:
                    break
    return newest or None


def _marker(stage: str) -> dict[str, Any] | None:
    """The owner marker, None when missing, unreadable, not JSON or too big (a FIFO or a device is refused
    without blocking)."""
    path = join(stage, OWNER)
    try:
        with (FileSystems.open if "://" in stage else open_regular)(path) as fh:
            data = fh.read(MAX_MARKER_BYTES + 1)
        marker = json.loads(data.decode("utf-8")) if len(data) <= MAX_MARKER_BYTES else None
    except Exception:  # noqa: BLE001 - missing, half written or not JSON: no marker
        return None
    return marker if isinstance(marker, dict) else None


def remove_stale(folder: str | None, log: Callable[[str], None] | None = None) -> list[str]:
    """Remove the provably stale staging folders in `folder`; one line each, removed or left alone. Returns the
    removed ones."""
    if not folder:
        return []
    log = log or (lambda line: print(f"jcorpus curate: {line}", file=sys.stderr))
    removed, now = [], time.time()
    for stage, newest in sorted(_stages(folder).items()):
        if any(c in stage.rsplit("/", 1)[-1] for c in GLOB_CHARACTERS):  # no run makes such a name
            log(f"left {stage} alone: its name holds one of {GLOB_CHARACTERS} (not a jcorpus staging folder)")
            continue
        try:
            marker = _marker(stage)
            if "://" not in stage and _judged_by_files(marker):
                newest = _newest_local(stage, now - STALE_SECONDS)
            stale, why = why_stale(marker, newest, now)
        except Exception as exc:  # noqa: BLE001 - a forged marker (a 400-digit time) must not stop this run
            stale, why = False, f"its owner marker cannot be judged ({type(exc).__name__}: {exc})"
        if not stale:
            log(f"left {stage} alone: {why}")
            continue
        try:
            remove_tree(stage)
        except Exception as exc:  # noqa: BLE001 - a leftover that cannot be removed must not stop this run
            log(f"could not remove stale {stage} ({why}): {exc}")
            continue
        log(f"removed stale {stage}: {why}")
        removed.append(stage)
    return removed
