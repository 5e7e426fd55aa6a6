"""Text as an array of code points, for per-character statistics computed with numpy.

One UTF-32 encode turns a str into uint32 code points at C speed; table lookups and bincounts over that array
replace Python loops over characters (the slowest steps of the spine and of the filters were such loops).
"""
from __future__ import annotations

import numpy as np

BMP = 0x10000


def code_points(text: str) -> np.ndarray:
    """uint32 code points (read-only); lone surrogates are kept as themselves."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def bmp_classes(cps: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`table[cp]` for every code point, with code points above the BMP looked up as U+FFFF (the callers
    classify those few one by one)."""
    return table[np.minimum(cps, BMP - 1)]
