"""Dedup decisions: the dedup steps shuffle ids, keys and signatures, never documents.

Exact and near dedup emit `(id, (reason, cluster))`; the sinks apply them while writing each output shard,
so a document crosses one shuffle in the whole run (into its shard). `reason` None marks a cluster's
representative, which keeps its text and names itself as `dup_cluster`.

Both steps rank a cluster's members with the same rule (source priority, then higher quality, then id),
so the representative of an exact cluster is also the best of those copies in any near cluster. A document
that is both is reported as the exact duplicate, and its `dup_cluster` names the near cluster's
representative: the exact one may itself be a near duplicate of a better document (three mirrors of a page
that adds a footer to a government text), and every duplicate names the document that was kept.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam

from pipeline.beamutil import decided

Decision = tuple[str | None, str]
RANK_CHARS = 20


def rank_prefix(kind: str, quality: float | None, priority: Sequence[str]) -> str:
    """20 chars whose string order is: source priority, then higher quality (None last)."""
    prio = list(priority).index(kind) if kind in priority else len(priority)
    if quality is None or not math.isfinite(quality):
        qenc = "z" * 16
    else:  # order-preserving hex of -quality: flip all bits of negatives, the sign bit of the rest
        bits = struct.unpack(">Q", struct.pack(">d", -float(quality) + 0.0))[0]
        qenc = f"{bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63:016x}"
    return f"{min(prio, 9999):04d}{qenc}"


def rank_node(doc: dict[str, Any], priority: Sequence[str]) -> str:
    """The document as a cluster member whose string order *is* the representative rule."""
    return rank_prefix(doc.get("kind", ""), doc.get("quality"), priority) + doc["id"]


def apply_decisions(doc: dict[str, Any], decisions: Iterable[Decision]) -> tuple[dict[str, Any], bool]:
    """(the document with its dedup outcome, whether a near decision was overridden by an exact one)."""
    by_reason: dict[str | None, str] = {}
    for reason, cluster in decisions:
        by_reason[reason] = min(cluster, by_reason.get(reason, cluster))
    if not by_reason or decided(doc):
        return doc, False
    if "dup_exact" in by_reason:  # the near root when there is one: the exact representative may be near-rejected
        cluster = by_reason.get("dup_near", by_reason["dup_exact"])
        return {**doc, "reject_reason": "dup_exact", "dup_cluster": cluster}, "dup_near" in by_reason
    if "dup_near" in by_reason:
        return {**doc, "reject_reason": "dup_near", "dup_cluster": by_reason["dup_near"]}, False
    return {**doc, "dup_cluster": doc["id"]}, False


def _join(item: tuple[str, dict[str, list[Any]]]):
    _, sides = item
    for doc in sides["doc"]:
        yield apply_decisions(doc, sides["decision"])[0]


class ApplyDecisions(beam.PTransform):
    """(documents, decisions) → documents, joined by id: for a dedup step used on its own (tests, benches)."""

    def expand(self, pcolls):
        docs, decisions = pcolls
        return (
            {"doc": docs | "ById" >> beam.Map(lambda d: (d["id"], d)), "decision": decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "Apply" >> beam.FlatMap(_join)
        )
