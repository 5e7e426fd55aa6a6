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


def save_checkpoint(run_dir: str | Path, ckpt: Checkpoint, keep: int = 0) -> Path:
    """Atomically write RUN/ckpt-STEP.npz; with keep > 0, delete all but the newest `keep` checkpoints."""
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
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink(missing_ok=True)
    return final


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
