"""`jcorpus filters eval` and `jcorpus quality train` end to end on the bundled samples."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


def _config(tmp_path: Path, filters: str) -> Path:
    if not (SAMPLES / "web" / "fineweb2.jsonl").is_file():
        pytest.skip("bundled samples missing")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sources:\n"
        f"  - {{name: fw, kind: web, format: jsonl, paths: ['{SAMPLES}/web/fineweb2.jsonl'], license: ODC-BY-1.0}}\n"
        f"  - {{name: wiki, kind: reference, format: jsonl, paths: ['{SAMPLES}/reference/wikipedia.jsonl'], license: CC-BY-SA-4.0}}\n"
        f"filters: {filters}\n", encoding="utf-8")
    return cfg


def _ids(rel: str, n: int) -> list[str]:
    with open(SAMPLES / rel, encoding="utf-8") as fh:
        return [json.loads(line)["id"] for line in fh][:n]


def test_filters_eval_prints_metrics(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path, "{enabled: true, preset: default}")
    labels = tmp_path / "labels.jsonl"
    rows = [{"source_id": i, "label": "keep", "reason": "encyclopedic"} for i in _ids("reference/wikipedia.jsonl", 5)]
    rows += [{"source_id": i, "label": "drop", "reason": "test"} for i in _ids("web/fineweb2.jsonl", 3)]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["documents"] == 8
    assert result["confusion"]["label_keep"]["kept"] + result["confusion"]["label_keep"]["dropped"] == 5


def test_filters_eval_config_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path, "{enabled: true, rules: {min_chars: {threshold: x}}}")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"source_id": "a", "label": "keep"}) + "\n", encoding="utf-8")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("filters.rules.min_chars.threshold: expected a number, got 'x'") and "\n" not in err


def test_quality_train_reproduces_the_shipped_model(tmp_path: Path) -> None:
    recipe = ROOT / "data" / "models" / "quality.ftz.json"
    if not recipe.is_file() or not (SAMPLES / "academic" / "abstracts.jsonl").is_file():
        pytest.skip("shipped model recipe or bundled samples missing")
    out = tmp_path / "q.ftz"
    args = ["quality", "train", "--config", str(ROOT / "data/models/quality_train.yaml"),
            "--positive", "academic", "government", "reference", "--negative", "web", "--seed", "0", "--out", str(out)]
    assert main(args) == 0
    expected = json.loads(recipe.read_text(encoding="utf-8"))["sha256"]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected


@pytest.mark.parametrize("lines, expected", [
    (['[1, 2]'], "labels.jsonl:1: needs a JSON object"),
    (['{"source_id": "a", "label": "keep"}', '5'], "labels.jsonl:2: needs a JSON object"),
    (['{"source_id": "a", "label": "keep"}', '{"source_id": "b", "label": "drop"}', '{"source_id": "a", "label": "drop"}'],
     "labels.jsonl:3: source_id 'a' is labelled drop here and keep on line 1"),
])
def test_filters_eval_bad_labels_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, lines: list[str],
                                              expected: str) -> None:
    cfg = _config(tmp_path, "{enabled: true}")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jcorpus filters: error: --labels: ") and expected in err and "\n" not in err


def test_filters_eval_labels_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(tmp_path, "{enabled: true}")
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b"\xff\xfe{}\n")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels)]) == 2
    assert capsys.readouterr().err.strip() == f"jcorpus filters: error: --labels: {labels} is not UTF-8 text"


def test_filters_eval_counts_unmatched_labels_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A label whose source_id is in two sources is one matched label, not two: the label matching nothing
    is reported (it was offset by the double count)."""
    if not (SAMPLES / "reference" / "wikipedia.jsonl").is_file():
        pytest.skip("bundled samples missing")
    cfg = tmp_path / "c.yaml"
    wiki = SAMPLES / "reference" / "wikipedia.jsonl"
    cfg.write_text("sources:\n"
                   f"  - {{name: a, kind: reference, format: jsonl, paths: ['{wiki}'], license: x}}\n"
                   f"  - {{name: b, kind: reference, format: jsonl, paths: ['{wiki}'], license: x}}\n"
                   "filters: {enabled: true}\n", encoding="utf-8")
    labels = tmp_path / "labels.jsonl"
    rows = [{"source_id": _ids("reference/wikipedia.jsonl", 1)[0], "label": "keep"}, {"source_id": "nowhere", "label": "drop"}]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["documents"] == 2 and result["unmatched_labels"] == 1


def _train_config(tmp_path: Path, pos_lines: list[str], neg_lines: list[str]) -> Path:
    """A config with a government (positive) and a web (negative) JSONL source holding `*_lines` (str or bytes)."""
    if not (SAMPLES / "government" / "laws.jsonl").is_file():
        pytest.skip("bundled samples missing")
    for name, lines in (("pos.jsonl", pos_lines), ("neg.jsonl", neg_lines)):
        (tmp_path / name).write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    cfg = tmp_path / "t.yaml"
    cfg.write_text("sources:\n"
                   f"  - {{name: laws, kind: government, format: jsonl, paths: ['{tmp_path}/pos.jsonl'], license: x}}\n"
                   f"  - {{name: fw, kind: web, format: jsonl, paths: ['{tmp_path}/neg.jsonl'], license: x}}\n",
                   encoding="utf-8")
    return cfg


