"""The whole chain on the bundled samples, as `make demo` runs it (fewer training steps)."""
import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


# The tests below run `jcorpus demo` with every stage replaced by a fake that writes the files the summaries read,
# so the reuse rules are checked in milliseconds instead of a whole chain.
def _parquet(rows: int) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"id": [str(i) for i in range(rows)]}), sink)
    return sink.getvalue()


FAKE_OUTPUTS = {
    "curate": {"stats.json": json.dumps({"input_docs": 3, "kept_docs": 2, "rejected_docs": 1, "quarantined_docs": 0,
                                         "reasons": {"lang_not_ja": {"docs": 1}}}),
               "curated/part-0.parquet": _parquet(2), "rejected/part-0.parquet": _parquet(1)},
    "tokenizer": {"eval.json": json.dumps({"models": {"main": {"chars_per_token": 1.5}}}), "tokenizer.model": "x"},
    "shards": {"manifest.json": json.dumps({"shards": [{"file": "s.arrow"}], "megatron": [], "seq_len": 4,
                                            "totals": {"rows": 1, "tokens": 5, "padding_rate": 0.0}}), "s.arrow": "x"},
    "train": {"metrics.jsonl": '{"step": 1, "loss": 9.0}\n{"step": 2, "loss": 8.0}\n', "sample.txt": "日本の"},
}


