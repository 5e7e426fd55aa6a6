"""Shingles over the dedup key: folding, short/long/kana-only/mixed-script documents, hashing, Jaccard."""
from __future__ import annotations

import numpy as np
import pytest

from tokenizer.morph import morphemes
from tokenizer.shingles import (
    dedup_key,
    hash_shingles,
    jaccard,
    ngrams,
    shingle_hashes,
    shingle_set,
    shingles,
)

LONG = ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
        "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。")


def test_dedup_key_folds_width_whitespace_and_punctuation() -> None:
    assert dedup_key("ＡＢＣ　１２３\n\n ｶﾞｷﾞ") == "ABC 123 ガギ"
    assert dedup_key("今日は，晴れ．明日も、晴れ。") == dedup_key("今日は、晴れ。明日も，晴れ．") == "今日は、晴れ。明日も、晴れ。"
    assert dedup_key("a,b.", fold_punct=False) == "a,b."


def test_short_text_gives_one_shingle_of_the_whole_text() -> None:
    assert shingles("猫です", "char", 5) == ["猫\x1fで\x1fす"]
    toks = morphemes("猫です")
    assert len(toks) < 5
    assert shingles("猫です", "morph", 5) == ["\x1f".join(toks)]
    assert shingles("", "morph", 5) == [] and shingles(" \n ", "char", 5) == []


def test_long_text_char_and_morph_ngrams() -> None:
    key = dedup_key(LONG)
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
    assert "Tokyo" in morphemes(dedup_key(half))


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


def test_vectorised_hashes_equal_per_string_hashes_for_morphemes_and_short_docs() -> None:
    for text in (LONG, "猫です", "あ"):
        for unit in ("morph", "char"):
            np.testing.assert_array_equal(shingle_set(text, unit, 5), hash_shingles(shingles(text, unit, 5)))
    assert shingle_hashes([], 5).size == 0
    # order matters inside a shingle, and token boundaries matter: ("東京", "都") != ("東", "京都")
    assert shingle_hashes(["東京", "都"], 2)[0] != shingle_hashes(["東", "京都"], 2)[0]
    assert shingle_hashes(["a", "b"], 2)[0] != shingle_hashes(["b", "a"], 2)[0]
