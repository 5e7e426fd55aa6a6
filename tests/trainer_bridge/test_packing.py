"""Packing plans and mixture weights, checked against brute-force accounting of every token."""
from __future__ import annotations

import numpy as np
import pytest

from trainer_bridge.mixture import MixtureError, copies, group_of, mixture_report, parse_mix, weight_for
from trainer_bridge.packing import materialize, plan_bestfit, plan_concat, split_documents

ROW = 129


def _lengths(n: int, seed: int) -> list[int]:
    """Lognormal document lengths like real corpora: mostly short, a tail longer than a row."""
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(np.log(40), 1.0, n), 2, 2000)]


def _coverage(plan, lengths, row_len):
    """Every token of every document exactly once, rows within bounds, segments contiguous per document."""
    seen = [np.zeros(n, dtype=np.int32) for n in lengths]
    for row in plan:
        assert sum(seg[2] for seg in row) <= row_len
        for doc, start, length in row:
            assert length > 0
            seen[doc][start: start + length] += 1
    assert all((s == 1).all() for s in seen)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bestfit_cuts_only_long_documents_and_pads_less_than_concat(seed):
    lengths = _lengths(5000, seed)
    best = plan_bestfit(lengths, ROW, window_rows=64, max_open=64)
    concat = plan_concat(lengths, ROW)
    _coverage(best, lengths, ROW)
    _coverage(concat, lengths, ROW)
    split_best = split_documents(best)
    assert all(lengths[d] > ROW for d in split_best)  # no document that fits a row is ever cut
    assert {d for d, n in enumerate(lengths) if n > ROW} == split_best  # and every long one is
    pad_best = len(best) * ROW - sum(lengths)
    pad_concat = len(concat) * ROW - sum(lengths)
    assert pad_concat < ROW  # concat pads only its last row...
    assert len(split_documents(concat)) > 3 * len(split_best)  # ...but cuts far more documents
    assert pad_best / (len(best) * ROW) < 0.005
    # A long document's pieces: full rows in order, and the remainder anywhere.
    doc = next(d for d, n in enumerate(lengths) if n > 2 * ROW)
    starts = sorted(start for row in best for d, start, _ in row if d == doc)
    assert starts[: lengths[doc] // ROW] == [k * ROW for k in range(lengths[doc] // ROW)]


def test_bestfit_fills_exactly_when_pieces_complement():
    # 60+69 and 100+29 fill rows of 129 exactly; a greedy first-fit in input order would pad.
    lengths = [60, 100, 69, 29]
    plan = plan_bestfit(lengths, ROW)
    assert sorted(sorted(d for d, _, _ in row) for row in plan) == [[0, 2], [1, 3]]


def test_bestfit_is_deterministic_and_window_bounded():
    lengths = _lengths(3000, 7)
    assert plan_bestfit(lengths, ROW, window_rows=16) == plan_bestfit(list(lengths), ROW, window_rows=16)
    small = plan_bestfit(lengths, ROW, window_rows=1, max_open=1)
    _coverage(small, lengths, ROW)


def test_materialize_places_tokens_and_metadata():
    docs = [np.arange(1, 6, dtype=np.uint32), np.arange(10, 13, dtype=np.uint32)]
    plan = [[(0, 0, 5)], [(1, 0, 3)]]
    rows = materialize(plan, docs, [("a", 0), ("b", 2)], ["s1", "s2"], row_len=6, pad_id=0, vocab_size=100)
    assert rows.tokens.dtype == np.uint16
    assert rows.tokens.tolist() == [[1, 2, 3, 4, 5, 0], [10, 11, 12, 0, 0, 0]]
    assert rows.lengths.tolist() == [5, 3]
    assert rows.doc_offsets == [[0], [0]] and rows.doc_ids == [["a"], ["b"]] and rows.doc_copies == [[0], [2]]
    assert rows.source_tokens == [{"s1": 5}, {"s2": 3}]


def test_parse_mix_and_errors():
    assert parse_mix("web=1, academic=2.5") == {"web": 1.0, "academic": 2.5}
    assert parse_mix("") == {}
    for bad in ("web", "web=x", "web=-1", "web=1,web=2", "=3", "web=nan"):
        with pytest.raises(MixtureError):
            parse_mix(bad)
    assert parse_mix("web=100") == {"web": 100.0}
    for huge in ("1e308", "100.5", "inf"):  # 1e308 packed until killed (copies per document), or overflowed
        with pytest.raises(MixtureError, match=f"'web' must be a finite number >= 0 and <= 100, got '{huge}'"):
            parse_mix(f"web={huge}")
    assert weight_for({"web": 2.0, "cc": 0.5}, "cc", "web") == 0.5  # a source overrides its kind
    assert weight_for({"web": 2.0}, "cc", "web") == 2.0
    assert weight_for({}, "cc", "web") == 1.0


def test_mixture_realized_within_one_percent_of_target():
    rng = np.random.default_rng(3)
    mix = {"web": 0.3, "academic": 2.5, "government": 1.0}
    tally = {k: {"weight": w, "input_tokens": 0, "output_tokens": 0} for k, w in mix.items()}
    for i in range(60000):
        kind = ("web", "academic", "government")[i % 3]
        n = int(rng.lognormal(np.log(300), 0.8)) + 1
        k = copies(f"doc-{i}", mix[kind], seed=11)
        assert int(mix[kind]) <= k <= int(mix[kind]) + 1
        tally[kind]["input_tokens"] += n
        tally[kind]["output_tokens"] += k * n
    report = mixture_report(mix, tally)
    for group in report["groups"].values():
        assert abs(group["realized_share"] - group["target_share"]) / group["target_share"] < 0.01
        assert abs(group["realized_weight"] - group["weight"]) / group["weight"] < 0.01
    assert copies("doc-1", 0.3, seed=11) == copies("doc-1", 0.3, seed=11)  # a pure function of (id, seed)


def test_groups_are_spread_and_stable():
    counts = np.bincount([group_of((f"k{i // 2}", i % 2), 8, 0) for i in range(8000)], minlength=8)
    assert counts.min() > 850 and counts.max() < 1150
    assert group_of(("k1", 0), 8, 0) == group_of(("k1", 0), 8, 0)
