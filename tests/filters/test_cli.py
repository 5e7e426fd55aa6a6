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
