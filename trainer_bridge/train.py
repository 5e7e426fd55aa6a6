"""`jcorpus-train`: data-parallel GPT training from packed shards on the SVE kernels, over MPI.

    mpiexec -n N jcorpus-train --shards SHARDS --model tiny --steps S --global-batch G --out RUN [--resume]
    jcorpus-train sample --ckpt RUN/ckpt-S.npz --tokenizer TOK/tokenizer.model --prompt 日本の --tokens 100

Every rank reads its own slice of the global batch, computes the per-token-mean loss gradient of the
*global* batch on its rows, and the gradient buckets are summed with Allreduce — so N ranks follow the
same trajectory as one rank with the same global batch. fp16 mode keeps fp32 master weights, rounds the
weights to fp16 for the forward matmuls and sends the gradients as fp16 (an overflow becomes inf, the sum
propagates it to every rank, and every rank then skips the step and halves the scale).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import traceback
import zlib
from pathlib import Path
from typing import Any


def _default_threads() -> None:
    """Split the cores among the ranks on this node unless the user chose: OpenMP and BLAS read these once,
    when they load, and oversubscribed spinning threads made training 5-10x slower in our runs."""
    local = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or "1"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // max(1, int(local) if local.isdigit() else 1)))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, os.environ.get("OMP_NUM_THREADS", threads))


_default_threads()

import numpy as np  # noqa: E402

import sve_kernels as K  # noqa: E402
from trainer_bridge.checkpoint import (  # noqa: E402
    Checkpoint,
    CheckpointError,
    KeptCheckpoints,
    latest_checkpoint,
    load_checkpoint,
)
from trainer_bridge.cliargs import SEED_MAX, OneLineParser, integer, number, output_folder  # noqa: E402
from trainer_bridge.model import (  # noqa: E402
    GPT,
    GPTConfig,
    check_fits,
    doc_ids_from_offsets,
    positions_from_doc_ids,
    resolve_config,
)
from trainer_bridge.optim import AdamW, LossScaler, clip_grad_norm, lr_at  # noqa: E402
from trainer_bridge.stream import ShardIntegrityError, ShardStream  # noqa: E402
from trainer_bridge.userpaths import folder_unwritable, not_regular  # noqa: E402

# Consecutive skipped steps (gradients not finite) that mean divergence, not an fp16 scale still settling: from
# the largest scale LossScaler allows, 2**24, fp16 finds a working one in 24 halvings.
MAX_SKIPPED_IN_A_ROW = 32
# --lr and --weight-decay reach the AdamW kernel as float32: above its largest value they were a kernel error line per
# rank at step 1, with MPICH's Abort lines, instead of one usage line.
F32_LIMIT = 3.4e38  # just below float32's largest value, 3.4028e38


class TrainError(ValueError):
    """A user-facing problem (bad arguments, mismatched checkpoint); printed as one line."""


class EveryRankError(TrainError):
    """A failure every rank knows alike (checked on the same inputs and agreed by a collective, or computed
    from reduced values): rank 0 reports it and every rank exits. The ranks used to print it each, and each
    MPI_Abort added a line of its own under MPICH."""


FAILURES = (TrainError, CheckpointError, ValueError, OSError, ShardIntegrityError, MemoryError)


def _said(exc: BaseException) -> str:
    """The one line a failure is reported as (numpy's MemoryError says how much it could not allocate)."""
    return f"out of memory: {exc}" if isinstance(exc, MemoryError) else str(exc)


def launch_rank() -> int:
    """This process's rank as its launcher set it (MPICH's Hydra, Open MPI, PMIx), readable before MPI starts;
    0 when not launched by one."""
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if (value := os.environ.get(key, "")).isdigit():
            return int(value)
    return 0


class RankZeroParser(OneLineParser):
    """Every rank parses the same command line: rank 0 says what is wrong, the others only exit."""

    def error(self, message: str):
        if launch_rank() > 0:
            self.exit(2)
        super().error(message)


def _sum_float16(inbuf, outbuf, datatype) -> None:
    """MPI reduction for float16 carried as 16-bit words: add in fp32, round back (overflow gives inf)."""
    a = np.frombuffer(inbuf, dtype=np.float16)
    b = np.frombuffer(outbuf, dtype=np.float16)
    with np.errstate(over="ignore"):
        b[...] = (a.astype(np.float32) + b.astype(np.float32)).astype(np.float16)


class GradReducer:
    """Sums gradient buckets over ranks as backward finishes them (non-blocking when `overlap`).

    fp16 mode sends float16 words (half the bytes of fp32 — what matters on Tofu-D) with a user-defined
    sum, since MPI has no portable float16 type; an overflowed gradient is inf on the wire and in the sum,
    so every rank sees it and skips the same step without another collective.
    """

    def __init__(self, comm, grads: np.ndarray, fp16: bool, overlap: bool):
        self.comm, self.grads, self.fp16, self.overlap = comm, grads, fp16, overlap
        self.requests: list = []
        self.halves: list[tuple[np.ndarray, np.ndarray]] = []
        self.comm_time = 0.0
        self.inject_overflow = False
        self._op = None

    def start(self, lo: int, hi: int) -> None:
        from mpi4py import MPI

        bucket = self.grads[lo:hi]
        buf, op = bucket, MPI.SUM
        if self.fp16:
            if self.inject_overflow:  # test hook: what a too-large loss scale does to one gradient
                bucket[0] = np.float32(1e30)
                self.inject_overflow = False
            half, _ = K.fp32_to_fp16(bucket)
            self.halves.append((bucket, half))
            if self._op is None:
                self._op = MPI.Op.Create(_sum_float16, commute=True)
            buf, op = [half, MPI.UINT16_T], self._op
        if self.comm.Get_size() == 1:
            return
        t0 = time.perf_counter()
        if self.overlap:
            self.requests.append(self.comm.Iallreduce(MPI.IN_PLACE, buf, op=op))
        else:
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=op)
        self.comm_time += time.perf_counter() - t0

    def finish(self) -> float:
        """Wait for outstanding buckets; returns and resets the step's communication time."""
        from mpi4py import MPI

        t0 = time.perf_counter()
        if self.requests:
            MPI.Request.Waitall(self.requests)
            self.requests = []
        spent, self.comm_time = self.comm_time + time.perf_counter() - t0, 0.0
        for bucket, half in self.halves:
            bucket[...] = K.fp16_to_fp32(half)[0]
        self.halves = []
        return spent

    def close(self) -> None:
        if self._op is not None:
            self._op.Free()
            self._op = None


