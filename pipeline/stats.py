"""Run statistics as nested dicts of numbers, merged by addition so any runner can combine them."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam

# Statistics that are maxima, named one by one: any key starting with `max_` was one, and the rejection counts
# under rules named so (max_katakana_fraction...) kept the largest shard's count instead of their sum.
MAXIMA = frozenset({"max_exact_cluster_size"})


def merge_into(acc: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """Add `part` into `acc` in place: numbers sum, dicts merge recursively, `MAXIMA` keep the maximum."""
    for key, value in part.items():
        if isinstance(value, Mapping):
            merge_into(acc.setdefault(key, {}), value)
        elif key in MAXIMA:
            acc[key] = max(acc.get(key, value), value)
        else:
            acc[key] = acc.get(key, 0) + value
    return acc


def merge_all(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    acc: dict[str, Any] = {}
    for part in parts:
        merge_into(acc, part)
    return acc


class MergeStats(beam.CombineFn):
    """Combine stats dicts from every branch of a pipeline into one."""

    def create_accumulator(self) -> dict[str, Any]:
        return {}

    def add_input(self, acc: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
        return merge_into(acc, part)

    def merge_accumulators(self, accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
        return merge_all(accs)

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc
