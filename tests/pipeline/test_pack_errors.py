"""`jcorpus pack` / `shards inspect` on awkward inputs: a foreign tokenizer, damaged Megatron files, a megatron-only
pack, folders named like globs, bad schemas and manifests, and packs that keep nothing. One line, never a trace."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.cmd_curate import BEAM_OPTIONS
from pipeline.errors import UserError
from pipeline.pack import _nothing_packed, input_row_groups
from tests.pipeline.test_pack import corpus  # noqa: F401  (fixture)
from trainer_bridge.manifest import ManifestError, PackSettings, dumps, parse, write_local
from trainer_bridge.stream import ShardStream

TOKENIZER = {"vocab_size": 3000, "sha256": "", "eos_id": 2, "pad_id": 3}


def _one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="module")
def packed(corpus, tmp_path_factory):  # noqa: F811
    """One arrow+megatron pack of a folder named like a glob, with a relative and with an absolute --tokenizer."""
    base = tmp_path_factory.mktemp("pack-errors")
    shutil.copytree(corpus["curated"], base / "cur [1]")
    shutil.copy(corpus["model"], base / "tok.model")
    outs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        for name, tokenizer in (("rel", "tok.model"), ("abs", str(base / "tok.model"))):
            argv = ["pack", "--input", "cur [1]", "--tokenizer", tokenizer, "--seq-len", "64", "--out", name,
                    "--format", "arrow,megatron"]
            assert cli_main(argv) == 0
            outs[name] = base / name
    return {"base": base, **outs}


def test_a_folder_or_file_named_like_a_glob_is_taken_literally(corpus, packed):  # noqa: F811
    manifest = json.loads((packed["rel"] / "manifest.json").read_text())
    assert manifest["totals"]["docs"] == sum(1 for r in corpus["rows"] if r["text"])  # every document was read
    part = packed["base"] / "cur [1]" / "part-00000.parquet"
    parts, _ = input_row_groups(str(part))
    assert {name for name, _ in parts} == {str(part)}
    with pytest.raises(UserError, match=r"no Parquet files match .*nothing \[2\]"):
        input_row_groups(str(packed["base"] / "nothing [2]"))


def _small_model(folder: Path) -> Path:
    import sentencepiece as spm

    (folder / "small.txt").write_text("the cat sat on the mat\nthe dog ate the hat\n" * 50, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(folder / "small.txt"), model_prefix=str(folder / "small"),
                                   vocab_size=30, hard_vocab_limit=False, num_threads=1, minloglevel=2)
    return folder / "small.model"


def test_inspect_refuses_a_tokenizer_other_than_the_manifests(packed, tmp_path, capsys, monkeypatch):
    rel, abs_ = (packed[k] / "manifest.json" for k in ("rel", "abs"))
    assert rel.read_bytes() == abs_.read_bytes()  # however --tokenizer was typed
    model = packed["base"] / "tok.model"
    assert json.loads(rel.read_text())["tokenizer"]["path"] == str(model)
    monkeypatch.chdir(tmp_path)  # the recorded path does not depend on the current folder
    assert cli_main(["shards", "inspect", str(packed["rel"]), "--rows", "1"]) == 0
    shown = capsys.readouterr().out
    assert "⟦doc " in shown and "token ids" not in shown
    small = _small_model(tmp_path)
    assert cli_main(["shards", "inspect", str(packed["rel"]), "--tokenizer", str(small)]) == 2
    _one_line_error(capsys, "small.model: sha256", "is not the manifest's")
    shards = tmp_path / "shards"
    shutil.copytree(packed["rel"], shards)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["tokenizer"]["path"] = "other.model"  # relative: taken from the manifest's folder
    (shards / "manifest.json").write_text(dumps(manifest))
    shutil.copy(small, shards / "other.model")
    assert cli_main(["shards", "inspect", str(shards)]) == 2
    _one_line_error(capsys, "is not the manifest's")
    assert not capsys.readouterr().out
    (shards / "other.model").unlink()
    assert cli_main(["shards", "inspect", str(shards), "--rows", "1"]) == 0
    assert "(rows shown as token ids: tokenizer " in capsys.readouterr().out


def _unblock_later(fifo: Path) -> threading.Thread:
    """A reader that opened the FIFO would wait for a writer forever: one comes after 20 s, so a regression
    fails instead of hanging the suite."""
    def writer() -> None:
        time.sleep(20)
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def test_a_tokenizer_or_manifest_that_is_not_a_file_is_one_line(packed, tmp_path, capsys):
    started = time.monotonic()
    os.mkfifo(tmp_path / "fifo.model")
    _unblock_later(tmp_path / "fifo.model")
    for model, what in ((tmp_path / "fifo.model", "a FIFO"), (tmp_path, "a directory")):
        assert cli_main(["shards", "inspect", str(packed["rel"]), "--tokenizer", str(model)]) == 2
        _one_line_error(capsys, f"--tokenizer {model}: cannot read it (not a regular file ({what}))")
    for kind in ("fifo", "dir"):
        shards = tmp_path / kind
        shutil.copytree(packed["rel"], shards)
        (shards / "manifest.json").unlink()
        if kind == "fifo":
            os.mkfifo(shards / "manifest.json")
            _unblock_later(shards / "manifest.json")
        else:
            (shards / "manifest.json").mkdir()
        assert cli_main(["shards", "inspect", str(shards)]) == 2
        _one_line_error(capsys, f"{shards / 'manifest.json'}: cannot read it (not a regular file (a")
    assert time.monotonic() - started < 15


def test_verify_checks_the_megatron_files(packed, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(packed["rel"], shards)
    assert cli_main(["shards", "inspect", str(shards), "--verify"]) == 0
    assert "verified 3 files" in capsys.readouterr().out
    part = shards / "megatron" / "part-00000"
    idx = part.with_suffix(".idx").read_bytes()
    part.with_suffix(".idx").write_bytes(idx[:-1] + bytes([idx[-1] ^ 1]))  # same size, other bytes
    assert cli_main(["shards", "inspect", str(shards), "--verify"]) == 2
    _one_line_error(capsys, "megatron/part-00000.idx: sha256")
    part.with_suffix(".idx").unlink()
    assert cli_main(["shards", "inspect", str(shards), "--verify"]) == 2
    _one_line_error(capsys, "megatron/part-00000.idx: missing")
    part.with_suffix(".bin").write_bytes(part.with_suffix(".bin").read_bytes()[:100])
    assert cli_main(["shards", "inspect", str(shards), "--verify"]) == 2
    _one_line_error(capsys, "megatron/part-00000.bin: 100 bytes, the manifest says")


def test_inspect_says_what_is_wrong_with_a_damaged_pack_in_one_line(packed, tmp_path, capsys):
    """Each was a traceback: a token id beyond the tokenizer in a row (decoded unchecked without --verify), a
    manifest that is not UTF-8, a manifest nested 100,000 levels deep."""
    shards = tmp_path / "shards"
    shutil.copytree(packed["rel"], shards)
    arrow = next(shards.glob("*.arrow"))
    table = pa.ipc.open_file(pa.py_buffer(arrow.read_bytes())).read_all()
    tokens = table.column("tokens").combine_chunks()
    values = tokens.values.to_numpy().copy()
    values[0] = 65000  # beyond the tokenizer's 3,000 pieces
    column = pa.FixedSizeListArray.from_arrays(pa.array(values, tokens.type.value_type), tokens.type.list_size)
    table = table.set_column(table.schema.get_field_index("tokens"), table.schema.field("tokens"), column)
    with pa.ipc.new_file(str(arrow), table.schema) as writer:
        writer.write_table(table)
    assert cli_main(["shards", "inspect", str(shards), "--rows", "1"]) == 2
    _one_line_error(capsys, f"shard {arrow.name} row 0 holds a token id the tokenizer does not have")
    manifest = shards / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"{", b"{\xff", 1))
    assert cli_main(["shards", "inspect", str(shards)]) == 2
    _one_line_error(capsys, "manifest.json: not UTF-8 text (invalid start byte at byte 1)")
    manifest.write_text("[" * 100_000)
    assert cli_main(["shards", "inspect", str(shards)]) == 2
    _one_line_error(capsys, "manifest.json: not a manifest (JSON nested too deeply)")


def test_a_megatron_only_pack_inspects_and_verifies(corpus, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "meg"
    assert cli_main(["pack", "--input", str(corpus["curated"]), "--tokenizer", str(corpus["model"]), "--seq-len", "64",
                     "--out", str(out), "--format", "megatron", "--mix", "wbe=2"]) == 0
    said = capsys.readouterr()
    summary = said.out
    assert said.err == "jcorpus pack: warning: --mix wbe matched no source or kind\n"  # a typo weighed nothing
    manifest = json.loads((out / "manifest.json").read_text())
    t = manifest["totals"]
    assert "into 1 Megatron parts" in summary and " rows" not in summary
    assert manifest["shards"] == [] and t["rows"] == t["padding_tokens"] == t["split_docs"] == 0 and t["docs"] > 0
    part = manifest["megatron"][0]
    assert part["bin_bytes"] == (out / f"{part['prefix']}.bin").stat().st_size
    assert cli_main(["shards", "inspect", str(out), "--verify"]) == 0
    shown = capsys.readouterr().out
    assert "verified 2 files" in shown and "megatron/part-00000" in shown and "no Arrow rows to show" in shown


def test_user_mistakes_are_one_line(corpus, tmp_path, capsys):  # noqa: F811
    tokdir = tmp_path / "tokdir"
    tokdir.mkdir()
    shutil.copy(corpus["model"], tokdir / "tokenizer.model")
    common = ["--seq-len", "8", "--out", str(tmp_path / "out")]
    assert cli_main(["pack", "--input", str(corpus["curated"]), "--tokenizer", str(tokdir), *common]) == 2
    _one_line_error(capsys, "is a folder", "tokenizer.model")
    (tmp_path / "ints").mkdir()
    pq.write_table(pa.table({"id": ["a"], "source": ["s"], "kind": ["web"], "text": [5], "license": ["x"]}),
                   tmp_path / "ints" / "a.parquet")
    assert cli_main(["pack", "--input", str(tmp_path / "ints"), "--tokenizer", str(corpus["model"]), *common]) == 2
    _one_line_error(capsys, "a.parquet: column 'text' holds int64")
    (tmp_path / "twice").mkdir()  # pyarrow writes and reads such a file; the pack took the last `id` silently
    pq.write_table(pa.table([pa.array(["a"]), pa.array(["s"]), pa.array(["web"]), pa.array(["本文"]), pa.array(["x"]),
                             pa.array(["b"])], names=["id", "source", "kind", "text", "license", "id"]),
                   tmp_path / "twice" / "a.parquet")
    assert cli_main(["pack", "--input", str(tmp_path / "twice"), "--tokenizer", str(corpus["model"]), *common]) == 2
    _one_line_error(capsys, "a.parquet: columns named twice: 'id' (which one is meant is ambiguous)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("drop", ["tokenizer", "totals"])
def test_parse_refuses_a_manifest_missing_what_readers_use(tmp_path, capsys, drop):
    docs = [("d", "s", "web", "CC0", np.array([5, 6, 2], dtype=np.uint32))]
    manifest = write_local(str(tmp_path), docs, PackSettings(seq_len=7, vocab_size=3000, eos_id=2, pad_id=3),
                           TOKENIZER)
    del manifest[drop]
    (tmp_path / "manifest.json").write_text(dumps(manifest))
    with pytest.raises(ManifestError, match=f"missing keys \\['{drop}'\\]"):
        parse(dumps(manifest), packed=True)  # what `shards inspect` reads
    assert cli_main(["shards", "inspect", str(tmp_path)]) == 2
    _one_line_error(capsys, f"missing keys ['{drop}']")
    if drop == "tokenizer":  # streaming (ShardStream, jcorpus-train) reads its pad and EOS ids; no totals
        with pytest.raises(ManifestError, match="missing keys"):
            ShardStream(str(tmp_path), prefetch=0)
    manifest[drop] = {"rows": 1} if drop == "totals" else {"sha256": ""}
    with pytest.raises(ManifestError, match=f"{drop} must be an object with"):
        parse(dumps(manifest), packed=True)


def test_realized_weight_ignores_empty_documents(tmp_path):
    eos = np.array([2], dtype=np.uint32)
    docs = [("a", "s", "web", "CC0", np.array([5, 6, 7, 2], dtype=np.uint32)),
            ("b", "s", "web", "CC0", eos), ("c", "s", "web", "CC0", eos)]
    manifest = write_local(str(tmp_path), docs, PackSettings(seq_len=7, vocab_size=3000, eos_id=2, pad_id=3),
                           TOKENIZER)
    web = manifest["mixture"]["groups"]["web"]
    assert manifest["totals"]["empty_docs"] == 2
    assert web["input_tokens"] == web["output_tokens"] == 4 and web["realized_weight"] == 1.0


def test_a_pack_that_keeps_nothing_is_an_error(corpus, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "zero"
    assert cli_main(["pack", "--input", str(corpus["curated"]), "--tokenizer", str(corpus["model"]), "--seq-len", "8",
                     "--out", str(out), "--mix", "web=0,academic=0,government=0,reference=0"]) == 2
    _one_line_error(capsys, "--mix", "kept none of the", "nothing to pack")
    assert not out.exists()  # no committed empty output, no temporary folder


@pytest.mark.parametrize(("docs", "expected"), [
    ([], "holds no documents"),
    ([("e", "s", "web", "CC0", np.array([2], dtype=np.uint32))], "IN holds only empty documents (1)"),
])
def test_why_nothing_was_packed(tmp_path, docs, expected):
    manifest = write_local(str(tmp_path), docs, PackSettings(seq_len=7, vocab_size=3000, eos_id=2, pad_id=3),
                           TOKENIZER)
    assert expected in _nothing_packed(manifest, "IN")


def test_a_bad_tokenizer_is_one_line(corpus, tmp_path, capfd):  # noqa: F811
    """Missing, not a model (the HF tokenizer.json, a truncated copy), empty, and a model without `</s>`.
    `capfd`: an empty model made sentencepiece's C++ log three lines of its own on the descriptor."""
    import sentencepiece as spm

    good = Path(corpus["model"]).read_bytes()
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "Unigram"}}')
    (tmp_path / "cut.model").write_bytes(good[:300])
    (tmp_path / "empty.model").write_bytes(b"")
    (tmp_path / "lines.txt").write_text("the cat sat on the mat\nthe dog ate the hat\n" * 50, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(tmp_path / "lines.txt"), model_prefix=str(tmp_path / "noeos"),
                                   vocab_size=30, hard_vocab_limit=False, eos_id=-1, minloglevel=2)
    common = ["--input", str(corpus["curated"]), "--seq-len", "8", "--out", str(tmp_path / "out")]
    cases = [("missing.model", "missing.model not found"),
             ("tokenizer.json", "tokenizer.json: it does not parse as one (the file to pass is TOKDIR/tokenizer.model)"),
             ("cut.model", "cut.model: no normalizer spec, which every SentencePiece model ends with: a truncated file?"),
             ("empty.model", "empty.model: an empty file"),
             ("noeos.model", "noeos.model: the tokenizer has no end-of-document piece </s>")]
    for name, message in cases:
        assert cli_main(["pack", *common, "--tokenizer", str(tmp_path / name)]) == 2, name
        _one_line_error(capfd, message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["curate", "pack"])
def test_help_says_unknown_options_go_to_beam(command, capsys):
    """Both pass options they do not define to Beam (Dataflow's --project, --region...); pack's help did not say so."""
    with pytest.raises(SystemExit):
        cli_main([command, "--help"])
    assert BEAM_OPTIONS in " ".join(capsys.readouterr().out.split())
