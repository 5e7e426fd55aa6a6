"""Sinks that write their own shards: deterministic names and row order, whatever the runner or worker count.

Beam's file sinks name shards by bundle and (on some runners) leave temp folders behind; here a shard is
`hash(id) mod N` with N fixed by the input size, rows are sorted by `id`, and everything lands in a
temporary folder that the driver renames into place only after the run balanced (see `commit`).

Documents never pass through the runner's shuffle: the step that produces them appends them to spill files
of their output shard (map-side, as Hadoop and datatrove do), and only (shard, 1) counts and the dedup
decisions are shuffled. The local runners hold every shuffled byte in the driver's memory, so this keeps
the driver and the workers' memory independent of document bytes, and the write step reads in parallel.
Steps that need some documents' text later (near-dup verification) read it back the same way
(`SpilledTexts`).
"""
from __future__ import annotations

import json
import struct
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.beamutil import split
from pipeline.decisions import apply_decisions
from pipeline.documents import NORMALIZE_KEY, SCHEMAS, TIMINGS_KEY, destination, pack, unpack
from pipeline.fsutil import join, list_files, write_bytes

COUNT_KEY = {"curated": "kept", "rejected": "rejected", "quarantine": "quarantined"}
SNIPPET_CHARS = 300


def shard_of(doc_id: str, num_shards: int) -> int:
    return int(doc_id[:8], 16) % num_shards


ROW_GROUP_ROWS = 4096


def _table(docs: list[dict[str, Any]], dest: str) -> pa.Table:
    """Spilled documents (`meta` already its JSON text) → rows of `dest`, built column by column (half the
    time of row dicts)."""
    schema = SCHEMAS[dest]
    return pa.Table.from_pydict({name: [d.get(name) for d in docs] for name in schema.names}, schema=schema)


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
        for rule, n in d[NORMALIZE_KEY].items():
            fired[rule] = fired.get(rule, 0) + n


SPILL_DIR = "_spill"
SPILL_FLUSH_BYTES = 32 * 1024 * 1024  # per producing DoFn instance: bounds its memory whatever the bundle size
_LEN = struct.Struct("<I")


def _spill_dir(tmp_dir: str, shard: int) -> str:
    return join(tmp_dir, SPILL_DIR, f"{shard:05d}")


class SpillDocuments(beam.DoFn):
    """doc → (shard, 1); the document itself goes to a spill file of its shard, written by this step.

    A file becomes visible (renamed to `.bin`) only when complete. A retried bundle leaves an orphan file
    behind; `read_spill` finds out from the shard's document count and drops the repeated documents.
    """

    def __init__(self, tmp_dir: str, num_shards: int) -> None:
        self.tmp_dir, self.num_shards = tmp_dir, num_shards

    def start_bundle(self) -> None:
        self.buffers: dict[int, list[bytes]] = {}
        self.size = 0

    def process(self, doc: dict[str, Any]):
        shard = shard_of(doc["id"], self.num_shards)
        blob = pack(doc)
        self.buffers.setdefault(shard, []).append(_LEN.pack(len(blob)) + blob)
        self.size += len(blob)
        if self.size >= SPILL_FLUSH_BYTES:
            self._flush()
        yield shard, 1

    def finish_bundle(self) -> None:  # emits nothing (Beam's DaskRunner drops finish_bundle outputs)
        self._flush()

    def _flush(self) -> None:
        for shard, blobs in self.buffers.items():
            name = join(_spill_dir(self.tmp_dir, shard), uuid.uuid4().hex)
            write_bytes(name + ".part", b"".join(blobs))
            FileSystems.rename([name + ".part"], [name + ".bin"])
        self.buffers, self.size = {}, 0


def _spill_blobs(tmp_dir: str, shard: int) -> list[bytes]:
    """The shard's packed documents as its spill files hold them (a retried bundle's orphan file repeats some)."""
    blobs = []
    for path in list_files(join(_spill_dir(tmp_dir, shard), "*.bin")):
        with FileSystems.open(path) as fh:
            data = fh.read()
        pos = 0
        while pos < len(data):
            (size,) = _LEN.unpack_from(data, pos)
            blobs.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
    return blobs


