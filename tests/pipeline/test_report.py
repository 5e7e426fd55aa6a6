"""The report: sections only for stages that ran, escaped content, no external requests, renders in Chromium."""
import json
import re
import shutil
import subprocess

import pytest

from pipeline.curate import run_curate
from pipeline.report import write_report
from tests.pipeline.test_curate import inputs  # noqa: F401  (fixture)


@pytest.fixture
def curated(tmp_path, inputs):  # noqa: F811
    cfg, _ = inputs
    out = tmp_path / "run"
    run_curate(cfg, str(out / "curate"))
    return out


def test_sections_follow_the_stages_that_ran(curated):
    page = write_report(curated).read_text(encoding="utf-8")
    for heading in ("Document funnel", "Why documents were removed", "Distributions", "Duplicates", "Licences"):
        assert f"<h2>{heading}" in page
    for absent in ("Tokenizer", "Packing", "Training"):
        assert f"<h2>{absent}" not in page
    (curated / "train").mkdir()
    (curated / "train" / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i, "loss": 5.0 / i, "tokens_per_s": 1000.0}) + "\n" for i in range(1, 6)))
    (curated / "train" / "sample.txt").write_text("日本の<script>alert(1)</script>")
    page = write_report(curated).read_text(encoding="utf-8")
    assert "<h2>Training" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_self_contained(curated):
    page = write_report(curated).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # only in-page SVG references
    assert page.count("<svg") >= 3


def test_renders_in_headless_chromium(curated, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium when root)")
    page = write_report(curated)
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1000,3000", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "report.html" in line]
    assert not console, console


def test_broken_stage_outputs_are_a_one_line_error(curated, capsys):
    from pipeline.cli import main

    (curated / "train").mkdir()
    (curated / "train" / "metrics.jsonl").write_text("{not json\n")
    assert main(["report", str(curated)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot build the report" in err and "JSONDecodeError" in err and "\n" not in err


def test_a_folder_without_stage_outputs_is_an_error_and_writes_nothing(tmp_path, capsys):
    from pipeline.cli import main

    shards = tmp_path / "shards"  # a stage folder itself, not the folder holding it
    shards.mkdir()
    (shards / "manifest.json").write_text("{}")
    for folder in (tmp_path / "empty", shards):
        folder.mkdir(exist_ok=True)
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert "no stage outputs found" in err and "\n" not in err
        assert not (folder / "report.html").exists()
