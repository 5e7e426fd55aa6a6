"""Exact dedup: one representative per NFKC-folded, whitespace-free text; the others `dup_exact`.

Only (key, ranked id) pairs are shuffled; the decisions are applied by the sinks (pipeline/decisions.py).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from filters.normalize import dedup_key
from pipeline.beamutil import split
from pipeline.decisions import RANK_CHARS, rank_node


def exact_key(text: str) -> str:
    return hashlib.sha256(dedup_key(text).encode("utf-8")).hexdigest()


def _resolve(item: tuple[str, Any]):
    _, nodes = item
    nodes = sorted(nodes)
    if len(nodes) == 1:
        return
    rep = nodes[0][RANK_CHARS:]
    yield "decision", (rep, (None, rep))
    for node in nodes[1:]:
        yield "decision", (node[RANK_CHARS:], ("dup_exact", rep))
    yield "stats", {"dedup": {
        "exact_clusters": 1, "dup_exact": len(nodes) - 1, "exact_cluster_sizes": {str(len(nodes)): 1},
        "max_exact_cluster_size": len(nodes)}}


class ExactDedup(beam.PTransform):
    """Input: documents not yet rejected. Output: (decisions, stats)."""

    def __init__(self, priority: Sequence[str]) -> None:
        super().__init__()
        self.priority = tuple(priority)

    def expand(self, docs):
        out = (
            docs
            | "KeyByText" >> beam.Map(lambda d, prio: (exact_key(d["text"]), rank_node(d, prio)), self.priority)
            | "GroupByText" >> beam.GroupByKey()
            | "PickRepresentative" >> beam.FlatMap(_resolve)
        )
        parts = split(out, "Split", ("decision", "stats"))
        return parts["decision"], parts["stats"]
