"""Checkpoints `RUN/ckpt-STEP.npz`: numpy arrays plus JSON strings, never pickle.

A checkpoint holds everything an exact resume needs: the fp32 master parameters, both AdamW moments,
the optimizer's bias-correction step, the loss scaler, the RNG state, the model config and every rank's
stream state. It is written to a temporary file in the same directory and renamed, so a run killed
mid-write leaves the previous checkpoint intact and never a truncated newest one.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import sve_kernels as K
from trainer_bridge.model import GPTConfig, param_count

CKPT_RE = re.compile(r"^ckpt-(\d+)\.npz$")
FORMAT = "jcorpus.ckpt/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not match the run."""


@dataclass
class Checkpoint:
    step: int
    params: np.ndarray
    m: np.ndarray
    v: np.ndarray
    config_json: str
    state: dict  # optimizer t, loss scaler, rng, stream states per rank, run arguments


def save_checkpoint(run_dir: str | Path, ckpt: Checkpoint) -> Path:
    """Atomically write RUN/ckpt-STEP.npz (rotation is `prune_checkpoints`, once the checkpoint is confirmed)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"ckpt-{ckpt.step}.npz"
    state = dict(ckpt.state, format=FORMAT, step=ckpt.step)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, params=ckpt.params, m=ckpt.m, v=ckpt.v,
                     config=np.array(ckpt.config_json), state=np.array(json.dumps(state, sort_keys=True)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """With keep > 0, delete all but the newest `keep` checkpoints in RUN."""
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink(missing_ok=True)


def diverged_loss(vocab_size: int) -> float:
    """The mean per-token loss above which weights count as diverged: twice a uniform guess's ln V, plus 1 nat so that
    a small vocabulary's first losses (ln V plus the initial logits' spread) stay below it. A healthy run starts near
    ln V and falls; exploding weights give losses of 1e3 to 1e18 before any gradient overflows."""
    return 2.0 * math.log(vocab_size) + 1.0


def divergence(loss: float, params: np.ndarray, diverging_skip: bool, vocab_size: int) -> str | None:
    """Why a step's weights look diverged, or None. `diverging_skip`: the step was skipped for non-finite gradients
    that no loss scale explains (fp32, or fp16 at the smallest scale), the state the divergence stop counts."""
    if not math.isfinite(loss):
        return f"loss {loss}"
    if loss > diverged_loss(vocab_size):
        return f"loss {loss:.4g} > 2 ln V + 1 = {diverged_loss(vocab_size):.3g}"
    if diverging_skip:
        return "its gradients were not finite"
    if not math.isfinite(K.sumsq(params)):
        return "its weights are not finite"
    return None


class KeptCheckpoints:
    """Rank 0's checkpoints, never diverged ones: a diverged run wrote on (NaN weights, or finite ones exploded to
    1e30), and with --keep 3 rotated its last good checkpoint out before the divergence stop. A step that looks
    diverged (`divergence`) writes nothing; a written one rotates older ones out only once its weights have given a
    sane loss at the next step (or the run ends), and is deleted if they did not."""

    def __init__(self, run_dir: str | Path, keep: int, vocab_size: int):
        self.run_dir, self.keep, self.vocab_size = Path(run_dir), keep, vocab_size
        self.unconfirmed: Path | None = None
        self.diverged = False  # the last checkpoint due was not written, or deleted

    def offer(self, ckpt: Checkpoint, loss: float, diverging_skip: bool) -> str | None:
        """Write `ckpt` unless its step looks diverged; returns the line to print when it does not."""
        self.diverged = bool(why := divergence(loss, ckpt.params, diverging_skip, self.vocab_size))
        if why:
            return f"step {ckpt.step}: no checkpoint written, the run looks diverged ({why}); {self.newest()}"
        self.unconfirmed = save_checkpoint(self.run_dir, ckpt)
        return None

    def confirm(self, loss: float) -> str | None:
        """`loss`: what the newest checkpoint's weights gave at the next step. Rotate, or delete it if diverged."""
        path, self.unconfirmed = self.unconfirmed, None
        if path is None:
            return None
        if math.isfinite(loss) and loss <= diverged_loss(self.vocab_size):
            prune_checkpoints(self.run_dir, self.keep)
            return None
        path.unlink(missing_ok=True)
        self.diverged = True
        return (f"{path.name} deleted: its weights gave loss {loss:.4g} at the next step, the run looks diverged; "
                f"{self.newest()}")

    def close(self) -> None:
        """The run ends (or halts): the newest checkpoint stands unconfirmed, as the last step judged it."""
        if self.unconfirmed is not None:
            self.unconfirmed = None
            prune_checkpoints(self.run_dir, self.keep)

    def newest(self) -> str:
        newest = latest_checkpoint(self.run_dir)
        return f"the newest checkpoint is {newest}" if newest else "no checkpoint written yet"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints in RUN ordered by step (oldest first)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := CKPT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint without unpickling anything; raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not (path.is_file() and zipfile.is_zipfile(path)):  # np.load would try it as a pickle, and say so
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (not a complete .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            params, m, v = z["params"], z["m"], z["v"]
            config_json, state = str(z["config"]), json.loads(str(z["state"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    try:
        cfg = GPTConfig.from_json(config_json)
    except ValueError as exc:
        raise CheckpointError(f"{path}: model config {exc}") from None
    for name, arr in (("params", params), ("m", m), ("v", v)):  # each against the config, so the short one is named
        if arr.dtype != np.float32 or arr.shape != (param_count(cfg),):
            raise CheckpointError(f"{path}: array {name} is {arr.dtype}{list(arr.shape)}, but its model config needs "
                                  f"float32[{param_count(cfg)}]")
    if problem := _state_problem(state, path.name):
        raise CheckpointError(f"{path} is incomplete or inconsistent: {problem}")
    return Checkpoint(step=state["step"], params=params, m=m, v=v, config_json=config_json, state=state)


def _count(value: object, low: int = 0) -> bool:
    return type(value) is int and value >= low


def _state_problem(state: dict, name: str) -> str | None:
    """What a resume (train.py) would trip over in `state`, or None; `name` is the checkpoint's file name."""
    step = state.get("step")
    if not _count(step):
        return f"step is {step!r}, expected an integer >= 0"
    if (named := CKPT_RE.match(name)) and int(named.group(1)) != step:
        return f"its state is for step {step}"
    if not _count(state.get("optimizer_t")) or state["optimizer_t"] > step:
        return f"optimizer_t is {state.get('optimizer_t')!r}, expected an integer in [0, {step}]"
    scaler = state.get("loss_scaler")
    if not (isinstance(scaler, dict) and type(scaler.get("scale")) in (int, float) and math.isfinite(scaler["scale"])
            and scaler["scale"] > 0 and _count(scaler.get("window"), 1) and _count(scaler.get("good_steps"))):
        return f"loss_scaler is {scaler!r}, expected {{scale > 0, window >= 1, good_steps >= 0}}"
    streams = state.get("streams")
    if not (isinstance(streams, list) and streams and all(isinstance(s, dict) for s in streams)):
        return "streams must be a non-empty list of stream states"
    if not isinstance(state.get("args"), dict):
        return "it lacks the run's arguments (args)"
    if "skipped_in_a_row" in state and not _count(state["skipped_in_a_row"]):
        return f"skipped_in_a_row is {state['skipped_in_a_row']!r}, expected an integer >= 0"
    if "doc_positions" in state and not isinstance(state["doc_positions"], bool):
        return f"doc_positions is {state['doc_positions']!r}, expected true or false"
    if "vocab_size" in state and not _count(state["vocab_size"], 1):
        return f"vocab_size is {state['vocab_size']!r}, expected an integer >= 1"
    return None