def _batch(stream, doc_mask: bool, doc_positions: bool = True
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(inputs, targets, doc_ids, positions) for this rank's rows; targets in the padding become -1 (ignored).
    With `doc_mask`, doc_ids confine attention to each document and, with `doc_positions`, positions restart at 0
    at each document start (otherwise None: 0 … T-1 in every row)."""
    rows, offsets = stream.next_batch_with_offsets()
    rows = np.asarray(rows)
    ids = np.array(rows[:, :-1], dtype=np.int32)  # copies: one row's two slices share memory
    targets = np.array(rows[:, 1:], dtype=np.int32)
    lengths = np.asarray(getattr(stream, "last_lengths", []))
    if lengths.shape == (rows.shape[0],):  # target j is row position j + 1: real only below the row's length
        targets[np.arange(targets.shape[1])[None, :] + 1 >= lengths[:, None]] = -1
    doc_ids = doc_ids_from_offsets(offsets, ids.shape[1]) if doc_mask else None
    positions = positions_from_doc_ids(doc_ids) if doc_mask and doc_positions else None
    return ids, targets, doc_ids, positions


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _progress(rec: dict, steps: int) -> str:
    busy = rec["time_compute"] + rec["time_comm"] + rec["time_data"] or 1.0
    return (f"step {rec['step']:>6}/{steps} | loss {rec['loss']:.4f} | lr {rec['lr']:.2e} | "
            f"norm {rec['grad_norm']:.3f} | scale {rec['loss_scale']:g} | {rec['tokens_per_s']:,.0f} tok/s | "
            f"compute {100 * rec['time_compute'] / busy:.0f}% comm {100 * rec['time_comm'] / busy:.0f}% "
            f"data {100 * rec['time_data'] / busy:.0f}%" + (" | SKIPPED (overflow)" if rec["skipped"] else ""))


# Arguments that change the result: a resumed run must repeat the checkpoint's values (--model is compared as the
# config it resolves to). --steps, --out, logging, checkpointing, --no-overlap, the shards' path (the stream state
# checks their content) and the number of ranks may change.
RESUME_MUST_MATCH = ("global_batch", "precision", "lr", "warmup", "weight_decay", "clip", "seed", "doc_mask",
                     "loss_scale", "scale_window")


def _resume_checkpoint(run: Path, args: argparse.Namespace, cfg: GPTConfig, stream: ShardStream,
                       rank: int) -> Checkpoint:
    """The newest checkpoint in RUN, refused when it was made with other result-changing arguments; it positions
    `stream` (the stream state is a global cursor, so a run may resume on a different number of ranks)."""
    path = latest_checkpoint(run)
    if path is None:
        raise TrainError(f"--resume: no ckpt-*.npz in {run}")
    ckpt = load_checkpoint(path)
    if GPTConfig.from_json(ckpt.config_json) != cfg:
        raise TrainError(f"--resume: --model {args.model} is {cfg.to_json()} here but {ckpt.config_json} in {path}")
    stored = ckpt.state["args"]
    if diffs := [f"--{key.replace('_', '-')} {stored.get(key)!r} (given {getattr(args, key)!r})"
                 for key in RESUME_MUST_MATCH if stored.get(key) != getattr(args, key)]:
        raise TrainError(f"--resume: {path} was made with other arguments that change the result: {', '.join(diffs)}")
    try:
        stream.load_state_dict(ckpt.state["streams"][rank % len(ckpt.state["streams"])])
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return ckpt


def _metrics_kept(run: Path, start_step: int | None) -> list[str]:
    """RUN and its metrics.jsonl checked by rank 0 before the first collective (nothing made yet: another rank
    may still fail): the lines a resumed run keeps, those up to its checkpoint's step (a last line cut short by
    a crash is dropped like the steps after the checkpoint); none for a new run."""
    if why := folder_unwritable(str(run)):
        raise TrainError(f"--out {run}: {why}")
    path = run / "metrics.jsonl"
    if not_regular(path):  # opening a FIFO to truncate it blocked forever
        raise TrainError(f"{path}: not a regular file")
    if start_step is None or not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    kept = []
    for n, line in lines:
        try:
            step = json.loads(line)["step"]
            if not isinstance(step, int):
                raise TypeError(f"step {step!r}")
        except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
            if n == lines[-1][0] and not text.endswith("\n"):
                break  # cut short by a crash mid-write
            raise TrainError(f"{path}: line {n} is not a metrics record ({type(exc).__name__}: {exc}); "
                             "move the file away to resume") from None
        if step <= start_step:
            kept.append(line)
    return kept


def _setup(args: argparse.Namespace, comm: Any, ranks_here: int
           ) -> tuple[ShardStream, Path, GPTConfig, Checkpoint | None, GPT, AdamW, LossScaler, list[str]]:
    """Everything a run checks and loads before its first collective, on every rank alike."""
    rank, world = comm.Get_rank(), comm.Get_size()
    G = args.global_batch
    if G < 1 or G % world:
        raise TrainError(f"--global-batch {G} must be a positive multiple of the number of ranks ({world})")
    manifest = Path(args.shards)
    manifest = manifest / "manifest.json" if manifest.is_dir() else manifest
    if not manifest.is_file():
        raise TrainError(f"no shard manifest at {manifest}")
    stream = ShardStream(str(manifest), rank=rank, world_size=world, seed=args.seed, global_batch_size=G)
    run = Path(args.out)
    fp16 = args.precision == "fp16"
    cfg = resolve_config(args.model, int(stream.vocab_size), int(stream.seq_len))
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // ranks_here  # this rank's share of its node
    check_fits(cfg, memory, G // world, int(stream.seq_len), fp16)
    ckpt = None
    if args.resume:
        ckpt = _resume_checkpoint(run, args, cfg, stream, rank)
        if ckpt.step > args.steps:  # it trained nothing, and said only "done"
            raise TrainError(f"--steps {args.steps}: the checkpoint in {run} is at step {ckpt.step} already")
    elif latest_checkpoint(run) is not None:
        raise TrainError(f"{run} already holds checkpoints: pass --resume or choose another --out")
    metrics = _metrics_kept(run, ckpt.step if ckpt else None) if rank == 0 else []
    model = GPT(cfg, seed=args.seed, params=ckpt.params.copy() if ckpt else None, fp16=fp16)
    opt = AdamW(model.num_params, model.decay_mask(), weight_decay=args.weight_decay)
    scaler = LossScaler(scale=args.loss_scale, window=args.scale_window)
    if ckpt is not None:
        opt.m[...], opt.v[...], opt.t = ckpt.m, ckpt.v, ckpt.state["optimizer_t"]
        scaler.load_state_dict(ckpt.state["loss_scaler"])
    return stream, run, cfg, ckpt, model, opt, scaler, metrics


def _doc_positions(args: argparse.Namespace, ckpt: Checkpoint | None) -> bool:
    """Whether positions restart at each document: with --doc-mask, unless the run resumes a checkpoint from before
    they did (no "doc_positions" in its state), which goes on with row positions, as it was trained."""
    return args.doc_mask and (ckpt.state.get("doc_positions", False) if ckpt else True)


def _agreed(failures: list[str | None]) -> str:
    """One line for what the ranks' checks found: the message, naming the rank when not every rank failed alike."""
    failed = [(r, m) for r, m in enumerate(failures) if m]
    r, message = failed[0]
    if len(failed) == len(failures) and all(m == message for _, m in failed):
        return message
    return f"rank {r}: {message}" + (f" (and {len(failed) - 1} other ranks)" if len(failed) > 1 else "")


