"""Megatron MMIDIDX v1 files, read back by a reader written here from the public format description."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from trainer_bridge.manifest import PackSettings, write_local
from trainer_bridge.megatron import encode_megatron

# Megatron's DType enum codes, as documented for the .idx header.
CODES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


def read_mmidxidx(idx: bytes, bin_: bytes) -> list[list[int]]:
    """Independent reader: header, int32 sizes, int64 byte pointers, int64 document index; tokens from .bin."""
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1
    (code,) = struct.unpack_from("<B", idx, 17)
    dtype = np.dtype(CODES[code])
    n_seq, n_doc = struct.unpack_from("<QQ", idx, 18)
    at = 34
    sizes = np.frombuffer(idx, np.int32, n_seq, at)
    at += sizes.nbytes
    pointers = np.frombuffer(idx, np.int64, n_seq, at)
    at += pointers.nbytes
    doc_index = np.frombuffer(idx, np.int64, n_doc, at)
    assert at + doc_index.nbytes == len(idx)  # nothing left over
    assert doc_index[0] == 0 and doc_index[-1] == n_seq and (np.diff(doc_index) > 0).all()
    assert int(pointers[-1]) + int(sizes[-1]) * dtype.itemsize == len(bin_)
    tokens = np.frombuffer(bin_, dtype)
    return [tokens[p // dtype.itemsize: p // dtype.itemsize + n].tolist() for p, n in zip(pointers, sizes, strict=True)]


@pytest.mark.parametrize("vocab,code", [(32000, 8), (65499, 8), (65500, 4), (150_000, 4)])
def test_encode_reads_back_with_megatron_dtype(vocab, code):
    rng = np.random.default_rng(vocab)
    docs = [np.append(rng.integers(0, vocab, rng.integers(1, 300)), 2) for _ in range(50)]
    docs[0][0] = vocab - 1
    bin_, idx = encode_megatron(docs, vocab)
    assert idx[17] == code
    assert read_mmidxidx(idx, bin_) == [d.tolist() for d in docs]


def test_pack_writes_one_megatron_document_per_document(tmp_path):
    rng = np.random.default_rng(0)
    docs = [(f"d{i}", "s", "web", "CC0", np.append(rng.integers(4, 3000, rng.integers(1, 200)), 2).astype(np.uint32))
            for i in range(120)]
    s = PackSettings(seq_len=31, vocab_size=3000, eos_id=2, pad_id=3, formats=("arrow", "megatron"), mix={"web": 2.0})
    manifest = write_local(str(tmp_path), docs, s, {"vocab_size": 3000, "sha256": "", "eos_id": 2, "pad_id": 3})
    read = []
    for part in manifest["megatron"]:
        prefix = tmp_path / part["prefix"]
        read += read_mmidxidx(prefix.with_suffix(".idx").read_bytes(), prefix.with_suffix(".bin").read_bytes())
    assert sorted(read) == sorted([d[4].tolist() for d in docs] * 2)  # weight 2: every document twice, with EOD
    assert all(doc[-1] == 2 for doc in read)


@pytest.mark.parametrize("vocab", [32000, 65500, 150_000])  # uint16, and int32 from 65,500 as Megatron picks
def test_megatron_lm_reads_our_files_and_writes_the_same_bytes(tmp_path, vocab):
    """Megatron-LM's own IndexedDataset reads our files back, and its IndexedDatasetBuilder writes the same
    bytes from the same documents (megatron-core, pinned in the test extra; torch is its one dependency)."""
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset", reason="megatron-core not installed")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(vocab)
    docs = [np.append(rng.integers(3, vocab, rng.integers(1, 200)), 2) for _ in range(40)]
    docs[0][0] = vocab - 1
    bin_, idx = encode_megatron(docs, vocab)
    (tmp_path / "ours.bin").write_bytes(bin_)
    (tmp_path / "ours.idx").write_bytes(idx)
    dataset = indexed.IndexedDataset(str(tmp_path / "ours"))
    assert len(dataset) == len(docs) and dataset.document_indices.tolist() == list(range(len(docs) + 1))
    assert [dataset[i].tolist() for i in range(len(docs))] == [d.tolist() for d in docs]
    assert dataset.sequence_lengths.tolist() == [len(d) for d in docs]
    del dataset  # its arrays are views of the memory map
    builder = indexed.IndexedDatasetBuilder(str(tmp_path / "theirs.bin"),
                                            dtype=indexed.DType.optimal_dtype(vocab))
    for doc in docs:
        builder.add_item(torch.from_numpy(doc.astype(np.int64)))
        builder.end_document()
    builder.finalize(str(tmp_path / "theirs.idx"))
    assert (tmp_path / "theirs.bin").read_bytes() == bin_ and (tmp_path / "theirs.idx").read_bytes() == idx