def _lines(rel: str, n: int) -> list[str]:
    with open(SAMPLES / rel, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh][:n]


ENGLISH = json.dumps({"id": "en", "text": "This page is written in English and has nothing Japanese in it at all. " * 5})


def _train(cfg: Path, out: str, *extra: str) -> int:
    return main(["quality", "train", "--config", str(cfg), "--positive", "government", "--negative", "web",
                 "--epoch", "1", "--out", out, *extra])


def test_quality_train_counts_skipped_documents(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Unreadable records and language-gate rejections are counted in the summary and the recipe, and an
    existing --out is replaced with --overwrite."""
    cfg = _train_config(tmp_path, [*_lines("government/laws.jsonl", 3), "not json", b'{"text": "\xff"}', ENGLISH],
                        _lines("web/fineweb2.jsonl", 3))
    out = tmp_path / "m.ftz"
    out.write_bytes(b"old")
    assert _train(cfg, str(out), "--overwrite") == 0
    printed = capsys.readouterr().out
    assert "3 positive, 3 negative docs; skipped: 2 unreadable, 1 rejected lang_not_ja;" in printed
    recipe = json.loads((tmp_path / "m.ftz.json").read_text(encoding="utf-8"))
    assert recipe["skipped"] == {"positive": {"unreadable": 2, "rejected lang_not_ja": 1}, "negative": {}}
    assert out.read_bytes() != b"old"


def test_quality_train_empty_class_says_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _train_config(tmp_path, ["not json", ENGLISH], _lines("web/fineweb2.jsonl", 2))
    assert _train(cfg, str(tmp_path / "m.ftz")) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("jcorpus quality: error: no positive document (kinds government) to train on: 2 read, "
                   "skipped: 1 rejected lang_not_ja, 1 unreadable")
    assert not (tmp_path / "m.ftz").exists()


@pytest.mark.parametrize("existing", ["m.ftz", "m.ftz.json"])
def test_quality_train_refuses_existing_out(tmp_path: Path, capsys: pytest.CaptureFixture, existing: str) -> None:
    cfg = _train_config(tmp_path, _lines("government/laws.jsonl", 2), _lines("web/fineweb2.jsonl", 2))
    (tmp_path / existing).write_bytes(b"keep me")
    assert _train(cfg, str(tmp_path / "m.ftz")) == 2
    assert capsys.readouterr().err.strip() == (f"jcorpus quality: error: --out: {tmp_path / existing} already exists; "
                                               "pass --overwrite to replace it")
    assert (tmp_path / existing).read_bytes() == b"keep me"


@pytest.mark.parametrize("which", ["config", "input", "recipe"])
def test_quality_train_refuses_an_input_as_out(tmp_path: Path, capsys: pytest.CaptureFixture, which: str) -> None:
    """Even with --overwrite: fastText's save_model would replace the training data or the config in place.
    The sources are relative to the config's folder, the comparison is by file, not by spelling."""
    _train_config(tmp_path, _lines("government/laws.jsonl", 2), _lines("web/fineweb2.jsonl", 2))
    (tmp_path / "neg.json").write_bytes((tmp_path / "neg.jsonl").read_bytes())
    (tmp_path / "sub").mkdir()
    cfg = tmp_path / "sub" / "t.yaml"
    cfg.write_text("sources:\n"
                   "  - {name: laws, kind: government, format: jsonl, paths: ['../pos.jsonl'], license: x}\n"
                   "  - {name: fw, kind: web, format: jsonl, paths: ['../neg.json'], license: x}\n", encoding="utf-8")
    out, victim, what = {"config": (cfg, cfg, "the config"),
                         "input": (tmp_path / "pos.jsonl", tmp_path / "pos.jsonl", "an input file of the config"),
                         "recipe": (tmp_path / "neg", tmp_path / "neg.json", "an input file of the config")}[which]
    before = victim.read_bytes()
    assert _train(cfg, str(out), "--overwrite") == 2
    assert capsys.readouterr().err.strip() == f"jcorpus quality: error: --out: {victim} is {what}; choose another --out"
    assert victim.read_bytes() == before


@pytest.mark.parametrize("arg, value, bounds", [("--seed", str(2**31), "[0, 2147483647]"),
                                                ("--epoch", str(2**31), "[1, 1000]"), ("--epoch", "1001", "[1, 1000]")])
def test_quality_train_numeric_bounds(tmp_path: Path, capsys: pytest.CaptureFixture, arg: str, value: str,
                                      bounds: str) -> None:
    """fastText's seed and epoch are signed 32-bit ints: larger values crashed inside it after reading the data."""
    with pytest.raises(SystemExit) as exc:
        main(["quality", "train", "--config", "nowhere.yaml", "--out", str(tmp_path / "m.ftz"), arg, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"argument {arg}: expected an integer in {bounds}, got {value}")


@pytest.mark.parametrize("make, out, expected", [
    (lambda d: (d / "m1.ftz").write_bytes(b"x"), "m1.ftz/x.ftz", "m1.ftz is not a folder)"),
    (lambda d: (d / "f.ftz.json").mkdir(), "f.ftz", "f.ftz.json is a folder, not a file"),
    (lambda d: None, "newdir/", "newdir/ names a folder, not a model file"),
])
def test_quality_train_bad_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, make, out: str,
                                           expected: str) -> None:
    """Checked before training: no traceback, no model written without its recipe."""
    cfg = _train_config(tmp_path, _lines("government/laws.jsonl", 2), _lines("web/fineweb2.jsonl", 2))
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert _train(cfg, str(tmp_path / out) + ("/" if out.endswith("/") else "")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jcorpus quality: error: --out") and err.endswith(expected) and "\n" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_quality_train_empty_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _train_config(tmp_path, _lines("government/laws.jsonl", 2), _lines("web/fineweb2.jsonl", 2))
    with pytest.raises(SystemExit) as exc:
        _train(cfg, "")
    assert exc.value.code == 2 and capsys.readouterr().err == (
        "jcorpus quality train: error: argument --out: expected a path, got ''\n")


def test_quality_train_unwritable_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """fastText said "cannot be opened for saving!" after training (the write probe faked: tests may run as root)."""
    import tempfile

    cfg = _train_config(tmp_path, _lines("government/laws.jsonl", 2), _lines("web/fineweb2.jsonl", 2))
    (tmp_path / "ro").mkdir()
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's name
        if dir == str(tmp_path / "ro"):
            raise PermissionError(13, "Permission denied")
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    assert _train(cfg, str(tmp_path / "ro" / "new" / "m.ftz")) == 2
    assert capsys.readouterr().err.strip() == (f"jcorpus quality: error: --out {tmp_path / 'ro' / 'new'}: cannot create "
                                               f"the output folder ({tmp_path / 'ro'}: Permission denied)")


def test_quality_train_counts_texts_without_segments(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A text MeCab segments to nothing is not a training line: counted, not silently lost."""
    import filters.quality

    cfg = _train_config(tmp_path, _lines("government/laws.jsonl", 3), _lines("web/fineweb2.jsonl", 2))
    real_segment, calls = filters.quality.segment, []
    monkeypatch.setattr(filters.quality, "segment",  # the first positive text segments to nothing
                        lambda text, n: "" if not calls.append(text) and len(calls) == 1 else real_segment(text, n))
    assert _train(cfg, str(tmp_path / "m.ftz")) == 0
    assert "2 positive, 2 negative docs; skipped: 1 empty after segmentation;" in capsys.readouterr().out
    recipe = json.loads((tmp_path / "m.ftz.json").read_text(encoding="utf-8"))
    assert recipe["skipped"] == {"positive": {"empty after segmentation": 1}, "negative": {}}


@pytest.mark.parametrize("content", ["", "\n  \n\n"])
def test_filters_eval_empty_labels(tmp_path: Path, capsys: pytest.CaptureFixture, content: str) -> None:
    """Said before the config is read (here it does not even exist)."""
    labels = tmp_path / "labels.jsonl"
    labels.write_text(content, encoding="utf-8")
    assert main(["filters", "eval", "--config", str(tmp_path / "missing.yaml"), "--labels", str(labels)]) == 2
    assert capsys.readouterr().err.strip() == f"jcorpus filters: error: --labels: {labels} holds no labels"


def test_filters_eval_names_unmatched_labels_and_counts_unreadable(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    cfg = _train_config(tmp_path, [*_lines("government/laws.jsonl", 2), "not json"], _lines("web/fineweb2.jsonl", 1))
    labels = tmp_path / "labels.jsonl"
    rows = [{"source_id": json.loads(_lines("government/laws.jsonl", 1)[0])["id"], "label": "keep"},
            {"source_id": "nowhere", "label": "drop"}, {"source_id": "elsewhere", "label": "keep"}]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = ["filters", "eval", "--config", str(cfg), "--labels", str(labels)]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["unmatched_labels"] == 2 and result["unmatched_label_ids"] == ["nowhere", "elsewhere"]
    assert result["config_documents"] == 4 and result["skipped"] == {"unreadable": 1}
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "(2 labels matched no document of the config: nowhere, elsewhere)" in printed
    assert "(4 documents in the config; skipped: 1 unreadable)" in printed


def test_filters_eval_no_match_says_what_was_read(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _train_config(tmp_path, [*_lines("government/laws.jsonl", 1), "not json"], [])
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"source_id": "nowhere", "label": "drop"}) + "\n", encoding="utf-8")
    assert main(["filters", "eval", "--config", str(cfg), "--labels", str(labels)]) == 2
    assert capsys.readouterr().err.strip() == (
        "jcorpus filters: error: no document of the config matches a label's source_id (1 labels, e.g. nowhere; "
        "2 documents in the config; skipped: 1 unreadable)")
