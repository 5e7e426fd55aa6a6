"""`jcorpus pack` on curated Parquet that curate would not write: a data page corrupt behind a sound footer, ids
that repeat with different text, and an id spelled like another's mixture repeat. One line for the first, the same
bytes for any worker count for the second, segments traced to the right document and copy for the third."""
from __future__ import annotations

import os
from collections import Counter
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
    copies = [(("same", 0), "s", "web", "CC0", np.array(tokens + [2], dtype=np.uint16).tobytes())
              for tokens in ([5, 6, 7], [8], [9, 10, 11, 12, 13, 14])]
    copies += [(("same", 0), "t", "web", "CC0", copies[0][4])]
    packed = []
    for order in (copies, copies[::-1]):
        folder = tmp_path / str(len(packed))
        record = next(PackGroup(settings, str(folder)).process((0, order)))
        packed.append((record, _tree(folder)))
    assert packed[0] == packed[1]


def test_a_mixture_repeat_is_not_confused_with_an_id_holding_its_number(corpus, tmp_path, capsys):  # noqa: F811
    """The second copy of `a` was keyed `a#1` in the shards' doc_ids: the id of another input document."""
    import sentencepiece as spm

    texts = {"a": corpus["rows"][0]["text"], "a#1": corpus["rows"][1]["text"]}
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist([
        {"id": "a", "source": "twice", "kind": "web", "text": texts["a"], "license": "CC0"},
        {"id": "a#1", "source": "once", "kind": "web", "text": texts["a#1"], "license": "CC0"}]),
        tmp_path / "in" / "part-00000.parquet")
    same = {**corpus, "curated": tmp_path / "in"}
    manifest = _pack(same, tmp_path / "out", mix={"twice": 2})
    rows = [row for shard in manifest["shards"]
            for row in pa.ipc.open_file(str(tmp_path / "out" / shard["file"])).read_all().to_pylist()]
    starts = Counter(doc_id for row in rows for doc_id, at in zip(row["doc_ids"], row["doc_positions"], strict=True)
                     if at == 0)
    assert starts == {"a": 2, "a#1": 1}  # each id is its input document's, however many copies
    pieces: dict[tuple[str, int], list[tuple[int, list[int]]]] = {}
    for row in rows:
        bounds = row["doc_offsets"] + [row["length"]]
        for i, key in enumerate(zip(row["doc_ids"], row["doc_copies"], strict=True)):
            pieces.setdefault(key, []).append((row["doc_positions"][i], row["tokens"][bounds[i]:bounds[i + 1]]))
    docs = {key: [t for _, seg in sorted(parts) for t in seg] for key, parts in pieces.items()}
    sp = spm.SentencePieceProcessor(model_file=str(corpus["model"]))
    expected = {doc_id: sp.encode(text) + [sp.eos_id()] for doc_id, text in texts.items()}
    assert docs == {("a", 0): expected["a"], ("a", 1): expected["a"], ("a#1", 0): expected["a#1"]}
    assert manifest["totals"]["docs"] == 3
    capsys.readouterr()
    assert cli_main(["shards", "inspect", str(tmp_path / "out"), "--rows", "5"]) == 0
    shown = capsys.readouterr().out
    assert "⟦doc a copy 1 ⟧" in shown or "⟦… a copy 1 @" in shown