@np.errstate(over="ignore", invalid="ignore")  # inf and NaN skip the step (or stop the run): no warning lines
def train(args: argparse.Namespace) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, world = comm.Get_rank(), comm.Get_size()
    launched = os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE") or "1"
    if world == 1 and launched.isdigit() and int(launched) > 1:  # N copies of a 1-rank job would share RUN
        raise TrainError(f"the launcher started {launched} ranks but mpi4py sees 1: mpi4py is built for another MPI")
    ranks_here = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()  # a collective: before any check can fail
    try:
        stream, run, cfg, ckpt, model, opt, scaler, kept = _setup(args, comm, ranks_here)
        failure = None
    except FAILURES as exc:
        failure = _said(exc)
    if any(failures := comm.allgather(failure)):  # a rank that failed alone would leave the others in Bcast
        if failure is None:
            stream.close()
        raise EveryRankError(_agreed(failures))
    if ckpt is None:
        comm.Bcast(model.params, root=0)
    fp16, start_step = args.precision == "fp16", ckpt.step if ckpt else 0
    # the skipped steps in a row go on counting across a resume (absent from older checkpoints: 0)
    skipped_in_a_row = ckpt.state.get("skipped_in_a_row", 0) if ckpt else 0
    doc_positions = _doc_positions(args, ckpt)
    G = args.global_batch
    metrics_path = run / "metrics.jsonl"
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
        mask = f", document mask with {'per-document' if doc_positions else 'row'} positions" if args.doc_mask else ""
        print(f"jcorpus-train: {world} rank(s) x {K.info()['threads']} thread(s), {model.num_params:,} params "
              f"{cfg.to_json()}, precision {args.precision}{mask}, start step {start_step}", flush=True)

    reducer = GradReducer(comm, model.grads, fp16, overlap=not args.no_overlap)
    ckpts = KeptCheckpoints(run, args.keep, cfg.vocab_size)  # rank 0's
    warmup = args.warmup if args.warmup is not None else min(200, max(1, args.steps // 10))
    tokens_per_step = G * int(stream.seq_len)
    for step in range(start_step + 1, args.steps + 1):
        t0 = time.perf_counter()
        local = np.zeros(3)  # loss sum, tokens, ranks whose batch failed (a shard's check, a read error)
        try:
            ids, targets, doc_ids, positions = _batch(stream, args.doc_mask, doc_positions)
            failure = None
        except FAILURES as exc:
            failure, local[2] = _said(exc), 1
        t1 = time.perf_counter()
        if failure is None:
            losses = model.forward(ids, targets, doc_ids, positions=positions)
            local[:2] = float(np.sum(losses, dtype=np.float64)), float(np.count_nonzero(targets >= 0))
        t2 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, local, op=MPI.SUM)
        t3 = time.perf_counter()
        loss_sum, n_tokens, failed = local
        if failed:  # agreed in the step's own collective: one line, not one per rank plus MPICH's Abort lines
            failures = comm.allgather(failure)
            stream.close()
            raise EveryRankError(f"step {step}: {_agreed(failures)}")
        loss = loss_sum / max(n_tokens, 1.0)
        if rank == 0 and (note := ckpts.confirm(loss)):  # the loss of the newest checkpoint's weights
            print(f"jcorpus-train: {note}", flush=True)
        scale = scaler.scale if fp16 else 1.0
        reducer.inject_overflow = step == args.inject_overflow_at and rank == 0
        model.backward(scale / max(n_tokens, 1.0), on_bucket=reducer.start)
        t_comm = reducer.finish() + (t3 - t2)
        if scale != 1.0:
            K.scale_inplace(model.grads, 1.0 / scale)
        norm = clip_grad_norm(model.grads, args.clip)
        overflow = not math.isfinite(norm)
        skipped = scaler.update(overflow) if fp16 else overflow
        lr = lr_at(step, args.lr, warmup, args.steps)
        if not skipped:
            opt.step(model.params, model.grads, lr)
        skipped_in_a_row = skipped_in_a_row + 1 if skipped else 0
        t5 = time.perf_counter()
        if rank == 0:  # strict JSON: a loss or norm that is not finite is null
            rec = {"step": step, "loss": _finite(loss), "lr": lr, "grad_norm": _finite(norm),
                   "loss_scale": scale if fp16 else None,
                   "skipped": skipped, "tokens": int(n_tokens), "tokens_per_s": tokens_per_step / (t5 - t0),
                   "time_data": t1 - t0, "time_comm": t_comm, "time_compute": (t5 - t0) - (t1 - t0) - t_comm}
            with metrics_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec) + "\n")
            if step == start_step + 1 or step % args.log_every == 0 or step == args.steps or skipped:
                print(_progress(dict(rec, loss=loss, grad_norm=norm, loss_scale=scale), args.steps), flush=True)
        if skipped_in_a_row == MAX_SKIPPED_IN_A_ROW:  # the same on every rank: the norm is of the summed gradients
            raise EveryRankError(f"step {step}: the last {MAX_SKIPPED_IN_A_ROW} steps were skipped, their "
                                 f"gradients not finite: training diverged (lower --lr {args.lr:g}?)")
        if step % args.ckpt_every == 0 or step == args.steps:
            fingerprint = zlib.crc32(model.params.view(np.uint8))  # every rank must hold the same weights
            if comm.allreduce(fingerprint, op=MPI.MAX) != comm.allreduce(fingerprint, op=MPI.MIN):
                raise EveryRankError(f"step {step}: parameters differ between ranks "
                                     "(a skipped step was not global?)")
            streams = comm.gather(stream.state_dict(), root=0)
            if rank == 0:
                state = {"optimizer_t": opt.t, "loss_scaler": scaler.state_dict(), "streams": streams,
                         "skipped_in_a_row": skipped_in_a_row, "doc_positions": doc_positions,
                         "vocab_size": stream.vocab_size, "seed": args.seed, "world_size": world,
                         "tokenizer_sha256": stream.manifest["tokenizer"].get("sha256"), "precision": args.precision,
                         "args": {k: v for k, v in vars(args).items() if k != "func"}}
                diverging = skipped and (not fp16 or scale <= scaler.min_scale)  # no loss scale to blame
                if note := ckpts.offer(Checkpoint(step, model.params, opt.m, opt.v, cfg.to_json(), state), loss,
                                      diverging):
                    print(f"jcorpus-train: {note}", flush=True)
        if args.halt_after and step >= args.halt_after:  # test hook: die as if preempted
            break
    stream.close()
    reducer.close()
    ckpts.close()
    if rank == 0 and not (args.halt_after and args.halt_after < args.steps):
        print(f"jcorpus-train: done, checkpoints and metrics in {run}" if not ckpts.diverged else
              f"jcorpus-train: done, metrics in {run}; the run looks diverged, {ckpts.newest()}", flush=True)
    return 0


