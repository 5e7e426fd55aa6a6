"""Morphological analysis, pre-segmentation policies and the sentence sampler."""
from __future__ import annotations

import random

import pytest

from tokenizer.morph import chunks, morpheme_spans, morphemes, morphemes_with_pos
from tokenizer.policy import DELIMITER, presegment
from tokenizer.sample import Reservoir, sample_corpus, split_sentences


def test_morphemes_simple_sentence() -> None:
    assert morphemes("私は学生です。") == ["私", "は", "学生", "です", "。"]
    assert ("は", "助詞") in morphemes_with_pos("私は学生です。")


def test_morphemes_skip_whitespace_and_spans_are_exact() -> None:
    text = "LLM が 攻撃\nされた。\n\n"
    spans = morpheme_spans(text)
    assert [text[s:e] for s, e, _ in spans] == morphemes(text)
    assert "LLM" in morphemes(text) and " " not in "".join(morphemes(text))


def test_morphemes_equal_fugashis_nodes_on_hard_strings() -> None:
    """MeCab's formatted output, read back, against fugashi's node objects (surface, feature.pos1), line by
    line as morph cuts the text, on strings whose last surface on a line is a character fugashi's `parse`
    would strip (U+00A0, U+3000, \x1f, \r) or that hold a NUL."""
    import fugashi

    nodes = fugashi.Tagger()

    def oracle(text: str) -> list[tuple[str, str]]:
        return [(w.surface, w.feature.pos1 or "") for chunk in chunks(text) for line in chunk.split("\n")
                if line.strip() for w in nodes(line)]

    rng = random.Random(5)
    alphabet = "あいアイー漢字東京都 \t\n\r\u3000abcA12。、！？「」\x00\x1f\u200b\u200d\xa0\ufeff😀𠮷ｶﾞ゙e\u0301"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    for text in [*texts, "東京 \xa0", "猫\x00犬", "私は学生です。\n\nLLM が\t攻撃された"]:
        expected = oracle(text)
        assert morphemes_with_pos(text) == expected, repr(text)
        assert morphemes(text) == [surface for surface, _ in expected], repr(text)
    assert morphemes("東京 \xa0") == ["東京", "\xa0"] and morphemes("猫\x00犬") == ["猫"]


def test_chunks_cap_length_and_preserve_text() -> None:
    text = "あ" * 50_001 + "。終わり。"
    parts = list(chunks(text, max_chars=20_000))
    assert "".join(parts) == text
    assert max(len(p) for p in parts) <= 20_000
    assert len(morphemes("猫" * 45_000)) >= 3  # never one giant MeCab call; still answers
    assert max(map(len, chunks("ー" * 5_000 + "。短い文。" * 10))) == 2_000


def test_a_long_run_of_one_character_class_is_tagged_in_linear_time() -> None:
    """MeCab is quadratic inside one run of ー or a: 400k characters in 20k pieces took ~7 s, now 2k pieces."""
    import time

    start = time.process_time()
    assert "".join(morphemes("ー" * 400_000)) == "ー" * 400_000
    assert time.process_time() - start < 3.5


def test_phrase_policy_joins_compounds_and_cuts_before_particles() -> None:
    seg = presegment("大規模言語モデルが攻撃された。", "phrase").split(DELIMITER)
    assert seg[0] == "大規模言語モデル"  # prefix + noun compound stays whole
    assert seg[1].startswith("が")  # cut before the particle
    morph = presegment("大規模言語モデルが攻撃された。", "morph").split(DELIMITER)
    assert morph[:4] == ["大", "規模", "言語", "モデル"]
    for policy in ("none", "morph", "phrase"):
        text = "LLM の  評価\tを行う。" + DELIMITER
        assert presegment(text, policy).replace(DELIMITER, "") == text.replace(DELIMITER, "")


def test_split_sentences() -> None:
    assert list(split_sentences("一文目。二文目！三\r\n\n四？")) == ["一文目。", "二文目！", "三", "四？"]
    assert [len(s) for s in split_sentences("あ" * 3100, max_chars=1500)] == [1500, 1500, 100]


def test_reservoir_respects_budget_and_keeps_lowest_priorities() -> None:
    res = Reservoir(budget=10)
    for prio, text in [(5, "aaaa"), (1, "bbbb"), (3, "cccc"), (2, "dd"), (9, "e" * 11)]:
        res.offer(prio, text)
    assert res.chars <= 10
    assert res.items() == ["bbbb", "dd", "cccc"]  # priorities 1, 2, 3 fit (10 chars); 5 dropped


def test_sample_is_order_independent_and_seeded() -> None:
    docs = [("web", f"文書{i}です。二文目{i}。") for i in range(200)]
    docs += [("academic", f"論文{i}番の要旨。" * (i % 5 + 1)) for i in range(200)]
    shuffled = docs[:]
    random.Random(1).shuffle(shuffled)
    a = sample_corpus(docs, char_budget=500, seed=7)
    b = sample_corpus(shuffled, char_budget=500, seed=7)
    c = sample_corpus(docs, char_budget=500, seed=8)
    assert a.sentences == b.sentences and a.heldout == b.heldout
    assert a.sentences != c.sentences
    assert a.summary["sampled_chars"] <= 500
    held = {t for _, t in a.heldout}
    assert held and not any(s in t for t in held for _, s in a.sentences if len(s) > 6)
    mixed = sample_corpus(docs, char_budget=600, seed=7, mix={"web": 2, "academic": 1})
    per = mixed.summary["sampled_per_kind"]
    assert per["web"]["chars"] <= 400 and per["academic"]["chars"] <= 200


@pytest.mark.parametrize("holdout", [0.0, 1.0])
def test_holdout_extremes(holdout: float) -> None:
    docs = [("web", f"文{i}。") for i in range(50)]
    result = sample_corpus(docs, char_budget=10_000, holdout=holdout)
    assert (len(result.heldout) == 50) == (holdout == 1.0)
    assert (len(result.sentences) == 50) == (holdout == 0.0)


def test_chunk_policy_keeps_verbal_chains_whole() -> None:
    text = "手法を用いて評価されている。"
    phrase = presegment(text, "phrase").split(DELIMITER)
    chunk = presegment(text, "chunk").split(DELIMITER)
    assert "用い" in phrase and "て" in phrase
    assert "用いて" in chunk and "されている" in "".join(chunk[chunk.index("評価") + 1:])
    assert "を" in chunk  # a particle after a noun is still cut off
