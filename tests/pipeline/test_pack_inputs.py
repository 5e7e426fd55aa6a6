"""`jcorpus pack` on curated Parquet that curate would not write: a data page corrupt behind a sound footer, and ids
that repeat with different text. One line for the first, the same bytes for any worker count for the second."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.cli import main as cli_main
from pipeline.pack import PackGroup
from tests.pipeline.test_pack import ROOT, _pack, _tree, corpus  # noqa: F401  (fixture)
from trainer_bridge.manifest import PackSettings


def test_a_corrupt_data_page_is_one_line_naming_the_file(corpus, tmp_path, capsys):  # noqa: F811
    """The footer passes the driver's check; the worker met the damage: exit 1 and a Beam traceback."""
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "part-00001.parquet"
    pq.write_table(pa.Table.from_pylist(corpus["rows"]), bad, compression="none")
    data = bad.read_bytes()
    bad.write_bytes(data[:4] + bytes(b ^ 0x5A for b in data[4:200]) + data[200:])  # the first page header
    pq.read_metadata(bad)  # the footer still reads
    out = tmp_path / "new" / "out"
    assert cli_main(["pack", "--input", str(tmp_path / "in"), "--tokenizer", str(corpus["model"]),
                     "--seq-len", "64", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"jcorpus pack: error: {bad}: not a readable Parquet file (row group 0: "), err
    assert not out.exists()


def _repeated_ids(corpus, folder: Path) -> Path:  # noqa: F811
    """The corpus in four files, its ids rewritten to three values: each id holds many different texts."""
    folder.mkdir()
    rows = [{**row, "id": f"same{i % 3}"} for i, row in enumerate(corpus["rows"])]
    quarter = len(rows) // 4 + 1
    for part in range(4):
        pq.write_table(pa.Table.from_pylist(rows[part * quarter:(part + 1) * quarter]),
                       folder / f"p{part}.parquet")
    return folder


def test_repeated_ids_pack_the_same_for_one_and_two_workers(corpus, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    same = {**corpus, "curated": _repeated_ids(corpus, tmp_path / "in")}
    one = _pack(same, tmp_path / "one", formats=("arrow", "megatron"))
    two = _pack(same, tmp_path / "two", workers=2, formats=("arrow", "megatron"))
    assert two == one
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_a_group_packs_the_same_whatever_order_its_copies_arrive_in(tmp_path):
    """Copies with one key but other tokens (or metadata) were packed in arrival order, which the runner decides."""
    settings = PackSettings(seq_len=7, vocab_size=3000, eos_id=2, pad_id=3, formats=("arrow", "megatron"))
    copies = [("same", "s", "web", "CC0", np.array(tokens + [2], dtype=np.uint16).tobytes())
              for tokens in ([5, 6, 7], [8], [9, 10, 11, 12, 13, 14])]
    copies += [("same", "t", "web", "CC0", copies[0][4])]
    packed = []
    for order in (copies, copies[::-1]):
        folder = tmp_path / str(len(packed))
        record = next(PackGroup(settings, str(folder)).process((0, order)))
        packed.append((record, _tree(folder)))
    assert packed[0] == packed[1]
