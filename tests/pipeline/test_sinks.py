"""Spill files: documents reach their output shard through files, counted, so nothing is lost or doubled."""
from __future__ import annotations

import glob
import json
import os

import pytest

from pipeline import sinks
from pipeline.documents import NORMALIZE_KEY
from pipeline.sinks import SpillDocuments, read_spill, shard_of

SHARDS = 3


def _docs(n: int) -> list[dict]:
    return [{"id": f"{i:08x}" + "0" * 24, "text": f"本文{i}です。" * (i % 5 + 1),
             "meta": {"n": i, "title": "題", **({"normalize": {"crlf": i}} if i % 2 else {})}} for i in range(n)]


def _spilled(doc: dict) -> dict:
    """What a spill file gives back: meta as the JSON text its Parquet column holds, its normalize counts beside."""
    meta = json.dumps(doc["meta"], ensure_ascii=False, sort_keys=True)
    return {**doc, "meta": meta, NORMALIZE_KEY: doc["meta"].get("normalize", {})}


def _spill(tmp_dir: str, docs: list[dict]) -> dict[int, int]:
    """One bundle through SpillDocuments, as a runner drives it; returns the emitted counts per shard."""
    fn = SpillDocuments(tmp_dir, SHARDS)
    fn.start_bundle()
    counts: dict[int, int] = {}
    for doc in docs:
        for shard, one in fn.process(doc):
            counts[shard] = counts.get(shard, 0) + one
    fn.finish_bundle()
    return counts


def _merge(*counts: dict[int, int]) -> dict[int, int]:
    total: dict[int, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def test_documents_come_back_by_shard_whatever_the_bundles(tmp_path):
    docs = _docs(40)
    counts = _merge(_spill(str(tmp_path), docs[:25]), _spill(str(tmp_path), docs[25:]))
    for shard in range(SHARDS):
        back = read_spill(str(tmp_path), shard, counts.get(shard, 0))
        expected = [_spilled(d) for d in docs if shard_of(d["id"], SHARDS) == shard]
        assert sorted(back, key=lambda d: d["id"]) == expected
    assert not glob.glob(str(tmp_path / "**" / "*.part"), recursive=True)


def test_a_full_buffer_is_flushed_before_the_bundle_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "SPILL_FLUSH_BYTES", 200)
    docs = _docs(30)
    counts = _spill(str(tmp_path), docs)
    files = glob.glob(str(tmp_path / "_spill" / "*" / "*.bin"))
    assert len(files) > SHARDS  # several files per shard: memory stayed bounded by the flush size
    assert sum(len(read_spill(str(tmp_path), s, counts[s])) for s in counts) == len(docs)


def test_a_retried_bundle_does_not_double_documents(tmp_path):
    docs = _docs(20)
    counts = _spill(str(tmp_path), docs)
    _spill(str(tmp_path), docs)  # the runner retried the bundle: its first files are orphans now
    for shard, n in counts.items():
        back = read_spill(str(tmp_path), shard, n)
        assert len(back) == n == len({d["id"] for d in back})


def test_a_lost_spill_file_fails_loudly(tmp_path):
    counts = _spill(str(tmp_path), _docs(20))
    shard = max(counts, key=counts.get)
    [path] = glob.glob(str(tmp_path / "_spill" / f"{shard:05d}" / "*.bin"))
    os.remove(path)
    with pytest.raises(RuntimeError, match=f"output shard {shard}: .* hold 0 documents, the producing steps "
                                           f"counted {counts[shard]}"):
        read_spill(str(tmp_path), shard, counts[shard])


def test_a_half_written_file_is_never_read(tmp_path):
    counts = _spill(str(tmp_path), _docs(10))
    shard = next(iter(counts))
    (tmp_path / "_spill" / f"{shard:05d}" / "crashed.part").write_bytes(b"\x10\x00\x00\x00{\"id\"")
    assert len(read_spill(str(tmp_path), shard, counts[shard])) == counts[shard]


def test_wanted_texts_come_from_the_shard_and_a_missing_one_is_none(tmp_path):
    """What near-dup verification reads back: one answer per wanted (id, tag), repeats included; the
    count markers that made the group wait are skipped, and an orphan file's repeated documents are harmless."""
    docs = _docs(12)
    counts = _spill(str(tmp_path), docs)
    shard = shard_of(docs[0]["id"], SHARDS)
    mine = [d for d in docs if shard_of(d["id"], SHARDS) == shard]
    _spill(str(tmp_path), mine)  # a retried bundle's orphan file
    missing = "f" * 32
    want = [None, (mine[0]["id"], "a"), (mine[-1]["id"], "b"), (mine[0]["id"], "c"), (missing, "d")]
    got = list(sinks._wanted_texts((shard, iter(want)), str(tmp_path)))
    assert got == [("a", mine[0]["text"]), ("b", mine[-1]["text"]), ("c", mine[0]["text"]), ("d", None)]
    assert list(sinks._wanted_texts((shard, iter([None])), str(tmp_path))) == []
    assert counts[shard] == len(mine)


def test_a_retried_bundle_of_prepared_documents_is_recognised(tmp_path):
    """A retry recomputes the bundle's documents, so the orphan copies' stage timings differ from the retry's:
    the copies are still the same documents (they were compared byte for byte, and every real retry failed)."""
    from pipeline.config import parse_config
    from pipeline.documents import from_reader
    from pipeline.prepare import Prepare
    from pipeline.sources.base import RawDoc

    cfg = parse_config({"sources": [{"name": "s", "kind": "web", "format": "jsonl", "paths": [__file__],
                                     "license": "x"}]})
    raw = [from_reader(cfg.sources[0], RawDoc(f"r{i}", text=f"吾輩は猫である。名前はまだ無い。{i}")) for i in range(20)]
    prepare = Prepare(cfg)
    prepare.setup()

    def attempt() -> dict[int, int]:
        return _spill(str(tmp_path), [doc for d in raw for doc in prepare.process(d)])

    attempt()  # its files stay behind; the runner drops its counts and retries the bundle
    counts = attempt()
    for shard, n in counts.items():
        back = read_spill(str(tmp_path), shard, n)
        assert len(back) == n == len({d["id"] for d in back})
    assert sum(counts.values()) == len(raw)
