"""Shingles over the dedup key: folding, short/long/kana-only/mixed-script documents, hashing, Jaccard."""
from __future__ import annotations

import random

import numpy as np
import pytest
import xxhash

from tokenizer.morph import morphemes
from tokenizer.shingles import (
    hash_shingles,
    jaccard,
    ngrams,
    shingle_hashes,
    shingle_key,
    shingle_set,
    shingles,
)

LONG = ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
        "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。")


def test_dedup_key_folds_width_whitespace_and_punctuation() -> None:
    assert shingle_key("ＡＢＣ　１２３\n\n ｶﾞｷﾞ") == "ABC 123 ガギ"
    assert shingle_key("今日は，晴れ．明日も、晴れ。") == shingle_key("今日は、晴れ。明日も，晴れ．") == "今日は、晴れ。明日も、晴れ。"
    assert shingle_key("a,b.", fold_punct=False) == "a,b."


def test_short_text_gives_one_shingle_of_the_whole_text() -> None:
    assert shingles("猫です", "char", 5) == ["猫\x1fで\x1fす"]
    toks = morphemes("猫です")
    assert len(toks) < 5
    assert shingles("猫です", "morph", 5) == ["\x1f".join(toks)]
    assert shingles("", "morph", 5) == [] and shingles(" \n ", "char", 5) == []


def test_long_text_char_and_morph_ngrams() -> None:
    key = shingle_key(LONG)
    grams = shingles(LONG, "char", 5)
    assert len(grams) == len(key) - 4
    assert grams[0] == "吾\x1f輩\x1fは\x1f猫\x1fで" and grams[-1] == "\x1f".join(key[-5:])
    toks = morphemes(key)
    m = shingles(LONG, "morph", 5)
    assert len(m) == len(toks) - 4
    assert m[0].split("\x1f") == toks[:5]
    assert "".join(toks) == key  # morphemes cover the whole key (no spaces in it)


def test_kana_only_text_is_segmented() -> None:
    text = "むかしむかしあるところにおじいさんとおばあさんがすんでいました"
    toks = morphemes(text)
    assert len(toks) > 8 and "".join(toks) == text
    assert len(shingles(text, "morph", 5)) == len(toks) - 4


def test_mixed_script_width_variants_give_identical_shingles() -> None:
    half = "東京タワーはTokyo Towerとも呼ばれ、高さは333mです。ﾃﾚﾋﾞ塔として1958年に完成した。"
    full = "東京タワーはＴｏｋｙｏ　Ｔｏｗｅｒとも呼ばれ，高さは３３３ｍです．テレビ塔として１９５８年に完成した．"
    for unit in ("morph", "char"):
        assert shingles(half, unit, 5) == shingles(full, unit, 5)
    assert "Tokyo" in morphemes(shingle_key(half))


def test_ngrams_rejects_bad_n_and_unit() -> None:
    with pytest.raises(ValueError):
        ngrams(["a"], 0)
    with pytest.raises(ValueError):
        shingles("abc", "word", 5)


def test_hash_set_and_jaccard_against_python_sets() -> None:
    a, b = shingles(LONG, "char", 5), shingles(LONG.replace("記憶", "記録"), "char", 5)
    ha, hb = shingle_set(LONG, "char", 5), shingle_set(LONG.replace("記憶", "記録"), "char", 5)
    np.testing.assert_array_equal(ha, hash_shingles(a))  # vectorised fold == one hash per shingle string
    assert ha.dtype == np.uint64 and np.all(np.diff(ha) > 0) and ha.size == len(set(a))
    expected = len(set(a) & set(b)) / len(set(a) | set(b))
    assert jaccard(ha, hb) == pytest.approx(expected)
    assert 0.8 < expected < 1.0
    assert jaccard(ha, ha) == 1.0 and jaccard(hash_shingles([]), hash_shingles([])) == 1.0


def test_pathological_length_is_capped() -> None:
    from tokenizer.shingles import MAX_KEY_CHARS

    assert len(shingles("あい" * MAX_KEY_CHARS, "char", 5)) == MAX_KEY_CHARS - 4


