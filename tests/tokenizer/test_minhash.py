"""Signatures equal datasketch's bit for bit; banding and the parameter optimiser behave."""
from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from tokenizer.minhash import MERSENNE_61, MinHasher, band_hashes, candidate_probability, lsh_params
from tokenizer.shingles import (
    dedup_key,
    ngrams,
    shingle_hash,
    shingle_hashes,
    shingle_set,
    tokens,
)

TEXTS = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "国会は、国権の最高機関であつて、国の唯一の立法機関である。",
    "Apache Beam で日本語コーパスを整備し、MinHash LSH で近似重複を除く。" * 20,
    "あ",
]


@pytest.mark.parametrize("scheme", ["legacy", "affine64"])
@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7)])
def test_signature_equals_datasketch(scheme: str, num_perm: int, seed: int) -> None:
    hasher = MinHasher(num_perm, seed, scheme)
    for text in TEXTS:
        for unit in ("char", "morph"):
            toks = tokens(dedup_key(text), unit)
            ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash, scheme=scheme)
            ref.update_batch([g.encode("utf-8") for g in ngrams(toks, 5)])
            ours = hasher.signature(shingle_hashes(toks, 5))
            assert ours.dtype == np.uint64
            np.testing.assert_array_equal(ours, ref.hashvalues.astype(np.uint64))


@pytest.mark.parametrize("scheme", ["legacy", "affine64"])
def test_empty_set_and_permutations_match_datasketch(scheme: str) -> None:
    ref = MinHash(num_perm=32, seed=3, scheme=scheme)
    ours = MinHasher(32, 3, scheme)
    np.testing.assert_array_equal(ours.signature(np.empty(0, dtype=np.uint64)), ref.hashvalues.astype(np.uint64))
    np.testing.assert_array_equal(np.stack([ours.a, ours.b]), np.asarray(ref.permutations, dtype=np.uint64))


def test_mersenne_fold_equals_modulo_including_the_rare_top_values() -> None:
    """With a = 1, b = 0 the legacy signature is min((h mod p) & 0xFFFFFFFF): compare with Python ints."""
    hasher = MinHasher(4, 1, "legacy")
    hasher.a, hasher.b = np.ones(4, dtype=np.uint64), np.zeros(4, dtype=np.uint64)
    p = int(MERSENNE_61)
    specials = [p - 1, p, p + 3, 2 * p + 5, 2**62 + 7, 2**64 - 1, 5 * 2**32 + 9]
    rng = np.random.default_rng(0)
    for hs in ([s] for s in specials):
        assert int(hasher.signature(np.array(hs, dtype=np.uint64))[0]) == min((h % p) & 0xFFFFFFFF for h in hs)
    many = rng.integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expect = min((int(h) % p) & 0xFFFFFFFF for h in many)
    assert int(hasher.signature(many)[0]) == expect


def test_estimate_tracks_true_jaccard() -> None:
    base = "".join(chr(0x4E00 + (i * 7919) % 2000) for i in range(3000))
    edited = base[:2400] + "".join(chr(0x3041 + i % 80) for i in range(600))
    a, b = shingle_set(base, "char", 5), shingle_set(edited, "char", 5)
    true_j = np.intersect1d(a, b).size / np.union1d(a, b).size
    h = MinHasher(512, 1, "affine64")
    est = float(np.mean(h.signature(a) == h.signature(b)))
    assert abs(est - true_j) < 0.08  # 512 permutations: standard error ~0.02


def test_lsh_params_and_bands() -> None:
    assert lsh_params(0.8, 128) == _optimal_param(0.8, 128, 0.5, 0.5) == (9, 13)
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
