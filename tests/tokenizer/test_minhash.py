"""Signatures equal datasketch's bit for bit (the oracle for the C kernel); banding and the optimiser behave."""
from __future__ import annotations

import ctypes
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xxhash
from datasketch import MinHash
from datasketch.lsh import _optimal_param

import tokenizer
from tokenizer.minhash import MERSENNE_61, MinHasher, band_hashes, candidate_probability, lsh_params
from tokenizer.shingles import (
    ngrams,
    shingle_hash,
    shingle_hashes,
    shingle_key,
    shingle_set,
    tokens,
)

TEXTS = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "国会は、国権の最高機関であつて、国の唯一の立法機関である。",
    "Apache Beam で日本語コーパスを整備し、MinHash LSH で近似重複を除く。" * 20,
    "あ",  # a single shingle
    "",  # no shingles: the all-max signature
]
SCHEMES = ["legacy", "affine64"]
P61 = (1 << 61) - 1


def _datasketch(scheme: str, num_perm: int, seed: int, values: list[int]) -> np.ndarray:
    """datasketch's hashvalues for raw 64-bit hash values (its hashfunc decodes them again)."""
    ref = MinHash(num_perm=num_perm, seed=seed, scheme=scheme, hashfunc=lambda b: int.from_bytes(b, "little"))
    ref.update_batch([v.to_bytes(8, "little") for v in values])
    return ref.hashvalues.astype(np.uint64)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7), (1, 3), (131, 2)])
def test_signature_equals_datasketch(scheme: str, num_perm: int, seed: int) -> None:
    hasher = MinHasher(num_perm, seed, scheme)
    for text in TEXTS:
        for unit in ("char", "morph"):
            toks = tokens(shingle_key(text), unit)
            ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash, scheme=scheme)
            ref.update_batch([g.encode("utf-8") for g in ngrams(toks, 5)])
            ours = hasher.signature(shingle_hashes(toks, 5))
            assert ours.dtype == np.uint64 and ours.shape == (num_perm,)
            np.testing.assert_array_equal(ours, ref.hashvalues.astype(np.uint64))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("num_perm", [5, 127, 4096])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 1001])
def test_random_hash_sets_equal_datasketch(scheme: str, num_perm: int, size: int) -> None:
    """Set sizes around the kernel's 4-shingle blocks, odd and large num_perm, the full 64-bit range."""
    values = np.random.default_rng(size * num_perm).integers(0, 2**64, size, dtype=np.uint64, endpoint=False)
    values[0] = np.uint64(2**64 - 1)  # the largest hash: a*h + b wraps modulo 2^64 in both implementations
    ours = MinHasher(num_perm, 9, scheme).signature(values)
    np.testing.assert_array_equal(ours, _datasketch(scheme, num_perm, 9, [int(v) for v in values]))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_extreme_hash_values_equal_datasketch(scheme: str) -> None:
    extremes = [0, 1, 2**32 - 1, 2**32, P61 - 1, P61, P61 + 1, 2**61, 2**62, 2**63, 2**64 - 2, 2**64 - 1]
    hasher = MinHasher(16, 1, scheme)
    for value in extremes:
        np.testing.assert_array_equal(hasher.signature(np.array([value], dtype=np.uint64)),
                                      _datasketch(scheme, 16, 1, [value]))
    np.testing.assert_array_equal(hasher.signature(extremes), _datasketch(scheme, 16, 1, extremes))


@pytest.mark.parametrize("scheme,digest,head", [
    ("legacy", "1a6407b39b799508", [53419500, 42033605, 204732281]),
    ("affine64", "54fe454b481e571c", [840287786247262278, 577364610870637452, 67350938638867677]),
])
def test_signatures_are_pinned(scheme: str, digest: str, head: list[int]) -> None:
    """Band indexes of earlier runs hold these values (computed by the former numpy implementation)."""
    sig = MinHasher(128, 1, scheme).signature(shingle_set(TEXTS[2], "char", 5))
    assert [int(v) for v in sig[:3]] == head
    assert xxhash.xxh3_64_hexdigest(sig.astype("<u8").tobytes()) == digest


@pytest.mark.parametrize("scheme", SCHEMES)
def test_empty_set_and_permutations_match_datasketch(scheme: str) -> None:
    ref = MinHash(num_perm=32, seed=3, scheme=scheme)
    ours = MinHasher(32, 3, scheme)
    np.testing.assert_array_equal(ours.signature(np.empty(0, dtype=np.uint64)), ref.hashvalues.astype(np.uint64))
    np.testing.assert_array_equal(np.stack([ours.a, ours.b]), np.asarray(ref.permutations, dtype=np.uint64))


def test_mersenne_reduction_at_the_rare_top_values() -> None:
    """Legacy reduces x = a*h + b mod 2^64 by folding, not dividing: hit the x whose fold lands on p .. p+7.

    For every permutation with an odd `a`, h = (x - b) / a mod 2^64 makes the kernel see exactly x; the
    expected value is Python's (x mod p) & 0xFFFFFFFF, and datasketch must agree as well."""
    hasher = MinHasher(64, 1, "legacy")
    assert MERSENNE_61 == P61
    targets = [0, P61 - 1, P61, P61 + 1, 2 * P61, 2 * P61 + 7, 2**61 + P61, 2**62 - 1, 2**63 + P61 + 6,
               2**64 - 1, 2**64 - 8, 7 * 2**61 + P61 - 1, 5 * 2**32 + 9]
    odd = [i for i in range(64) if int(hasher.a[i]) % 2]
    assert len(odd) > 20
    for x in targets:
        for i in odd:
            a, b = int(hasher.a[i]), int(hasher.b[i])
            h = (x - b) * pow(a, -1, 2**64) % 2**64
            assert (a * h + b) % 2**64 == x
            sig = hasher.signature(np.array([h], dtype=np.uint64))
            assert int(sig[i]) == (x % P61) & 0xFFFFFFFF
            assert int(_datasketch("legacy", 64, 1, [h])[i]) == int(sig[i])


