"""Morphological analysis, pre-segmentation policies and the sentence sampler."""
from __future__ import annotations

import random
import re

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
    line and NUL run by NUL run as morph cuts the text, on strings whose last surface on a line is a character
    fugashi's `parse` would strip (U+00A0, U+3000, \x1f, \r) or that hold a NUL."""
    import fugashi

    nodes = fugashi.Tagger()

    def oracle(text: str) -> list[tuple[str, str]]:
        out = []
        for line in (line for chunk in chunks(text) for line in chunk.split("\n") if line.strip()):
            for i, part in enumerate(re.split("(\0+)", line)):
                out += [(part, "補助記号")] if i % 2 else [(w.surface, w.feature.pos1 or "") for w in nodes(part) if part]
        return out

    rng = random.Random(5)
    alphabet = "あいアイー漢字東京都 \t\n\r\u3000abcA12。、！？「」\x00\x1f\u200b\u200d\xa0\ufeff😀𠮷ｶﾞ゙e\u0301"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    for text in [*texts, "東京 \xa0", "猫\x00犬", "私は学生です。\n\nLLM が\t攻撃された"]:
        expected = oracle(text)
        assert morphemes_with_pos(text) == expected, repr(text)
        assert morphemes(text) == [surface for surface, _ in expected], repr(text)
    assert morphemes("東京 \xa0") == ["東京", "\xa0"] and morphemes("猫\x00犬") == ["猫", "\x00", "犬"]


def test_chunks_cap_length_and_preserve_text() -> None:
    text = "短い文。" * 8_000 + "あ" * 50_001 + "。終わり。"
    parts = list(chunks(text, max_chars=20_000))
    assert "".join(parts) == text
    assert "あ" * 50_001 + "。" in parts  # one long sentence: a chunk of its own, windowed by the tagger
    assert max(len(p) for p in parts if "あ" not in p) <= 20_000
    assert len(morphemes("猫" * 45_000)) == 45_000  # never one giant MeCab call; still answers
    assert list(chunks("ー" * 5_000 + "。短い文。" * 10))[0] == "ー" * 5_000 + "。"


def _mecab_spans(text: str, start: int = 0) -> list[tuple[int, int, str]]:
    """fugashi's own nodes on `text`, as (start, end, pos1) offsets shifted by `start`."""
    import fugashi

    spans, cursor = [], 0
    for node in fugashi.Tagger()(text):
        at = text.index(node.surface, cursor)
        cursor = at + len(node.surface)
        spans.append((start + at, start + cursor, node.feature.pos1 or ""))
    return spans


def test_text_after_a_nul_keeps_its_morphemes_and_offsets() -> None:
    """MeCab stops reading at a NUL: everything after the first one had no morpheme, so a tokenizer's
    boundaries there counted as false positives in `tokenizer eval`."""
    text = "東京都に住む。\0\0猫が好きです\0犬も好き。\n\0大阪"
    expected, at = [], 0
    for i, part in enumerate(re.split("(\0+)", text)):
        expected += [(at, at + len(part), "補助記号")] if i % 2 else _mecab_spans(part, at)
        at += len(part)
    assert morpheme_spans(text) == expected
    assert [text[a:b] for a, b, _ in morpheme_spans(text)][-2:] == ["\0", "大阪"]


def test_a_long_unpunctuated_sentence_is_cut_between_words() -> None:
    """A sentence of over MAX_SENTENCE_CHARS with no 。 was cut blindly every 2,000 characters, inside a word."""
    words = ["東京都庁", "の", "職員", "が", "新しい", "制度", "について", "住民", "に", "丁寧", "に", "説明", "し",
             "ながら", "大規模", "言語", "モデル", "を", "評価", "する", "ため", "研究者", "たち", "は", "様々", "な",
             "実験", "を", "行い"]
    rng = random.Random(2)
    text = "".join(rng.choice(words) for _ in range(1_800))
    whole = _mecab_spans(text)  # MeCab itself on the whole sentence: the reference
    assert len(text) > 3_000 and 2_000 not in {end for _, end, _ in whole}  # a blind cut would split a word
    assert morpheme_spans(text) == whole


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


def test_budget_counts_sentence_characters_only() -> None:
    """--char-budget is characters of sentences: a kind's name must not take a share of it (a "kind\\t" prefix
    was counted, so 6-character government sentences filled 42 of 120 characters), nor skew --mix."""
    docs = [(kind, f"第{i:03d}条。") for kind in ("web", "government") for i in range(100)]
    whole = sample_corpus([d for d in docs if d[0] == "government"], char_budget=120, holdout=0.0)
    assert whole.summary["sampled_chars"] == 120 and whole.summary["sampled_sentences"] == 20
    mixed = sample_corpus(docs, char_budget=240, holdout=0.0, mix={"web": 1, "government": 1})
    assert {k: v["chars"] for k, v in mixed.summary["sampled_per_kind"].items()} == {"government": 120, "web": 120}
    tabbed = sample_corpus([("a\tb", "一文目です。"), ("a\tb", "二文目です。")], char_budget=100, holdout=0.5)
    assert {kind for kind, _ in tabbed.sentences + tabbed.heldout} == {"a\tb"}
