"""Mistakes a user can fix reach the `jcorpus` CLI as one line and exit code 2, before any pipeline starts."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.curate as curate
from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.fsutil import check_output_folder

SOURCE = "sources: [{name: a, kind: web, format: jsonl, license: x, paths: %s}]\n"


@pytest.fixture
def no_pipeline(monkeypatch):
    """Every case here must stop before the graph is built: a pipeline start is a failure, and a fast one."""
    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline started")

    monkeypatch.setattr(curate, "new_pipeline", refuse)


def _curate(tmp_path, capsys, config: str, out: str) -> tuple[int, str]:
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "x"}\n')
    (tmp_path / "c.yaml").write_text(config)
    code = main(["curate", "--config", str(tmp_path / "c.yaml"), "--out", out])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("config", "message"), [
    (SOURCE % "5", r"sources\[0\]\.paths: expected a non-empty list of path strings, got int"),
    (SOURCE % "true", r"sources\[0\]\.paths: expected a non-empty list of path strings, got bool"),
    (SOURCE % "['']", r"sources\[0\]\.paths: expected .*, got an empty string at \[0\]"),
    (SOURCE % "[d]", r"sources\[0\]\.paths: .*/d is not a regular file \(a directory; source 'a'\)"),
    (SOURCE % "[fifo.jsonl]", r"sources\[0\]\.paths: .*/fifo.jsonl is not a regular file \(a FIFO; source 'a'\)"),
    ("? [a, b]\n: 1\n" + SOURCE % "[a.jsonl]", r"config: key \['a', 'b'\] is not a string \(line 1, list\)"),
    ("? {a: 1}\n: 1\n" + SOURCE % "[a.jsonl]", r"config: key \{'a': 1\} is not a string \(line 1, dict\)"),
])
def test_config_mistakes_are_one_line_and_exit_2(tmp_path, capsys, no_pipeline, config, message):
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo.jsonl")
    code, err = _curate(tmp_path, capsys, config, str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1
    assert re.match(f"jcorpus curate: error: {message}$", err), err


def _unwritable(tmp_path) -> list[tuple[str, str]]:
    """(--out, why) for a file on the way and, on Linux, /proc and /sys (no folder can be made there)."""
    (tmp_path / "afile").write_text("")
    linux = [(f"{root}/jc_out", f"{root}: ") for root in ("/proc", "/sys")] if sys.platform == "linux" else []
    return [(str(tmp_path / "afile" / "sub"), f"{tmp_path / 'afile'} is not a folder)"), *linux]


def test_an_output_folder_that_cannot_be_written_is_one_line_before_the_run(tmp_path, capsys, no_pipeline):
    """It failed at the pipeline's first write with three tracebacks (124 lines) and exit code 1."""
    for out, why in _unwritable(tmp_path):
        code, err = _curate(tmp_path, capsys, SOURCE % "[a.jsonl]", out)
        assert code == 2, err
        assert err.startswith(f"jcorpus curate: error: --out {out}: cannot create the output folder ({why}")
        assert err.count("\n") == 1
        assert not os.path.exists(out)


