"""Shingles for near-duplicate detection: morpheme or character n-grams of a normalised shingle key.

The shingle key (`shingle_key`) folds the differences that copies of one text pick up on the way (NFKC width folding,
whitespace runs, 、。 vs ，． vs ,. punctuation) so that only real edits lower the Jaccard similarity.
It is used for comparison only; the document text itself is never changed here.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xxhash

from filters.normalize import nfkc
from tokenizer import _minhash_lib

UNITS = ("morph", "char")
# Tokens of a shingle string are joined with U+001F (unit separator): Python counts it as whitespace, so
# it never survives in a shingle key, and the shingle ("東京", "都") can never equal ("東", "京都").
_JOIN = "\x1f"
# A key longer than MAX_KEY_CHARS is compared on KEY_WINDOWS windows spread evenly over all of it: a
# pathological 10 MB page must not cost seconds of MeCab time and a 10-million-shingle set, and the head
# alone made a 600k-character text the near-duplicate of its own first 210k characters (J 0.48 in truth).
MAX_KEY_CHARS = 200_000
KEY_WINDOWS = 8
_FOLD_SEED = 0x9E3779B97F4A7C15  # any fixed odd constants; changing them changes every signature
_FOLD_MULT = 0xBF58476D1CE4E5B9
# Distinct units whose hashes a process remembers (~10 MB); the table is emptied when it is full.
_UNIT_CACHE_SIZE = 1 << 16
_WHITESPACE = re.compile(r"\s+")
# After NFKC, ，． have become ,. ; fold both to the Japanese marks so 、。/，． swaps are invisible.
_PUNCT = str.maketrans({",": "、", ".": "。", "､": "、", "｡": "。"})


def shingle_key(text: str, fold_punct: bool = True) -> str:
    """NFKC, whitespace runs folded to one space (trimmed), optionally Japanese/Western punctuation folded."""
    key = _WHITESPACE.sub(" ", nfkc(text)).strip()
    return key.translate(_PUNCT) if fold_punct else key


def sampled_key(key: str) -> str:
    """The key itself up to MAX_KEY_CHARS, else KEY_WINDOWS windows of MAX_KEY_CHARS / KEY_WINDOWS characters
    from its start to its end, joined by spaces. Copies that differ by a header or an edit keep their windows
    nearly aligned (a 1,000-character insertion moves each window by at most 1,000 characters), while a text
    and a long prefix of it sample different places."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    width = MAX_KEY_CHARS // KEY_WINDOWS
    starts = [i * (len(key) - width) // (KEY_WINDOWS - 1) for i in range(KEY_WINDOWS)]
    return " ".join(key[start:start + width] for start in starts)


def tokens(key: str, unit: str) -> Sequence[str]:
    """Morpheme surfaces (fugashi + unidic-lite, `tokenizer.morph.morphemes`) as a list, or characters as a str.

    Characters stay one str (spaces dropped): it is a sequence of one-character strs, and `shingle_hashes`
    reads it as code points at once.
    """
    key = sampled_key(key)
    if unit == "morph":
        from tokenizer.morph import morphemes  # local: char-unit users never load MeCab

        return morphemes(key)
    if unit == "char":
        return key.replace(" ", "")
    raise ValueError(f"unknown shingle unit {unit!r} (expected one of {', '.join(UNITS)})")


def ngrams(toks: Sequence[str], n: int) -> list[str]:
    """Distinct-order list of n-grams; fewer than n tokens give one shingle of them all (never empty for text)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not toks:
        return []
    if len(toks) <= n:
        return [_JOIN.join(toks)]
    return [_JOIN.join(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def shingles(text: str, unit: str = "morph", n: int = 5) -> list[str]:
    """All n-gram shingles of the shingle key of `text`, as strings (for inspection and datasketch)."""
    return ngrams(tokens(shingle_key(text), unit), n)


class _UnitHashes(dict):
    """unit -> xxh3-64 of its UTF-8 bytes, computed on first use and remembered across documents.

    Units repeat across documents (a few thousand kanji/kana, Zipf-distributed morphemes), so after warm-up a
    document costs one C-level dict lookup per unit instead of an encode and a hash call per distinct unit.
    Values depend only on the key, so threads sharing the table (Beam's SDK harness) cannot corrupt it.
    """

    def __missing__(self, unit: str) -> int:
        if len(self) >= _UNIT_CACHE_SIZE:
            self.clear()
        value = self[unit] = xxhash.xxh3_64_intdigest(unit.encode("utf-8"))
        return value


_UNIT_HASHES = _UnitHashes()
# Code point -> xxh3-64 of its UTF-8 bytes, 0 = not computed yet (a character hashing to 0 is just recomputed).
# 8.9 MB of address space, calloc'ed: only pages of code points actually seen are committed (+4 MB measured
# after 20,000 CJK ideographs, transparent huge pages included).
_CHAR_HASHES = np.zeros(0x110000, dtype=np.uint64)


def _unit_hashes(toks: Sequence[str]) -> np.ndarray:
    """xxh3-64 of each unit. A str (character units) is read as code points: no Python call per character."""
    if isinstance(toks, str):
        cps = np.frombuffer(toks.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        units = _CHAR_HASHES[cps]
        if not units.all():
            for cp in np.unique(cps[units == 0]).tolist():  # a lone surrogate raises here, as in the list path
                _CHAR_HASHES[cp] = xxhash.xxh3_64_intdigest(chr(cp).encode("utf-8"))
            units = _CHAR_HASHES[cps]
        return units
    return np.fromiter(map(_UNIT_HASHES.__getitem__, toks), dtype=np.uint64, count=len(toks))


def shingle_hashes(toks: Sequence[str], n: int) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the n-grams of `toks` (the document's shingle set).

    Each unit is hashed with xxh3-64 (cached per process); an n-gram's hash folds its unit hashes in order,
    h <- fmix64(h * K + t), in C over all positions, so no shingle string is ever built.
    Equal to `shingle_hash` of each string from `ngrams(toks, n)`, the function datasketch is given.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not toks:
        return np.empty(0, dtype=np.uint64)
    units = _unit_hashes(toks)
    k = min(n, len(toks))
    out = np.empty(len(toks) - k + 1, dtype=np.uint64)
    ptr = _minhash_lib.ptr
    _minhash_lib.fold(ptr(units), units.size, k, _FOLD_SEED, _FOLD_MULT, ptr(out))
    out.sort()
    return out[: _minhash_lib.unique_sorted(ptr(out), out.size)]


def shingle_set(text: str, unit: str = "morph", n: int = 5) -> np.ndarray:
    """The shingle hash set of a document: what signatures and exact-Jaccard verification use."""
    return shingle_hashes(tokens(shingle_key(text), unit), n)


def shingle_hash(data: bytes) -> int:
    """Hash of one shingle string from `ngrams` (UTF-8 bytes): a datasketch `hashfunc` matching shingle_hashes."""
    toks = data.decode("utf-8").split(_JOIN)
    return int(shingle_hashes(toks, len(toks))[0])


def hash_shingles(grams: Sequence[str]) -> np.ndarray:
    """Sorted distinct hashes of shingle strings, one `shingle_hash` call each (slow reference path)."""
    return np.unique(np.fromiter((shingle_hash(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted distinct uint64 shingle sets (1.0 for two empty sets)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)
