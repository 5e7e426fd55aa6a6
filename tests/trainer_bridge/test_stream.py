"""ShardStream: world-size-independent order, one pass per epoch, exact resume, integrity checks."""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest

from trainer_bridge.manifest import PackSettings, write_local
from trainer_bridge.stream import KeyedPermutation, ShardIntegrityError, ShardStream

G = 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(5)
    docs = []
    for i in range(500):
        tokens = np.append(rng.integers(4, 5000, int(rng.integers(1, 90))), 2).astype(np.uint32)
        docs.append((f"d{i:04d}", ("a", "b")[i % 2], "web", "CC0", tokens))
    out = tmp_path_factory.mktemp("shards")
    settings = PackSettings(seq_len=31, vocab_size=5000, eos_id=2, pad_id=3, shard_bytes=64 * 40)
    manifest = write_local(str(out), docs, settings, {"vocab_size": 5000, "sha256": "x", "eos_id": 2, "pad_id": 3})
    assert len(manifest["shards"]) > 3 and manifest["totals"]["rows"] % G  # epochs end mid-batch
    return out


def _all_rows(path) -> np.ndarray:
    manifest = json.loads((path / "manifest.json").read_text())
    tables = [pa.ipc.open_file(str(path / s["file"])).read_all() for s in manifest["shards"]]
    return np.concatenate([np.array(t.column("tokens").to_pylist()) for t in tables])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 1000, 4097, 65536])
def test_keyed_permutation_is_a_bijection(n):
    out = KeyedPermutation(n, key=12345)(np.arange(n))
    assert np.array_equal(np.sort(out), np.arange(n))
    if n > 100:
        assert not np.array_equal(out, np.arange(n))
        assert not np.array_equal(out, KeyedPermutation(n, key=12346)(np.arange(n)))


