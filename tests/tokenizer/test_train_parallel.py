"""Parallel MeCab pre-segmentation and multi-threaded training stay deterministic."""
from __future__ import annotations

import pytest

from tokenizer.policy import BATCH_SENTENCES, DELIMITER, presegment, presegment_all
from tokenizer.sample import split_sentences
from tokenizer.train import TrainConfig, segments, train_all, train_model, trainer_options


@pytest.fixture(scope="module")
def sentences(ja_docs: list[tuple[str, str]]) -> list[str]:
    return [s for _, text in ja_docs for s in split_sentences(text)][:2 * BATCH_SENTENCES + 300]


def test_parallel_presegment_equals_serial(sentences: list[str]) -> None:
    serial = presegment_all(sentences, "phrase", workers=1)
    assert serial == [presegment(s, "phrase") for s in sentences]
    assert presegment_all(sentences, "phrase", workers=2) == serial  # 3 batches over 2 processes, in order
    assert presegment_all(sentences[:5], "none", workers=2) == sentences[:5]


def test_segments_are_a_lazy_split_of_the_presegmented_text(sentences: list[str]) -> None:
    lines = segments(sentences[:200], "phrase")
    assert not isinstance(lines, list)
    expected = [seg for s in sentences[:200] for seg in presegment(s, "phrase").split(DELIMITER) if seg]
    assert list(lines) == expected


def test_generator_input_trains_the_same_model_as_a_list(sentences: list[str]) -> None:
    options = trainer_options("main", TrainConfig(vocab_size=4200, inventory="joyo"))
    small = ["   ", *sentences[:1500]]  # a leading whitespace-only line is kept, not dropped
    assert train_model(iter(small), options) == train_model(small, options)


def test_two_threads_same_bytes_twice(sentences: list[str]) -> None:
    cfg = TrainConfig(vocab_size=4200, inventory="joyo", threads=2)
    seconds: dict[str, float] = {}
    first = train_all(sentences, cfg, baselines=("lossless",), seconds=seconds)
    second = train_all(sentences, cfg, baselines=("lossless",))
    assert first == second
    assert set(seconds) == {"presegment", "main", "lossless"}