def test_signature_input_forms_and_read_only_permutations() -> None:
    hasher = MinHasher(32, 1, "affine64")
    hv = shingle_set(TEXTS[2], "char", 5)
    expect = hasher.signature(hv)
    np.testing.assert_array_equal(hasher.signature([int(v) for v in hv]), expect)  # a list of ints
    np.testing.assert_array_equal(hasher.signature(np.repeat(hv, 2)[::2]), expect)  # strided view
    np.testing.assert_array_equal(hasher.signature(np.concatenate([hv, hv[::-1]])), expect)  # duplicates
    with pytest.raises(ValueError):
        hasher.a[0] = 1  # the C kernel reads num_perm values from these arrays


def test_estimate_tracks_true_jaccard() -> None:
    base = "".join(chr(0x4E00 + (i * 7919) % 2000) for i in range(3000))
    edited = base[:2400] + "".join(chr(0x3041 + i % 80) for i in range(600))
    a, b = shingle_set(base, "char", 5), shingle_set(edited, "char", 5)
    true_j = np.intersect1d(a, b).size / np.union1d(a, b).size
    h = MinHasher(512, 1, "affine64")
    est = float(np.mean(h.signature(a) == h.signature(b)))
    assert abs(est - true_j) < 0.08  # 512 permutations: standard error ~0.02


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.01, 0.99), (0.9, 0.1)])
def test_lsh_params_equal_datasketch(weights: tuple[float, float]) -> None:
    for threshold in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0):
        for num_perm in (2, 16, 64, 128):
            assert lsh_params(threshold, num_perm, *weights) == _optimal_param(threshold, num_perm, *weights)


def test_lsh_params_with_a_zero_weight_is_the_exact_minimum() -> None:
    """Only false positives count: one band of all rows has the smallest area, t^(r+1) / (r+1)."""
    assert lsh_params(0.5, 64, 1.0, 0.0) == (1, 64)
    assert lsh_params(0.5, 64, 0.0, 1.0) == (64, 1)  # only false negatives: (1-t)^(b+1) / (b+1)


def test_lsh_params_and_bands() -> None:
    assert lsh_params(0.8, 128) == (9, 13)
    b, r = lsh_params(0.8, 128, 0.05, 0.95)
    assert b * r <= 128 and candidate_probability(0.8, b, r) > candidate_probability(0.8, 9, 13)
    sig = MinHasher(128, 1).signature(shingle_set(TEXTS[2], "char", 5))
    keys = band_hashes(sig, 9, 13)
    other = sig.copy()
    other[20] ^= np.uint64(1)  # row 20 is in band 1
    changed = [i for i, (x, y) in enumerate(zip(keys, band_hashes(other, 9, 13), strict=True)) if x != y]
    assert len(keys) == 9 and changed == [1]
    with pytest.raises(ValueError):
        band_hashes(sig, 10, 13)



def _fold(units: list[int], seed: int = 0x9E3779B97F4A7C15, mult: int = 0xBF58476D1CE4E5B9) -> int:
    """The shingle fold in Python ints: h <- fmix64(h * mult + unit) mod 2^64."""
    h = seed
    for u in units:
        h = (h * mult + u) % 2**64
        for shift, m in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53), (33, 1)):
            h = (h ^ (h >> shift)) * m % 2**64
    return h


@pytest.mark.parametrize("march", ["x86-64", "x86-64-v3", "x86-64-v4"])
def test_every_x86_clone_of_the_kernel_equals_datasketch(march: str, tmp_path: Path) -> None:
    """The installed library runs only the clone this CPU picks; build each one alone and compare it."""
    cc = shutil.which("gcc")
    if platform.machine() != "x86_64" or cc is None:
        pytest.skip("the x86-64 clones need gcc on x86-64")
    if march == "x86-64-v4" and "avx512dq" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU cannot run AVX-512 code")
    lib_path = tmp_path / f"minhash-{march}.so"
    subprocess.run([cc, "-O3", "-std=c11", "-shared", "-fPIC", f"-march={march}", "-DJM_NO_CLONES",
                    str(Path(tokenizer.__file__).parent / "native" / "minhash.c"), "-o", str(lib_path)], check=True)
    lib = ctypes.CDLL(str(lib_path))
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    values = np.random.default_rng(1).integers(0, 2**64, 1003, dtype=np.uint64, endpoint=False)
    for scheme in SCHEMES:
        hasher, sig = MinHasher(131, 4, scheme), MinHasher(131, 4, scheme).empty.copy()
        getattr(lib, f"jm_sig_{scheme}")(ptr(values.ctypes.data), i64(values.size), ptr(hasher.a.ctypes.data),
                                         ptr(hasher.b.ctypes.data), i64(131), ptr(sig.ctypes.data))
        np.testing.assert_array_equal(sig, _datasketch(scheme, 131, 4, [int(v) for v in values]))
    units, folded = values[:50], np.empty(46, dtype=np.uint64)
    lib.jm_fold(ptr(units.ctypes.data), i64(50), i64(5), ctypes.c_uint64(0x9E3779B97F4A7C15),
                ctypes.c_uint64(0xBF58476D1CE4E5B9), ptr(folded.ctypes.data))
    assert folded.tolist() == [_fold([int(u) for u in units[i : i + 5]]) for i in range(46)]
