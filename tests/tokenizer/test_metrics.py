"""Metric functions against hand-computed values."""
from __future__ import annotations

import math

import pytest

from tokenizer.evaluate import (
    char_class,
    internal_boundaries,
    nonspace_offsets,
    piece_class,
    prf,
    renyi_efficiency,
)


def test_prf_hand_values() -> None:
    # 3 predicted boundaries, 2 correct; 4 gold boundaries
    got = prf(tp=2, fp=1, fn=2)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))  # = 4/7
    assert got["f1"] == pytest.approx(4 / 7)
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_renyi_efficiency_hand_value() -> None:
    # p = (1/2, 1/4, 1/4); sum p^2.5 = 0.5**2.5 + 2 * 0.25**2.5 = 0.1767767 + 0.0625 = 0.2392767
    # H_2.5 = ln(0.2392767) / (1 - 2.5) = 0.953441; efficiency = H / ln(4) = 0.687749
    assert renyi_efficiency([2, 1, 1, 0], vocab_size=4) == pytest.approx(0.687749, abs=2e-6)
    # uniform over the whole vocabulary: H_alpha = ln|V| for every alpha, so efficiency 1
    assert renyi_efficiency([5] * 8, vocab_size=8) == pytest.approx(1.0)
    assert renyi_efficiency([], vocab_size=8) == 0.0
    assert math.isfinite(renyi_efficiency([1], vocab_size=8))


def test_boundaries_ignore_whitespace_and_text_ends() -> None:
    text = "LLM が 好き"  # non-space projection: "LLMが好き" (6 chars)
    offsets = nonspace_offsets(text)
    assert offsets[-1] == 6
    # morphemes LLM|が|好き end at 3, 5, 8 in the text -> 3, 4 (6 is the end, excluded)
    assert internal_boundaries([3, 5, 8], offsets) == {3, 4}
    # tokens "LLM", "▁が", "▁好", "き": ends 3, 5, 7, 8 -> 3, 4, 5
    pred = internal_boundaries([3, 5, 7, 8], offsets)
    assert pred == {3, 4, 5}
    gold = {3, 4}
    tp, fp, fn = len(pred & gold), len(pred - gold), len(gold - pred)
    assert (tp, fp, fn) == (2, 1, 0)
    assert prf(tp, fp, fn)["f1"] == pytest.approx(0.8)


@pytest.mark.parametrize(("piece", "expected"), [
    ("漢字", "kanji"), ("々", "kanji"), ("ひらがな", "hiragana"), ("カタカナー", "katakana"),
    ("ｶﾀ", "katakana"), ("▁the", "latin"), ("Ｔｅｓｔ", "latin"), ("7", "digit"), ("。", "symbol"),
    ("▁▁", "whitespace"), ("\n", "whitespace"), ("言う", "mixed"), ("▁", "whitespace"),
])
def test_piece_class(piece: str, expected: str) -> None:
    assert piece_class(piece) == expected


def test_char_class_cjk_symbols_are_not_kanji() -> None:
    assert char_class("〒") == "symbol"
    assert char_class("𠮷") == "kanji"