def sample(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation sampled from a checkpoint."""
    from tokenizer.train import TokenizerError
    from tokenizer.train import load as load_tokenizer

    ckpt = load_checkpoint(args.ckpt)
    model = GPT(GPTConfig.from_json(ckpt.config_json), params=ckpt.params)
    if not Path(args.tokenizer).is_file():
        raise TrainError(f"tokenizer model not found: {args.tokenizer}")
    try:
        sp = load_tokenizer(data := Path(args.tokenizer).read_bytes(), args.tokenizer)
    except TokenizerError as exc:  # tokenizer.json, a truncated or empty file
        raise TrainError(str(exc)) from None
    packed_with = ckpt.state.get("tokenizer_sha256")  # absent in checkpoints before the fourteenth session
    if packed_with and (digest := hashlib.sha256(data).hexdigest()) != packed_with:
        raise TrainError(f"tokenizer {args.tokenizer} is not the one {args.ckpt} was trained with (sha256 "
                         f"{digest[:16]}…, the shards' {packed_with[:16]}…): pass the tokenizer its shards were "
                         "packed with")
    vocab = ckpt.state.get("vocab_size", model.cfg.vocab_size)  # the shards' (a model config may round it up)
    if sp.get_piece_size() != vocab:
        raise TrainError(f"tokenizer {args.tokenizer} has {sp.get_piece_size():,} pieces, but {args.ckpt} was trained "
                         f"on a vocabulary of {vocab:,}: pass the tokenizer its shards were packed with")
    ids = list(sp.encode(args.prompt))
    if not ids:  # an empty prompt starts a document: packed documents follow an EOS (GPT-2's <|endoftext|>)
        if sp.eos_id() < 0:
            raise TrainError(f"--prompt is empty and {args.tokenizer} has no EOS piece to start from")
        ids = [sp.eos_id()]
    rng = np.random.default_rng(args.seed)
    out: list[int] = []
    for _ in range(args.tokens):
        logits = model.next_token_logits(np.array(ids + out)).astype(np.float64)
        logits = logits[: sp.get_piece_size()]
        if args.temperature <= 0:
            nxt = int(np.argmax(logits))
        else:
            logits = logits / args.temperature
            if 0 < args.top_k < len(logits):
                logits[logits < np.partition(logits, -args.top_k)[-args.top_k]] = -np.inf
            probs = np.exp(logits - logits.max())
            nxt = int(rng.choice(len(probs), p=probs / probs.sum()))
        if nxt == sp.eos_id():
            break
        out.append(nxt)
    print(args.prompt + sp.decode(out), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = RankZeroParser(prog="jcorpus-train", description=__doc__.split("\n\n")[0],
                       epilog="`jcorpus-train sample --help`: continue a prompt from a checkpoint")
    p.add_argument("--shards", required=True, help="SHARDS directory or its manifest.json")
    p.add_argument("--model", default="tiny", help="tiny | small | CONFIG.json")
    p.add_argument("--steps", type=integer(1), required=True)
    p.add_argument("--global-batch", type=int, default=8, help="rows per step over all ranks")
    p.add_argument("--out", required=True, type=output_folder, help="run directory (metrics.jsonl, ckpt-STEP.npz)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    p.add_argument("--lr", type=number(0, F32_LIMIT, above=True), default=1e-3)
    p.add_argument("--warmup", type=integer(0), default=None, help="warmup steps (default: steps/10, at most 200)")
    p.add_argument("--weight-decay", type=number(0, F32_LIMIT), default=0.1)
    p.add_argument("--clip", type=number(0), default=1.0, help="global gradient-norm clip (0 = off)")
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    p.add_argument("--doc-mask", action="store_true", help="attend only within documents (doc_offsets)")
    p.add_argument("--ckpt-every", type=integer(1), default=100)
    p.add_argument("--keep", type=integer(0), default=3, help="checkpoints to keep (0 = all)")
    p.add_argument("--log-every", type=integer(1), default=10)
    # LossScaler's range: below 1 the fp16 gradients flushed to zero (1e-30 trained nothing and exited 0); above 2**24
    # the scale could not settle within MAX_SKIPPED_IN_A_ROW halvings (1e40 stopped as "diverged, lower --lr"), and
    # 1e300 was a kernel error line per rank
    p.add_argument("--loss-scale", type=number(LossScaler.min_scale, LossScaler.max_scale), default=2.0 ** 16,
                   help="initial fp16 loss scale, in [1, 2**24]")
    p.add_argument("--scale-window", type=integer(1), default=200, help="clean steps before the scale doubles")
    p.add_argument("--no-overlap", action="store_true", help="blocking Allreduce after each bucket")
    p.add_argument("--halt-after", type=integer(0), default=0, help=argparse.SUPPRESS)
    p.add_argument("--inject-overflow-at", type=integer(0), default=0, help=argparse.SUPPRESS)
    return p


def build_sample_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="jcorpus-train sample", description="continue a prompt from a checkpoint")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--tokenizer", required=True, help="SentencePiece tokenizer.model")
    p.add_argument("--prompt", default="日本の", help="\"\" samples a document from its start (after an EOS)")
    p.add_argument("--tokens", type=integer(1), default=100)
    p.add_argument("--temperature", type=number(0), default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=integer(0), default=40)
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "sample":
            return sample(build_sample_parser().parse_args(argv[1:]))
        args = build_parser().parse_args(argv)
        return train(args)
    except EveryRankError as exc:
        if (world := _world()) is None or world.Get_rank() == 0:
            print(f"jcorpus-train: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except FAILURES as exc:
        return _fail(_said(exc))
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback per rank
        return _interrupted()
    except Exception:  # a defect: with other ranks, a traceback here and the job taken down, not left waiting
        if (world := _world()) is not None and world.Get_size() > 1:
            traceback.print_exc()
            _abort_after_stderr(world, 1)
        raise


def _abort_after_stderr(world: Any, code: int) -> None:
    """Abort the job once what this rank said has reached the launcher: it forwards stderr on its own time, and
    an Abort right after tears it down (seen losing the line)."""
    sys.stderr.flush()
    time.sleep(0.5)
    world.Abort(code)


def _interrupted() -> int:
    """One "interrupted" line, and with other ranks the job aborted: a rank still inside a collective would
    wait for this one forever (seen: 7 minutes). Rank 0 says it and aborts; another rank does both only if it is
    still running 5 s later, when rank 0 is the one stuck in a collective (its Ctrl-C waits for the collective
    to return)."""
    world = _world()
    if world is None or world.Get_size() == 1:
        print("jcorpus-train: interrupted", file=sys.stderr, flush=True)
        return 130
    time.sleep(0 if world.Get_rank() == 0 else 5.0)
    print("jcorpus-train: interrupted", file=sys.stderr)
    _abort_after_stderr(world, 130)
    return 130


def _fail(message: str) -> int:
    """A failure of this rank alone: the others would stay blocked in a collective, so the job is taken down."""
    print(f"jcorpus-train: error: {message}", file=sys.stderr, flush=True)
    if (world := _world()) is not None and world.Get_size() > 1:
        _abort_after_stderr(world, 2)
    return 2


def _world():
    """MPI's COMM_WORLD while MPI runs, else None (a usage error, `sample`, after the end)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD
    return None


if __name__ == "__main__":
    sys.exit(main())
