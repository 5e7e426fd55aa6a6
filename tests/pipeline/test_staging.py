"""Staging folders left by runs that died (`kill -9`, a dead machine) are removed by the next run into the same
OUT or index_out, and only when provably stale (pipeline/staging.py). Before, nothing ever removed them."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from pipeline.config import parse_config
from pipeline.curate import run_curate
from pipeline.staging import KEPT_SECONDS, OWNER, STALE_SECONDS, owned, owner_marker, remove_stale, why_stale
from tests.conftest import ROOT

JA = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"


def _tiny(tmp_path, index_out=None):
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    (d / "a.jsonl").write_text(json.dumps({"id": "1", "text": JA}, ensure_ascii=False) + "\n", encoding="utf-8")
    raw = {"sources": [{"name": "web", "kind": "web", "format": "jsonl", "paths": [str(d / "a.jsonl")],
                        "license": "x"}], "filters": {"enabled": False}}
    if index_out:
        raw["dedup"] = {"near": {"enabled": True, "index_out": str(index_out)}}
    return parse_config(raw)


def _stage(folder, name, marker=None, age=0.0):
    """A staging folder holding a spill file (and a marker), its files `age` seconds old."""
    stage = folder / f"_temporary-{name}"
    (stage / "_spill" / "00000").mkdir(parents=True)
    (stage / "_spill" / "00000" / "x.bin").write_bytes(b"spilled")
    if marker is not None:
        (stage / OWNER).write_text(marker if isinstance(marker, str) else json.dumps(marker))
    if age:
        then = time.time() - age
        for root, dirs, files in os.walk(stage):
            for n in [root, *(os.path.join(root, f) for f in dirs + files)]:
                os.utime(n, (then, then))
    return stage


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_killed_with_sigkill_leaves_staging_that_the_next_run_removes(tmp_path, capsys):
    """A real `jcorpus curate` on the bundled samples, killed with SIGKILL mid-run: its `_temporary-*` folders in
    OUT and in index_out stayed forever, and the next run (without --overwrite: they are not an output) left
    them there."""
    cfg = yaml.safe_load((ROOT / "examples" / "demo.yaml").read_text())
    for src in cfg["sources"]:
        src["paths"] = [str((ROOT / "examples" / p).resolve()) for p in src["paths"]]
    out, index = tmp_path / "out", tmp_path / "index"
    cfg["dedup"]["near"]["index_out"] = str(index)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "curate", "--config", str(tmp_path / "c.yaml"),
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("_temporary-*/_spill/*/*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    left = list(out.glob("_temporary-*")) + list(index.glob("_temporary-*"))
    assert len(left) == 2 and not (out / "_SUCCESS").exists(), left

    run_curate(_tiny(tmp_path, index), str(out))
    assert not list(out.glob("_temporary-*")) and (out / "_SUCCESS").exists()
    assert not list(index.glob("_temporary-*")) and list(index.glob("band-index-*.parquet"))
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(":")[1].split("/")[-1] for line in lines if "removed stale" in line) == \
        sorted(p.name for p in left)
    assert all("is no longer running" in line for line in lines if "removed stale" in line)


def test_a_live_run_s_staging_is_kept_and_dead_ones_go(tmp_path, capsys):
    """A marker naming this (live) process is another run at work: kept, with one line saying so. A dead pid, a
    pid reused by another process, and a folder whose newest file is older than STALE_SECONDS go."""
    out, index = tmp_path / "out", tmp_path / "index"
    live = owner_marker("live", True)
    kept = [_stage(out, "live", live), _stage(index, "live", live), _stage(out, "fresh-nomarker"),
            _stage(out, "half-marker", '{"host": ')]
    dead = {**owner_marker("dead", True), "pid": _dead_pid()}
    reused = {**live, "run_id": "reused", "process_start": (live["process_start"] or 0) - 1}
    gone = [_stage(out, "dead", dead), _stage(index, "dead", dead), _stage(out, "reused", reused),
            _stage(out, "old-nomarker", age=STALE_SECONDS + 60)]
    run_curate(_tiny(tmp_path, index), str(out))
    assert all(p.exists() for p in kept) and not any(p.exists() for p in gone)
    assert (out / "_SUCCESS").exists()
    err = capsys.readouterr().err
    assert err.count("removed stale") == 4 and err.count("alone") == 4, err
    assert "left " + str(out / "_temporary-live") + " alone: run live (pid" in err and "is still running" in err
    assert "pid " + str(os.getpid()) + " is now another process" in err
    assert "no owner marker and its newest file is 24.0 h old" in err


def test_why_stale_by_age_for_another_machine_and_kept_folders():
    now = time.time()
    other = {**owner_marker("r", True), "host": "elsewhere", "boot_id": "another-boot", "pid_ns": "pid:[1]", "pid": 1}
    assert why_stale({**other, "refreshed": now - 3600}, None, now)[0] is False
    stale, why = why_stale({**other, "refreshed": now - STALE_SECONDS - 1}, None, now)
    assert stale and why == "run r (pid 1 on elsewhere) ran on another machine and was last seen 24.0 h ago"
    inspect = {**owner_marker("k", True), "pid": _dead_pid(), "kept": "document accounting does not balance"}
    assert why_stale({**inspect, "refreshed": now - STALE_SECONDS * 2}, None, now)[0] is False
    assert why_stale({**inspect, "refreshed": now - KEPT_SECONDS - 1}, None, now)[0] is True
    assert why_stale(None, None, now) == (False, "it has no owner marker and its files' times are unknown")
    assert why_stale(["not", "a", "dict"], now - STALE_SECONDS - 1, now)[0] is True


def _late_file(stage):
    """A spill file written now into an aged folder: the job writes on."""
    (stage / "_spill" / "00000" / "late.bin").write_bytes(b"spilled after the driver died")


def test_a_remote_runner_s_folder_goes_only_once_nothing_in_it_changed_for_a_day(tmp_path, capsys):
    """A remote runner's job (Dataflow, Flink, Spark, a running Dask scheduler) writes on after its driver was
    killed: its folder went as soon as the driver's pid was gone, or, from another machine, once the dead
    driver had not refreshed the marker for STALE_SECONDS, while the job still wrote into it. Now it goes
    only when its files and the marker's refresh are all that old; a marker from before `local_workers` (any
    runner could have written it) is judged the same way."""
    out = tmp_path / "out"
    day_ago = time.time() - STALE_SECONDS - 60
    dead = {**owner_marker("remote", False), "pid": _dead_pid()}
    elsewhere = {**dead, "host": "elsewhere", "boot_id": "another-boot", "pid_ns": "pid:[1]", "pid": 1}
    older = {k: v for k, v in dead.items() if k != "local_workers"}
    writing = [_stage(out, "driver-gone", dead), _stage(out, "older-marker", older),
               _stage(out, "quiet-marker", {**elsewhere, "refreshed": day_ago}, age=STALE_SECONDS + 60),
               _stage(out, "quiet-marker-here", {**dead, "refreshed": day_ago}, age=STALE_SECONDS + 60)]
    _late_file(writing[2])
    _late_file(writing[3])
    done = [_stage(out, name, {**marker, "refreshed": day_ago}, age=STALE_SECONDS + 60)
            for name, marker in (("done", dead), ("done-elsewhere", elsewhere), ("older-done", older))]
    assert sorted(remove_stale(str(out))) == sorted(str(p) for p in done)
    assert all(p.exists() for p in writing) and not any(p.exists() for p in done)
    err = capsys.readouterr().err
    assert err.count("ran on a remote runner, whose job may outlive its driver: it changed 0.0 h ago") == 3, err
    assert err.count("does not say whether it ran on a remote runner (an older marker), whose job may") == 1
    assert err.count("ran on a remote runner, and nothing in it changed for 24.0 h") == 2
    assert err.count("(an older marker), and nothing in it changed for 24.0 h") == 1


def test_a_remote_runner_s_folder_on_an_object_store_goes_once_no_object_changed_for_a_day(tmp_path, capsys):
    from tests.pipeline.memfs import MTIME, STORE

    day_ago = time.time() - STALE_SECONDS - 60
    remote = {**owner_marker("r", False), "host": "elsewhere", "boot_id": "another-boot", "pid_ns": "pid:[1]",
              "refreshed": day_ago}
    for name in ("writing", "done"):
        for path, data in ((OWNER, json.dumps(remote).encode()), ("_spill/00000/a.bin", b"x")):
            STORE[f"memfs://rout/_temporary-{name}/{path}"] = data
            MTIME[f"memfs://rout/_temporary-{name}/{path}"] = day_ago
    STORE["memfs://rout/_temporary-writing/_spill/00000/late.bin"] = b"x"  # the job writes on
    MTIME["memfs://rout/_temporary-writing/_spill/00000/late.bin"] = time.time()
    try:
        assert remove_stale("memfs://rout") == ["memfs://rout/_temporary-done"]
        assert sorted({p.split("/")[3] for p in STORE if p.startswith("memfs://rout/")}) == ["_temporary-writing"]
        assert "whose job may outlive its driver: it changed 0.0 h ago" in capsys.readouterr().err
    finally:
        for p in [p for p in STORE if p.startswith("memfs://rout/")]:
            del STORE[p]
            MTIME.pop(p, None)


@pytest.mark.parametrize(("runner", "extra", "local"), [
    (None, [], True), ("DirectRunner", ["--direct_num_workers=2"], True), ("DaskRunner", [], True),
    ("DaskRunner", ["--dask_client_address=tcp://sched:8786"], False), ("dask", ["--dask_scheduler_file", "s"], False),
    ("PortableRunner", ["--job_endpoint=embed"], True), ("PortableRunner", ["--job_endpoint", "host:8099"], False),
    ("FlinkRunner", [], False), ("FlinkRunner", ["--job_endpoint=embed"], True), ("SparkRunner", [], False),
    ("DataflowRunner", [], False)])
def test_the_marker_says_whether_the_workers_end_with_the_run(runner, extra, local):
    """In-process runners, our local worker processes, a Dask cluster the run starts (distributed's workers exit
    with their parent) and an embedded job service end with the run; anything else may write on after it."""
    from pipeline.runner import DEFAULT_RUNNER, _runner_object, workers_local

    assert workers_local(runner, _runner_object(runner or DEFAULT_RUNNER), extra) is local


def test_a_folder_without_a_marker_is_walked_only_until_a_recent_file(tmp_path, monkeypatch, capsys):
    """Deciding on a folder without a marker stat'ed every spill file in it, though one file younger than
    STALE_SECONDS settles it: the walk stops there (a folder's own files come before its subfolders'). A
    recent file deep down is still found when all else is old."""
    out = tmp_path / "out"
    shallow, deep = _stage(out, "shallow"), _stage(out, "deep")
    for stage in (shallow, deep):
        for i in range(1, 40):
            (stage / "_spill" / f"{i:05d}").mkdir()
            (stage / "_spill" / f"{i:05d}" / "x.bin").write_bytes(b"spilled")
    (shallow / "partial.json").write_text("{}")
    then = time.time() - STALE_SECONDS - 60
    for root, dirs, files in os.walk(out):
        for n in [root, *(os.path.join(root, f) for f in dirs + files)]:
            if not n.endswith("partial.json"):
                os.utime(n, (then, then))
    (deep / "_spill" / "00017" / "late.bin").write_bytes(b"new")
    os.utime(deep / "_spill" / "00017", (then, then))
    scanned, scandir = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": scanned.append(str(path)) or scandir(path))
    assert remove_stale(str(out)) == []
    assert scanned.count(str(shallow)) == 1 and not [p for p in scanned if p.startswith(str(shallow) + "/")]
    assert capsys.readouterr().err.count("has no owner marker and holds a file only 0.0 h old") == 2


def test_old_staging_on_an_object_store_is_removed_and_fresh_is_kept(tmp_path, capsys):
    """On gs:// or s3:// the pid cannot be checked: a marker from another machine goes once not refreshed for
    STALE_SECONDS, and a folder without one once its newest object is that old; index_out's too."""
    from tests.pipeline.memfs import MTIME, STORE

    now = time.time()
    other = {**owner_marker("r", True), "host": "elsewhere", "boot_id": "another-boot", "pid_ns": "pid:[1]", "pid": 1}
    for root in ("memfs://sout", "memfs://sidx"):
        STORE[f"{root}/_temporary-old/{OWNER}"] = json.dumps({**other, "refreshed": now - STALE_SECONDS - 60}).encode()
        STORE[f"{root}/_temporary-old/_spill/00000/a.bin"] = b"x"
        STORE[f"{root}/_temporary-fresh/{OWNER}"] = json.dumps({**other, "refreshed": now - 60}).encode()
        STORE[f"{root}/_temporary-fresh/_spill/00000/a.bin"] = b"x"
    STORE["memfs://sout/_temporary-aged/_spill/00000/a.bin"] = b"x"  # killed before its marker, or pre-markers
    STORE["memfs://sout/_temporary-young/_spill/00000/a.bin"] = b"x"
    MTIME["memfs://sout/_temporary-aged/_spill/00000/a.bin"] = now - STALE_SECONDS - 60
    MTIME["memfs://sout/_temporary-young/_spill/00000/a.bin"] = now - 60
    STORE["memfs://sout/_temporary-file"] = b"an object, not a staging folder"
    try:
        run_curate(_tiny(tmp_path, "memfs://sidx"), "memfs://sout")
        left = sorted({p.split("/")[3] for p in STORE if p.startswith(("memfs://sout/_temp", "memfs://sidx/_temp"))})
        assert left == ["_temporary-file", "_temporary-fresh", "_temporary-young"]
        assert [p for p in STORE if p.startswith("memfs://sidx/_temporary-fresh/")]
        assert "memfs://sout/_SUCCESS" in STORE
        err = capsys.readouterr().err
        assert err.count("removed stale") == 3 and "was last seen 24.0 h ago" in err, err
    finally:
        for p in [p for p in STORE if p.startswith(("memfs://sout", "memfs://sidx"))]:
            del STORE[p]


