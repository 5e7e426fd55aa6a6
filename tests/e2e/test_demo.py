"""The whole chain on the bundled samples, as `make demo` runs it (fewer training steps)."""
import json
import re
import shutil
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
    _rendered_in_chromium(out / "report.html", tmp_path)
    again = _demo(out)
    assert all("reused" in line for line in again.splitlines()[:4]), again


def _rendered_in_chromium(page: Path, tmp_path: Path) -> None:
    """Every section and plot is in the DOM that headless Chromium builds, and nothing logs to the console."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return  # tests/pipeline/test_report.py skips with the reason; the HTML checks above still ran
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", f"--user-data-dir={tmp_path / 'chrome'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    headings = re.findall(r"<h2>([^<]+)</h2>", done.stdout)
    assert headings == ["Document funnel", "Why documents were removed", "Distributions, kept vs rejected",
                        "Duplicates", "Licences", "Tokenizer", "Packing", "Training"], headings
    # reasons, length, hiragana fraction, cluster sizes, vocabulary, loss, throughput (no quality model in the demo)
    assert done.stdout.count("<svg") == 7
    assert not [line for line in done.stderr.splitlines() if "CONSOLE" in line]


def test_demo_never_deletes_a_folder_it_did_not_write(tmp_path, capsys):
    """A stage redone deletes its folder: `demo --out DIR` used to remove a user's own DIR/train checkpoints."""
    from pipeline.cli import main

    mine = tmp_path / "train" / "ckpt-40.npz"
    mine.parent.mkdir()
    mine.write_bytes(b"user data")
    for extra in ([], ["--force"]):
        assert main(["demo", "--out", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'train'} not written by jcorpus demo" in err and len(err.strip().splitlines()) == 1
    assert mine.read_bytes() == b"user data" and not (tmp_path / "curate").exists()
