"""Statistics against hand-computed values, including the Swallow formula caveats."""
from __future__ import annotations

import json
import random
import zlib
from collections import Counter
from pathlib import Path

import pytest

from filters.textstats import (
    char_class,
    char_ngram_stats,
    char_stats,
    class_counts,
    line_stats,
    llmjp_stats,
)


def test_char_classes_follow_swallow() -> None:
    assert [char_class(c) for c in "あア漢。、，．！？a1ー々𠮷"] == ["h", "k", "c", "p", "p", "p", "p", "p", "p", "", "", "", "c", "c"]


def test_char_stats_hand_computed() -> None:
    text = "今日は晴れ。明日も晴れ。\nabc"
    s = char_stats(text)
    # 今日は晴れ。明日も晴れ。 = kanji 今日晴明日晴 (6), hiragana はれもれ (4), kuten 2 -> 12 Japanese chars
    assert s["chars"] == 16
    assert s["japanese_chars"] == 12
    assert s["japanese_fraction"] == pytest.approx(12 / 16)
    assert s["hiragana_fraction"] == pytest.approx(4 / 12)
    assert s["kanji_fraction"] == pytest.approx(6 / 12)
    # sentences: 今日は晴れ。 (6) 明日も晴れ。 (6) abc (3)
    assert s["sentences"] == 3
    assert s["avg_sentence_length"] == pytest.approx(15 / 3)
    assert s["max_sentence_length"] == 6
    assert s["kuten_per_1k_chars"] == pytest.approx(1000 * 2 / 16)
    # llm-jp's rare-kuten rule counts 「。」 alone (HojiChar's DiscardRareKuten): ！？． made a text without 。 pass
    assert char_stats("本当か？そうだ！終わり．" * 10)["kuten_per_1k_chars"] == 0.0


def test_duplicate_lines_and_sentences() -> None:
    text = "同じ行です。\n同じ行です。\n違う行です。違う。"
    s = char_stats(text)
    assert s["dup_line_fraction"] == pytest.approx(1 / 3)
    assert s["dup_line_char_fraction"] == pytest.approx(6 / (6 + 6 + 9))
    # sentences: 同じ行です。 x2, 違う行です。, 違う。 -> 1 duplicate of 4
    assert s["dup_sentence_fraction"] == pytest.approx(1 / 4)
    assert s["dup_sentence_char_fraction"] == pytest.approx(6 / 21)


def test_swallow_counts_blank_lines_as_duplicate_paragraphs() -> None:
    """Caveat: Swallow's paragraph list keeps empty lines, so blank-line-separated text looks repetitive;
    the Gopher line statistic (split on runs of newlines) does not."""
    text = "一つ目の段落です。\n\n二つ目の段落です。\n\n三つ目の段落です。"
    assert char_stats(text)["dup_line_fraction"] == pytest.approx(1 / 5)
    assert line_stats(text)["gopher_dup_line_fraction"] == 0.0


def test_swallow_dup_ngram_is_type_level_not_gopher_char_fraction() -> None:
    """Caveat: distinct n-grams seen more than once / distinct n-grams."""
    text = "あいうえおあいうえおか"
    # 5-grams: あいうえお いうえおあ うえおあい えおあいう おあいうえ あいうえお いうえおか -> 6 distinct, 1 repeated
    stats = char_ngram_stats(text, top=(2,), dup=(5,))
    assert stats["dup_5gram_char_fraction"] == pytest.approx(1 / 6)
    # the Gopher character fraction of the same text would be 5 / 11 (the second あいうえお)
    assert stats["dup_5gram_char_fraction"] != pytest.approx(5 / 11)
    # top 2-gram: あい, いう, うえ, えお each twice of 10 bigrams
    assert stats["top_2gram_char_fraction"] == pytest.approx(2 / 10)


