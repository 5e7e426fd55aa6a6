"""Arrow shards: documents survive packing + writing + reading exactly; dtype follows the vocabulary size."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from trainer_bridge.manifest import PackSettings, write_local
from trainer_bridge.shards import ShardReader


def synthetic_docs(n: int, vocab: int, seed: int, eos: int = 2):
    """(id, source, kind, license, tokens + EOS) with lognormal lengths and ids spread over the vocabulary."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        length = int(np.clip(rng.lognormal(np.log(30), 1.0), 1, 400))
        tokens = np.append(rng.integers(4, vocab, length), eos).astype(np.uint32)
        kind = ("web", "academic", "government")[i % 3]
        docs.append((f"doc{i:05d}", f"src-{kind}", kind, "CC-BY-4.0", tokens))
    return docs


def tokenizer_entry(vocab: int) -> dict:
    return {"sha256": "0" * 64, "vocab_size": vocab, "eos_id": 2, "pad_id": 3, "file": "synthetic"}


def reassemble(paths) -> dict[str, np.ndarray]:
    """Rebuild every document from rows via doc_ids / doc_positions / doc_offsets (independent of packing)."""
    pieces: dict[str, list[tuple[int, list[int]]]] = {}
    for path in paths:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        for row in table.to_pylist():
            bounds = row["doc_offsets"] + [row["length"]]
            assert all(t == 3 for t in row["tokens"][row["length"]:])  # padding is the pad id
            for i, key in enumerate(row["doc_ids"]):
                pieces.setdefault(key, []).append((row["doc_positions"][i], row["tokens"][bounds[i]: bounds[i + 1]]))
    out = {}
    for key, parts in pieces.items():
        parts.sort()
        at = 0
        for position, tokens in parts:
            assert position == at  # pieces tile the document with no gap or overlap
            at += len(tokens)
        out[key] = np.concatenate([np.asarray(t, dtype=np.int64) for _, t in parts])
    return out


@pytest.mark.parametrize("packing", ["bestfit", "concat"])
def test_documents_round_trip_through_shards(tmp_path, packing):
    docs = synthetic_docs(400, 2000, seed=1)
    settings = PackSettings(seq_len=63, vocab_size=2000, eos_id=2, pad_id=3, packing=packing, shard_bytes=20_000)
    manifest = write_local(str(tmp_path), docs, settings, tokenizer_entry(2000))
    assert len(manifest["shards"]) > 1
    back = reassemble(tmp_path / s["file"] for s in manifest["shards"])
    assert set(back) == {d[0] for d in docs}
    for doc_id, _, _, _, tokens in docs:
        assert back[doc_id].tolist() == tokens.tolist()
    t = manifest["totals"]
    assert t["tokens"] == sum(len(d[4]) for d in docs)
    assert t["rows"] * 64 == t["tokens"] + t["padding_tokens"]
    assert sum(s["rows"] for s in manifest["shards"]) == t["rows"]
    assert sum(v["tokens"] for v in manifest["by_kind"].values()) == t["tokens"]
    assert manifest["licenses"]["CC-BY-4.0"]["docs"] == 400
    if packing == "bestfit":
        assert t["split_docs"] == sum(len(d[4]) > 64 for d in docs)


def test_shard_columns_and_zero_copy_reader(tmp_path):
    docs = synthetic_docs(50, 1000, seed=2)
    manifest = write_local(str(tmp_path), docs, PackSettings(31, 1000, 2, 3), tokenizer_entry(1000))
    path = str(tmp_path / manifest["shards"][0]["file"])
    schema = pa.ipc.open_file(path).schema
    assert schema.field("tokens").type == pa.list_(pa.uint16(), 32)
    assert schema.field("doc_offsets").type == pa.list_(pa.int32())
    assert schema.field("source_tokens").type == pa.map_(pa.string(), pa.int32())
    reader = ShardReader(path)
    table = reader.table()
    for i in (0, reader.num_rows - 1):
        row = table.slice(i, 1).to_pylist()[0]
        assert reader.tokens(i).tolist() == row["tokens"]
        assert reader.doc_offsets(i).tolist() == row["doc_offsets"]
        assert sum(v for _, v in row["source_tokens"]) == row["length"]  # per-row source tallies
    assert not reader.batches[0].tokens.flags.owndata  # a view into the mapped file, not a copy
    json.dumps(manifest)  # JSON-able through and through


@pytest.mark.parametrize("vocab,expected", [(65535, pa.uint16()), (65536, pa.uint32()), (200_000, pa.uint32())])
def test_token_width_switches_above_65535(tmp_path, vocab, expected):
    docs = synthetic_docs(40, vocab, seed=3)
    docs[0] = (*docs[0][:4], np.array([vocab - 1, vocab - 2, 65535, 2], dtype=np.uint32))
    manifest = write_local(str(tmp_path), docs, PackSettings(15, vocab, 2, 3), tokenizer_entry(vocab))
    path = tmp_path / manifest["shards"][0]["file"]
    assert pa.ipc.open_file(str(path)).schema.field("tokens").type.value_type == expected
    back = reassemble([path])
    assert back["doc00000"].tolist() == [vocab - 1, vocab - 2, 65535, 2]  # no wrap-around at 16 bits
    assert manifest["token_dtype"] == str(expected)
