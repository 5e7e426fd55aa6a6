"""End-to-end `jcorpus-train` under MPICH: rank equivalence, exact resume, fp16 overflow skip, falling loss.

Shards are synthetic but real: documents drawn from a fixed sparse Markov chain (so there is something to
learn and a known floor), packed by trainer_bridge.packing and written as Arrow shards with a manifest.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=str(VENV_BIN)) or shutil.which("mpiexec")
VOCAB, SEQ_LEN, PAD, EOS = 64, 32, 3, 2


def markov_documents(n_docs: int, seed: int, vocab: int = VOCAB) -> list[np.ndarray]:
    """Documents from a chain where every token has 3 likely successors (entropy ~ln 3 per token)."""
    rng = np.random.default_rng(seed)
    succ = np.random.default_rng(1234).integers(4, vocab, size=(vocab, 3))
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(8, 70))
        tok = int(rng.integers(4, vocab))
        doc = [1]
        for _ in range(n):
            doc.append(tok)
            tok = int(succ[tok, rng.integers(0, 3)])
        docs.append(np.array(doc + [EOS], dtype=np.int64))
    return docs


def write_shards(out: Path, n_docs: int = 400, seed: int = 0, vocab: int = VOCAB, seq_len: int = SEQ_LEN) -> Path:
    """Pack Markov documents into two Arrow shards and a manifest the ShardStream accepts (bench uses it too)."""
    from trainer_bridge.manifest import MANIFEST_FORMAT
    from trainer_bridge.packing import PackedRows, materialize, plan_rows
    from trainer_bridge.shards import encode_arrow_shard, sha256_hex

    out.mkdir(parents=True, exist_ok=True)
    docs = markov_documents(n_docs, seed, vocab)
    row_len = seq_len + 1
    plan = plan_rows([len(d) for d in docs], row_len, "bestfit")
    keys = [(f"doc{i}", 0) for i in range(len(docs))]
    rows = materialize(plan, docs, keys, ["markov"] * len(docs), row_len, PAD, vocab)
    half = len(rows) // 2
    shards = []
    for i, (lo, hi) in enumerate(((0, half), (half, len(rows)))):
        part = PackedRows(rows.tokens[lo:hi], rows.lengths[lo:hi], rows.doc_offsets[lo:hi], rows.doc_ids[lo:hi],
                          rows.doc_copies[lo:hi], rows.doc_positions[lo:hi], rows.source_tokens[lo:hi])
        data = encode_arrow_shard(part, vocab)
        name = f"shard-{i:05d}.arrow"
        (out / name).write_bytes(data)
        shards.append({"file": name, "sha256": sha256_hex(data), "rows": hi - lo})
    manifest = {"format": MANIFEST_FORMAT, "seq_len": seq_len, "row_len": row_len, "vocab_size": vocab,
                "seed": seed, "shards": shards, "tokenizer": {"pad_id": PAD, "eos_id": EOS, "bos_id": 1}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    # a model smaller than `tiny` keeps each MPI run to a couple of seconds
    (root / "model.json").write_text(json.dumps({"d_model": 32, "n_heads": 2, "n_layers": 2}), encoding="utf-8")
    return write_shards(root / "shards")


def mpi_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p))


def mpi_command(shards: Path, out: Path, ranks: int, *extra: str, steps: int = 8, gb: int = 4) -> list[str]:
    if MPIEXEC is None:
        pytest.skip("no mpiexec (pip install mpich)")
    return [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "trainer_bridge.train", "--shards", str(shards),
            "--model", str(shards.parent / "model.json"), "--steps", str(steps), "--global-batch", str(gb),
            "--out", str(out), "--log-every", "100", *extra]


def run_train(shards: Path, out: Path, ranks: int, *extra: str, steps: int = 8, gb: int = 4) -> list[dict]:
    cmd = mpi_command(shards, out, ranks, *extra, steps=steps, gb=gb)
    proc = subprocess.run(cmd, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines]


def losses(records: list[dict]) -> np.ndarray:
    return np.array([r["loss"] for r in records])


def test_one_and_two_ranks_follow_the_same_trajectory(shards, tmp_path):
    one = run_train(shards, tmp_path / "n1", 1)
    two = run_train(shards, tmp_path / "n2", 2)
    assert [r["step"] for r in one] == list(range(1, 9))
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert all(r["tokens"] > 0 for r in two)
    assert abs(one[0]["loss"] - math.log(VOCAB)) < 0.3  # untrained model: close to uniform


def test_sigkill_and_resume_matches_a_straight_run(shards, tmp_path):
    """SIGKILL the whole job once ckpt-4 exists (mid-run, maybe mid-write), resume, compare every loss."""
    straight = run_train(shards, tmp_path / "straight", 2, "--ckpt-every", "2", steps=30)
    run = tmp_path / "killed"
    proc = subprocess.Popen(mpi_command(shards, run, 2, "--ckpt-every", "2", steps=30), cwd=ROOT, env=mpi_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / "ckpt-4.npz").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError):  # the job may have ended first, done or not
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if (run / "ckpt-30.npz").exists():
        pytest.skip("the run finished before it could be killed")
    resumed = run_train(shards, run, 2, "--ckpt-every", "2", "--resume", steps=30)
    assert [r["step"] for r in resumed] == list(range(1, 31))
    np.testing.assert_array_equal(losses(resumed), losses(straight))  # bit-identical, not just close


@pytest.mark.parametrize("ranks", [1, 2])
def test_ctrl_c_is_one_line_and_ends_every_rank(shards, tmp_path, ranks):
    """Ctrl-C printed a KeyboardInterrupt traceback per rank, and a rank left in a collective could wait on."""
    run = tmp_path / "run"
    cmd = mpi_command(shards, run, ranks, "--log-every", "1", steps=100_000)
    if ranks == 1:
        cmd = cmd[cmd.index(sys.executable):]  # `jcorpus-train` on its own, without mpiexec
    proc = subprocess.Popen(cmd, cwd=ROOT, env=mpi_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and err.count("jcorpus-train: interrupted") == 1, err
    if ranks == 1:
        assert proc.returncode == 130 and err.strip() == "jcorpus-train: interrupted"


def test_resume_on_a_different_number_of_ranks(shards, tmp_path):
    straight = run_train(shards, tmp_path / "straight", 2, "--ckpt-every", "4")
    run = tmp_path / "elastic"
    run_train(shards, run, 1, "--ckpt-every", "4", "--halt-after", "4")
    changed = subprocess.run(mpi_command(shards, run, 1, "--resume", "--precision", "fp16"), cwd=ROOT, env=mpi_env(),
                             capture_output=True, text=True, timeout=120)  # used to continue in fp16 silently
    assert changed.returncode == 2 and changed.stderr == (
        f"jcorpus-train: error: --resume: {run / 'ckpt-4.npz'} was made with other arguments that change the result: "
        "--precision 'fp32' (given 'fp16')\n"), changed.stderr
    resumed = run_train(shards, run, 2, "--ckpt-every", "4", "--resume")
    np.testing.assert_allclose(losses(resumed), losses(straight), rtol=1e-5)
    fewer = _stderr_of(mpi_command(shards, run, 2, "--ckpt-every", "4", "--resume", steps=6))  # trained nothing
    assert fewer == (2, f"jcorpus-train: error: --steps 6: the checkpoint in {run} is at step 8 already\n")


def test_fp16_skips_an_overflowing_step_and_recovers(shards, tmp_path):
    recs = run_train(shards, tmp_path / "fp16", 2, "--precision", "fp16", "--inject-overflow-at", "4",
                     "--loss-scale", "1024", "--ckpt-every", "4")
    by_step = {r["step"]: r for r in recs}
    assert [r["step"] for r in recs if r["skipped"]] == [4]
    # a skip the loss scale explains does not look diverged: its step is checkpointed, its count with it
    from trainer_bridge.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path / "fp16" / "ckpt-4.npz").state["skipped_in_a_row"] == 1
    assert by_step[4]["loss_scale"] == 1024 and by_step[5]["loss_scale"] == 512
    assert by_step[4]["grad_norm"] is None
    assert all(math.isfinite(r["loss"]) for r in recs)
    fp32 = run_train(shards, tmp_path / "fp32", 2)
    # fp16 storage changes the numbers only a little before the skip
    np.testing.assert_allclose(losses(recs)[:3], losses(fp32)[:3], rtol=2e-2)


def test_loss_falls_on_markov_shards(shards, tmp_path):
    recs = run_train(shards, tmp_path / "learn", 2, "--lr", "3e-3", "--doc-mask", steps=60, gb=8)
    first, last = np.mean(losses(recs)[:5]), np.mean(losses(recs)[-5:])
    assert first > 3.5 and last < first - 1.0, (first, last)


def test_bad_arguments_give_one_line_errors(shards, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "trainer_bridge.train", "--steps", "2", "--out", str(tmp_path / "x")]
    for name, spec in (("huge", {"d_model": 1000000, "n_layers": 100}), ("vocab", {"vocab_size": 9000000000})):
        (tmp_path / f"{name}.json").write_text(json.dumps(spec), encoding="utf-8")
    for extra, needle in ((["--shards", str(tmp_path / "nope")], "no shard manifest"),
                          (["--shards", str(shards), "--global-batch", "0"], "global-batch"),
                          (["--shards", str(shards), "--model", "huge"], "--model must be"),
                          (["--shards", str(shards), "--log-every", "0"], "--log-every: expected an integer >= 1"),
                          (["--shards", str(shards), "--lr", "-1"], "--lr: expected a number in (0, 3.4e+38], got -1"),
                          # was the usage block and the error; the usage block went to every rank's stderr
                          (["--shards", str(shards), "--steps", "0"], "--steps: expected an integer >= 1, got 0"),
                          (["--shards", str(shards), "--out", ""], "--out: expected a path, got ''"),
                          # numpy's ArrayMemoryError, a traceback
                          (["--shards", str(shards), "--model", str(tmp_path / "huge.json")], "GiB for its weights"),
                          (["--shards", str(shards), "--model", str(tmp_path / "vocab.json")], "GiB for its weights")):
        proc = subprocess.run(base + extra, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert proc.stderr.startswith("jcorpus-train: error: ") and proc.stderr.count("\n") == 1, proc.stderr


def _not_json(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")


@pytest.mark.parametrize("ranks", [1, 2])
def test_a_diverged_run_stops_with_one_line(shards, tmp_path, ranks):
    """--lr 1e30: NaN from step 2, every step skipped, and the run exited 0 with NaN weights checkpointed.
    Every rank knows it (the norm is of the summed gradients): one line, not one per rank plus MPICH's aborts."""
    from trainer_bridge.train import MAX_SKIPPED_IN_A_ROW

    cmd = mpi_command(shards, tmp_path / "nan", ranks, "--lr", "1e30", "--warmup", "0",
                      steps=MAX_SKIPPED_IN_A_ROW + 10)
    proc = subprocess.run(cmd, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"jcorpus-train: error: step {MAX_SKIPPED_IN_A_ROW + 1}: the last {MAX_SKIPPED_IN_A_ROW} "
                           "steps were skipped, their gradients not finite: training diverged (lower --lr 1e+30?)\n")
    # metrics.jsonl is strict JSON (a NaN loss was written as the bare token NaN) and logs the step the error names
    lines = (tmp_path / "nan" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line, parse_constant=_not_json) for line in lines]
    assert [r["step"] for r in records] == list(range(1, MAX_SKIPPED_IN_A_ROW + 2))
    assert records[-1]["loss"] is None and records[-1]["grad_norm"] is None and records[-1]["skipped"]