@pytest.mark.parametrize(("name", "said"), [("run?", "?"), ("run*", "*"), ("out [2024]", "["), ("a[b]*", "* [")])
def test_an_output_path_beam_would_read_as_a_pattern_is_refused(tmp_path, capsys, name, said):
    """`--out run?` replaced the output it matched as a pattern: runA/curated/*.parquet was deleted, then the
    run failed with a traceback and left its temporary folder; `out [2024]` failed with 116 lines. Refused
    in one line before anything is read or deleted."""
    old = tmp_path / "runA" / "curated"
    old.mkdir(parents=True)
    (old / "part-00000.parquet").write_text("an earlier run's output")
    (tmp_path / "out [2024]").mkdir()
    for command in (["curate", "--config", str(tmp_path / "c.yaml"), "--overwrite"],
                    ["tokenizer", "train", "--input", "c", "--vocab-size", "8000"],
                    ["pack", "--input", "c", "--tokenizer", "t", "--seq-len", "128"]):
        (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "x"}\n')
        (tmp_path / "c.yaml").write_text(SOURCE % "[a.jsonl]")
        out = str(tmp_path / name)
        assert main([*command, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.endswith(f"error: --out {out}: an output path cannot contain {said} (Beam's file systems read "
                            "them as a pattern)\n") and err.count("\n") == 1, err
    assert (old / "part-00000.parquet").exists() and sorted(os.listdir(tmp_path / "out [2024]")) == []


def test_the_output_check_leaves_nothing_and_skips_urls(tmp_path):
    out = tmp_path / "new" / "out"
    check_output_folder(str(out))  # a folder that can be made is not made yet
    assert list(tmp_path.iterdir()) == []
    check_output_folder(str(tmp_path))  # nor is anything left in an existing one
    assert list(tmp_path.iterdir()) == []
    check_output_folder("gs://bucket/out")  # an object store has no folders to check
    (tmp_path / "x").write_text("")
    with pytest.raises(UserError, match=r"^--tok-out .*/x: cannot create the output folder \(.*/x is not a folder\)$"):
        check_output_folder(str(tmp_path / "x"), "--tok-out")


@pytest.mark.parametrize("command", [
    ["pack", "--input", "curated", "--tokenizer", "tok.model", "--seq-len", "128"],
    ["tokenizer", "train", "--input", "curated", "--vocab-size", "8000"],
])
def test_pack_and_tokenizer_train_check_their_output_folder_first(tmp_path, capsys, command):
    """Both wrote nothing until their work was done, then failed with tracebacks."""
    for out, why in _unwritable(tmp_path):
        assert main([*command, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"jcorpus {command[0]}: error: --out {out}: cannot create the output folder ({why}")
        assert err.count("\n") == 1 and not os.path.exists(out)


@pytest.mark.parametrize(("argv", "said"), [
    (["pack", "--input", "c", "--tokenizer", "t", "--seq-len", "1.5", "--out", "o"],
     "jcorpus pack: error: argument --seq-len: invalid int value: '1.5'"),
    (["curate"], "jcorpus curate: error: the following arguments are required: --config, --out"),
    ([], "jcorpus: error: the following arguments are required: command"),
    # no upper bounds: 10**5 workers forked as many processes, a vocabulary of 2**31 was SentencePiece's traceback
    (["curate", "--config", "c", "--out", "o", "--workers", "100000"],
     "jcorpus curate: error: argument --workers: expected an integer in [1, 1024], got 100000"),
    (["pack", "--input", "c", "--tokenizer", "t", "--seq-len", "64", "--out", "o", "--workers", "2000"],
     "jcorpus pack: error: argument --workers: expected an integer in [1, 1024], got 2000"),
    (["tokenizer", "train", "--input", "c", "--out", "o", "--vocab-size", "2147483648"],
     "jcorpus tokenizer train: error: argument --vocab-size: expected an integer in [8, 1048576], got 2147483648"),
    (["tokenizer", "train", "--input", "c", "--out", "o", "--reserved-tokens", "100000000"],
     "jcorpus tokenizer train: error: argument --reserved-tokens: expected an integer in [0, 1048576], got 100000000"),
])
def test_an_option_argparse_refuses_is_one_line_too(capsys, argv, said):
    """argparse printed its usage block above the error: 4-16 lines, where jcorpus' own checks give one."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and capsys.readouterr().err == said + "\n"


@pytest.mark.parametrize("argv, named", [
    (["pack", "--input", "{fifo}.parquet", "--tokenizer", "{model}", "--seq-len", "64", "--out", "{out}"], ".parquet"),
    (["pack", "--input", "{good}", "--tokenizer", "{fifo}.model", "--seq-len", "64", "--out", "{out}"], ".model"),
    (["tokenizer", "train", "--input", "{fifos}", "--vocab-size", "4000", "--out", "{out}"], ".parquet"),
    (["pack", "--input", "{fifos}", "--tokenizer", "{model}", "--seq-len", "64", "--out", "{out}"], ".parquet"),
    (["tokenizer", "eval", "--model", "{fifo}.model", "--input", "{good}"], ".model"),
])
def test_a_fifo_given_as_an_input_is_refused_not_waited_on(tmp_path, argv, named):
    """Opening a FIFO blocks until a writer comes: pack, the tokenizer and report hung (report even past SIGTERM).
    Run in a subprocess with a timeout, so a regression fails instead of hanging the suite."""
    import subprocess
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(__file__).resolve().parents[2]
    os.mkfifo(tmp_path / "f.parquet")
    os.mkfifo(tmp_path / "f.model")
    (tmp_path / "fifos").mkdir()
    os.mkfifo(tmp_path / "fifos" / "part-00000.parquet")
    pq.write_table(pa.table({"id": ["1"], "source": ["s"], "kind": ["web"], "text": ["日本語の文。"], "license": ["x"]}),
                   tmp_path / "good.parquet")
    values = {"fifo": str(tmp_path / "f"), "fifos": str(tmp_path / "fifos"), "good": str(tmp_path / "good.parquet"),
              "out": str(tmp_path / "out"), "model": str(tmp_path / "unused.model")}  # pack reads inputs first
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", *(a.format(**values) for a in argv)], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-2000:]
    assert named in run.stderr and "not a regular file" in run.stderr


FIFO_FILTERS = {"ng_words": "{ng_words: {extra_lists: {x: fifo}}}", "hosts": "{hosts: {blocklists: [fifo]}}",
                "footer": "{line_cleaning: {footer: {keywords: fifo}}}", "quality": "{quality: {model: fifo}}"}


@pytest.mark.parametrize("case", [*FIFO_FILTERS, "labels", "report", "quality_out"])
def test_a_fifo_in_a_config_a_labels_file_a_report_or_as_an_output_is_refused(tmp_path, case):
    """Each hung in open() until killed: the filter files a config names (NG words, host blocklists, footer
    keywords, the quality model), `filters eval --labels`, a report's stats.json, `quality train --out` with
    --overwrite (fastText's save). In a subprocess with a timeout, so a regression fails instead of hanging."""
    import subprocess
    from pathlib import Path

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "one.jsonl").write_text('{"id": "d1", "text": "今日は天気が良いので公園を散歩しました。"}\n')
    source = "sources:\n  - {name: s, kind: web, format: jsonl, paths: [one.jsonl], license: x}\n"
    (tmp_path / "c.yaml").write_text(source + f"filters: {FIFO_FILTERS.get(case, '{preset: default}')}\n")
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "stats.json")
    argv = {"labels": ["filters", "eval", "--config", "c.yaml", "--labels", "fifo"], "report": ["report", "out"],
            "quality_out": ["quality", "train", "--config", "c.yaml", "--positive", "web", "--negative", "academic",
                            "--out", "fifo", "--overwrite"]}.get(case, ["curate", "--config", "c.yaml", "--out", "o"])
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", *argv], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-2000:]
    assert "FIFO" in run.stderr and ("stats.json" if case == "report" else "fifo") in run.stderr, run.stderr


def test_report_refuses_a_fifo_among_the_parquet_parts(tmp_path):
    """`jcorpus report` sat in open() on it, deaf to SIGTERM and Ctrl-C; only SIGKILL ended it."""
    import subprocess
    from pathlib import Path

    os.mkfifo(tmp_path / "part-00009.parquet")
    code = ("import sys; from pathlib import Path; from pipeline.report_inputs import parquet_file\n"
            "from pipeline.errors import UserError\n"
            f"try: parquet_file(Path({str(tmp_path / 'part-00009.parquet')!r}), [])\n"
            "except UserError as e: print(e); sys.exit(2)")
    run = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and run.stdout.strip().endswith("part-00009.parquet: not a regular file (a FIFO)")


DROP_FILE_READ = "-dac_override,-dac_read_search"  # root reads any file only through these capabilities


def test_an_input_the_user_may_not_read_is_one_line(tmp_path):
    """It ran as a success: `_SUCCESS`, nothing kept, one quarantined row, nothing said."""
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "日本語の文です。"}\n')
    (tmp_path / "a.jsonl").chmod(0)
    (tmp_path / "c.yaml").write_text(SOURCE % "[a.jsonl]")
    cmd = [sys.executable, "-m", "pipeline.cli", "curate", "--config", str(tmp_path / "c.yaml"), "--out",
           str(tmp_path / "out")]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root every file is readable, and setpriv (util-linux), which drops that, is missing")
        cmd = ["setpriv", f"--inh-caps={DROP_FILE_READ}", f"--bounding-set={DROP_FILE_READ}", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2 and not (tmp_path / "out").exists()
    assert run.stderr.strip() == (f"jcorpus curate: error: sources[0].paths: {tmp_path / 'a.jsonl'} cannot be read "
                                  "(permission denied; source 'a')")


def test_beams_noise_is_dropped_and_other_lines_are_kept():
    """Lines that say nothing to a user (here the 6-line jar-download warning, twice per Flink or Spark run
    that cannot fetch it; the one-line error names the URL) are dropped; a logger's other lines pass."""
    import logging

    from pipeline.cli import BEAM_NOISE, _quiet_beam_noise

    _quiet_beam_noise()
    for name, texts in BEAM_NOISE.items():
        logger = logging.getLogger(None if name == "root" else name)
        for text in texts:
            assert not logger.filter(logging.LogRecord(name, logging.WARNING, "", 0, f"  {text} at runtime.", (), None))
        assert logger.filter(logging.LogRecord(name, logging.WARNING, "", 0, "a real warning", (), None))


def test_an_input_inside_the_output_is_refused(tmp_path, capsys, no_pipeline):
    """A glob over OUT read the last run's samples/*.jsonl back: input_docs grew 30 -> 34 -> 38 over three
    --overwrite runs."""
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "rejected.jsonl").write_text('{"id": "1", "text": "x"}\n')
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "x"}\n')
    (tmp_path / "c.yaml").write_text(SOURCE % "['**/*.jsonl', a.jsonl]")
    code = main(["curate", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"jcorpus curate: error: sources[0].paths: {tmp_path}/samples/rejected.jsonl is in "
                                 f"the output of --out {tmp_path}; a run would read its own earlier output (match "
                                 "the inputs outside it)\n"), err


@pytest.mark.parametrize(("url", "module", "extra"), [("s3://bucket/out", "boto3", "aws"),
                                                     ("hdfs://host/out", "hdfs", "hadoop")])
def test_an_output_url_whose_file_system_is_missing_is_one_line(tmp_path, capsys, no_pipeline, url, module, extra):
    """gs:// without Beam's gcp extra was one line, s3:// and hdfs:// a traceback. And S3 refused every call
    before any pipeline had set Beam's file-system options ("Must provide one of client or options"), even with
    boto3: the driver's checks now give it the run's options, so the error is about boto3 itself."""
    try:
        __import__(module)
        pytest.skip(f"{module} is installed: the {url.split(':')[0]} file system exists here")
    except ImportError:
        pass
    code, err = _curate(tmp_path, capsys, SOURCE % "[a.jsonl]", url)
    assert code == 2 and err.count("\n") == 1, err
    assert re.match(rf"jcorpus curate: error: {url}\S*: its file system is not installed \(.+\); "
                    rf"pip install 'apache-beam\[{extra}\]'$", err), err
