"""Checks of the paths a user gives any jcorpus command, with no Beam and no other jcorpus import (so `filters`,
`tokenizer`, `trainer_bridge` and `pipeline` share them): a file to read must be a regular file, since opening a
FIFO blocks forever and a device never ends; a folder to write must be one that can be made."""
from __future__ import annotations

import os
import stat
import tempfile
from typing import BinaryIO

NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in NOT_REGULAR if test(mode)), "a special file")


def not_regular(path: str | os.PathLike) -> str | None:
    """What a local path is (symlinks followed) when it is not a regular file, else None. A URL, or a path
    that cannot be followed (its reader reports it), is None."""
    if "://" in str(path):
        return None
    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return None


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`open(path, "rb")` that refuses what is not a regular file with an OSError naming it, without blocking:
    the open itself does not wait for a FIFO's writer (O_NONBLOCK), and what it opened is what is checked."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if what := _kind(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file ({what})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def folder_unwritable(path: str) -> str | None:
    """Why a local output folder cannot be made or written (a file on the way, /proc, a read-only mount), else
    None; found by a run's first write it was a traceback (per worker, per rank). A probe folder is made and
    removed, so nothing is left behind; a URL is None (object stores have no folders to check)."""
    if "://" in path:
        return None
    target = nearest = os.path.abspath(path)
    while not os.path.lexists(nearest):  # the folder itself, else the one its missing folders go into
        nearest = os.path.dirname(nearest)
    if not os.path.isdir(nearest):
        return f"cannot create the output folder ({nearest} is not a folder)"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".jcorpus-probe-", dir=nearest))
    except OSError as exc:
        why = exc.strerror or str(exc)
        if nearest == target:
            return f"cannot write in the output folder ({why})"
        return f"cannot create the output folder ({nearest}: {why})"
    return None