def test_a_diverging_run_keeps_only_sane_checkpoints_and_resumes_to_the_same_stop(shards, tmp_path):
    """A real divergence: --weight-decay 3000 under a warmup turns the decay factor 1 - lr wd negative from step 4,
    so the weights grow geometrically: finite garbage (losses up to 1e18), then NaN and the stop. With --keep 3 the run
    kept its last three checkpoints, NaN or exploded weights, and had deleted every sane one. Now no checkpoint is
    written for a step that looks diverged, nor kept when its weights give such a loss at the next step; the ones
    left are finite, resume, and the resumed run stops where the straight one did, with the same losses. (Resuming
    mid-divergence, which restarted the count of skipped steps, cannot happen in fp32 any more: no checkpoint is
    written on a skipped step.)"""
    from trainer_bridge.checkpoint import diverged_loss, list_checkpoints, load_checkpoint
    from trainer_bridge.train import MAX_SKIPPED_IN_A_ROW

    run = tmp_path / "diverged"
    cmd = mpi_command(shards, run, 1, "--lr", "1e-2", "--warmup", "20", "--weight-decay", "3000", "--ckpt-every", "2",
                      "--keep", "3", steps=80)
    code, err = _stderr_of(cmd)
    assert code == 2 and err.startswith("jcorpus-train: error: step ") and "training diverged" in err, err
    straight = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    by_step = {r["step"]: r for r in straight}
    assert sum(r["skipped"] for r in straight) >= MAX_SKIPPED_IN_A_ROW  # it did diverge to non-finite gradients
    kept = list_checkpoints(run)
    assert kept, "every checkpoint was dropped: the test needs a run with sane steps first"
    for path in kept:
        ckpt = load_checkpoint(path)
        assert np.isfinite(ckpt.params).all() and np.isfinite(ckpt.m).all() and np.isfinite(ckpt.v).all(), path
        for step in (ckpt.step, ckpt.step + 1):  # the step's own loss, then the one its weights gave
            loss = by_step[step]["loss"]
            assert loss is not None and loss <= diverged_loss(VOCAB) and not by_step[step]["skipped"], (path, step)
    assert _stderr_of([*cmd, "--resume"]) == (code, err)  # the same stop, from the newest sane checkpoint
    resumed = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]  # bit for bit (null where not finite)


