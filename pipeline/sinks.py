"""Sinks that write their own shards: deterministic names and row order, whatever the runner or worker count.

Beam's file sinks name shards by bundle and (on some runners) leave temp folders behind; here a shard is
`hash(id) mod N` with N fixed by the input size, rows are sorted by `id`, and everything lands in a
temporary folder that the driver renames into place only after the run balanced (see `commit`).
"""
from __future__ import annotations

import json
import time
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.documents import SCHEMAS, TIMINGS_KEY, destination
from pipeline.fsutil import join, write_bytes

COUNT_KEY = {"curated": "kept", "rejected": "rejected", "quarantine": "quarantined"}
SNIPPET_CHARS = 300


def shard_of(doc_id: str, num_shards: int) -> int:
    return int(doc_id[:8], 16) % num_shards


def _row(doc: dict[str, Any], dest: str) -> dict[str, Any]:
    row = {f.name: doc.get(f.name) for f in SCHEMAS[dest]}
    row["meta"] = json.dumps(doc.get("meta") or {}, ensure_ascii=False, sort_keys=True)
    return row


def _add_timings(stats: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    """Per-stage seconds and normalization counts carried by the documents, summed for stats.json."""
    stages: dict[str, dict[str, float]] = stats.setdefault("stages", {})
    rules: dict[str, float] = stats.setdefault("filters", {}).setdefault("timings", {})
    fired: dict[str, int] = stats.setdefault("normalize", {})
    for d in docs:
        for stage, seconds in (d.get(TIMINGS_KEY) or {}).items():
            if stage.startswith("filter:"):
                rules[stage[7:]] = rules.get(stage[7:], 0.0) + seconds
                continue
            t = stages.setdefault(stage, {"seconds": 0.0, "docs": 0})
            t["seconds"] += seconds
            t["docs"] += 1
        for rule, n in (d["meta"].get("normalize") or {}).items():
            fired[rule] = fired.get(rule, 0) + n


class WriteShard(beam.DoFn):
    """((destination, shard), documents) → one Parquet file; yields what it wrote as stats."""

    def __init__(self, tmp_dir: str) -> None:
        self.tmp_dir = tmp_dir

    def process(self, item: tuple[tuple[str, int], Any]):
        (dest, shard), docs = item
        start = time.perf_counter()
        docs = sorted(docs, key=lambda d: d["id"])
        table = pa.Table.from_pylist([_row(d, dest) for d in docs], schema=SCHEMAS[dest])
        path = join(self.tmp_dir, dest, f"part-{shard:05d}.parquet")
        with FileSystems.create(path) as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=4096)
        key = COUNT_KEY[dest]
        stats: dict[str, Any] = {"sources": {}, "reasons": {}, "outputs": {dest: {"files": 1, "rows": len(docs)}}}
        for d in docs:
            src = stats["sources"].setdefault(d["source"], {})
            src[f"{key}_docs"] = src.get(f"{key}_docs", 0) + 1
            src[f"{key}_chars"] = src.get(f"{key}_chars", 0) + len(d["text"])
            if dest == "rejected":
                by = src.setdefault("rejected_by_reason", {})
                by[d["reject_reason"]] = by.get(d["reject_reason"], 0) + 1
                r = stats["reasons"].setdefault(d["reject_reason"], {"docs": 0, "chars": 0})
                r["docs"] += 1
                r["chars"] += len(d["text"])
            if dest == "curated":
                lic = stats.setdefault("licenses", {}).setdefault(d["license"], {"docs": 0, "chars": 0})
                lic["docs"] += 1
                lic["chars"] += len(d["text"])
        _add_timings(stats, docs)
        stats["stages"]["write"] = {"seconds": time.perf_counter() - start, "docs": len(docs)}
        yield stats


def _sample_key(doc: dict[str, Any]) -> tuple[str, tuple[str, str, str]]:
    reason = doc["reject_reason"] or "quarantine"
    snippet = doc["error"] if doc.get("error") else doc["text"][:SNIPPET_CHARS]
    return reason, (doc["id"], doc.get("url") or "", snippet)


def _write_samples(item: tuple[str, list[tuple[str, str, str]]], tmp_dir: str):
    reason, rows = item
    lines = [json.dumps({"id": i, "url": u or None, "text": s}, ensure_ascii=False) for i, u, s in sorted(rows)]
    write_bytes(join(tmp_dir, "samples", f"{reason}.jsonl"), ("\n".join(lines) + "\n").encode("utf-8"))
    yield {"outputs": {"samples": {"files": 1, "rows": len(rows)}}}


class WriteOutputs(beam.PTransform):
    """All documents → curated/rejected/quarantine Parquet + samples per reason; output: stats dicts."""

    def __init__(self, tmp_dir: str, num_shards: int, samples_per_reason: int) -> None:
        super().__init__()
        self.tmp_dir, self.num_shards, self.samples = tmp_dir, num_shards, samples_per_reason

    def expand(self, docs):
        n = self.num_shards
        written = (
            docs
            | "KeyByShard" >> beam.Map(lambda d: ((destination(d), shard_of(d["id"], n)), d))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShard(self.tmp_dir))
        )
        if not self.samples:
            return written
        samples = (
            docs
            | "NotKept" >> beam.Filter(lambda d: destination(d) != "curated")
            | "SampleKey" >> beam.Map(_sample_key)
            | "FirstIdsPerReason" >> beam.combiners.Top.SmallestPerKey(self.samples)
            | "WriteSamples" >> beam.FlatMap(_write_samples, self.tmp_dir)
        )
        return (written, samples) | "OutputStats" >> beam.Flatten()

