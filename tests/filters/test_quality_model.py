"""The fastText quality score is P(__label__hq) in [0, 1] whatever the model's labels, and a model that
cannot tell two classes apart is refused.

Models are trained by the real fastText wheel, each in a fresh interpreter (fastText keeps state between
trainings in one process), one thread and a fixed seed, so every model here is the same on every run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from filters import FilterConfigError
from filters.chain import FilterChain
from filters.quality import NEGATIVE, POSITIVE, QualityModel, check_model, segment, train

ROOT = Path(__file__).resolve().parents[2]
FIT = ("import fasttext, sys\n"
       "m = fasttext.train_supervised(input=sys.argv[1], epoch=50, thread=1, seed=0, verbose=0, minCount=1)\n"
       "m.save_model(sys.argv[2])\n")


def _fasttext_model(tmp_path: Path, rows: list[str], name: str) -> Path:
    """A supervised fastText model of `rows` (`__label__x word word`), trained in a child interpreter."""
    data, model = tmp_path / f"{name}.txt", tmp_path / f"{name}.bin"
    data.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    subprocess.run([sys.executable, "-c", FIT, str(data), str(model)], check=True, timeout=120)
    return model


def test_scores_stay_within_zero_and_one(tmp_path: Path) -> None:
    """fastText reports each probability as exp(log(p + 1e-5)): a confident model scored its positives up to
    1.00001 (above the documented range and the largest quality.threshold) and nothing below 1e-5."""
    pos = [("今日は晴れです。東京の天気は良好です。" * 5) + str(i) for i in range(50)]
    neg = [("激安セール！今すぐクリック！無料！" * 5) + str(i) for i in range(50)]
    train(pos, neg, tmp_path / "q.bin", epoch=1000, lr=1.0, quantize=False)
    model = QualityModel(tmp_path / "q.bin")
    high, low = model.score(pos[0]), model.score(neg[0])
    assert 0.99999 < high <= 1.0
    assert 0.0 <= low < 1e-5


def test_score_is_the_positive_label_probability_with_more_labels(tmp_path: Path) -> None:
    """With three labels `predict(k=2)` can leave __label__hq out: a document with P(hq) = 0.23 scored 0.0 and
    was rejected by any threshold."""
    rows = []
    for i in range(100):
        rows += [f"{POSITIVE} 今日 は 晴れ です {i}", f"{NEGATIVE} 激安 セール 無料 {i}", f"__label__mid 普通 の 文章 です {i}"]
    model = QualityModel(_fasttext_model(tmp_path, rows, "three"))
    text = "激安普通今日"
    labels, probs = model.model.predict(segment(text), k=-1)
    assert POSITIVE not in labels[:2], "precondition: the positive label ranks third for this text"
    expected = dict(zip(labels, probs, strict=True))[POSITIVE] - 1e-5
    assert expected > 0.1 and model.score(text) == pytest.approx(expected, abs=1e-6)

def test_a_model_with_only_the_positive_label_is_refused(tmp_path: Path) -> None:
    """Trained on one class, a model scores every document 1.0: the quality rule never rejects anything."""
    model = _fasttext_model(tmp_path, [f"{POSITIVE} 今日 は 晴れ です {i}" for i in range(20)], "one")
    with pytest.raises(ValueError, match=r"has only the __label__hq label"):
        check_model(str(model))
    with pytest.raises(FilterConfigError) as err:
        FilterChain({"preset": "none", "quality": {"model": str(model)}})
    assert str(err.value).startswith("filters.quality.model: ") and "\n" not in str(err.value)
