"""argparse types: a numeric value out of range, or an output folder that is a file, is a one-line usage error
naming the option (`error: argument --holdout: expected a number in [0, 0.9], got 2`), never a traceback or a
silently absurd run. Shared by `jcorpus-train` and the `jcorpus` commands (trainer_bridge imports nothing
else of jcorpus). `OneLineParser` keeps those errors one line.
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import NoReturn

SEED_MAX = 2**32 - 1  # numpy's and SentencePiece's seeds are unsigned 32-bit
# The longest context `jcorpus pack` accepts, 2**20 tokens: beyond what jcorpus-train or Megatron-LM trains at, while
# a row of it is only 2 MiB, so a typo of a few zeros is refused instead of writing gigabytes of padding.
MAX_SEQ_LEN = 1 << 20
# Most worker processes or threads any command starts (each forked up front: --workers 100000 forked ~1,200 in
# 10 s before this bound)
MAX_WORKERS = 1024


def integer(low: int = 0, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (no upper bound when `high` is None)."""
    return _checked(int, low, high, above=False)


def number(low: float = 0.0, high: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high], or in (low, high] with `above`."""
    return _checked(float, low, high, above)


def _checked(kind: type, low: float, high: float | None, above: bool) -> Callable[[str], float]:
    what = "an integer" if kind is int else "a number"
    bounds = (f"in {'(' if above else '['}{low}, {high}]" if high is not None else f"{'>' if above else '>='} {low}")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {text}")
        return value

    return parse


def output_folder(text: str) -> str:
    """A folder to write into (created if missing); an existing file there is refused before any work."""
    if "://" not in _named(text) and os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def output_file(text: str) -> str:
    """A file to write (its folder created if missing); an existing folder there is refused before any work."""
    if os.path.isdir(_named(text)):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return text


def _named(path: str) -> str:
    """An empty (or blank) path would mean the current folder, where nobody means to write."""
    if not path.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {path!r}")
    return path


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line, `PROG: error: MESSAGE`, and exit code 2: the usage block is for --help, and a
    message after 20 lines of it goes unread. add_subparsers makes its subcommand parsers of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")
