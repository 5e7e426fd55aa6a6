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
