"""`jcorpus tokenizer train|eval` on inputs a user can fix: damaged Parquet, a --mix that matches nothing, and a
failed train's --out. One line, exit 2, nothing left behind."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main

TEXT = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"


def _parquet(path: Path, rows: int = 200) -> bytes:
    """Uncompressed curated-style Parquet: its first data page header starts right after the magic bytes."""
    pq.write_table(pa.table({"kind": ["web"] * rows, "text": [TEXT] * rows}), path, compression="none")
    return path.read_bytes()


def _damaged(folder: Path) -> dict[str, Path]:
    """Files named .parquet that pyarrow cannot read: each used to be an ArrowInvalid traceback, or (a page header
    XORed, the footer intact) a message split over lines."""
    folder.mkdir()
    good = _parquet(folder / "good.parquet")
    (folder / "good.parquet").unlink()
    damaged = {"truncated": good[: len(good) // 2], "garbage": bytes(range(256)) * 8, "tiny": b"PAR1\x00\x00",
               "midcorrupt": good[:4] + bytes(b ^ 0x5A for b in good[4:200]) + good[200:]}
    for name, data in damaged.items():
        (folder / name).mkdir()
        (folder / name / "part-00000.parquet").write_bytes(data)
    return {name: folder / name / "part-00000.parquet" for name in damaged}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    import sentencepiece as spm

    base = tmp_path_factory.mktemp("model")
    (base / "t.txt").write_text(f"{TEXT}\n" * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(base / "t.txt"), model_prefix=str(base / "m"), vocab_size=60,
                                   hard_vocab_limit=False, minloglevel=2)
    return base / "m.model"


def _one_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("jcorpus tokenizer: error: ") and all(f in err for f in fragments), err
    return err


def test_damaged_parquet_is_one_line_naming_the_file(tmp_path, capsys, model) -> None:
    for name, part in _damaged(tmp_path / "in").items():
        for argv in (["train", "--vocab-size", "100", "--out", str(tmp_path / f"out-{name}")],
                     ["eval", "--model", str(model)]):
            assert main(["tokenizer", *argv, "--input", str(part.parent)]) == 2, (name, argv)
            _one_line(capsys, f"{part}: not a readable Parquet file (")
        assert not (tmp_path / f"out-{name}").exists()


def _jsonl(path: Path, kinds: list[str]) -> Path:
    path.write_text("".join(json.dumps({"kind": k, "text": TEXT}, ensure_ascii=False) + "\n" for k in kinds),
                    encoding="utf-8")
    return path


def test_a_mix_that_matches_no_kind_names_it_and_the_kinds_there_are(tmp_path, capsys) -> None:
    """It blamed the holdout: "all 2 non-empty documents were held out"."""
    docs = _jsonl(tmp_path / "d.jsonl", ["web", "academic"] * 20)
    assert main(["tokenizer", "train", "--input", str(docs), "--out", str(tmp_path / "t"), "--mix", "bogus=1,x=2"]) == 2
    _one_line(capsys, "--mix kinds bogus, x match no document (the input's kinds: academic, web)")
    assert main(["tokenizer", "train", "--input", str(docs), "--out", str(tmp_path / "t"), "--holdout", "0",
                 "--char-budget", "5"]) == 2  # every sentence is longer than the budget: nothing was held out
    _one_line(capsys, "no training text: no sentence fits --char-budget 5")


def test_a_failed_train_removes_the_out_folder_it_created(tmp_path, capsys) -> None:
    docs = _jsonl(tmp_path / "d.jsonl", ["web"])
    out = tmp_path / "new" / "tok"
    assert main(["tokenizer", "train", "--input", str(docs), "--out", str(out), "--holdout", "0.9"]) == 2
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "mine"  # a folder that was there before the run stays
    kept.mkdir()
    assert main(["tokenizer", "train", "--input", str(docs), "--out", str(kept), "--holdout", "0.9"]) == 2
    assert kept.is_dir()
    capsys.readouterr()


def test_a_text_given_twice_is_one_line_naming_it(tmp_path, capsys, model) -> None:
    """A JSONL key or Parquet column named twice: json kept the last `text` silently, pyarrow raised a KeyError."""
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "a.jsonl").write_text(f'{{"text": "{TEXT}"}}\n{{"text": "{TEXT}", "text": "別"}}\n',
                                                encoding="utf-8")
    (tmp_path / "parquet").mkdir()
    pq.write_table(pa.table([pa.array([TEXT]), pa.array(["別"])], names=["text", "text"]),
                   tmp_path / "parquet" / "a.parquet")
    for folder, said in (("jsonl", "a.jsonl:2: duplicate key 'text'"), ("parquet", "a.parquet: columns named twice: 'text'")):
        assert main(["tokenizer", "eval", "--model", str(model), "--input", str(tmp_path / folder)]) == 2
        _one_line(capsys, said)


@pytest.mark.parametrize(("line", "fragment"), [
    ('{"text": "%s", "kind": 3}', ":2: 'kind' is a JSON int, expected a string"),
    ('{"text": "%s", "kind": ["web"]}', ":2: 'kind' is a JSON list, expected a string"),
    ('{"text": "これは\\ud800%s"}', ":2: 'text' has an unpaired surrogate at character 3 (not valid Unicode)"),
    ('{"text": "%s", "kind": "w\\udc00"}', ":2: 'kind' has an unpaired surrogate at character 1"),
])
def test_a_jsonl_kind_or_text_that_cannot_be_used_is_one_line(tmp_path, capsys, model, line, fragment) -> None:
    """A non-string kind was a TypeError in the sampler or in eval; a lone surrogate escape one in MeCab (eval) or
    a pybind11 cast message (train)."""
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": TEXT, "kind": "web"}) + "\n" + line % TEXT + "\n", encoding="utf-8")
    for argv in (["train", "--vocab-size", "100", "--holdout", "0", "--out", str(tmp_path / "out")],
                 ["eval", "--model", str(model)]):
        assert main(["tokenizer", *argv, "--input", str(path)]) == 2, argv
        _one_line(capsys, f"{path}{fragment}")
    assert not (tmp_path / "out").exists()


def test_a_parquet_kind_column_of_numbers_is_one_line(tmp_path, capsys, model) -> None:
    """Files whose `kind` is int in one and string in another made sorting the kinds a TypeError."""
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"kind": ["web"], "text": [TEXT]}), tmp_path / "in" / "a.parquet")
    pq.write_table(pa.table({"kind": [1], "text": [TEXT]}), tmp_path / "in" / "b.parquet")
    for argv in (["train", "--vocab-size", "100", "--holdout", "0", "--out", str(tmp_path / "out")],
                 ["eval", "--model", str(model)]):
        assert main(["tokenizer", *argv, "--input", str(tmp_path / "in")]) == 2, argv
        _one_line(capsys, f"{tmp_path / 'in' / 'b.parquet'}: column 'kind' holds int64, not strings")


@pytest.mark.parametrize(("occupied", "said"), [("baselines", "baselines is a file, and the tokenizer writes "
                                                 "baselines/default.model there"),
                                                ("eval.json/", "eval.json is a folder, and the tokenizer writes a file")])
def test_an_output_place_taken_by_the_wrong_kind_of_entry_is_one_line(tmp_path, capsys, occupied, said) -> None:
    """A `baselines` file or an `eval.json` folder in --out was a traceback after the whole training."""
    out = tmp_path / "out"
    out.mkdir()
    (out / occupied).mkdir() if occupied.endswith("/") else (out / occupied).write_text("mine")
    docs = _jsonl(tmp_path / "d.jsonl", ["web"] * 40)
    assert main(["tokenizer", "train", "--input", str(docs), "--out", str(out), "--vocab-size", "3200",
                 "--policy", "none"]) == 2
    _one_line(capsys, f"--out {out}: {out / occupied.rstrip('/')}", said[len(occupied.rstrip('/')):])
    assert sorted(p.name for p in out.iterdir()) == [occupied.rstrip("/")]


def test_publish_moves_nothing_when_one_place_is_taken(tmp_path) -> None:
    """The check before the moves: a place taken after the training started must not leave a half-published
    TOKDIR (the baselines were moved in, then eval.json failed)."""
    from pipeline.cmd_tokenizer import _publish
    from pipeline.errors import UserError

    local, out = tmp_path / "local", tmp_path / "out"
    for rel in ("baselines/default.model", "eval.json", "tokenizer.model"):
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_text(rel)
    (out / "eval.json").mkdir(parents=True)
    with pytest.raises(UserError, match="eval.json is a folder"):
        _publish(local, str(out))
    assert sorted(p.name for p in out.iterdir()) == ["eval.json"]
