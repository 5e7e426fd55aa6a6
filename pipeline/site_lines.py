"""Site-level frequent-line removal: a line (navigation, copyright, share buttons) that occurs in at
least `min_docs` documents of the same host is removed from all of them.

Graph, all keyed joins (no side input, so memory does not grow with the number of hosts):
  docs ─► ((host, line_key), doc_id) pairs ─► count per (host, line_key)  [two-level CombinePerKey]
      ─► frequent keys ─► join with the pairs ─► (doc_id, line_key) removals ─► join with docs by id.
Line identity comes from `filters.lines.line_key` (NFKC, spaces dropped, digits folded). The removal
set of a document does not depend on element order, so the result is deterministic on any runner.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import apache_beam as beam

from filters.config import FilterConfigError, section
from filters.hosts import host_of
from filters.lines import document_line_keys, remove_keyed_lines
from pipeline.errors import ConfigError


def _options(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """`min_docs` and `fanout`, checked as the config parse checks them."""
    try:
        opts = section("site_lines", cfg)
    except FilterConfigError as exc:
        raise ConfigError(str(exc)) from None
    return opts["min_docs"], opts["fanout"]


def _line_pairs(doc: dict[str, Any]):
    host = host_of(doc.get("url"))
    if host:
        for key in sorted(document_line_keys(doc["text"])):
            yield (host, key), doc["id"]


def _removals(item):
    (_, key), groups = item
    if groups["frequent"]:
        for doc_id in groups["ids"]:
            yield doc_id, key


def _apply(item):
    _, groups = item
    keys = set(groups["remove"])
    for doc in groups["doc"]:
        text, removed = remove_keyed_lines(doc["text"], keys)
        if removed:
            doc = {**doc, "text": text, "meta": {**doc["meta"], "site_lines_removed": removed}}
        yield doc


class SiteLines(beam.PTransform):
    """Documents in, the same documents out with site-frequent lines removed (`meta.site_lines_removed`)."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.min_docs, self.fanout = _options(cfg or {})

    def expand(self, docs):
        min_docs = self.min_docs
        fanout = self.fanout
        hosted = docs | "Hosted" >> beam.Filter(lambda d: bool(host_of(d.get("url"))))
        hostless = docs | "Hostless" >> beam.Filter(lambda d: not host_of(d.get("url")))
        pairs = hosted | "LinePairs" >> beam.FlatMap(_line_pairs)
        # Two-level count instead of `with_hot_key_fanout` (which emits tagged outputs, and Beam's DaskRunner
        # mixes those up): a site's navigation line is a hot key, spread over `fanout` partial sums first.
        frequent = (
            pairs
            | "SpreadHotKeys" >> beam.Map(lambda kv: ((kv[0], zlib.crc32(kv[1].encode()) % fanout), 1))
            | "PartialCounts" >> beam.CombinePerKey(sum)
            | "Unspread" >> beam.Map(lambda kv: (kv[0][0], kv[1]))
            | "CountLineDocs" >> beam.CombinePerKey(sum)
            | "Frequent" >> beam.Filter(lambda kv: kv[1] >= min_docs)
        )
        removals = (
            {"ids": pairs, "frequent": frequent}
            | "JoinFrequent" >> beam.CoGroupByKey()
            | "Removals" >> beam.FlatMap(_removals)
        )
        cleaned = (
            {"doc": hosted | "ById" >> beam.Map(lambda d: (d["id"], d)), "remove": removals}
            | "JoinDocs" >> beam.CoGroupByKey()
            | "RemoveLines" >> beam.FlatMap(_apply)
        )
        return (cleaned, hostless) | "Merge" >> beam.Flatten()
