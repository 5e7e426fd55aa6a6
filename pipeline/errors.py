"""Errors a user can fix: the CLI prints them as one line (no traceback) and exits with code 2."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A mistake the user can fix: missing input, existing output, bad option."""


class ConfigError(UserError):
    """A config mistake; the message starts with the dotted key, e.g. `sources[2].paths: no file matches 'x/*.warc'`."""


class Terminated(BaseException):
    """SIGTERM (a scheduler's or `timeout`'s stop), raised in the main thread so a run cleans up as on Ctrl-C."""


STOPS: list[type[BaseException]] = []  # stop signals received by `jcorpus` (KeyboardInterrupt, Terminated)


def raise_if_stopped() -> None:
    """Raise again a stop the signal handler recorded: under load, a SIGTERM was seen to end a run with exit
    0 and its outputs committed, the exception lost on its way up through the runner (where, is not known).
    Called after a pipeline, before anything is committed."""
    if STOPS:
        raise STOPS[0]()


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM are held off while the block runs: a commit cut halfway left part of an output, and
    with --overwrite neither the old one nor the new. A stop that comes meanwhile is dropped (what it would
    have stopped is complete a moment later). Only in the main thread, where Python runs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):  # in the try: a stop between the two restores the first
            previous[sig] = signal.signal(sig, signal.SIG_IGN)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: not set from Python
