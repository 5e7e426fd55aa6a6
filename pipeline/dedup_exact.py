"""Exact dedup: one representative per NFKC-folded, whitespace-free text; the others `dup_exact`."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from filters.normalize import dedup_key
from pipeline.beamutil import split


def exact_key(text: str) -> str:
    return hashlib.sha256(dedup_key(text).encode("utf-8")).hexdigest()


def priority_key(priority: Sequence[str]):
    """Sort key for a cluster's members: source kind by configured priority, then `id` (stable, worker-free)."""
    rank = {kind: i for i, kind in enumerate(priority)}
    return lambda doc: (rank.get(doc["kind"], len(rank)), doc["id"])


def _resolve(item: tuple[str, Any], priority: tuple[str, ...]):
    _, members = item
    members = sorted(members, key=priority_key(priority))
    if len(members) == 1:
        yield "doc", members[0]
        return
    rep = members[0]
    for doc in members:
        doc = {**doc, "dup_cluster": rep["id"]}
        if doc["id"] != rep["id"]:
            doc["reject_reason"] = "dup_exact"
        yield "doc", doc
    yield "stats", {"dedup": {
        "exact_clusters": 1, "dup_exact": len(members) - 1, "exact_cluster_sizes": {str(len(members)): 1},
        "max_exact_cluster_size": len(members)}}


class ExactDedup(beam.PTransform):
    """Input: documents not yet rejected. Output: (documents, stats)."""

    def __init__(self, priority: Sequence[str]) -> None:
        super().__init__()
        self.priority = tuple(priority)

    def expand(self, docs):
        out = (
            docs
            | "KeyByText" >> beam.Map(lambda d: (exact_key(d["text"]), d))
            | "GroupByText" >> beam.GroupByKey()
            | "PickRepresentative" >> beam.FlatMap(_resolve, self.priority)
        )
        parts = split(out, "Split", ("doc", "stats"))
        return parts["doc"], parts["stats"]
