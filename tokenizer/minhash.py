"""MinHash signatures and LSH banding, vectorised in numpy and bit-compatible with datasketch.

A `MinHasher(num_perm, seed, scheme)` draws the same permutation parameters as
`datasketch.MinHash(num_perm, seed, scheme=...)` and, fed the 64-bit xxh3 hashes of a document's shingles,
returns exactly the `hashvalues` datasketch computes with `hashfunc=tokenizer.shingles.shingle_hash`. The work is
one [shingles x permutations] array operation per block of shingles instead of a Python call per shingle.

Schemes (datasketch names): "legacy" = (a*h + b) mod (2^61 - 1), truncated to 32 bits (every datasketch
version); "affine64" = a*fmix64(h) + b mod 2^64 (datasketch >= 2.0, a bijection: no 32-bit fold, cheaper).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import xxhash

SCHEMES = ("legacy", "affine64")
MERSENNE_61 = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)
_EMPTY = {"legacy": _MAX32, "affine64": np.uint64((1 << 64) - 1)}
_SHIFT61 = np.uint64(61)
_BLOCK = 256  # shingles per block: keeps the [block, num_perm] uint64 temporaries in L2 cache


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (datasketch's pre-mix for the affine schemes); wraps mod 2^64."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


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
            pairs = [(gen.randint(1, MERSENNE_61, dtype=np.uint64), gen.randint(0, MERSENNE_61, dtype=np.uint64))
                     for _ in range(num_perm)]
            self.a = np.array([p[0] for p in pairs], dtype=np.uint64)
            self.b = np.array([p[1] for p in pairs], dtype=np.uint64)
        else:  # odd multipliers make h -> a*h + b a bijection mod 2^64
            self.a = gen.randint(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
            self.b = gen.randint(0, 1 << 64, num_perm, dtype=np.uint64)
        self.empty = np.full(num_perm, _EMPTY[scheme], dtype=np.uint64)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """MinHash of a set of 64-bit shingle hashes (duplicates harmless); all-max for the empty set."""
        hv = np.asarray(hashes, dtype=np.uint64)
        sig = self.empty.copy()
        if hv.size == 0:
            return sig
        if self.scheme == "affine64":
            hv = fmix64(hv)
        rows = min(_BLOCK, hv.size)
        buf = np.empty((rows, self.num_perm), dtype=np.uint64)  # in-place ops: no temporaries per block
        top = np.empty_like(buf)
        for start in range(0, hv.size, _BLOCK):
            block, high = buf[: min(_BLOCK, hv.size - start)], top[: min(_BLOCK, hv.size - start)]
            np.multiply(hv[start : start + _BLOCK, None], self.a, out=block)  # wraps mod 2^64 like datasketch
            np.add(block, self.b, out=block)
            if self.scheme == "legacy":  # (x mod 2^61-1) & 0xFFFFFFFF, folding instead of dividing
                np.right_shift(block, _SHIFT61, out=high)
                np.bitwise_and(block, MERSENNE_61, out=block)
                np.add(block, high, out=block)
                if block.max() >= MERSENNE_61:  # only for x mod 2^61 in the top 8 values: practically never
                    block[block >= MERSENNE_61] -= MERSENNE_61
                np.bitwise_and(block, _MAX32, out=block)
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive/negative areas (datasketch's optimiser)."""
    from datasketch.lsh import _optimal_param  # scipy integration: imported only when a threshold is used

    bands, rows = _optimal_param(threshold, num_perm, fp_weight, fn_weight)
    return int(bands), int(rows)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """P(two sets with this Jaccard share at least one band) = 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band: xxh3 of the band's little-endian hash values (band index kept separately)."""
    if bands * rows > sig.size:
        raise ValueError(f"bands x rows = {bands * rows} exceeds the signature length {sig.size}")
    raw = np.ascontiguousarray(sig[: bands * rows], dtype="<u8").reshape(bands, rows)
    return [xxhash.xxh3_64_intdigest(row.tobytes()) for row in raw]
