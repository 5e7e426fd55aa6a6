"""Manifests written by hand or damaged: every field readers use is type-checked, listed files stay inside the
manifest's folder and are stat-checked before any opening. One line naming the manifest, never a hang."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer_bridge.manifest import ManifestError, PackSettings, check_file, dumps, parse, write_local
from trainer_bridge.stream import ShardStream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def pack(tmp_path) -> Path:
    """A two-shard pack whose manifest the tests change."""
    rng = np.random.default_rng(0)
    docs = [(f"d{i}", "src", "web", "CC0", np.append(rng.integers(4, 64, 20), 2).astype(np.uint32)) for i in range(40)]
    write_local(str(tmp_path), docs, PackSettings(seq_len=15, vocab_size=64, eos_id=2, pad_id=3, shard_bytes=4096),
                {"vocab_size": 64, "sha256": "0" * 64, "eos_id": 2, "pad_id": 3})
    return tmp_path


def edit(pack: Path, change) -> str:
    path = pack / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(dumps(manifest))
    return str(path)


def shard0(**values):
    return lambda m: m["shards"][0].update(values)


@pytest.mark.parametrize(("change", "needle"), [
    (shard0(file=5), "shards[0].file must be a JSON string, got 5"),  # was a TypeError in `shards inspect`
    (shard0(rows=-5), "shards[0].rows must be a JSON integer >= 0, got -5"),  # was "a permutation needs n >= 1"
    (shard0(rows=True), "shards[0].rows must be a JSON integer >= 0, got true"),
    (shard0(bytes="9"), 'shards[0].bytes must be a JSON integer >= 0, got "9"'),
    (lambda m: m["tokenizer"].update(pad_id=1.5), "tokenizer.pad_id must be a JSON integer >= 0, got 1.5"),
    (lambda m: m["totals"].update(padding_rate=None), "totals.padding_rate must be a finite JSON number, got null"),
    (lambda m: m["by_kind"].update(web=[]), "by_kind.web must be an object with docs, tokens, split_docs"),
    (lambda m: m.update(megatron={}), "megatron must be a JSON array"),
    (lambda m: m.update(token_dtype="float64"), "token_dtype 'float64' is not 'uint16', the token type of vocab_size 64"),
    (lambda m: m.update(row_len=99), "row_len 99 and vocab_size 64 must be >= 1, with row_len = seq_len + 1"),
    (lambda m: m["tokenizer"].update(eos_id=64), "tokenizer.eos_id 64 is not below vocab_size 64"),
    (shard0(file="../../../../etc/passwd"), "file name '../../../../etc/passwd' is not a path inside the manifest's"),
    (shard0(file="/etc/passwd"), "file name '/etc/passwd' is not a path inside the manifest's folder"),
    (shard0(file="a/../../x.arrow"), "with a '..' part"),
])
def test_parse_checks_every_field_it_reads(pack, change, needle):
    path = edit(pack, change)
    with pytest.raises(ManifestError, match=f"^{re.escape(path)}: .*{re.escape(needle)}"):
        parse(Path(path).read_text(), where=path, packed=True)
    if "by_kind" not in needle and "totals" not in needle:  # what streaming reads is checked for streaming too
        with pytest.raises(ManifestError, match=re.escape(needle)):
            ShardStream(path, prefetch=0)


def test_check_file_refuses_missing_odd_and_resized_files(tmp_path):
    (tmp_path / "a.arrow").write_bytes(b"12345")
    assert check_file(str(tmp_path), "a.arrow", 5) == str(tmp_path / "a.arrow")
    os.mkfifo(tmp_path / "fifo.arrow")
    (tmp_path / "link.arrow").symlink_to(tmp_path / "fifo.arrow")
    (tmp_path / "dir.arrow").mkdir()
    for name in ("fifo.arrow", "link.arrow", "dir.arrow"):
        with pytest.raises(ManifestError, match=f"^{name}: not a regular file"):
            check_file(str(tmp_path), name)
    with pytest.raises(ManifestError, match="^b.arrow: missing"):
        check_file(str(tmp_path), "b.arrow")
    with pytest.raises(ManifestError, match="^a.arrow: 5 bytes, the manifest says 6"):
        check_file(str(tmp_path), "a.arrow", 6)


def test_stream_checks_every_shard_at_start(pack):
    """A missing or resized shard failed only when the stream reached it, maybe hours into a run."""
    manifest = json.loads((pack / "manifest.json").read_text())
    last = pack / manifest["shards"][-1]["file"]
    last.write_bytes(last.read_bytes()[:-1])
    with pytest.raises(ManifestError, match=f"manifest.json: {last.name}: .* bytes, the manifest says"):
        ShardStream(str(pack), prefetch=0)
    last.unlink()
    with pytest.raises(ManifestError, match=f"manifest.json: {last.name}: missing"):
        ShardStream(str(pack), prefetch=0)
    with pytest.raises(ManifestError, match=f"{last.name}: missing"):
        ShardStream("file://" + str(pack / "manifest.json"), prefetch=0)


def test_a_fifo_listed_as_a_shard_is_one_line_not_a_hang(pack):
    """`shards inspect` (without --verify) and `jcorpus-train` opened the FIFO and blocked forever."""
    manifest = json.loads((pack / "manifest.json").read_text())
    fifo = pack / manifest["shards"][0]["file"]
    fifo.unlink()
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for argv in (["pipeline.cli", "shards", "inspect", str(pack)],
                 ["trainer_bridge.train", "--shards", str(pack), "--steps", "1", "--out", str(pack / "run")]):
        proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.endswith(f"error: {pack / 'manifest.json'}: {fifo.name}: not a regular file (a FIFO, "
                                    "device or folder where the manifest lists a file)\n"), proc.stderr
        assert proc.stderr.count("\n") == 1