def test_line_stats_hand_computed() -> None:
    text = "これは文です。\nメニュー\nメニュー\n長い説明の行が続いてここで終わる。"
    s = line_stats(text)
    assert s["lines"] == 4
    assert s["line_punct_fraction"] == pytest.approx(2 / 4)
    assert s["gopher_dup_line_fraction"] == pytest.approx(1 / 4)
    flat = len(text.replace("\n", ""))
    assert s["line_char_dup_fraction"] == pytest.approx(4 / flat)
    assert s["fragment_line_fraction"] == pytest.approx(2 / 4)
    assert s["fragment_char_fraction"] == pytest.approx(8 / flat)


def test_llmjp_stats() -> None:
    assert llmjp_stats("漢字" * 30 + "かな")["head_kana_chars"] == 0
    assert llmjp_stats("かな" + "漢字" * 30)["head_kana_chars"] == 2
    repetitive = llmjp_stats("ああああ" * 200)["compression_ratio"]
    varied = llmjp_stats("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。")["compression_ratio"]
    assert repetitive < 0.05 < 0.3 < varied


def test_compression_ratio_is_llmjps_level_9() -> None:
    """llm-jp's has_good_compression_ratio compresses with level=9; zlib's default (6) gives other ratios."""
    rng = random.Random(19)
    words = ["研究", "日本語", "コーパス", "政府", "法律", "公開", "データ", "学習", "モデル", "評価"]
    text = "。".join("".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(100))
    raw = text.encode("utf-8")
    assert len(zlib.compress(raw)) != len(zlib.compress(raw, 9))  # a text on which the levels differ
    assert llmjp_stats(text)["compression_ratio"] == len(zlib.compress(raw, 9)) / len(raw)


def _ngram_stats_by_counting(text: str, top: tuple[int, ...], dup: tuple[int, ...]) -> dict[str, float]:
    """The definition, one Counter of n-grams per size: the oracle for the suffix-sorting implementation."""
    out = {}
    for n in top:
        counts = Counter(text[i:i + n] for i in range(len(text) - n + 1))
        out[f"top_{n}gram_char_fraction"] = max(counts.values()) / (len(text) - n + 1) if counts else 0.0
    for n in dup:
        counts = Counter(text[i:i + n] for i in range(len(text) - n + 1))
        out[f"dup_{n}gram_char_fraction"] = sum(1 for f in counts.values() if f > 1) / len(counts) if counts else 0.0
    return out


def test_char_ngram_stats_match_counting() -> None:
    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    texts = [json.loads(line)["text"] for path in sorted(samples.glob("*/*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(4)
    texts += ["".join(rng.choice("abあい\U0001f600\x00\U0010ffff") for _ in range(rng.randint(0, 80))) for _ in range(2000)]
    sizes = [((2, 3, 4), (5, 6, 7, 8, 9, 10)), ((2,), (5,)), ((), (5, 11)), ((1, 12), (1, 2, 13)), ((), ())]
    for i, text in enumerate(texts):
        top, dup = sizes[i % len(sizes)]
        assert char_ngram_stats(text, top, dup) == _ngram_stats_by_counting(text, top, dup), ascii(text[:40])


def test_class_counts_match_char_class_per_character() -> None:
    def by_character(text: str) -> Counter:
        counts: Counter = Counter()
        for ch in text:
            if cls := char_class(ch):
                counts[cls] += 1
                counts["kuten"] += ch == "。"
        return +counts  # zero counts dropped

    every_bmp = "".join(map(chr, range(0x10000)))
    assert class_counts(every_bmp) == by_character(every_bmp)
    rng = random.Random(6)
    for _ in range(1000):
        text = "".join(chr(rng.choice([rng.randint(0x3000, 0x30FF), rng.randint(0x4E00, 0x4E20), 0xFF0E, 0xFF0C,
                                       rng.randint(0x1F600, 0x1F610), rng.randint(0x20000, 0x20010), 0x3134F,
                                       0x31350, rng.randint(0, 0x7F)])) for _ in range(rng.randint(0, 50)))
        assert class_counts(text) == by_character(text), ascii(text)
