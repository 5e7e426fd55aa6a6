"""ctypes binding of the MinHash kernels (tokenizer/native/minhash.c, built by setup.py as _minhash_native).

Loaded like sve_kernels: the extension module is only a handle the import system can find; the kernels are
plain C called through ctypes, which releases the GIL during each call, so Beam's worker threads overlap.
Callers pass C-contiguous uint64 arrays (`ptr`); the C code trusts the sizes it is given.
"""
from __future__ import annotations

import ctypes

import numpy as np

try:
    from . import _minhash_native
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "tokenizer: the MinHash C kernels are not built; run `pip install -e .` (or "
        "`python setup.py build_ext --inplace`) in the repository root"
    ) from exc

_LIB = ctypes.CDLL(_minhash_native.__file__)
_P, _I, _U = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64


def _bind(symbol: str, restype: type | None, *argtypes: type) -> ctypes._CFuncPtr:
    fn = getattr(_LIB, symbol)
    fn.restype, fn.argtypes = restype, list(argtypes)
    return fn


# fold(units, n_units, k, seed, mult, out): out[i] = k-unit fold starting at unit i, for i <= n_units - k
fold = _bind("jm_fold", None, _P, _I, _I, _U, _U, _P)
# unique_sorted(values, n) -> m: a sorted array's distinct values moved to its front, in place
unique_sorted = _bind("jm_unique_sorted", _I, _P, _I)
# sig_<scheme>(hashes, n, a, b, num_perm, sig): sig = min(sig, permuted hashes), in place
SIGNATURE = {
    "legacy": _bind("jm_sig_legacy", None, _P, _I, _P, _P, _I, _P),
    "affine64": _bind("jm_sig_affine64", None, _P, _I, _P, _P, _I, _P),
}


def ptr(a: np.ndarray) -> int:
    """Address of a C-contiguous uint64 array's data (checked: the kernels read and write through it)."""
    if a.dtype != np.uint64 or not a.flags.c_contiguous:
        raise TypeError(f"expected a C-contiguous uint64 array, got {a.dtype} (contiguous={a.flags.c_contiguous})")
    return a.ctypes.data
