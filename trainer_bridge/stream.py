"""`ShardStream`: deterministic, rank-sharded, exactly resumable batches from packed Arrow shards.

The rows of all shards form one index space [0, N). Global sample s is row `perm_e(s mod N)` of epoch
e = s // N, where `perm_e` is a keyed Feistel permutation (cycle-walking onto [0, N)) keyed by (seed, epoch):
a bijection evaluated per index, so no permutation array is ever built and a billion rows cost no memory.
Global batch b holds samples [b*G, (b+1)*G); rank r of W reads its contiguous slice of G/W of them. The global
order therefore depends only on (seed, epoch, index), never on the world size, and the state is just a cursor.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from trainer_bridge import manifest as manifest_mod
from trainer_bridge.shards import ShardReader, sha256_read

STATE_FORMAT = "jcorpus.stream/1"
MAX_SAMPLE = 2**62  # sample indices are int64 numpy arrays, with room for the batches prefetched beyond
_GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


class ShardIntegrityError(RuntimeError):
    """A shard whose bytes or row count differ from the manifest (corrupted, truncated or replaced)."""


def _mix_int(x: int) -> int:
    """splitmix64 finalizer on a Python int (key derivation)."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _mix_array(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping multiplication is intended)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class KeyedPermutation:
    """A bijection of [0, n) keyed by an integer: balanced Feistel network on 2h bits plus cycle-walking."""

    def __init__(self, n: int, key: int, rounds: int = 6):
        if n < 1:
            raise ValueError("a permutation needs n >= 1")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        bits += bits & 1  # balanced halves; the domain is then < 4n, so cycle-walking takes < 4 steps on average
        self.half = np.uint64(bits // 2)
        self.mask = np.uint64((1 << (bits // 2)) - 1)
        self.keys = [np.uint64(_mix_int(key + (r + 1) * _GOLDEN)) for r in range(rounds)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_mix_array(right ^ k) & self.mask)
        return (left << self.half) | right

    def __call__(self, index: np.ndarray) -> np.ndarray:
        x = self._encrypt(np.asarray(index, dtype=np.uint64))
        outside = x >= self.n
        while outside.any():
            x[outside] = self._encrypt(x[outside])
            outside = x >= self.n
        return x.astype(np.int64)


def _open_location(path: str) -> tuple[pafs.FileSystem | None, str]:
    """Local paths stay local (memory-mapped); URIs (s3://, gs://, hdfs://, file://) go through pyarrow.fs."""
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return None, path


class ShardStream:
    """Batches of packed rows; see the module docstring for the order and DESIGN.md for the contract.

    `next()` returns int32 rows [G // world_size, seq_len + 1]; `next_batch_with_offsets()` also returns each
    row's document-segment starts; after either call `last_lengths` holds the real token count per row
    (positions at or beyond it hold `pad_id`).
    """

    def __init__(self, manifest_path: str, rank: int = 0, world_size: int = 1, seed: int = 0,
                 global_batch_size: int = 8, *, prefetch: int = 2, verify: bool = True,
                 dtype: np.dtype | type = np.int32):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if global_batch_size < 1 or global_batch_size % world_size:
            raise ValueError(f"global_batch_size {global_batch_size} is not a positive multiple of world_size {world_size}")
        self.rank, self.world_size, self.seed = rank, world_size, int(seed)
        self.global_batch_size = global_batch_size
        self.local_batch_size = global_batch_size // world_size
        self.verify, self.dtype = verify, np.dtype(dtype)
        self._fs, manifest_file = _open_location(manifest_path)
        if self._fs is None and os.path.isdir(manifest_file):  # the SHARDS folder itself
            manifest_file = os.path.join(manifest_file, manifest_mod.MANIFEST_NAME)
        text = self._read_bytes(manifest_file)
        self.manifest_sha256 = hashlib.sha256(text).hexdigest()
        self.manifest = manifest_mod.parse(text, where=manifest_path)
        self.seq_len = int(self.manifest["seq_len"])
        self.row_len = int(self.manifest["row_len"])
        self.vocab_size = int(self.manifest["vocab_size"])
        self.pad_id = int(self.manifest["tokenizer"]["pad_id"])
        if self.dtype.kind not in "iu" or np.iinfo(self.dtype).max < self.vocab_size - 1:  # numpy casts silently
            raise ValueError(f"dtype {self.dtype} cannot hold the token ids of a vocabulary of {self.vocab_size:,} "
                             "(rows would wrap around silently); use an integer type as wide as int32")
        self.eos_id = int(self.manifest["tokenizer"]["eos_id"])
        self._dir = posixpath.dirname(manifest_file) if self._fs else os.path.dirname(os.path.abspath(manifest_file))
        self._shards = self.manifest["shards"]
        try:  # now, not when the stream first reaches a bad shard, maybe hours into a run
            for entry in self._shards:
                manifest_mod.check_file(self._dir, entry["file"], entry.get("bytes"), self._fs)
        except manifest_mod.ManifestError as exc:
            raise manifest_mod.ManifestError(f"{manifest_file}: {exc}") from None
        self._row_starts = np.cumsum([0] + [int(s["rows"]) for s in self._shards])
        self.num_rows = int(self._row_starts[-1])
        if self.num_rows == 0:
            raise ValueError(f"{manifest_path}: the shards hold no rows" + (
                "; this pack holds only Megatron parts: re-pack with --format arrow" if self.manifest.get("megatron")
                else ""))
        self._readers: list[ShardReader | None] = [None] * len(self._shards)
        self._open_lock = threading.Lock()
        self._next_sample = 0
        self._prefetch = max(0, prefetch)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="shardstream") if self._prefetch else None
        self._pending: deque[tuple[int, Future]] = deque()
        self.last_lengths = np.zeros(0, dtype=np.int32)

    # ----- files -----
    def _read_bytes(self, path: str) -> bytes:
        if self._fs is None:
            with open(path, "rb") as handle:
                return handle.read()
        with self._fs.open_input_stream(path) as handle:
            return handle.read()

    def _sha256(self, path: str) -> str:
        with open(path, "rb") if self._fs is None else self._fs.open_input_stream(path) as handle:
            return sha256_read(handle)

    def _reader(self, shard: int) -> ShardReader:
        reader = self._readers[shard]
        if reader is not None:
            return reader
        with self._open_lock:
            if self._readers[shard] is None:
                entry = self._shards[shard]
                path = f"{self._dir}/{entry['file']}"
                if self.verify:
                    try:
                        actual = self._sha256(path)
                    except (OSError, FileNotFoundError) as exc:
                        raise ShardIntegrityError(f"shard {entry['file']}: cannot read ({exc})") from None
                    if actual != entry["sha256"]:
                        raise ShardIntegrityError(
                            f"shard {entry['file']}: sha256 {actual[:16]}... does not match the manifest's "
                            f"{entry['sha256'][:16]}... (corrupted or replaced; re-run `jcorpus pack`)")
                source: str | pa.NativeFile = path if self._fs is None else self._fs.open_input_file(path)
                reader = ShardReader(source)
                if reader.num_rows != int(entry["rows"]) or reader.row_len != self.row_len:
                    raise ShardIntegrityError(
                        f"shard {entry['file']}: {reader.num_rows} rows of {reader.row_len} tokens, manifest says "
                        f"{entry['rows']} rows of {self.row_len}")
                self._readers[shard] = reader
            return self._readers[shard]

    # ----- order -----
    def global_rows(self, start: int, count: int) -> np.ndarray:
        """Row ids of global samples [start, start + count): the pure function of (seed, epoch, index)."""
        samples = np.arange(start, start + count, dtype=np.int64)
        epochs = samples // self.num_rows
        rows = np.empty(count, dtype=np.int64)
        for epoch in np.unique(epochs).tolist():
            sel = epochs == epoch
            permutation = KeyedPermutation(self.num_rows, _mix_int(self.seed * _GOLDEN + epoch))
            rows[sel] = permutation(samples[sel] % self.num_rows)
        return rows

    def _load(self, batch_start: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        rows = self.global_rows(batch_start + self.rank * self.local_batch_size, self.local_batch_size)
        out = np.empty((len(rows), self.row_len), dtype=self.dtype)
        lengths = np.empty(len(rows), dtype=np.int32)
        offsets: list[np.ndarray] = []
        shard_of = np.searchsorted(self._row_starts, rows, side="right") - 1
        for i, (row, shard) in enumerate(zip(rows.tolist(), shard_of.tolist(), strict=True)):
            view, local = self._reader(shard).locate(row - int(self._row_starts[shard]))
            out[i] = view.tokens[local]
            lengths[i] = view.lengths[local]
            offsets.append(view.offset_values[view.offset_bounds[local]: view.offset_bounds[local + 1]].copy())
        return out, offsets, lengths

    # ----- iteration -----
    def _submit(self, start: int) -> Future:
        if self._pool is None:
            future: Future = Future()
            future.set_result(self._load(start))
            return future
        return self._pool.submit(self._load, start)

    def next_batch_with_offsets(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """This rank's rows of the next global batch and, per row, its document-segment starts."""
        if not self._pending or self._pending[0][0] != self._next_sample:
            self._pending.clear()
        while len(self._pending) < max(1, self._prefetch + 1):
            start = self._next_sample + len(self._pending) * self.global_batch_size
            self._pending.append((start, self._submit(start)))
        _, future = self._pending.popleft()
        rows, offsets, self.last_lengths = future.result()
        self._next_sample += self.global_batch_size
        return rows, offsets

    def next(self) -> np.ndarray:
        return self.next_batch_with_offsets()[0]

    __next__ = next

    def __iter__(self) -> ShardStream:
        return self

    @property
    def epoch(self) -> int:
        return self._next_sample // self.num_rows

    # ----- checkpointing -----
    def state_dict(self) -> dict[str, Any]:
        """O(1) JSON-able state: the global cursor plus what must match on resume."""
        return {
            "format": STATE_FORMAT,
            "seed": self.seed,
            "next_sample": self._next_sample,
            "epoch": self.epoch,
            "num_rows": self.num_rows,
            "global_batch_size": self.global_batch_size,
            "manifest_sha256": self.manifest_sha256,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the batch after the one last returned when `state` was taken (any world size)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"stream state format {state.get('format')!r} is not {STATE_FORMAT!r}")
        for key, mine in (("seed", self.seed), ("num_rows", self.num_rows), ("manifest_sha256", self.manifest_sha256)):
            if state.get(key) != mine:
                raise ValueError(f"stream state has {key}={state.get(key)!r} but this stream has {mine!r}")
        nxt = state.get("next_sample")
        if type(nxt) is not int or not 0 <= nxt <= MAX_SAMPLE:
            raise ValueError(f"stream state has next_sample={nxt!r}, expected an integer in [0, {MAX_SAMPLE:,}]")
        self._next_sample = nxt
        self._pending.clear()

    def close(self) -> None:
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for reader in self._readers:
            if reader is not None:
                reader.close()

    def __enter__(self) -> ShardStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
