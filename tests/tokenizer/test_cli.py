"""`jcorpus tokenizer train|eval` on a small curated-style Parquet built from sample documents."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from pipeline.cli import main


def _write_curated(docs: list[tuple[str, str]], out: Path) -> Path:
    curated = out / "curated"
    curated.mkdir(parents=True)
    rows = {"id": [], "source_id": [], "source": [], "kind": [], "url": [], "license": [], "text": [],
            "meta": [], "quality": [], "dup_cluster": []}
    for i, (kind, text) in enumerate(docs):
        for key, value in (("id", f"{i:032x}"), ("source_id", str(i)), ("source", f"{kind}-sample"),
                           ("kind", kind), ("url", None), ("license", "CC-BY-4.0"), ("text", text),
                           ("meta", "{}"), ("quality", None), ("dup_cluster", None)):
            rows[key].append(value)
    table = pa.table(rows, schema=pa.schema([(k, pa.float64() if k == "quality" else pa.string()) for k in rows]))
    half = len(docs) // 2
    pq.write_table(table.slice(0, half), curated / "part-00000.parquet")
    pq.write_table(table.slice(half), curated / "part-00001.parquet")
    (curated / "_SUCCESS").write_text("")
    return curated


@pytest.fixture(scope="module")
def trained(ja_docs, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tok")
    curated = _write_curated(ja_docs, root / "curate_out")
    tokdir = root / "tokdir"
    code = main(["tokenizer", "train", "--input", str(curated), "--vocab-size", "6000", "--out", str(tokdir),
                 "--char-budget", "400000", "--reserved-tokens", "8"])
    assert code == 0
    return curated, tokdir


def test_train_writes_all_outputs(trained) -> None:
    _, tokdir = trained
    for name in ("tokenizer.model", "tokenizer.vocab", "tokenizer.json", "training.json", "eval.json",
                 "baselines/default.model", "baselines/lossless.model"):
        assert (tokdir / name).is_file(), name
    training = json.loads((tokdir / "training.json").read_text())
    assert training["sha256"]["tokenizer.model"] == hashlib.sha256((tokdir / "tokenizer.model").read_bytes()).hexdigest()
    assert training["config"]["policy"] == "phrase" and training["data"]["sampled_chars"] <= 400_000
    assert training["hf_export"]["identical_rate"] >= 0.999
    evals = json.loads((tokdir / "eval.json").read_text())["models"]
    assert set(evals) == {"main", "default", "lossless"}
    assert evals["main"]["roundtrip_exact"] == 1.0 and evals["main"]["joyo_kanji_coverage"] == 1.0
    assert evals["default"]["roundtrip_exact"] < 1.0  # NFKC baseline cannot round-trip
    assert len((tokdir / "tokenizer.vocab").read_bytes().rstrip(b"\n").split(b"\n")) == 6000
    assert Tokenizer.from_file(str(tokdir / "tokenizer.json")).get_vocab_size() == 6000


def test_eval_json_and_baseline_table(trained, capsys) -> None:
    curated, tokdir = trained
    capsys.readouterr()
    assert main(["tokenizer", "eval", "--model", str(tokdir / "tokenizer.model"), "--input", str(curated),
                 "--max-chars", "30000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["model"]
    for key in ("chars_per_token", "chars_per_token_by_kind", "morph_boundary_f1", "byte_fallback_rate",
                "joyo_kanji_coverage", "roundtrip_exact", "renyi_efficiency", "composition", "piece_length_histogram"):
        assert key in result
    assert 0.5 < result["morph_boundary_f1"] <= 1.0 and result["chars_per_token"] > 1.0
    assert main(["tokenizer", "eval", "--model", str(tokdir / "tokenizer.model"), "--input", str(curated),
                 "--max-chars", "20000", "--baseline", str(tokdir / "baselines" / "lossless.model")]) == 0
    table = capsys.readouterr().out
    assert "morph_boundary_f1" in table and "baseline:lossless" in table


def test_a_curate_output_root_gives_its_kept_documents_and_every_input_must_match(tmp_path) -> None:
    """`--input OUT` also read OUT/samples/*.jsonl (rejected documents, and the quarantine's error messages as
    text); a misspelt --input beside one that matched was skipped in silence."""
    from pipeline.cmd_tokenizer import read_records
    from pipeline.errors import UserError

    root = tmp_path / "out"
    _write_curated([("web", "残った文書です。"), ("academic", "もう一つ残った文書。")], root)
    (root / "samples").mkdir()
    (root / "samples" / "dup_exact.jsonl").write_text(json.dumps({"id": "x", "text": "捨てた文書"}) + "\n")
    (root / "samples" / "quarantine.jsonl").write_text(json.dumps({"id": "y", "text": "invalid JSON"}) + "\n")
    assert sorted(text for _, text in read_records([str(root)])) == ["もう一つ残った文書。", "残った文書です。"]
    corpora = tmp_path / "corpora"  # a folder of kind folders, as ../shared/corpora, still reads its JSONL
    (corpora / "web").mkdir(parents=True)
    (corpora / "web" / "a.jsonl").write_text(json.dumps({"text": "ウェブの文書"}) + "\n")
    assert list(read_records([str(corpora)])) == [("web", "ウェブの文書")]
    for part in (root / "curated").glob("*.parquet"):  # a run that kept nothing: not its samples instead
        part.unlink()
    (root / "stats.json").write_text("{}")
    with pytest.raises(UserError, match="no .parquet or .jsonl files found"):
        list(read_records([str(root)]))
    typo = tmp_path / "curatd"
    with pytest.raises(UserError, match=f"^--input {typo}: no .parquet or .jsonl files found$"):
        list(read_records([str(corpora), str(typo)]))


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["tokenizer", "train", "--input", str(empty), "--out", str(tmp_path / "t")]) == 2
    assert "no .parquet or .jsonl files" in capsys.readouterr().err
    blank = _write_curated([("web", "")], tmp_path / "blank")
    assert main(["tokenizer", "train", "--input", str(blank), "--out", str(tmp_path / "t2")]) == 2
    assert "no training text" in capsys.readouterr().err
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x00garbage")
    assert main(["tokenizer", "eval", "--model", str(bad), "--input", str(blank)]) == 2
    err = capsys.readouterr().err
    assert "cannot read SentencePiece model" in err and len(err.strip().splitlines()) == 1
    for option, value, message in (("--holdout", "2", "expected a number in [0, 0.9], got 2"),
                                   ("--seed", "-1", "expected an integer in [0, 4294967295], got -1"),
                                   ("--threads", "0", "expected an integer in [1, 1024], got 0")):
        with pytest.raises(SystemExit) as info:  # argparse: usage line and one error line, exit 2
            main(["tokenizer", "train", "--input", str(blank), "--out", str(tmp_path / "t3"), option, value])
        assert info.value.code == 2 and f"argument {option}: {message}" in capsys.readouterr().err


def test_cli_mix_is_checked_before_reading(tmp_path, capsys) -> None:
    """A negative weight used to shrink the total and over-fill the other kinds' budgets, silently."""
    blank = _write_curated([("web", "")], tmp_path / "blank")
    for mix, message in (("web=-1", "must be a finite number >= 0"), ("=2", "is not NAME=WEIGHT"),
                         ("web=1,web=2", "names 'web' twice"), ("web=0", "at least one weight must be > 0")):
        assert main(["tokenizer", "train", "--input", str(blank), "--out", str(tmp_path / "t"), "--mix", mix]) == 2
        err = capsys.readouterr().err
        assert "--mix: " in err and message in err and len(err.strip().splitlines()) == 1


def test_cli_train_never_replaces_a_tokenizer(tmp_path, capsys) -> None:
    """Shards packed with the old model would decode to garbage with a new one at the same path."""
    old = tmp_path / "tok" / "tokenizer.model"
    old.parent.mkdir()
    old.write_bytes(b"old model")
    blank = _write_curated([("web", "")], tmp_path / "blank")
    assert main(["tokenizer", "train", "--input", str(blank), "--out", str(old.parent)]) == 2
    err = capsys.readouterr().err
    assert f"{old} already exists" in err and len(err.strip().splitlines()) == 1 and old.read_bytes() == b"old model"


def test_cli_text_column_that_is_not_strings_is_one_line(tmp_path, capsys) -> None:
    """`tokenizer eval` / `train` on Parquet whose text is int64 raised TypeError: object of type 'int' has no len()."""
    import pyarrow.parquet as pq

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"kind": ["web"], "text": [3]}), bad)
    import sentencepiece as spm

    text = tmp_path / "t.txt"
    text.write_text("吾輩は猫である。名前はまだ無い。\n" * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "m"), vocab_size=18)
    for argv in (["tokenizer", "train", "--input", str(bad), "--out", str(tmp_path / "t")],
                 ["tokenizer", "eval", "--model", str(tmp_path / "m.model"), "--input", str(bad)]):
        assert main(argv) == 2
        assert f"{bad}: column 'text' holds int64, not strings" in capsys.readouterr().err


def test_cli_size_and_holdout_errors_say_what_to_do(tmp_path, capsys) -> None:
    """The minimum was off by one ('> N' where N works), a baseline's limit was reported as the model's, a fully
    held-out input was called empty, and an empty model file raised a RuntimeError traceback in eval."""
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": "吾輩は猫である。名前はまだ無い。"}, ensure_ascii=False) + "\n", encoding="utf-8")

    def err(*argv: str) -> str:
        assert main(["tokenizer", *argv]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress line, when training began
        assert last.startswith("jcorpus tokenizer: error: ")
        return last

    train = ["train", "--input", str(one), "--holdout", "0", "--inventory", "joyo"]
    assert re.search(r"main model \(inventory joyo\): vocabulary size 100 cannot hold the (\d+) required .*"
                     r"use --vocab-size >= \1$", err(*train, "--vocab-size", "100", "--out", str(tmp_path / "a")))
    need = int(re.search(r">= (\d+)", err(*train, "--vocab-size", "100", "--out", str(tmp_path / "b"))).group(1))
    assert "baseline 'default' (inventory joyo): vocabulary size" in err(
        *train, "--vocab-size", str(need), "--out", str(tmp_path / "c"))
    assert "no vocabulary size fits this sample" in err(*train, "--vocab-size", "4000", "--shrink-to-fit",
                                                         "--out", str(tmp_path / "d"))
    assert "all 1 non-empty documents were held out (--holdout 0.9)" in err(
        "train", "--input", str(one), "--holdout", "0.9", "--out", str(tmp_path / "e"))
    blank = tmp_path / "blank.jsonl"
    blank.write_text("".join(json.dumps({"text": t}) + "\n" for t in (" ", "\n\n", "\u3000\t")), encoding="utf-8")
    assert err("train", "--input", str(blank), "--holdout", "0", "--out", str(tmp_path / "f")).endswith(
        "the 3 non-empty documents hold no sentence to sample (only whitespace and line breaks)")
    (tmp_path / "empty.model").write_bytes(b"")
    assert "cannot read SentencePiece model" in err("eval", "--model", str(tmp_path / "empty.model"), "--input", str(one))


def test_a_stop_while_training_into_an_existing_folder_leaves_it_as_it_was(ja_docs, tmp_path, monkeypatch) -> None:
    """Files went into an existing --out one by one: a Ctrl-C left tokenizer.model alone there, which a rerun
    refused ("already exists") and pack used. The run builds in a temporary folder and publishes at the end."""
    import tokenizer.build

    curated = _write_curated(ja_docs[:40], tmp_path / "curate_out")
    out = tmp_path / "tok"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def stopped(records, out_dir, *args, **kwargs):
        (Path(out_dir) / "tokenizer.model").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer.build, "build", stopped)
    assert main(["tokenizer", "train", "--input", str(curated), "--vocab-size", "6000", "--out", str(out)]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_unfinished_curate_output_is_refused(ja_docs, tmp_path, capsys) -> None:
    """A curate run stopped while committing left part of its documents and no _SUCCESS; the tokenizer and pack
    took them as the corpus."""
    root = tmp_path / "curate_out"
    curated = _write_curated(ja_docs[:40], root)
    (curated / "_SUCCESS").unlink()
    for d in ("rejected", "quarantine"):
        (root / d).mkdir()
    for argv in (["tokenizer", "train", "--input", str(root), "--vocab-size", "6000", "--out", str(tmp_path / "t")],
                 ["tokenizer", "train", "--input", f"{curated}/*.parquet", "--out", str(tmp_path / "t")],
                 ["pack", "--input", f"{curated}/.", "--tokenizer", "unused.model", "--seq-len", "64",
                  "--out", str(tmp_path / "p")]):
        assert main(argv) == 2
        given = argv[argv.index("--input") + 1]
        assert capsys.readouterr().err.endswith(f"error: --input {given}: {root} is a curate output without _SUCCESS "
                                                "(its run did not finish, so it may hold part of the documents); "
                                                "run curate again\n")
    (root / "_SUCCESS").write_text("")
    assert main(["tokenizer", "eval", "--model", "missing.model", "--input", str(root)]) == 2
    assert "cannot read SentencePiece model" in capsys.readouterr().err  # the input itself is accepted now


def test_an_output_holding_only_a_running_or_killed_curate_says_so(tmp_path, capsys) -> None:
    """An OUT with nothing but a curate run's staging folder (still running, or killed) gave "no files found"."""
    root = tmp_path / "curate_out"
    (root / "_temporary-0123abcd" / "_spill").mkdir(parents=True)
    for argv in (["tokenizer", "train", "--input", str(root), "--out", str(tmp_path / "t")],
                 ["pack", "--input", str(root), "--tokenizer", "unused.model", "--seq-len", "64",
                  "--out", str(tmp_path / "p")]):
        assert main(argv) == 2
        assert capsys.readouterr().err.endswith(f"error: --input {root}: {root} holds only _temporary-0123abcd, a "
                                                "curate run that has not finished (or was killed); wait for it, or "
                                                "run curate again\n")
