"""Text as an array of code points, for per-character statistics computed with numpy.

One UTF-32 encode turns a str into uint32 code points at C speed; table lookups and bincounts over that array
replace Python loops over characters (the slowest steps of the spine and of the filters were such loops).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

BMP = 0x10000


def code_points(text: str) -> np.ndarray:
    """uint32 code points (read-only); lone surrogates are kept as themselves."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def tally(text: str, table: np.ndarray, size: int, above_bmp: Callable[[int], int]) -> list[int]:
    """How many of the text's code points fall in each class 0..size-1: `table[cp]` for the BMP (a 64 KB
    table), `above_bmp(cp)` one by one for the few above it (CJK extensions, emoji)."""
    cps = code_points(text)
    counts = np.bincount(table[np.minimum(cps, BMP - 1)], minlength=size).tolist()
    beyond = int(table[BMP - 1])  # where the bincount put them
    for cp in cps[cps >= BMP].tolist():
        counts[beyond] -= 1
        counts[above_bmp(cp)] += 1
    return counts
