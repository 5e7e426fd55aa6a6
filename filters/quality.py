"""fastText quality classifier: MeCab-segmented text, positive = curated-style text (academic,
government, reference), negative = raw web text (the GPT-3 / Swallow-v2 recipe), quantized `.ftz`.

Training is deterministic: one thread, a fixed seed, and training lines in a seeded order, so the same
inputs give a byte-identical model. The score is P(__label__hq).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import random
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

POSITIVE, NEGATIVE = "__label__hq", "__label__lq"
_SPACES = re.compile(r"\s+")


def segment(text: str, max_chars: int = 20_000) -> str:
    """One line of space-separated MeCab surfaces (fastText's input format), first `max_chars` only."""
    from tokenizer.morph import morphemes

    return _SPACES.sub(" ", " ".join(morphemes(text[:max_chars]))).strip()


class QualityModel:
    """A loaded classifier; `score(text)` is the probability of the positive label."""

    def __init__(self, path: str | os.PathLike, max_chars: int = 20_000) -> None:
        import fasttext

        if not Path(path).is_file():
            from filters.config import FilterConfigError

            raise FilterConfigError(f"filters.quality.model: no model file at {path}")
        self.model = fasttext.load_model(str(path))
        self.max_chars = max_chars

    def score(self, text: str) -> float:
        line = segment(text, self.max_chars)
        if not line:
            return 0.0
        labels, probs = self.model.predict(line, k=2)
        return float(dict(zip(labels, probs, strict=True)).get(POSITIVE, 0.0))


def _fit(train_file: str, out: str, options: dict, quantize: bool, cutoff: int) -> None:
    import fasttext

    model = fasttext.train_supervised(input=train_file, verbose=0, **options)
    if quantize:
        model.quantize(input=train_file, qnorm=True, retrain=False, cutoff=cutoff, thread=1)
    model.save_model(out)


def train(positive: Iterable[str], negative: Iterable[str], out: str | os.PathLike, *, seed: int = 0,
          epoch: int = 10, dim: int = 32, lr: float = 0.1, word_ngrams: int = 2, min_count: int = 2,
          max_chars: int = 20_000, quantize: bool = True, bucket: int = 50_000, cutoff: int = 5_000) -> dict:
    """Train, optionally quantize, save to `out`; returns a JSON-able summary of data and options."""
    rows = [f"{POSITIVE} {s}" for s in (segment(t, max_chars) for t in positive) if s]
    n_pos = len(rows)
    rows += [f"{NEGATIVE} {s}" for s in (segment(t, max_chars) for t in negative) if s]
    n_neg = len(rows) - n_pos
    if not n_pos or not n_neg:
        raise ValueError(f"need documents in both classes, got {n_pos} positive and {n_neg} negative")
    random.Random(seed).shuffle(rows)
    options = {"epoch": epoch, "dim": dim, "lr": lr, "wordNgrams": word_ngrams, "minCount": min_count,
               "thread": 1, "seed": seed, "loss": "softmax", "bucket": bucket}
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        # fastText's Python binding keeps state between trainings in one process (a second run in the
        # same process gives a different model, later runs "Encountered NaN"), so every training runs
        # in a freshly spawned interpreter: that is what makes the same inputs give the same bytes.
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            pool.submit(_fit, train_file, str(out), options, quantize, cutoff).result()
    return {"positive_docs": n_pos, "negative_docs": n_neg, "quantized": quantize, "cutoff": cutoff, "max_chars": max_chars,
            "fasttext": options}
