"""The whole chain on the bundled samples, as `make demo` runs it (fewer training steps)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _demo(out: Path, *extra: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "demo", "--out", str(out), "--steps", "20", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_demo_runs_every_stage_and_reuses_finished_ones(tmp_path):
    out = tmp_path / "demo"
    first = _demo(out)
    stages = [line.split()[0] for line in first.splitlines() if line and not line.startswith("all outputs")]
    assert stages == ["curate", "tokenizer", "shards", "train", "report"]
    stats = json.loads((out / "curate" / "stats.json").read_text())
    assert stats["conservation"]["ok"] and stats["kept_docs"] > 300
    assert (out / "tokenizer" / "tokenizer.model").exists() and (out / "tokenizer" / "tokenizer.json").exists()
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest["totals"]["tokens"] > 10_000 and manifest["megatron"]
    losses = [json.loads(line)["loss"] for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert (out / "train" / "sample.txt").read_text(encoding="utf-8").startswith("日本の")
    page = (out / "report.html").read_text(encoding="utf-8")
    for heading in ("Document funnel", "Tokenizer", "Packing", "Training"):
        assert f"<h2>{heading}" in page
    again = _demo(out)
    assert all("reused" in line for line in again.splitlines()[:4]), again