def test_long_texts_are_compared_over_their_whole_length() -> None:
    """Only the head was compared: a 600k-character text and its first 210k characters (J 0.35 over the whole
    texts) were near-duplicates, J 1.0. The windows cover the whole text; a copy with a header and an edit
    stays similar, and keys up to the cap are used whole."""
    from tokenizer.shingles import MAX_KEY_CHARS, sampled_key

    rng = random.Random(7)  # kanji drawn at random: every 5-gram of the text occurs once
    text = "".join(chr(rng.randrange(0x4E00, 0x9FA0)) for _ in range(600_000))
    whole = shingle_set(text, "char", 5)
    head = text[:210_000]
    assert jaccard(shingle_set(head, "char", 5), whole) < 0.3
    edited = "ヘッダー。" * 200 + text[:300_000] + "ここだけ違う。" + text[300_000:]
    assert jaccard(shingle_set(edited, "char", 5), whole) > 0.85
    assert sampled_key(head[:MAX_KEY_CHARS]) == head[:MAX_KEY_CHARS]
    assert len(sampled_key("あ" * 10_000_000)) < MAX_KEY_CHARS + 10


def test_vectorised_hashes_equal_per_string_hashes_for_morphemes_and_short_docs() -> None:
    for text in (LONG, "猫です", "あ"):
        for unit in ("morph", "char"):
            np.testing.assert_array_equal(shingle_set(text, unit, 5), hash_shingles(shingles(text, unit, 5)))
    assert shingle_hashes([], 5).size == 0
    # order matters inside a shingle, and token boundaries matter: ("東京", "都") != ("東", "京都")
    assert shingle_hashes(["東京", "都"], 2)[0] != shingle_hashes(["東", "京都"], 2)[0]
    assert shingle_hashes(["a", "b"], 2)[0] != shingle_hashes(["b", "a"], 2)[0]


def test_character_str_and_unit_list_give_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Character units come as one str (code-point path); a list of the same characters takes the dict path."""
    import tokenizer.shingles as sh

    key = shingle_key(LONG + "😀𠮷ｶﾞ")  # astral code points: 4-byte UTF-8, one UTF-32 unit each
    chars = sh.tokens(key, "char")
    assert isinstance(chars, str) and " " not in chars
    for n in (1, 2, 5, len(chars), len(chars) + 3):
        np.testing.assert_array_equal(shingle_hashes(chars, n), shingle_hashes(list(chars), n))
        np.testing.assert_array_equal(shingle_hashes(chars, n), hash_shingles(ngrams(chars, n)))
    before = shingle_hashes(list(chars), 5)
    monkeypatch.setattr(sh, "_UNIT_CACHE_SIZE", 3)  # the unit table empties itself many times in one document
    sh._UNIT_HASHES.clear()
    np.testing.assert_array_equal(shingle_hashes(list(chars), 5), before)
    assert len(sh._UNIT_HASHES) <= 3


def test_lone_surrogates_fail_on_both_paths() -> None:
    """Text that is not valid Unicode cannot be encoded to hash; neither path silently hashes something else."""
    with pytest.raises(UnicodeEncodeError):
        shingle_hashes("ab\ud800cd", 2)
    with pytest.raises(UnicodeEncodeError):
        shingle_hashes(["ab", "\ud800", "cd"], 2)


def _fold(units: list[str]) -> int:
    """The documented shingle hash in Python ints: h <- fmix64(h * K + xxh3(unit)) mod 2^64, from a fixed seed."""
    def fmix64(h: int) -> int:
        h ^= h >> 33
        h = h * 0xFF51AFD7ED558CCD % 2**64
        h ^= h >> 33
        h = h * 0xC4CEB9FE1A85EC53 % 2**64
        return h ^ (h >> 33)

    h = 0x9E3779B97F4A7C15
    for u in units:
        h = fmix64((h * 0xBF58476D1CE4E5B9 + xxhash.xxh3_64_intdigest(u.encode("utf-8"))) % 2**64)
    return h


def test_shingle_hashes_equal_a_python_reference_and_pinned_values() -> None:
    """Band indexes of earlier runs hold these values (pinned from the former numpy fold)."""
    units = ["東京", "都", "に", "住む", "猫", "です", "😀", "東京", "都", "に"]
    for n in (1, 2, 3, 5, 10, 12):
        k = min(n, len(units))
        expect = sorted({_fold(units[i : i + k]) for i in range(len(units) - k + 1)})
        assert shingle_hashes(units, n).tolist() == expect
    assert [hex(v) for v in shingle_hashes(units[:6], 3).tolist()] == [
        "0x3083ef31f68bf11", "0x74a02f9e5753c6cd", "0xa489950fdf8d8420", "0xf26568d5ace9bd78"]
    h = shingle_set(LONG, "char", 5)
    assert h.size == 65 and xxhash.xxh3_64_hexdigest(h.astype("<u8").tobytes()) == "93f4d7af4dcd81d2"