def test_a_folder_kept_for_inspection_is_marked_and_survives_the_next_run(tmp_path, monkeypatch, capsys):
    """A run failing its accounting keeps its staging folder for inspection (the message names it): its owner is
    gone, but the next run leaves it for KEPT_SECONDS."""
    import pipeline.curate as curate

    out = tmp_path / "out"
    finalize = curate.finalize_stats
    monkeypatch.setattr(curate, "finalize_stats", lambda *a: {**finalize(*a), "conservation": {"ok": False,
                                                                                               "unbalanced": {}}})
    with pytest.raises(RuntimeError, match="does not balance"):
        run_curate(_tiny(tmp_path), str(out))
    monkeypatch.undo()
    [stage] = out.glob("_temporary-*")
    marker = json.loads((stage / OWNER).read_text())
    assert marker["kept"].startswith("document accounting does not balance") and marker["local_workers"] is True
    run_curate(_tiny(tmp_path), str(out))
    assert stage.exists() and "kept it for inspection (document accounting" in capsys.readouterr().err


def test_the_marker_is_refreshed_while_the_run_lasts_and_never_after(tmp_path):
    stage = tmp_path / "out" / "_temporary-r"
    with owned([str(stage)], "r", True, interval=0.05) as marker:
        first = json.loads((stage / OWNER).read_text())
        assert first["pid"] == os.getpid() and first["run_id"] == "r" and marker["kept"] is None
        deadline = time.monotonic() + 10
        while json.loads((stage / OWNER).read_text() or "{}").get("refreshed") == first["refreshed"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (stage / OWNER).unlink()  # removed meanwhile: the heartbeat does not bring it back
        time.sleep(0.2)
        assert not (stage / OWNER).exists()
    assert remove_stale(str(tmp_path / "nowhere")) == []


def test_a_refused_commit_removes_the_staged_index_too(tmp_path):
    """Refused at the commit (another run committed meanwhile), a run removed its staged outputs but left its
    staged band index in index_out for good."""
    from pipeline.curate import commit

    other, tmp, index = tmp_path / "other", tmp_path / "other" / "_temporary-r", tmp_path / "index"
    (tmp / "curated").mkdir(parents=True)
    (other / "_SUCCESS").write_text("")
    (index / "_temporary-r").mkdir(parents=True)
    (index / "_temporary-r" / "band-index-00000.parquet").write_text("staged")
    with pytest.raises(Exception, match="another run wrote it"):
        commit(str(other), str(tmp), {}, overwrite=False, index=(str(index / "_temporary-r"), str(index)))
    assert not tmp.exists() and list(index.iterdir()) == []


def test_a_folder_named_with_glob_characters_takes_nothing_with_it(tmp_path, capsys):
    """A leftover literally named `_temporary-**`, removed through Beam's pattern matching, deleted a live run's
    files beside it (`**` matched them): such a name is left alone and a local folder is removed by its path."""
    out = tmp_path / "out"
    live = _stage(out, "live", owner_marker("live", True))
    odd = [_stage(out, name, age=STALE_SECONDS + 60) for name in ("**", "[ab]", "x?")]
    dead = _stage(out, "dead", {**owner_marker("dead", True), "pid": _dead_pid()})
    remove_stale(str(out))
    assert (live / OWNER).exists() and (live / "_spill" / "00000" / "x.bin").exists()
    assert all(p.exists() for p in odd) and not dead.exists()
    assert capsys.readouterr().err.count("holds one of *?[") == 3


@pytest.mark.parametrize("marker", [
    {"refreshed": 10 ** 400, "boot_id": "another", "pid_ns": "x"},  # OverflowError converting to float
    {"pid": 2 ** 40},  # with this machine's ids, os.kill overflowed
    {"pid": True}, {"pid": -1}, {"pid": 0}, {"pid": 1.5}, {"refreshed": "yesterday", "boot_id": "another", "pid_ns": "x"},
])
def test_a_forged_marker_neither_stops_the_run_nor_signals_a_process_group(tmp_path, capsys, marker):
    out = tmp_path / "out"
    stage = _stage(out, "forged", {**owner_marker("forged", True), **marker})
    remove_stale(str(out))  # no traceback
    assert stage.exists() and "left " in capsys.readouterr().err


def test_a_marker_that_is_a_fifo_or_too_big_is_no_marker(tmp_path, capsys):
    """A FIFO blocked the run forever, and /dev/zero behind the name read without end."""
    out = tmp_path / "out"
    fifo = _stage(out, "fifo")
    os.mkfifo(fifo / OWNER)
    big = _stage(out, "big", json.dumps({**owner_marker("big", True), "pad": "x" * 70_000}))
    zero = _stage(out, "zero")
    os.symlink("/dev/zero", zero / OWNER)
    start = time.monotonic()
    remove_stale(str(out))
    assert time.monotonic() - start < 10 and fifo.exists() and big.exists() and zero.exists()
    assert capsys.readouterr().err.count("has no owner marker") == 3


def test_index_out_may_be_the_output_folder(tmp_path):
    """With index_out = OUT the index stage was the outputs' stage, and the index commit removed it before the
    outputs moved: `_SUCCESS`, the index and no documents."""
    out = tmp_path / "out"
    stats = run_curate(_tiny(tmp_path, out), str(out))
    assert stats["kept_docs"] == 1 and list((out / "curated").glob("*.parquet"))
    assert list(out.glob("band-index-*.parquet")) and not list(out.glob("_temporary-*"))


def test_the_heartbeat_starts_after_the_worker_pool_forks(tmp_path, monkeypatch):
    """Started before, the heartbeat was a second thread when the pool asked whether it may fork (it forks
    only a one-thread runner): every `--workers N` run fell back to Beam's slower subprocess workers."""
    import threading

    import pipeline.worker_pool as worker_pool

    seen = []
    monkeypatch.setattr(worker_pool, "_fork_safe", lambda: seen.append(
        [t.name for t in threading.enumerate() if t.name == "staging-heartbeat"]) or False)
    run_curate(_tiny(tmp_path), str(tmp_path / "out"), workers=2)
    assert seen == [[]]
