"""MinHash signatures and LSH banding, bit-compatible with datasketch; the signature loop runs in C.

A `MinHasher(num_perm, seed, scheme)` draws the same permutation parameters as
`datasketch.MinHash(num_perm, seed, scheme=...)` and, fed the 64-bit hashes of a document's shingles,
returns exactly the `hashvalues` datasketch computes with `hashfunc=tokenizer.shingles.shingle_hash`.
The [shingles x permutations] products are a C kernel (tokenizer/native/minhash.c) that the compiler
vectorises over permutations: in numpy the legacy scheme needed ~8 passes over a uint64 block per shingle
block, which capped us at 1.6x datasketch's own vectorised `update_batch`.

Schemes (datasketch names): "legacy" = (a*h + b) mod (2^61 - 1), truncated to 32 bits (every datasketch
version); "affine64" = a*fmix64(h) + b mod 2^64 (datasketch >= 2.0, a bijection: no 32-bit fold, cheaper).
In both, a*h + b wraps modulo 2^64 first, as numpy's uint64 arithmetic in datasketch does.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import xxhash

from tokenizer import _minhash_lib

SCHEMES = ("legacy", "affine64")
MERSENNE_61 = (1 << 61) - 1
_EMPTY = {"legacy": (1 << 32) - 1, "affine64": (1 << 64) - 1}


class MinHasher:
    """Permutations for one (num_perm, seed, scheme); `signature(hashes)` -> uint64[num_perm]."""

    def __init__(self, num_perm: int = 128, seed: int = 1, scheme: str = "legacy") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown MinHash scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.num_perm, self.seed, self.scheme = num_perm, seed, scheme
        gen = np.random.RandomState(seed)
        if scheme == "legacy":  # datasketch draws (a, b) pairs one permutation at a time
            p = np.uint64(MERSENNE_61)
            pairs = [(gen.randint(1, p, dtype=np.uint64), gen.randint(0, p, dtype=np.uint64)) for _ in range(num_perm)]
            a = np.array([q[0] for q in pairs], dtype=np.uint64)
            b = np.array([q[1] for q in pairs], dtype=np.uint64)
        else:  # odd multipliers make h -> a*h + b a bijection mod 2^64
            a = gen.randint(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
            b = gen.randint(0, 1 << 64, num_perm, dtype=np.uint64)
        self.empty = np.full(num_perm, _EMPTY[scheme], dtype=np.uint64)
        for arr in (a, b, self.empty):  # the C kernel reads num_perm values of each: keep them as they are
            arr.flags.writeable = False
        self.a, self.b = a, b
        self._kernel = _minhash_lib.SIGNATURE[scheme]

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """MinHash of a set of 64-bit shingle hashes (duplicates harmless); all-max for the empty set."""
        hv = np.ascontiguousarray(hashes, dtype=np.uint64)
        sig = self.empty.copy()
        ptr = _minhash_lib.ptr
        self._kernel(ptr(hv), hv.size, ptr(self.a), ptr(self.b), self.num_perm, ptr(sig))
        return sig


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight x (false-positive area below the threshold) + fn_weight x
    (false-negative area above it): datasketch's criterion and search order (bands, then rows, first minimum).

    Both areas integrate polynomials in s of degree bands x rows <= num_perm, so Gauss-Legendre with
    num_perm/2 + 1 nodes is exact; datasketch gets them from scipy's adaptive quadrature, whose import alone
    cost every command 0.4 s of start-up, near dedup on or off. Equal to datasketch's choice for positive
    weights (tested); with a weight of 0 its choice is quadrature noise among near-zero areas, and this one the
    exact minimum.
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = (nodes + 1) * threshold / 2, weights * threshold / 2  # [-1, 1] mapped onto [0, t] and [t, 1]
    above = (nodes + 1) * (1 - threshold) / 2 + threshold, weights * (1 - threshold) / 2
    best, error = (0, 0), np.inf
    for bands in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // bands + 1, dtype=float)[:, None]
        with np.errstate(divide="ignore"):  # log1p(-1) at s = 1 is -inf, and exp(-inf) the right 0
            fp = -np.expm1(bands * np.log1p(-below[0] ** rows)) @ below[1]  # 1 - (1 - s^r)^b, exact near 0
            fn = np.exp(bands * np.log1p(-above[0] ** rows)) @ above[1]
        errors = fp * fp_weight + fn * fn_weight
        i = int(np.argmin(errors))
        if errors[i] < error:
            best, error = (bands, i + 1), errors[i]
    return best


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(two sets with this Jaccard share at least one band) = 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band: xxh3 of the band's little-endian hash values (band index kept separately)."""
    if bands * rows > sig.size:
        raise ValueError(f"bands x rows = {bands * rows} exceeds the signature length {sig.size}")
    raw = np.ascontiguousarray(sig[: bands * rows], dtype="<u8").reshape(bands, rows)
    return [xxhash.xxh3_64_intdigest(row.tobytes()) for row in raw]
