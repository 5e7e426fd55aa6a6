"""Megatron-LM indexed dataset (`MMIDIDX`, version 1): `.bin` holds raw tokens, `.idx` locates sequences.

Written from the public layout: magic `MMIDIDX\\x00\\x00`, version <Q 1, dtype code <B, sequence count <Q,
document count <Q, then int32 sequence lengths, int64 byte pointers into `.bin`, int64 document indices.
We write one sequence per curated document (its tokens plus the end-of-document id), so the document index is
0..n. The token dtype follows Megatron's rule: uint16 below a vocabulary of 65,500, int32 otherwise.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron's DType codes (a stable on-disk enum).
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}


def megatron_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size < 65500 else np.int32)


def encode_megatron(docs: Sequence[np.ndarray], vocab_size: int) -> tuple[bytes, bytes]:
    """Return (`.bin` bytes, `.idx` bytes) for `docs`, each one Megatron sequence and one document."""
    dtype = megatron_dtype(vocab_size)
    sizes = np.fromiter((len(d) for d in docs), dtype=np.int32, count=len(docs))
    pointers = np.zeros(len(docs), dtype=np.int64)
    if len(docs) > 1:
        np.cumsum(sizes[:-1].astype(np.int64) * dtype.itemsize, out=pointers[1:])
    doc_index = np.arange(len(docs) + 1, dtype=np.int64)
    data = np.concatenate([np.asarray(d) for d in docs]).astype(dtype) if docs else np.zeros(0, dtype)
    header = MAGIC + struct.pack("<Q", VERSION) + struct.pack("<B", DTYPE_CODES[dtype])
    header += struct.pack("<Q", len(sizes)) + struct.pack("<Q", len(doc_index))
    idx = header + sizes.tobytes() + pointers.tobytes() + doc_index.tobytes()
    return data.tobytes(), idx