def test_global_order_is_the_same_for_world_sizes_1_2_4(shards):
    path = str(shards / "manifest.json")
    single = ShardStream(path, 0, 1, seed=3, global_batch_size=G)
    steps = single.num_rows // G + 3  # crosses an epoch boundary
    reference = [single.next() for _ in range(steps)]
    for world in (2, 4):
        ranks = [ShardStream(path, r, world, seed=3, global_batch_size=G) for r in range(world)]
        for step in range(steps):
            parts = [rank.next() for rank in ranks]
            assert all(p.shape == (G // world, 32) for p in parts)
            assert np.array_equal(np.concatenate(parts), reference[step])
        for rank in ranks:
            rank.close()
    assert single.epoch >= 1
    other_seed = ShardStream(path, seed=4, global_batch_size=G, prefetch=0)
    assert not np.array_equal(other_seed.next(), reference[0])


def test_each_row_served_once_per_epoch_and_rows_match_shards(shards):
    path = str(shards / "manifest.json")
    rows = _all_rows(shards)
    stream = ShardStream(path, seed=9, global_batch_size=G)
    n = stream.num_rows
    assert n == len(rows)
    for epoch in range(2):
        ids = stream.global_rows(epoch * n, n)
        assert np.array_equal(np.sort(ids), np.arange(n))  # a permutation: no row twice, none missing
    served = np.concatenate([stream.next() for _ in range(n // G)])
    expected = rows[stream.global_rows(0, (n // G) * G)]
    assert np.array_equal(served, expected)
    assert not np.array_equal(stream.global_rows(0, n), stream.global_rows(n, n))  # a fresh order each epoch


def test_resume_exactly_after_json_round_trip(shards):
    path = str(shards / "manifest.json")
    stream = ShardStream(path, 1, 2, seed=7, global_batch_size=G)
    full = [stream.next() for _ in range(60)]
    for cut in (0, 1, 17, 31, 59):
        first = ShardStream(path, 1, 2, seed=7, global_batch_size=G, prefetch=3)
        for _ in range(cut):
            first.next()
        state = json.loads(json.dumps(first.state_dict()))
        assert len(json.dumps(state)) < 400
        first.next()  # prefetched batches after the snapshot must not leak into the resumed stream
        resumed = ShardStream(path, 1, 2, seed=7, global_batch_size=G)
        resumed.load_state_dict(state)
        for step in range(cut, min(cut + 5, 60)):
            assert np.array_equal(resumed.next(), full[step])
        first.load_state_dict(state)  # rewinding the same object works too
        assert np.array_equal(first.next(), full[cut])
        first.close()
        resumed.close()


def test_resume_on_another_world_size(shards):
    path = str(shards / "manifest.json")
    reference = ShardStream(path, seed=1, global_batch_size=G)
    batches = [reference.next() for _ in range(12)]
    state = json.loads(json.dumps(reference.state_dict()))
    more = reference.next()
    halves = [ShardStream(path, r, 2, seed=1, global_batch_size=G) for r in range(2)]
    for half in halves:
        half.load_state_dict(state)
    assert np.array_equal(np.concatenate([h.next() for h in halves]), more)
    assert batches  # the reference advanced


def test_state_from_another_stream_is_refused(shards):
    path = str(shards / "manifest.json")
    state = ShardStream(path, seed=1, global_batch_size=G).state_dict()
    with pytest.raises(ValueError, match="seed"):
        ShardStream(path, seed=2, global_batch_size=G).load_state_dict(state)
    missing = {k: v for k, v in state.items() if k != "next_sample"}  # a damaged checkpoint: was a KeyError
    for cursor in (None, -8, 8.0, 10**30):  # 10**30 was an OverflowError at the next batch
        bad = dict(missing, next_sample=cursor) if cursor is not None else missing
        with pytest.raises(ValueError, match=re.escape(f"next_sample={cursor!r}, expected an integer in [0, 4,611,")):
            ShardStream(path, seed=1, global_batch_size=G).load_state_dict(bad)


def test_offsets_lengths_and_metadata(shards):
    stream = ShardStream(str(shards / "manifest.json"), seed=0, global_batch_size=G)
    assert (stream.seq_len, stream.vocab_size, stream.pad_id, stream.eos_id) == (31, 5000, 3, 2)
    rows, offsets = stream.next_batch_with_offsets()
    assert rows.dtype == np.int32 and len(offsets) == G
    for row, starts, length in zip(rows, offsets, stream.last_lengths, strict=True):
        assert starts[0] == 0 and (np.diff(starts) > 0).all() and starts[-1] < length
        assert (row[length:] == 3).all()
        ends = np.append(starts[1:], length)
        assert all(row[e - 1] == 2 or e == length for e in ends)  # segments end at EOS unless cut at row end


def test_corrupted_shard_is_detected(tmp_path, shards):
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in shards.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    victim = copy / manifest["shards"][1]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    stream = ShardStream(str(copy / "manifest.json"), seed=0, global_batch_size=G)
    with pytest.raises(ShardIntegrityError, match=f"{victim.name}.*sha256.*does not match"):
        for _ in range(stream.num_rows // G + 1):
            stream.next()
    stream2 = ShardStream(str(copy / "manifest.json"), seed=0, global_batch_size=G, prefetch=0)
    victim.unlink()  # after the start, which checks that every shard is there
    with pytest.raises(ShardIntegrityError, match="cannot read"):
        for _ in range(stream2.num_rows // G + 1):
            stream2.next()


def test_pyarrow_filesystem_uri_gives_the_same_batches(shards):
    local = ShardStream(str(shards), seed=2, global_batch_size=G)  # the folder works as well as the manifest
    remote = ShardStream("file://" + str(shards / "manifest.json"), seed=2, global_batch_size=G)
    for _ in range(5):
        assert np.array_equal(local.next(), remote.next())


def test_bad_arguments_are_refused(shards):
    path = str(shards / "manifest.json")
    with pytest.raises(ValueError, match="multiple of world_size"):
        ShardStream(path, 0, 3, global_batch_size=G)
    with pytest.raises(ValueError, match="rank"):
        ShardStream(path, 2, 2, global_batch_size=G)


def test_a_dtype_too_narrow_for_the_vocabulary_is_refused(tmp_path):
    """uint16 or int16 rows wrapped ids above their range silently (70,000 came back as 4,464)."""
    tokens = np.array([70_000, 65_536, 40_000, 2], dtype=np.uint32)
    settings = PackSettings(seq_len=3, vocab_size=80_000, eos_id=2, pad_id=3)
    write_local(str(tmp_path), [("a", "s", "web", "CC0", tokens)], settings,
                {"vocab_size": 80_000, "sha256": "", "eos_id": 2, "pad_id": 3})
    for narrow in (np.uint16, np.int16, np.float32):
        with pytest.raises(ValueError, match="cannot hold the token ids of a vocabulary of 80,000"):
            ShardStream(str(tmp_path), global_batch_size=1, dtype=narrow)
    for wide in (np.int32, np.uint32, np.int64):
        with ShardStream(str(tmp_path), global_batch_size=1, dtype=wide, prefetch=0) as stream:
            assert stream.next()[0].tolist() == tokens.tolist()
