"""Loads the compiled kernel library (built by setup.py at install time, never here) and declares the C
prototypes for ctypes. ctypes releases the GIL during each call, so MPI progress threads keep running."""
from __future__ import annotations

import ctypes
import os

import numpy as np

from ._checks import int32

# Read by libgomp when the library loads: idle OpenMP threads sleep instead of spinning, which matters when
# MPI ranks x threads exceed the cores (set OMP_WAIT_POLICY=active on dedicated A64FX nodes).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

MAX_THREADS = 1024  # OpenMP threads per process; an A64FX node has 48 cores (libgomp allocates per thread up front)
# SVE_KERNELS_LIB: a kernel library built outside setup.py (the QEMU binding test, other compiler flags).
_LIB_PATH = os.environ.get("SVE_KERNELS_LIB")
if not _LIB_PATH:
    try:
        from . import _native
    except ImportError as exc:  # pragma: no cover - only without a build
        raise ImportError(
            "sve_kernels: the C library is not built; run `pip install -e .` (or "
            "`python setup.py build_ext --inplace`) in the repository root"
        ) from exc
    _LIB_PATH = _native.__file__

_CODES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "f": ctypes.c_float, "n": ctypes.c_int32}
_RES = {"v": None, "d": ctypes.c_double, "n": ctypes.c_int}

# name: (result code, argument codes) following sve_kernels/src/kernels.h
PROTOTYPES: dict[str, tuple[str, str]] = {
    "matmul_forward": ("v", "ppppiii"),
    "matmul_backward": ("v", "ppppppiii"),
    "matmul_forward_f16": ("v", "ppppiii"),
    "layernorm_forward": ("v", "ppppppiif"),
    "layernorm_backward": ("v", "ppppppppii"),
    "gelu_forward": ("v", "ppi"),
    "gelu_backward": ("v", "pppi"),
    "residual_forward": ("v", "pppi"),
    "exp": ("v", "ppi"),
    "tanh": ("v", "ppi"),
    "embedding_forward": ("v", "pppii"),
    "embedding_backward": ("v", "pppii"),
    "softmax_forward": ("v", "ppii"),
    "crossentropy_forward": ("v", "ppppiin"),
    "crossentropy_backward": ("v", "pppiifn"),
    "attention_forward": ("v", "ppppppiiii"),
    "attention_backward": ("v", "ppppppppiiii"),
    "adamw_step": ("v", "ppppifffffff"),
    "sumsq": ("d", "pi"),
    "scale_inplace": ("v", "pif"),
    "fp32_to_fp16": ("n", "ppi"),
    "fp16_to_fp32": ("n", "ppi"),
}

LIB = ctypes.CDLL(_LIB_PATH)
LIB.sk_set_threads.argtypes = [ctypes.c_int]
LIB.sk_set_threads.restype = None
HAS_SVE = bool(LIB.sk_has_sve())
VECTOR_BITS = int(LIB.sk_vector_bits()) or None


def _bind(symbol: str, res: str, args: str):
    fn = getattr(LIB, symbol)
    fn.restype = _RES[res]
    fn.argtypes = [_CODES[c] for c in args]
    return fn


DISPATCH = {name: _bind(f"sk_{name}", r, a) for name, (r, a) in PROTOTYPES.items()}
PORTABLE = {name: _bind(f"sk_{name}_portable", r, a) for name, (r, a) in PROTOTYPES.items()}

PATHS = ("auto", "sve", "portable", "blas")


def kernel_path() -> str:
    """The path in use: SVE_KERNELS_PATH (auto|sve|portable|blas), read per call so tests can switch it.

    auto = SVE when compiled in, else BLAS (numpy) for the matmuls and attention's batched products and
    portable C for the rest."""
    want = os.environ.get("SVE_KERNELS_PATH", "auto").strip().lower() or "auto"
    if want not in PATHS:
        raise ValueError(f"SVE_KERNELS_PATH={want!r}: expected one of {', '.join(PATHS)}")
    if want == "auto":
        return "sve" if HAS_SVE else "blas"
    if want == "sve" and not HAS_SVE:
        raise ValueError("SVE_KERNELS_PATH=sve but the library was built without SVE (see docs/a64fx.md)")
    return want


def quiet_fp() -> np.errstate:
    """numpy's overflow and invalid warnings off, for the 'blas' path's products: a float32 overflow there gives
    inf (or NaN) in the values, as on the C paths, which do not warn, and is handled where it matters."""
    return np.errstate(over="ignore", invalid="ignore")


# Whether this process has called a C kernel (and so may have started libgomp's thread pool), and whether it is a
# child forked after that. libgomp's pool threads are not copied by fork() and it does not rebuild them: the
# child's first parallel region of more than one thread waited for them forever (multiprocessing's default start
# method on Linux is fork). Such a child runs every kernel on one thread, which needs no pool.
_kernels_called = False
_forked_after_kernels = False


def _after_fork_in_child() -> None:
    global _forked_after_kernels
    if _kernels_called:
        _forked_after_kernels = True
        LIB.sk_set_threads(1)


os.register_at_fork(after_in_child=_after_fork_in_child)


def c_kernel(name: str):
    """The C function for `name` on the current path (the portable variant when the path is 'portable')."""
    global _kernels_called
    _kernels_called = True
    return PORTABLE[name] if kernel_path() == "portable" else DISPATCH[name]


def max_threads() -> int:
    return int(LIB.sk_max_threads())


def set_threads(n: int) -> None:
    """OpenMP threads for later kernel calls (e.g. cores // MPI ranks per node); no-op without OpenMP.

    1 only in a process forked from one that had called kernels (see _after_fork_in_child)."""
    n = int32("threads", n, low=1, high=MAX_THREADS)
    if n > 1 and _forked_after_kernels:
        raise ValueError(f"threads: {n} in a process forked after kernel calls, where OpenMP's threads are gone and "
                         "more than 1 would hang; start workers with the 'spawn' or 'forkserver' method")
    LIB.sk_set_threads(n)
