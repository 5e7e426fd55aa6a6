"""Packing tokenized documents into fixed rows of `seq_len + 1` tokens.

`bestfit` follows Ding et al. 2024 ("Fewer Truncations Improve Language Modeling"): a document longer than a row
is cut into full rows plus a remainder; every remaining piece is placed, largest first within a bounded window,
into the open row whose free space fits it most tightly. No document shorter than a row is ever cut and padding
appears only where nothing fits. Windows bound the memory and the sort; open rows carry over between windows
(at most `max_open`), so padding stays at the end of a packing group. `concat` concatenates and cuts, as
Megatron and nanotron do, and serves as the baseline that truncates many documents.

The planners work on lengths only and return segments `(doc, start, length)`; `materialize` fills the arrays.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Segment = tuple[int, int, int]  # (document index, start inside the document, length)
Plan = list[list[Segment]]  # one list of segments per row, in row order

DEFAULT_WINDOW_ROWS = 4096
DEFAULT_MAX_OPEN = 512


def plan_concat(lengths: Sequence[int], row_len: int) -> Plan:
    """Concatenate documents in order and cut every `row_len` tokens; only the last row is padded."""
    rows: Plan = []
    row: list[Segment] = []
    free = row_len
    for doc, length in enumerate(lengths):
        start = 0
        while start < length:
            take = min(free, length - start)
            row.append((doc, start, take))
            start += take
            free -= take
            if free == 0:
                rows.append(row)
                row, free = [], row_len
    if row:
        rows.append(row)
    return rows


def plan_bestfit(lengths: Sequence[int], row_len: int, window_rows: int = DEFAULT_WINDOW_ROWS,
                 max_open: int = DEFAULT_MAX_OPEN) -> Plan:
    """Best-fit-decreasing within windows of about `window_rows` rows of tokens (see the module docstring)."""
    if row_len < 1:
        raise ValueError("row_len must be positive")
    rows: Plan = []
    open_rows: list[tuple[int, int]] = []  # sorted (free tokens, row index) of rows that still have room
    window: list[Segment] = []
    window_tokens = 0

    def place_window() -> None:
        # Largest piece first; ties keep input order, so the plan depends only on the input sequence.
        for doc, start, length in sorted(window, key=lambda s: (-s[2], s[0])):
            i = bisect.bisect_left(open_rows, (length, -1))
            if i < len(open_rows):
                free, row = open_rows.pop(i)
                rows[row].append((doc, start, length))
                if free - length:
                    bisect.insort(open_rows, (free - length, row))
            else:
                rows.append([(doc, start, length)])
                if row_len - length:
                    bisect.insort(open_rows, (row_len - length, len(rows) - 1))
        # Close the fullest rows when too many stay open: they pad, but memory stays bounded.
        if len(open_rows) > max_open:
            del open_rows[: len(open_rows) - max_open]

    for doc, length in enumerate(lengths):
        start = 0
        while length - start >= row_len:  # full rows of a long document: emitted as they are
            rows.append([(doc, start, row_len)])
            start += row_len
        if length - start:
            window.append((doc, start, length - start))
            window_tokens += length - start
            if window_tokens >= window_rows * row_len:
                place_window()
                window, window_tokens = [], 0
    place_window()
    return rows


@dataclass
class PackedRows:
    """Rows ready for a shard: tokens [n, row_len] plus per-row segment metadata."""

    tokens: np.ndarray
    lengths: np.ndarray  # real tokens per row; positions >= length hold the pad id
    doc_offsets: list[list[int]]  # start of every document segment inside the row (first is 0)
    doc_ids: list[list[str]]  # input id of the document each segment belongs to
    doc_copies: list[list[int]]  # which mixture copy of it (0: the document itself, k: its k-th repeat)
    doc_positions: list[list[int]]  # where each segment starts inside its document (0 = a true start)
    source_tokens: list[dict[str, int]]  # tokens per source in the row
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocabulary up to 65,535 pieces), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 65535 else np.uint32)


def materialize(plan: Plan, docs: Sequence[np.ndarray], keys: Sequence[tuple[str, int]], sources: Sequence[str],
                row_len: int, pad_id: int, vocab_size: int) -> PackedRows:
    """Copy the planned segments into a token matrix and collect the per-row metadata; `keys` are each
    document's (id, mixture copy number)."""
    tokens = np.full((len(plan), row_len), pad_id, dtype=token_dtype(vocab_size))
    lengths = np.zeros(len(plan), dtype=np.int32)
    offsets, ids, copies, positions, tallies = [], [], [], [], []
    for r, row in enumerate(plan):
        at = 0
        row_offsets, row_ids, row_copies, row_positions = [], [], [], []
        tally: dict[str, int] = {}
        for doc, start, length in row:
            tokens[r, at: at + length] = docs[doc][start: start + length]
            row_offsets.append(at)
            row_ids.append(keys[doc][0])
            row_copies.append(keys[doc][1])
            row_positions.append(start)
            tally[sources[doc]] = tally.get(sources[doc], 0) + length
            at += length
        lengths[r] = at
        offsets.append(row_offsets)
        ids.append(row_ids)
        copies.append(row_copies)
        positions.append(row_positions)
        tallies.append(dict(sorted(tally.items())))
    return PackedRows(tokens, lengths, offsets, ids, copies, positions, tallies)


def split_documents(plan: Plan) -> set[int]:
    """Documents whose tokens ended up in more than one row."""
    seen: dict[int, int] = {}
    split: set[int] = set()
    for r, row in enumerate(plan):
        for doc, _, _ in row:
            if seen.setdefault(doc, r) != r:
                split.add(doc)
    return split


def plan_rows(lengths: Sequence[int], row_len: int, packing: str, **options: int) -> Plan:
    if packing == "bestfit":
        return plan_bestfit(lengths, row_len, **options)
    if packing == "concat":
        return plan_concat(lengths, row_len)
    raise ValueError(f"unknown packing {packing!r} (bestfit or concat)")
