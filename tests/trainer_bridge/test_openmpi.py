"""`jcorpus-train` under Open MPI's `mpirun`, checked against the same runs under the venv's MPICH.

mpi4py has to be built against the launching MPI, so Open MPI runs use their own virtualenv (made by
tests/trainer_bridge/setup_openmpi.sh; path from JCORPUS_OPENMPI_VENV) with this checkout on PYTHONPATH:
both launchers then run the same trainer code and the same compiled kernels, and only the MPI differs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.trainer_bridge.test_train_mpi import ROOT, losses, mpi_env, run_train, write_shards

OPENMPI_VENV = Path(os.environ.get("JCORPUS_OPENMPI_VENV") or Path.home() / ".cache" / "jcorpus" / "openmpi-venv")
SETUP_HINT = "run `bash tests/trainer_bridge/setup_openmpi.sh` (make mpi-tools) to build it"
PROBE = ("import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; "
         "import sve_kernels, trainer_bridge.train; print(MPI.Get_library_version().splitlines()[0])")
HEADER = re.compile(r"jcorpus-train: (\d+) rank\(s\) x (\d+) thread\(s\)")


@pytest.fixture(scope="module")
def openmpi() -> tuple[str, str]:
    """(mpirun, python) of the Open MPI venv; skips with the reason when it is absent or unusable."""
    python = OPENMPI_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Open MPI venv at {OPENMPI_VENV}: {SETUP_HINT}")
    mpirun = OPENMPI_VENV / "bin" / "mpirun"
    launcher = str(mpirun) if mpirun.exists() else shutil.which("mpirun.openmpi")
    if launcher is None:
        pytest.skip(f"no Open MPI mpirun ({mpirun} or mpirun.openmpi on PATH): {SETUP_HINT}")
    probe = subprocess.run([str(python), "-c", PROBE], cwd=ROOT, env=mpi_env(), capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"{python} cannot import mpi4py / the trainer: {last}")
    if "Open MPI" not in probe.stdout:
        pytest.skip(f"mpi4py in {OPENMPI_VENV} is linked to {probe.stdout.strip()!r}, not Open MPI")
    return launcher, str(python)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ompi")
    (root / "model.json").write_text(json.dumps({"d_model": 32, "n_heads": 2, "n_layers": 2}), encoding="utf-8")
    return write_shards(root / "shards")


def run_openmpi(openmpi: tuple[str, str], shards: Path, out: Path, *extra: str, ranks: int = 2, steps: int = 8,
                env: dict | None = None, launcher_opts: tuple[str, ...] = ()) -> tuple[list[dict], str]:
    """One `mpirun` job; returns rank 0's metrics and stdout (whose header says how many ranks joined)."""
    mpirun, python = openmpi
    cmd = [mpirun, "--allow-run-as-root", "--oversubscribe", *launcher_opts, "-n", str(ranks), python,
           "-m", "trainer_bridge.train", "--shards", str(shards), "--model", str(shards.parent / "model.json"),
           "--steps", str(steps), "--global-batch", "4", "--out", str(out), "--log-every", "100", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env or mpi_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines], proc.stdout


def header(stdout: str) -> tuple[int, int]:
    match = HEADER.search(stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_openmpi_run_matches_mpich(openmpi, shards, tmp_path, precision):
    """fp16 also exercises the user-defined float16 sum on MPI.UINT16_T under a second MPI implementation."""
    mpich = run_train(shards, tmp_path / "mpich", 2, "--precision", precision)
    ompi, stdout = run_openmpi(openmpi, shards, tmp_path / "ompi", "--precision", precision)
    # two singletons (mpi4py built for the wrong MPI) would also reproduce the losses: the ranks must have joined
    assert header(stdout)[0] == 2
    assert [r["step"] for r in ompi] == list(range(1, 9))
    np.testing.assert_allclose(losses(ompi), losses(mpich), rtol=1e-5)


def test_mpich_checkpoint_resumes_under_openmpi(openmpi, shards, tmp_path):
    """Checkpoints hold no MPI state: a job preempted under MPICH continues under Open MPI on the same path."""
    straight = run_train(shards, tmp_path / "straight", 2, "--ckpt-every", "4")
    run = tmp_path / "moved"
    run_train(shards, run, 2, "--ckpt-every", "4", "--halt-after", "4")
    resumed, stdout = run_openmpi(openmpi, shards, run, "--ckpt-every", "4", "--resume")
    assert "start step 4" in stdout and header(stdout)[0] == 2
    assert [r["step"] for r in resumed] == list(range(1, 9))
    np.testing.assert_allclose(losses(resumed), losses(straight), rtol=1e-5)


def test_default_threads_split_by_openmpi_local_size(openmpi, shards, tmp_path):
    """Without OMP_NUM_THREADS each rank takes cores / OMPI_COMM_WORLD_LOCAL_SIZE threads (unbound ranks)."""
    env = {k: v for k, v in mpi_env().items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    probe = subprocess.run([sys.executable, "-c", "import sve_kernels as K; print(K.info()['threads'])"], cwd=ROOT,
                           env=dict(env, OMP_NUM_THREADS="3"), capture_output=True, text=True, timeout=60)
    if probe.stdout.strip() != "3":
        pytest.skip("sve_kernels was built without OpenMP: every rank reports 1 thread")
    _, stdout = run_openmpi(openmpi, shards, tmp_path / "threads", steps=1, env=env,
                            launcher_opts=("--bind-to", "none"))
    assert header(stdout) == (2, max(1, len(os.sched_getaffinity(0)) // 2))