def _fake_chain(monkeypatch, fail: str = "") -> list[str]:
    """Replace the stage commands with writers of their outputs; returns the stages run, in order. The stage named
    `fail` writes a checkpoint, then exits 1 (a crash halfway)."""
    from pipeline import cmd_demo

    ran: list[str] = []

    def fake_run(argv: list[str], log) -> int:
        words = shlex.split(argv[2]) if argv[0] == "bash" else argv
        if "--out" in words:
            folder = Path(words[words.index("--out") + 1])
            name, files = folder.name, FAKE_OUTPUTS[folder.name]
        else:  # jcorpus report OUT
            folder, name, files = Path(argv[-1]), "report", {"report.html": "<h1>report</h1>"}
        ran.append(name)
        if name == fail:
            files = {"ckpt-10.npz": "half"}
        for rel, content in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                (folder / rel).write_bytes(content)
            else:
                (folder / rel).write_text(content, encoding="utf-8")
        return 1 if name == fail else 0

    monkeypatch.setattr(cmd_demo, "run_stage", fake_run)
    return ran


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    from pipeline.cli import main

    code = main(["demo", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _reused(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines() if "reused" in line.split()[1:2]]


def test_a_crashed_run_is_redone_not_refused(tmp_path, monkeypatch, capsys):
    """A failed stage left its folder without stage.json, so the re-run called it "not written by jcorpus demo"."""
    ran = _fake_chain(monkeypatch, fail="train")
    with pytest.raises(SystemExit, match="stage train failed"):
        _main(capsys, "--out", str(tmp_path))
    assert (tmp_path / "train" / "ckpt-10.npz").exists()
    _fake_chain(monkeypatch)
    code, out, err = _main(capsys, "--out", str(tmp_path))
    assert code == 0, err
    assert _reused(out) == ["curate", "tokenizer", "shards"] and ran == [*STAGE_NAMES[:4]]
    assert not (tmp_path / "train" / "ckpt-10.npz").exists() and (tmp_path / "train" / "_SUCCESS").exists()


STAGE_NAMES = ["curate", "tokenizer", "shards", "train", "report"]


@pytest.mark.parametrize("damage, redone", [
    ("report.html", STAGE_NAMES[4:]),  # was "report reused  open OUT/report.html" with no such file
    ("train/metrics.jsonl", STAGE_NAMES[3:]),  # empty: was an IndexError traceback
    ("curate/stats.json", STAGE_NAMES),  # not JSON: was a JSONDecodeError traceback
    ("tokenizer/tokenizer.model", STAGE_NAMES[1:]),  # the shards after it were packed with the old model
    ("shards/s.arrow", STAGE_NAMES[2:]),
    # a lost part: was "curate reused ... 2 kept" over 0 rows, and a report redone said so only in report.log
    ("curate/curated/part-0.parquet", STAGE_NAMES),
    ("curate/rejected/part-0.parquet", STAGE_NAMES),
    ("curate/curated/part-0.parquet!", STAGE_NAMES),  # "!": overwritten with bytes that are not Parquet
])
def test_a_stage_with_missing_or_corrupt_outputs_is_redone_with_the_stages_after_it(tmp_path, monkeypatch, capsys,
                                                                                    damage, redone):
    _fake_chain(monkeypatch)
    assert _main(capsys, "--out", str(tmp_path))[0] == 0
    path = tmp_path / damage.rstrip("!")
    if damage.endswith("!"):
        path.write_bytes(b"not parquet")
    else:
        path.write_text("", encoding="utf-8") if path.suffix in (".json", ".jsonl") else path.unlink()
    ran = _fake_chain(monkeypatch)
    code, out, err = _main(capsys, "--out", str(tmp_path))
    assert code == 0, err
    assert ran == redone and _reused(out) == [s for s in STAGE_NAMES if s not in redone], out
    assert (tmp_path / "report.html").exists() and json.loads((tmp_path / "curate" / "stats.json").read_text())


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys, out):
    """It was the current folder: run from the repo, the demo wrote into it."""
    monkeypatch.chdir(tmp_path)
    ran = _fake_chain(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        _main(capsys, "--out", out)
    assert exc.value.code == 2 and capsys.readouterr().err == (
        f"jcorpus demo: error: argument --out: expected a path, got {out!r}\n")
    assert ran == [] and not any(tmp_path.iterdir())


def test_a_remote_out_is_refused(tmp_path, monkeypatch, capsys):
    """It became a local folder ./gs:/bucket."""
    monkeypatch.chdir(tmp_path)
    ran = _fake_chain(monkeypatch)
    code, _, err = _main(capsys, "--out", "gs://bucket/demo")
    assert code == 2 and err == "jcorpus demo: error: --out gs://bucket/demo: the demo writes local folders only, not URLs\n"
    assert ran == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize("setup, message", [
    ("curate", "curate: the demo needs a folder there"),  # a file: was curate's usage message and exit 1
    ("train.log/", "train.log: the demo needs a file there"),
    ("notes.txt", "is not empty and not a jcorpus demo folder"),  # its report.html and logs would overwrite a user's
])
def test_an_out_the_demo_would_overwrite_is_refused_before_any_stage(tmp_path, monkeypatch, capsys, setup, message):
    path = tmp_path / setup.rstrip("/")
    path.mkdir() if setup.endswith("/") else path.write_text("mine", encoding="utf-8")
    (tmp_path / "report.html").write_text("mine", encoding="utf-8")
    ran = _fake_chain(monkeypatch)
    code, _, err = _main(capsys, "--out", str(tmp_path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert ran == [] and (tmp_path / "report.html").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("out, named", [("ro", "ro/curate"), ("ro/x/y", "ro/x")])
def test_an_out_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys, out, named):
    """A read-only --out was a PermissionError traceback (simulated: the tests may run as root)."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).is_relative_to(tmp_path / "ro") and Path(path) != tmp_path / "ro":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "mkdir", mkdir)
    _fake_chain(monkeypatch)
    code, _, err = _main(capsys, "--out", str(tmp_path / out))
    assert code == 2 and f"{tmp_path / named}" in err and "Permission denied" in err, err
    assert len(err.strip().splitlines()) == 1


STAGE_SCRIPT = """
import signal
import sys
from pipeline import cli, cmd_demo

signal.signal(signal.SIGTERM, cli._terminate)  # as the jcorpus command installs them
signal.signal(signal.SIGINT, cli._interrupt)
with open(sys.argv[1], "wb") as log:
    try:
        cmd_demo.run_stage(["bash", "-c", "sleep 600 & echo $! > " + sys.argv[2] + "; wait"], log)
    except (KeyboardInterrupt, cli.Terminated, SystemExit):
        sys.exit(3)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stopped_stage_leaves_no_process_behind(tmp_path, sig):
    """A stage's process group is stopped whole: the train stage's `bash -c` died and its `mpiexec` and ranks
    trained on as orphans (here: the `sleep` a stage's shell started)."""
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen([sys.executable, "-c", STAGE_SCRIPT, str(tmp_path / "stage.log"), str(pidfile)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    grandchild = int(pidfile.read_text())
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 3
    deadline = time.monotonic() + 10
    while _running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(grandchild), "the stage's child outlived the stop"


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap the orphan it inherits)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_loss_that_is_not_finite_is_said_not_called_unreadable(tmp_path, monkeypatch, capsys):
    """The trainer writes a step whose loss is not finite as `"loss": null`; the summary's format raised TypeError,
    so a finished training was called unreadable and redone on every run."""
    monkeypatch.setitem(FAKE_OUTPUTS, "train", {**FAKE_OUTPUTS["train"],
                                                "metrics.jsonl": '{"step": 1, "loss": 9.0}\n{"step": 2, "loss": null}\n'})
    _fake_chain(monkeypatch)
    code, out, err = _main(capsys, "--out", str(tmp_path))
    assert code == 0, err
    assert "loss 9.000 → not finite in 2 steps" in out
    ran = _fake_chain(monkeypatch)
    assert _main(capsys, "--out", str(tmp_path))[0] == 0 and ran == []


@pytest.mark.parametrize("ranks", ["3", "16"])
def test_ranks_that_do_not_divide_the_batch_are_refused_before_any_stage(tmp_path, monkeypatch, capsys, ranks):
    """The demo trains with a global batch of 8: --ranks 3 ran curate, the tokenizer and the packing first, then
    failed on `--global-batch 8 must be a positive multiple of the number of ranks`, an option not given."""
    ran = _fake_chain(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        _main(capsys, "--out", str(tmp_path), "--ranks", ranks)
    assert exc.value.code == 2 and ran == [] and not any(tmp_path.iterdir())
    assert capsys.readouterr().err == (f"jcorpus demo: error: argument --ranks: expected one of 1, 2, 4, 8 (the demo "
                                       f"trains with a global batch of 8), got {ranks}\n")


@pytest.mark.parametrize("vocab", ["8", "16", "100"])
def test_a_vocabulary_below_the_tokenizers_fixed_pieces_is_refused_before_any_stage(tmp_path, monkeypatch, capsys,
                                                                                     vocab):
    """--vocab-size 100 ran curate first, then the tokenizer failed; 8 to 16 named --reserved-tokens, not given."""
    from tokenizer.train import TrainConfig, fixed_pieces, minimum_vocab_size

    least = minimum_vocab_size()
    assert fixed_pieces(TrainConfig(vocab_size=least)) == least  # the inventory auto resolves to there fits
    ran = _fake_chain(monkeypatch)
    with pytest.raises(SystemExit) as exc:
        _main(capsys, "--out", str(tmp_path), "--vocab-size", vocab)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and ran == [] and not any(tmp_path.iterdir())
    assert err.startswith("jcorpus demo: error: argument --vocab-size: ") and err.count("\n") == 1
    assert f"at least {least} " in err and "--reserved-tokens" not in err


def test_the_smallest_vocabulary_is_passed_on_to_the_tokenizer(tmp_path, monkeypatch, capsys):
    from tokenizer.train import minimum_vocab_size

    argvs: list[list[str]] = []
    _fake_chain(monkeypatch)
    from pipeline import cmd_demo

    fake = cmd_demo.run_stage
    monkeypatch.setattr(cmd_demo, "run_stage", lambda argv, log: argvs.append(argv) or fake(argv, log))
    least = str(minimum_vocab_size())
    code, _, err = _main(capsys, "--out", str(tmp_path), "--vocab-size", least)
    assert code == 0, err
    assert any(a[a.index("--vocab-size") + 1] == least for a in argvs if "--vocab-size" in a)
