"""FineWeb-2 word statistics on a given word list (hand-computed), MeCab segmentation, and the fastText
quality model: trains on the bundled samples, byte-identical across runs, scores curated text higher."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from filters.chain import FilterChain
from filters.evaluate import format_report, score
from filters.wordstats import segment, word_stats

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def test_word_stats_hand_computed() -> None:
    text = "猫が好き\n猫が好き…"
    words = ["猫", "が", "好き", "猫", "が", "好き", "…"]
    s = word_stats(text, words)
    assert s["words"] == 6  # "…" is a symbol-only word
    assert s["avg_word_length"] == pytest.approx(8 / 6)
    assert s["stop_words"] == 1  # が twice is one distinct stop word (datatrove)
    assert s["alpha_word_fraction"] == pytest.approx(6 / 7)
    assert s["ellipsis_per_word"] == pytest.approx(1 / 7)
    assert s["end_ellipsis_line_fraction"] == pytest.approx(1 / 2)
    assert s["newlines_per_word"] == pytest.approx(1 / 7)
    # top 2-gram "猫 が" (3 chars with the joining space) occurs twice -> 6 / len(text)
    assert s["gopher_top_2gram_char_fraction"] == pytest.approx(6 / len(text))
    # 5-grams: 猫が好き猫が, が好き猫が好き, 好き猫が好き… -> none repeats
    assert s["gopher_dup_5gram_char_fraction"] == 0


def test_word_stats_use_mecab_by_default() -> None:
    s = word_stats("今日は晴れです。")
    assert s["words"] >= 3 and s["stop_words"] >= 1


def test_stop_words_are_distinct_stop_words() -> None:
    """datatrove's GopherQualityFilter counts `len(stop_words & set(words))`: a text whose only stop word is
    の, however often, has one and fails `min_stop_words: 2` (it passed when occurrences were counted)."""
    text = "東京大学の研究成果の発表"
    assert word_stats(text, ["東京", "大学", "の", "研究", "成果", "の", "発表"])["stop_words"] == 1
    chain = FilterChain({"preset": "none", "rules": {"gopher_stop_words": {"threshold": 2}}})
    assert chain(text, url=None, kind="web").reject_reason == "gopher_stop_words"


def test_ideographic_space_is_not_a_word() -> None:
    """MeCab gives U+3000 as a morpheme; datatrove strips whitespace tokens. Counted as a non-alphabetic word,
    it took this statute-like text to an alpha-word fraction of 0.67 and a `gopher_alpha_words` rejection."""
    text = "\n".join(["第一条　目的　この法律は　行政機関の　組織を　定める。",
                     "第二条　定義　この法律で　機関とは　次の　ものを　いう。", "第三条　設置　国に　次の　機関を　置く。"])
    assert "\u3000" not in segment(text)
    assert word_stats(text)["alpha_word_fraction"] > 0.9
    chain = FilterChain({"preset": "none", "rules": {"gopher_alpha_words": {"threshold": 0.759}}})
    assert chain(text, url=None, kind="government").reject_reason is None


def _samples() -> tuple[list[str], list[str]]:
    def texts(rel: str, n: int) -> list[str]:
        path = SAMPLES / rel
        if not path.is_file():
            pytest.skip(f"bundled sample {path} missing")
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line)["text"] for line in fh][:n]

    positive = texts("reference/wikipedia.jsonl", 60) + texts("academic/abstracts.jsonl", 20)
    return positive, texts("web/fineweb2.jsonl", 40)


def test_quality_model_trains_deterministically(tmp_path: Path) -> None:
    from filters.quality import QualityModel, train

    positive, negative = _samples()
    digests = []
    for run in range(2):
        out = tmp_path / f"q{run}.ftz"
        summary = train(positive, negative, out, seed=7, epoch=5, bucket=20_000, cutoff=2_000)
        assert summary["positive_docs"] == 80 and summary["negative_docs"] == 40 and summary["quantized"]
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    model = QualityModel(tmp_path / "q0.ftz")
    pos = sum(model.score(t) for t in positive[:20]) / 20
    neg = sum(model.score(t) for t in negative[:20]) / 20
    assert 0.0 <= neg < pos <= 1.0
    assert model.score(positive[0]) == model.score(positive[0])


def test_shipped_model_scores() -> None:
    from filters.chain import FilterChain

    model = Path(__file__).resolve().parents[2] / "data" / "models" / "quality.ftz"
    if not model.is_file():
        pytest.skip("data/models/quality.ftz not built (make quality-model)")
    chain = FilterChain({"preset": "none", "quality": {"model": str(model), "threshold": 0.0}})
    result = chain("第一条　この法律は、国民の健康の保持に寄与することを目的とする。", url=None, kind="government")
    assert result.quality is not None and 0.0 <= result.quality <= 1.0
    assert result.stats["quality_score"] == result.quality and result.reject_reason is None


def test_evaluate_scores_hand_counted() -> None:
    decisions = [
        {"label": "keep", "reject_reason": None, "ref": "a"},
        {"label": "keep", "reject_reason": "min_chars", "ref": "b", "reason": "short"},
        {"label": "drop", "reject_reason": "mojibake", "ref": "c"},
        {"label": "drop", "reject_reason": None, "ref": "d", "reason": "spam"},
        {"label": "keep", "reject_reason": None, "ref": "e"},
    ]
    r = score(decisions)
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["keep_precision"] == pytest.approx(2 / 3)
    assert r["keep_recall"] == pytest.approx(2 / 3)
    assert r["drop_recall"] == pytest.approx(1 / 2)
    assert r["false_drops_by_rule"] == {"min_chars": 1}
    assert "b: min_chars (label: short)" in format_report(r)


def test_evaluate_leaves_a_metric_without_labels_undefined() -> None:
    """Labels of one class printed `drop recall 0.000` (no drop label at all, none missed) and `keep precision
    0.000` when nothing was kept: figures of nothing, read as failures."""
    only_keeps = score([{"label": "keep", "reject_reason": None, "ref": "a"},
                        {"label": "keep", "reject_reason": "min_chars", "ref": "b"}])
    assert only_keeps["drop_recall"] is None and only_keeps["keep_recall"] == 0.5
    assert only_keeps["keep_precision"] == 1.0 and only_keeps["accuracy"] == 0.5
    assert "keep recall 0.500  drop recall n/a" in format_report(only_keeps)
    all_dropped = score([{"label": "drop", "reject_reason": "mojibake", "ref": "c"}])
    assert all_dropped["keep_precision"] is None and all_dropped["keep_recall"] is None
    assert "accuracy 1.000  keep precision n/a  keep recall n/a  drop recall 1.000" in format_report(all_dropped)
    assert score([])["accuracy"] is None