def test_errors_every_rank_finds_are_said_once(shards, tmp_path):
    """Under 2 ranks a usage error printed twice, and a setup error twice with an MPICH Abort line per rank."""
    (tmp_path / "huge.json").write_text(json.dumps({"d_model": 100000, "n_layers": 100}), encoding="utf-8")
    for extra, needle in ((["--lr", "-1"], "--lr: expected a number in (0, 3.4e+38], got -1"),
                          (["--global-batch", "3"], "--global-batch 3 must be a positive multiple of the number of ranks (2)"),
                          (["--model", str(tmp_path / "huge.json")], "GiB for its weights"),
                          # past float32 in the AdamW kernel: its error line per rank at step 1, and MPICH's Aborts
                          (["--lr", "1e39"], "argument --lr: expected a number in (0, 3.4e+38], got 1e39"),
                          (["--weight-decay", "1e39"], "argument --weight-decay: expected a number in [0, 3.4e+38], got 1e39"),
                          # outside LossScaler's range: the grad_scale kernel error per rank; all gradients 0 and exit 0
                          (["--precision", "fp16", "--loss-scale", "1e300"], "argument --loss-scale: expected a number "
                           "in [1.0, 16777216.0], got 1e300"),
                          (["--precision", "fp16", "--loss-scale", "1e-30"], "argument --loss-scale: expected")):
        proc = subprocess.run(mpi_command(shards, tmp_path / "x", 2, *extra), cwd=ROOT, env=mpi_env(),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert proc.stderr.startswith("jcorpus-train: error: ") and proc.stderr.count("\n") == 1, proc.stderr


def _stderr_of(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr


def test_the_run_folder_and_its_metrics_are_checked_before_any_rank_starts(shards, tmp_path):
    """With 2 ranks: a line `{}` in metrics.jsonl was a KeyError traceback on rank 0 while rank 1 waited in its
    first Allreduce forever; a FIFO there blocked rank 0 in open(), a hang at any rank count; a last line cut
    short by a crash was refused with a JSON error naming no file; an --out under a file was an errno line
    plus MPICH's Abort line. Now each is one line (or the cut line is dropped, as resuming drops the steps
    logged after the checkpoint)."""
    run = tmp_path / "run"
    run_train(shards, run, 2, "--ckpt-every", "4", steps=4)
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 5, "lo', encoding="utf-8")
    resumed = run_train(shards, run, 2, "--ckpt-every", "4", "--resume", steps=6)
    assert [r["step"] for r in resumed] == list(range(1, 7))
    lines = metrics.read_text().splitlines()
    for bad, why in (("{}", "KeyError: 'step'"), ("[]", "TypeError: list indices must be integers or slices, not str")):
        metrics.write_text("\n".join([lines[0], bad, *lines[1:]]) + "\n", encoding="utf-8")
        code, err = _stderr_of(mpi_command(shards, run, 2, "--ckpt-every", "4", "--resume", steps=8))
        assert (code, err) == (2, f"jcorpus-train: error: rank 0: {metrics}: line 2 is not a metrics record ({why}); "
                                  "move the file away to resume\n")
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "metrics.jsonl")
    for ranks in (1, 2):
        code, err = _stderr_of(mpi_command(shards, fifo, ranks))
        said = f"{fifo / 'metrics.jsonl'}: not a regular file"
        assert (code, err) == (2, f"jcorpus-train: error: {'rank 0: ' if ranks == 2 else ''}{said}\n")
    (tmp_path / "afile").write_text("")
    code, err = _stderr_of(mpi_command(shards, tmp_path / "afile" / "run", 2))
    assert (code, err) == (2, f"jcorpus-train: error: rank 0: --out {tmp_path / 'afile' / 'run'}: cannot create the "
                              f"output folder ({tmp_path / 'afile'} is not a folder)\n")


def test_a_shard_corrupted_mid_run_is_one_line(shards, tmp_path):
    """Shards are checked when first read: under 2 ranks a corrupted one was its line once per rank plus MPICH's
    Abort lines. The ranks agree on it in the step's own Allreduce and stop with one line."""
    copy = tmp_path / "copy"
    shutil.copytree(shards, copy)
    shutil.copy(shards.parent / "model.json", tmp_path / "model.json")
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["shards"]:
        victim = copy / entry["file"]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    for ranks in (1, 2):
        code, err = _stderr_of(mpi_command(copy, tmp_path / f"run{ranks}", ranks))
        assert code == 2 and err.startswith("jcorpus-train: error: step 1: ") and err.count("\n") == 1, err
        assert "does not match the manifest" in err and "Abort" not in err


RANK_ONE_FAILS = """
import sys
from mpi4py import MPI
import trainer_bridge.train as T
checked = T.check_fits
def check_fits(*args, **kwargs):
    if MPI.COMM_WORLD.Get_rank() == 1:
        raise T.TrainError("only rank 1 sees this")
    checked(*args, **kwargs)
T.check_fits = check_fits
sys.exit(T.main(sys.argv[1:]))
"""


def test_a_rank_failing_alone_in_setup_stops_every_rank(shards, tmp_path):
    """The others would have waited for it in the first collective: they agree on the failure and stop, and the
    one line names the rank."""
    (tmp_path / "rank_one_fails.py").write_text(RANK_ONE_FAILS, encoding="utf-8")
    cmd = mpi_command(shards, tmp_path / "x", 2)
    cmd[cmd.index("-m"):cmd.index("trainer_bridge.train") + 1] = [str(tmp_path / "rank_one_fails.py")]
    proc = subprocess.run(cmd, cwd=ROOT, env=mpi_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "jcorpus-train: error: rank 1: only rank 1 sees this\n"
    assert not (tmp_path / "x").exists()


RANK_ONE_BREAKS = """
import sys
from mpi4py import MPI
import trainer_bridge.train as T
scheduled = T.lr_at
def lr_at(step, *args):
    if MPI.COMM_WORLD.Get_rank() == 1 and step == 2:
        raise RuntimeError("a defect on rank 1")
    return scheduled(step, *args)
T.lr_at = lr_at
sys.exit(T.main(sys.argv[1:]))
"""


def test_an_unexpected_error_on_one_rank_takes_the_job_down(shards, tmp_path):
    """An exception no check expects (a defect) left the other ranks waiting in their next collective forever;
    now the failing rank prints its traceback and aborts the job."""
    (tmp_path / "rank_one_breaks.py").write_text(RANK_ONE_BREAKS, encoding="utf-8")
    cmd = mpi_command(shards, tmp_path / "x", 2)
    cmd[cmd.index("-m"):cmd.index("trainer_bridge.train") + 1] = [str(tmp_path / "rank_one_breaks.py")]
    code, err = _stderr_of(cmd)
    assert code != 0 and "RuntimeError: a defect on rank 1" in err, err


def test_agreed_failures_name_the_rank_unless_every_rank_failed_alike():
    from trainer_bridge.train import _agreed

    assert _agreed(["bad", "bad"]) == "bad"
    assert _agreed([None, "bad"]) == "rank 1: bad"
    assert _agreed(["bad", "worse", None]) == "rank 0: bad (and 1 other ranks)"
