"""Quality filters in Beam: site-level line removal (a grouping step), then the per-document FilterChain."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apache_beam as beam

from filters.config import section
from pipeline.documents import TIMINGS_KEY, copy_doc


class ApplyFilters(beam.DoFn):
    """One FilterChain per worker (models and automata load once in setup)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = dict(cfg)

    def setup(self) -> None:
        from filters.chain import FilterChain

        self.chain = FilterChain(self.cfg)

    def process(self, doc: dict[str, Any]):
        result = self.chain.on_document(doc)
        doc = copy_doc(doc)
        timings = doc.setdefault(TIMINGS_KEY, {})
        timings["filters"] = sum(result.timings.values())
        for name, seconds in result.timings.items():
            timings[f"filter:{name}"] = seconds
        doc["text"] = result.text
        doc["quality"] = result.quality
        if result.meta:
            doc["meta"]["filters"] = result.meta
        if result.reject_reason:
            doc["reject_reason"] = result.reject_reason
            doc["meta"]["stats"] = result.stats
        yield doc


class FilterStep(beam.PTransform):
    """Input: documents still in play. Output: the same documents, cleaned, scored or rejected."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)

    def expand(self, docs):
        site = section("site_lines", self.cfg.get("site_lines"))
        if site["enabled"]:
            from pipeline.site_lines import SiteLines

            docs = docs | "SiteLines" >> SiteLines(site)
        return docs | "ApplyFilters" >> beam.ParDo(ApplyFilters(self.cfg))
