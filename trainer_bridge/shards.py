"""Arrow IPC token shards: one row per training sequence, uncompressed so readers memory-map them without copying.

Columns: `tokens` fixed_size_list<uint16|uint32>[seq_len + 1]; `length` int32 (real tokens; the rest is the pad id);
`doc_offsets` list<int32> (start of each document segment in the row, first 0); `doc_positions` list<int32>
(where the segment starts inside its document, 0 = true document start, for position resets); `doc_ids`
list<string> (the input document's id, to trace a row back to the curated corpus); `doc_copies` list<int32>
(which mixture copy: 0 the document, k its k-th repeat); `source_tokens` map<string, int32>.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from trainer_bridge.packing import PackedRows, token_dtype

SHARD_FORMAT = "jcorpus.arrow/1"
DEFAULT_BATCH_ROWS = 1024


def shard_schema(row_len: int, vocab_size: int) -> pa.Schema:
    value_type = pa.uint16() if token_dtype(vocab_size) == np.uint16 else pa.uint32()
    return pa.schema(
        [
            pa.field("tokens", pa.list_(value_type, row_len), nullable=False),
            pa.field("length", pa.int32(), nullable=False),
            pa.field("doc_offsets", pa.list_(pa.int32()), nullable=False),
            pa.field("doc_positions", pa.list_(pa.int32()), nullable=False),
            pa.field("doc_ids", pa.list_(pa.string()), nullable=False),
            pa.field("doc_copies", pa.list_(pa.int32()), nullable=False),
            pa.field("source_tokens", pa.map_(pa.string(), pa.int32()), nullable=False),
        ],
        metadata={"format": SHARD_FORMAT, "row_len": str(row_len), "vocab_size": str(vocab_size)},
    )


def _record_batch(rows: PackedRows, lo: int, hi: int, schema: pa.Schema) -> pa.RecordBatch:
    row_len = rows.tokens.shape[1]
    flat = pa.array(np.ascontiguousarray(rows.tokens[lo:hi]).reshape(-1), type=schema.field("tokens").type.value_type)
    return pa.record_batch(
        [
            pa.FixedSizeListArray.from_arrays(flat, row_len),
            pa.array(rows.lengths[lo:hi], type=pa.int32()),
            pa.array(rows.doc_offsets[lo:hi], type=pa.list_(pa.int32())),
            pa.array(rows.doc_positions[lo:hi], type=pa.list_(pa.int32())),
            pa.array(rows.doc_ids[lo:hi], type=pa.list_(pa.string())),
            pa.array(rows.doc_copies[lo:hi], type=pa.list_(pa.int32())),
            pa.array([list(t.items()) for t in rows.source_tokens[lo:hi]], type=pa.map_(pa.string(), pa.int32())),
        ],
        schema=schema,
    )


def encode_arrow_shard(rows: PackedRows, vocab_size: int, batch_rows: int = DEFAULT_BATCH_ROWS) -> bytes:
    """The bytes of one Arrow IPC file holding `rows`; deterministic for equal input."""
    schema = shard_schema(rows.tokens.shape[1], vocab_size)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema) as writer:
        for lo in range(0, len(rows), batch_rows):
            writer.write_batch(_record_batch(rows, lo, min(lo + batch_rows, len(rows)), schema))
    return sink.getvalue().to_pybytes()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_read(handle: BinaryIO) -> str:
    """sha256 of everything a binary handle still holds, read 8 MiB at a time (shards are large)."""
    digest = hashlib.sha256()
    while chunk := handle.read(8 << 20):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class BatchView:
    """Zero-copy numpy views over one record batch of a shard."""

    tokens: np.ndarray  # [rows, row_len]
    lengths: np.ndarray
    offset_bounds: np.ndarray  # list offsets of doc_offsets: row i owns offset_values[b[i]:b[i+1]]
    offset_values: np.ndarray


class ShardReader:
    """Random access to the rows of one shard; `source` is a path (memory-mapped) or any pyarrow NativeFile."""

    def __init__(self, source: str | pa.NativeFile):
        self._file = pa.memory_map(source, "r") if isinstance(source, str) else source
        self._reader = pa.ipc.open_file(self._file)
        meta = self._reader.schema.metadata or {}
        if meta.get(b"format") != SHARD_FORMAT.encode():
            raise ValueError(f"not a jcorpus Arrow shard (format metadata {meta.get(b'format')!r})")
        self.row_len = int(meta[b"row_len"])
        self.vocab_size = int(meta[b"vocab_size"])
        self.batches = [self._view(self._reader.get_batch(i)) for i in range(self._reader.num_record_batches)]
        self._starts = np.cumsum([0] + [len(b.tokens) for b in self.batches])
        self.num_rows = int(self._starts[-1])

    def _view(self, batch: pa.RecordBatch) -> BatchView:
        tokens = batch.column("tokens")
        values = tokens.values.to_numpy(zero_copy_only=True)
        offsets = batch.column("doc_offsets")
        return BatchView(
            tokens=values.reshape(len(batch), self.row_len),
            lengths=batch.column("length").to_numpy(zero_copy_only=True),
            offset_bounds=offsets.offsets.to_numpy(zero_copy_only=True),
            offset_values=offsets.values.to_numpy(zero_copy_only=True),
        )

    def locate(self, row: int) -> tuple[BatchView, int]:
        if not 0 <= row < self.num_rows:
            raise IndexError(f"row {row} out of range for a shard of {self.num_rows} rows")
        b = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self.batches[b], row - int(self._starts[b])

    def tokens(self, row: int) -> np.ndarray:
        view, i = self.locate(row)
        return view.tokens[i]

    def doc_offsets(self, row: int) -> np.ndarray:
        view, i = self.locate(row)
        return view.offset_values[view.offset_bounds[i]: view.offset_bounds[i + 1]]

    def table(self) -> pa.Table:
        """All columns, for inspection and tests (still backed by the mapped file)."""
        return self._reader.read_all()

    def close(self) -> None:
        self._file.close()
