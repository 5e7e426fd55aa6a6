"""Argument checks: every kernel input is validated here so C never sees a wrong dtype, shape or layout.
Errors are one line and name the argument: TypeError for dtype, ValueError for shape / layout / range."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

F32, F16, I32 = np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int32)
F32_MAX = float(np.finfo(np.float32).max)
# the smallest normal float32: an eps below it made SVE's reciprocal estimate (FRECPE) of sqrt(0) + eps inf, and
# AdamW wrote 0 * inf = NaN into every parameter whose gradient was 0 (the portable path left them alone)
F32_TINY = float(np.finfo(np.float32).tiny)


def array(name: str, a: object, dtype: np.dtype, shape: Sequence[int | None] | None = None,
          ndim: int | None = None, writeable: bool = False) -> np.ndarray:
    """Check a numpy array; `shape` entries of None match any size, ndim=None with shape=None matches any."""
    if not isinstance(a, np.ndarray):
        got = f"a numpy scalar {a.dtype}" if isinstance(a, np.generic) else type(a).__name__  # not "float32"
        raise TypeError(f"{name}: expected a numpy array of {dtype}, got {got}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {a.dtype}")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if shape is not None and any(want is not None and got != want for got, want in zip(a.shape, shape, strict=True)):
        spec = ", ".join("?" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape ({spec}), got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: array must be C-contiguous (use np.ascontiguousarray)")
    if not a.flags.aligned:  # a misaligned float load is undefined behaviour in C (and may fault with SVE)
        raise ValueError(f"{name}: array must be aligned to its dtype (use a copy: np.array(x))")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name}: array must be writeable (updated in place)")
    return a


def disjoint(name: str, a: np.ndarray, **others: np.ndarray) -> None:
    """An array updated in place must not overlap another argument: C would read values it already changed.
    (Arrays here are C-contiguous, so overlapping bounds mean shared elements.)"""
    for other, b in others.items():
        if np.may_share_memory(a, b):
            raise ValueError(f"{name}: shares memory with {other} (pass separate arrays)")


def shown(value: object) -> str:
    """A value for an error message: an int of more than 4300 digits cannot be printed at all (str() raises an
    unrelated ValueError), and one past float range is hundreds of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    return repr(value)


def number(name: str, value: object, low: float | None = None, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real (bool excluded) whose float32, the value C receives, is within the bounds: ctypes would turn
    a huge one into inf, or refuse a string with an unnamed ArgumentError; and a value inside the bounds in
    float64 can round onto one (beta2 0.99999999 is 1.0f: AdamW never updated its second moment and moved a
    parameter by 5e4; eps 1e-50 is 0.0f: NaN). Returns that float32 value, for whatever the caller derives."""
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a 0-d array: np.array(2.0), np.asarray(a number)
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # an int past float64's range: "int too large to convert to float", naming nothing
        x = math.inf
    x32 = float(np.float32(x)) if math.isfinite(x) and abs(x) <= F32_MAX else math.inf
    too_low = low is not None and (x32 <= low if low_open else x32 < low)
    too_high = high is not None and (x32 >= high if high_open else x32 > high)
    if not math.isfinite(x32) or too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rounded = f" ({x32!r} as float32)" if math.isfinite(x32) and x32 != x else ""
        bounds = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name}: expected a finite float32 in {bounds}, got {shown(value)}{rounded}")
    return x32  # what C computes with: AdamW's bias correction from the float64 beta2 0.9999999 was 8% off


def int32(name: str, value: object, low: int = -(1 << 31), high: int = (1 << 31) - 1) -> int:
    """An integer (bool excluded) that C receives unchanged: ctypes wraps 2**32 + 3 to 3 silently."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {shown(value)}")
    return int(value)


def flag(name: str, value: object) -> bool:
    """A bool or numpy bool: a truth test would take "no" and 1 for True, None for False, and an array raises an
    unnamed ValueError."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def same_shape(name: str, a: np.ndarray, ref_name: str, ref: np.ndarray) -> None:
    if a.shape != ref.shape:
        raise ValueError(f"{name}: shape {a.shape} differs from {ref_name} shape {ref.shape}")


def indices(name: str, ids: np.ndarray, size: int, ignore: int | None = None) -> np.ndarray:
    """A private copy of `ids`, every id of which is in [0, size) (ids equal to `ignore` excepted), for C to index
    memory with. A copy, because ctypes releases the GIL for the call: another thread could write an id past the
    table into the caller's array between this check and C reading it (a segfault, or a write outside the table).
    ids are one int32 per row: the copy is small beside the rows C reads or writes with them."""
    ids = ids.copy()
    if ids.size == 0:
        return ids
    valid = ids if ignore is None else ids[ids != ignore]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= size):
        bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
        raise ValueError(f"{name}: index {bad} out of range [0, {size})")
    return ids


def ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data