def _one_copy_each(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One copy of each document. A retried bundle recomputes its documents, and their stage timings
    (`TIMINGS_KEY`, measured again) differ from the orphan copies': the copies are compared without them, or
    no orphan is ever recognised and a retry fails the run."""
    first: dict[str, dict[str, Any]] = {}
    for doc in docs:
        key = json.dumps({k: v for k, v in doc.items() if k != TIMINGS_KEY}, ensure_ascii=False, sort_keys=True)
        first.setdefault(key, doc)
    return list(first.values())


def read_spill(tmp_dir: str, shard: int, expected: int) -> list[dict[str, Any]]:
    """The shard's documents from its spill files; exactly `expected` of them or a loud error."""
    docs = [unpack(b) for b in _spill_blobs(tmp_dir, shard)]
    if len(docs) != expected:  # a retried bundle wrote its documents twice: keep one copy of each
        docs = _one_copy_each(docs)
    if len(docs) != expected:
        raise RuntimeError(f"output shard {shard}: spill files under {_spill_dir(tmp_dir, shard)} hold "
                           f"{len(docs)} documents, the producing steps counted {expected}")
    return docs


class WriteShard(beam.DoFn):
    """(shard, {count, decisions}) → the shard's spilled documents, decided → one Parquet file per
    destination; → stats, samples."""

    def __init__(self, tmp_dir: str, samples_per_reason: int) -> None:
        self.tmp_dir, self.samples = tmp_dir, samples_per_reason

    def process(self, item: tuple[int, dict[str, list[Any]]]):
        shard, sides = item
        start = time.perf_counter()
        docs = read_spill(self.tmp_dir, shard, sum(sides["count"]))
        decisions: dict[str, list[Any]] = {}
        for doc_id, decision in sides["decision"]:
            decisions.setdefault(doc_id, []).append(decision)
        by_dest: dict[str, list[dict[str, Any]]] = {}
        overridden = 0
        for doc in docs:
            doc, near_too = apply_decisions(doc, decisions.get(doc["id"], ()))
            overridden += near_too
            by_dest.setdefault(destination(doc), []).append(doc)
        stats: dict[str, Any] = {"sources": {}, "reasons": {}, "outputs": {}}
        collisions = id_collisions(docs)
        if collisions:
            stats["id_collisions"] = collisions
        if overridden:
            stats["dedup"] = {"near_also_exact": overridden}
        for dest, docs in sorted(by_dest.items()):
            docs.sort(key=lambda d: d["id"])
            self._write(dest, shard, docs)
            _count(stats, dest, docs)
            _add_timings(stats, docs)
            if dest != "curated":
                yield from (("sample", s) for s in _first_samples(docs, self.samples))
        stats.setdefault("stages", {})["write"] = {
            "seconds": time.perf_counter() - start, "docs": sum(map(len, by_dest.values()))}
        yield "stats", stats

    def _write(self, dest: str, shard: int, docs: list[dict[str, Any]]) -> None:
        """One row group at a time: the whole shard's rows and Arrow table, beside its documents, set a
        worker's peak (near dedup, 300k documents, 64 MB shards: 749 → 671 MB)."""
        with (FileSystems.create(join(self.tmp_dir, dest, f"part-{shard:05d}.parquet")) as fh,
              pq.ParquetWriter(fh, SCHEMAS[dest], compression="zstd") as writer):
            for start in range(0, len(docs), ROW_GROUP_ROWS):
                writer.write_table(_table(docs[start:start + ROW_GROUP_ROWS], dest))


def id_collisions(docs: list[dict[str, Any]], examples: int = 3) -> dict[str, Any]:
    """Documents of this shard that share an id (all copies of an id land in the same shard), per source,
    with a few of their source ids. A file's repeats are renamed on reading (`FileIds`), so these are
    records of different files with the same id; the driver refuses to commit such a run."""
    counts = Counter(d["id"] for d in docs)
    shared: dict[str, list[str]] = {}
    for d in docs:
        if counts[d["id"]] > 1:
            shared.setdefault(d["source"], []).append(d["source_id"])
    return {source: {"docs": len(ids), "source_ids": dict.fromkeys(sorted(set(ids))[:examples], 1)}
            for source, ids in shared.items()}


def _count(stats: dict[str, Any], dest: str, docs: list[dict[str, Any]]) -> None:
    key = COUNT_KEY[dest]
    stats["outputs"][dest] = {"files": 1, "rows": len(docs)}
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


def _first_samples(docs: list[dict[str, Any]], k: int) -> list[tuple[str, tuple[str, str, str]]]:
    """The k smallest ids per reason of this shard (docs are sorted by id): what the run-wide top-k needs."""
    taken: dict[str, int] = {}
    out = []
    for doc in docs:
        reason = doc["reject_reason"] or "quarantine"
        if taken.get(reason, 0) < k:
            taken[reason] = taken.get(reason, 0) + 1
            snippet = doc["error"] if doc.get("error") else doc["text"][:SNIPPET_CHARS]
            out.append((reason, (doc["id"], doc.get("url") or "", snippet)))
    return out


def _write_samples(item: tuple[str, list[tuple[str, str, str]]], tmp_dir: str):
    reason, rows = item
    lines = [json.dumps({"id": i, "url": u or None, "text": s}, ensure_ascii=False) for i, u, s in sorted(rows)]
    write_bytes(join(tmp_dir, "samples", f"{reason}.jsonl"), ("\n".join(lines) + "\n").encode("utf-8"))
    yield {"outputs": {"samples": {"files": 1, "rows": len(rows)}}}


class Spill(beam.PTransform):
    """Document collections → (shard, count): each collection is spilled where it is produced
    (`SpillDocuments`) and its counts combined there, so per bundle one count per shard reaches a shuffle."""

    def __init__(self, tmp_dir: str, num_shards: int) -> None:
        super().__init__()
        self.tmp_dir, self.num_shards = tmp_dir, num_shards

    def expand(self, doc_colls):
        counts = [
            docs | f"Spill{i}" >> beam.ParDo(SpillDocuments(self.tmp_dir, self.num_shards))
            | f"Count{i}" >> beam.CombinePerKey(sum)
            for i, docs in enumerate(doc_colls)]
        return counts | "AllCounts" >> beam.Flatten()


def _wanted_texts(item: tuple[int, Iterable[tuple[str, Any] | None]], tmp_dir: str):
    """A shard's wanted (id, tag)s → (tag, text or None). No count check is needed here: a repeated
    document gives the same text, and a missing one gives None, which verification refuses."""
    shard, wanted = item
    wanted = [w for w in wanted if w is not None]  # None: a count that only made the group wait
    if not wanted:
        return
    ids = {doc_id for doc_id, _ in wanted}
    texts = {}
    for blob in _spill_blobs(tmp_dir, shard):  # one document unpacked at a time
        doc = unpack(blob)
        if doc["id"] in ids:
            texts[doc["id"]] = doc["text"]
    for doc_id, tag in wanted:
        yield tag, texts.get(doc_id)


class SpilledTexts(beam.PTransform):
    """(id, tag) → (tag, text, or None for an id the shard does not hold), read back from the spill files
    of each id's shard instead of shuffling every document's text to a join.

    A shard must not be read before every bundle that spills into it has finished. With `first`, the
    spill counts join the group of wanted ids, which therefore waits for them. A later read in the same
    chain gets ids that came out of that group, so it has waited already and groups them alone: the local
    runner copies every input of a two-input group once more (it materializes the Flatten), and near
    dedup's second read carries a shingle set per edge, ~1 GB at 300k documents. No side input either:
    Beam's DaskRunner recomputes the upstream of each one.
    """

    def __init__(self, tmp_dir: str, num_shards: int, counts: beam.PCollection, first: bool) -> None:
        super().__init__()
        self.tmp_dir, self.num_shards, self.counts, self.first = tmp_dir, num_shards, counts, first

    def expand(self, wanted):
        n = self.num_shards
        keyed = wanted | "WantedShard" >> beam.Map(lambda kv: (shard_of(kv[0], n), kv))
        if self.first:
            waits = self.counts | "SpillDone" >> beam.Map(lambda kv: (kv[0], None))
            keyed = (keyed, waits) | "AfterSpill" >> beam.Flatten()
        return (
            keyed
            | "GroupWanted" >> beam.GroupByKey()
            | "ReadWanted" >> beam.FlatMap(_wanted_texts, self.tmp_dir)
        )


class WriteOutputs(beam.PTransform):
    """(dedup decisions, spill counts) → curated/rejected/quarantine Parquet + samples; → stats.

    A shard's count and its decisions meet in one small group, and `WriteShard` reads the shard's documents
    back from its spill files (`Spill`).
    """

    def __init__(self, tmp_dir: str, num_shards: int, samples_per_reason: int) -> None:
        super().__init__()
        self.tmp_dir, self.num_shards, self.samples = tmp_dir, num_shards, samples_per_reason

    def expand(self, pcolls):
        decisions, counts = pcolls
        n = self.num_shards
        by_shard = {"count": counts,
                    "decision": decisions | "DecisionShard" >> beam.Map(lambda kv: (shard_of(kv[0], n), kv))}
        written = split(
            by_shard
            | "GroupByShard" >> beam.CoGroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShard(self.tmp_dir, self.samples)), "Written", ("stats", "sample"))
        if not self.samples:
            return written["stats"]
        samples = (
            written["sample"]
            | "FirstIdsPerReason" >> beam.combiners.Top.SmallestPerKey(self.samples)
            | "WriteSamples" >> beam.FlatMap(_write_samples, self.tmp_dir)
        )
        return (written["stats"], samples) | "OutputStats" >> beam.Flatten()
