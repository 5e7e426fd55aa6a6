"""Quality filters in Beam: site-level line removal (a grouping step), then the per-document FilterChain."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


class ApplyFilters(beam.DoFn):
    """One FilterChain per worker (models and automata load once in setup)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = dict(cfg)

    def setup(self) -> None:
        from filters.chain import FilterChain

        self.chain = FilterChain(self.cfg)

    def start_bundle(self) -> None:
        self.timings: dict[str, float] = defaultdict(float)
        self.docs = 0

    def process(self, doc: dict[str, Any]):
        result = self.chain(doc["text"], url=doc.get("url"), kind=doc["kind"])
        self.docs += 1
        for name, seconds in result.timings.items():
            self.timings[name] += seconds
        doc["text"] = result.text
        doc["quality"] = result.quality
        if result.meta:
            doc["meta"]["filters"] = result.meta
        if result.reject_reason:
            doc["reject_reason"] = result.reject_reason
            doc["meta"]["stats"] = result.stats
        yield doc

    def finish_bundle(self):
        stats = {"filters": {"timings": dict(self.timings)},
                 "stages": {"filters": {"seconds": sum(self.timings.values()), "docs": self.docs}}}
        yield beam.pvalue.TaggedOutput("stats", GlobalWindows.windowed_value(stats))


class FilterStep(beam.PTransform):
    """Input: documents still in play. Output: (documents, stats)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)

    def expand(self, docs):
        site = self.cfg.get("site_lines") or {}
        if site.get("enabled", False):
            from pipeline.site_lines import SiteLines

            docs = docs | "SiteLines" >> SiteLines(site)
        out = docs | "ApplyFilters" >> beam.ParDo(ApplyFilters(self.cfg)).with_outputs("stats", main="docs")
        return out.docs, out.stats
