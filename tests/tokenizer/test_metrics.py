"""Metric functions against hand-computed values."""
from __future__ import annotations

import math

import pytest

from tokenizer.evaluate import (
    char_class,
    evaluate_models,
    internal_boundaries,
    nonspace_offsets,
    piece_class,
    prf,
    renyi_efficiency,
    token_ends,
)
from tokenizer.train import TrainConfig, load, train_model, trainer_options


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


def test_token_ends_stay_on_the_text_when_the_model_drops_whitespace() -> None:
    """The NFKC `default` baseline removes leading whitespace and newlines from its pieces' surfaces; its
    token ends (and so its boundary P/R/F1) must still be offsets in the original text."""
    sents = ["日本語のテキストです。", "東京に行きました。", "今日は晴れです。", "言語モデルを学習する。"] * 20
    options = trainer_options("default", TrainConfig(vocab_size=300)) | {"hard_vocab_limit": False}
    sp = load(train_model(sents, options))
    text = "東京に行きました。今日は晴れです。"
    ids, ends = token_ends(sp, text)
    assert ends[-1] == len(text)
    for prefix in ("\u3000", "\n\n", " \n\t", "  "):
        shifted_ids, shifted = token_ends(sp, prefix + text)
        assert shifted_ids == ids
        assert shifted == [end + len(prefix) for end in ends], repr(prefix)
    # whitespace is invisible to the boundary metric: a leading indent must not change it
    plain = evaluate_models({"d": sp}, [("k", text)])["d"]
    indented = evaluate_models({"d": sp}, [("k", "\u3000" + text.replace("。", "。\n\n", 1))])["d"]
    for key in ("morph_boundary_precision", "morph_boundary_recall", "morph_boundary_f1"):
        assert indented[key] == pytest.approx(plain[key]), key


def test_token_ends_of_byte_fallback_and_multibyte_characters() -> None:
    sents = ["日本語のテキストです。", "東京に行きました。"] * 20
    options = trainer_options("main", TrainConfig(vocab_size=3000, inventory="joyo", reserved_tokens=0))
    sp = load(train_model(sents, options | {"hard_vocab_limit": False}))
    text = "𠮷 é頡\n東京"  # 4-byte, 2-byte and 3-byte characters that fall back to bytes, a space, a newline
    pieces = sp.encode(text, out_type=str)
    assert sum(p.startswith("<0x") for p in pieces) >= 4 + 3
    ids, ends = token_ends(sp, text)
    assert ids == sp.encode(text)
    assert ends == sorted(set(ends)) and ends[-1] == len(text)
    assert {1, 2, 3, 4, 5, 7} <= set(ends)  # each fallen-back character ends once, at its own end
