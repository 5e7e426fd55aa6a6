"""`jcorpus demo`: the whole chain on the bundled samples, one line per stage.

Each stage runs into its own folder under OUT. Before a stage writes anything, the demo writes the folder's
`stage.json` (a fingerprint of its command and of everything upstream): it marks the folder as the demo's own, so a
crashed or failed run is redone, while a folder without one is never touched. `_SUCCESS`, written last, marks the
stage done. A re-run reuses a done stage whose fingerprint is unchanged and whose outputs are still readable; a
stage redone redoes every stage after it (they were built from its old outputs); `--force` redoes them all.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pipeline.errors import UserError
from trainer_bridge.cliargs import integer, output_folder

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "examples" / "demo.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole chain on the bundled samples")
    p.add_argument("--out", default="demo_out", type=output_folder, help="output folder (default demo_out)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--steps", type=integer(1), default=300, help="training steps of the tiny model (default 300)")
    p.add_argument("--ranks", type=_ranks, default=2, help="MPI ranks for training: 1, 2, 4 or 8 (default 2)")
    p.add_argument("--vocab-size", type=_vocab_size, default=8000,
                   help="tokenizer vocabulary (default 8000; at least the inventory's fixed pieces)")
    p.add_argument("--seq-len", type=integer(1), default=128)
    p.set_defaults(func=run)


GLOBAL_BATCH = 8  # sequences per training step, split evenly over the ranks


def _ranks(text: str) -> int:
    """A rank count that divides the global batch, checked before any stage: jcorpus-train refused it only after
    curate, the tokenizer and the packing had run, naming --global-batch, which the user did not give."""
    choices = [n for n in range(1, GLOBAL_BATCH + 1) if GLOBAL_BATCH % n == 0]
    value = integer(1)(text)
    if value not in choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(map(str, choices))} (the demo trains with a "
                                         f"global batch of {GLOBAL_BATCH}), got {text}")
    return value


def _vocab_size(text: str) -> int:
    """A vocabulary that holds the tokenizer's fixed pieces, checked before any stage: a smaller one failed only at
    the tokenizer stage, after curate, and below 17 named --reserved-tokens, which the user did not give."""
    from tokenizer.train import minimum_vocab_size  # here: the demo's other options need no sentencepiece

    value = integer(1)(text)
    if value < (least := minimum_vocab_size()):  # the demo trains with the defaults: --inventory auto, 16 reserved
        raise argparse.ArgumentTypeError(f"expected at least {least} (the tokenizer's required characters, special "
                                         f"and reserved pieces and byte pieces), got {text}")
    return value


def _inputs_digest() -> str:
    h = hashlib.sha256(DEMO_CONFIG.read_bytes())
    for path in sorted((ROOT / "data" / "samples").rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


STAGES = ("curate", "tokenizer", "shards", "train", "report")
REPORT = "report.html"  # the report stage's output, at the top of OUT (its stage folder holds only the markers)
# What reading a missing or corrupt stage output raises (ValueError covers bad JSON and bad UTF-8; UserError, a
# Parquet part that is not one)
UNREADABLE = (OSError, ValueError, LookupError, TypeError, AttributeError, UserError)


def _check_out(out: Path) -> None:
    """Refuse, before any stage runs, an OUT holding things the demo would delete or overwrite but did not write."""
    folders = [out / name for name in STAGES]
    files = [*(out / f"{name}.log" for name in STAGES), out / REPORT]
    clash = [p for p in folders if p.exists() and not p.is_dir()] + [p for p in files if p.is_dir()]
    if clash:
        kind = "folder" if clash[0] in folders else "file"
        raise UserError(f"{clash[0]}: the demo needs a {kind} there; choose another --out or move it away")
    foreign = [str(p) for p in folders if p.is_symlink()
               or (p.is_dir() and any(p.iterdir()) and not (p / "stage.json").exists())]
    if foreign:  # a stage redone deletes its folder: never one the demo did not write
        raise UserError(f"{', '.join(foreign)} not written by jcorpus demo; choose another --out or move "
                        f"{'it' if len(foreign) == 1 else 'them'} away")
    if any(out.iterdir()) and not any((p / "stage.json").exists() for p in folders):  # its logs, report.html
        raise UserError(f"{out} is not empty and not a jcorpus demo folder; choose a new or empty --out")


STAGE_STOP_SECONDS = 15
HANGUPS = (signal.SIGHUP, signal.SIGQUIT)  # a closed terminal, Ctrl-\


def run_stage(argv: list[str], log: IO[bytes]) -> int:
    """Run one stage in a process group of its own, and on a stop (Ctrl-C, SIGTERM, a hangup, Ctrl-\\) stop the
    whole group.

    subprocess.run kills only its direct child: the train stage's `bash -c` died and left `mpiexec` and its
    ranks training on as orphans. The group gets the same signal (each jcorpus command cleans up after
    it), `STAGE_STOP_SECONDS` to end, then SIGKILL; whatever is left of it is killed either way."""
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    # out of the terminal's process group, the stage no longer gets a hangup itself: the demo passes it on
    hangups = {sig: signal.signal(sig, _stop_on) for sig in HANGUPS}
    try:
        return proc.wait()
    except BaseException as exc:
        try:
            _signal_group(proc.pid, signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM)
            proc.wait(timeout=STAGE_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also on a second Ctrl-C while the group stops
            _signal_group(proc.pid, signal.SIGKILL)  # ranks that outlived the group's leader, or a stuck one
            proc.wait()
        raise
    finally:
        for sig, handler in hangups.items():
            signal.signal(sig, handler)


def _stop_on(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # the stage is stopped like on SIGTERM, then the demo exits


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Stages:
    def __init__(self, out: Path, force: bool) -> None:
        _check_out(out)
        self.out, self.force, self.chain = out, force, _inputs_digest()

    def run(self, name: str, argv: list[str], summary: Callable[[Path], str]) -> None:
        """Run `argv` unless `out/name` holds its finished, readable result; print the stage's key figure."""
        folder, log = self.out / name, self.out / f"{name}.log"
        self.chain = hashlib.sha256(json.dumps([self.chain, name, argv]).encode()).hexdigest()
        start = time.perf_counter()
        line = None if self.force else self._reused(folder, summary)
        if line is None:
            self.force = True  # the later stages were built from this one's old outputs: redo them too
            try:
                self._claim(folder, argv)
                fh = log.open("wb")
            except OSError as exc:  # a read-only --out, say
                raise UserError(f"{exc.filename}: {exc.strerror}; choose another --out") from None
            with fh:
                code = run_stage(argv, fh)
            if code:
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
                raise SystemExit(f"demo: stage {name} failed (exit {code}); log {log}:\n" + "\n".join(tail))
            try:
                line = summary(folder)
            except UNREADABLE as exc:
                raise SystemExit(f"demo: stage {name} finished but its output is unreadable "
                                 f"({type(exc).__name__}: {exc}); log {log}") from None
            (folder / "_SUCCESS").touch()
            took = f"{time.perf_counter() - start:6.1f} s"
        else:
            took = "reused"
        print(f"{name:<10} {took:>9}  {line}", flush=True)

    def _reused(self, folder: Path, summary: Callable[[Path], str]) -> str | None:
        """The stage's summary if `folder` is done with this fingerprint and its outputs read; else None (redo it:
        a missing or corrupt output must not be reported as reused)."""
        try:
            if (folder / "_SUCCESS").exists() and _json(folder / "stage.json").get("fingerprint") == self.chain:
                return summary(folder)
        except UNREADABLE:
            pass
        return None

    def _claim(self, folder: Path, argv: list[str]) -> None:
        """Mark `folder` as the demo's before the stage writes into it, so a crashed run is redone rather than refused
        as foreign, then empty it. `_SUCCESS` goes first: a half-emptied folder must never look done."""
        folder.mkdir(exist_ok=True)
        (folder / "_SUCCESS").unlink(missing_ok=True)
        marker = folder / "stage.json"
        marker.write_text(json.dumps({"fingerprint": self.chain, "argv": argv}, indent=1), encoding="utf-8")
        for entry in folder.iterdir():
            if entry == marker:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _json(path: Path) -> Any:
    """A stage output's JSON, read as UTF-8 (what the stages write, whatever the locale)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _present(*paths: Path) -> None:
    """Raise for the first missing path: a stage whose outputs are gone is redone, not reported as reused."""
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "missing", str(path))


def _curate_summary(folder: Path) -> str:
    """Its figures, once the Parquet parts hold the rows stats.json counts: with a part lost, the stage was reused
    and reported its kept documents over fewer rows (a report redone said so only in report.log)."""
    from pipeline.report_inputs import PARTS, parquet_rows

    s = _json(folder / "stats.json")
    _present(folder / "curated")
    for part, total in PARTS.items():
        if (rows := parquet_rows(folder / part)) != s[total]:
            raise ValueError(f"{folder / part} holds {rows:,} rows, stats.json {total} is {s[total]:,}")
    return (f"{s['input_docs']} docs in, {s['kept_docs']} kept, {s['rejected_docs']} rejected, "
            f"{s['quarantined_docs']} quarantined; top reasons: "
            + ", ".join(f"{r}={v['docs']}" for r, v in sorted(s["reasons"].items(), key=lambda kv: -kv[1]["docs"])[:4]))


def _tokenizer_summary(folder: Path) -> str:
    ours = _json(folder / "eval.json")["models"]["main"]
    _present(folder / "tokenizer.model")
    keys = ("chars_per_token", "morph_boundary_f1", "byte_fallback_rate", "roundtrip_exact")
    return ", ".join(f"{k}={ours[k]:.4g}" for k in keys if isinstance(ours.get(k), int | float))


def _pack_summary(folder: Path) -> str:
    m = _json(folder / "manifest.json")
    _present(*(folder / s["file"] for s in m["shards"]),
             *(folder / f"{p['prefix']}.{ext}" for p in m.get("megatron") or () for ext in ("bin", "idx")))
    t = m["totals"]
    return (f"{len(m['shards'])} shard(s), {t['rows']:,} rows of {m['seq_len'] + 1}, {t['tokens']:,} tokens, "
            f"padding {t['padding_rate']:.3%}")


def _loss(value: Any) -> str:
    """The trainer writes a loss that is not finite as null (strict JSON)."""
    if value is None:
        return "not finite"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"loss {value!r} is not a number")
    return f"{value:.3f}"


def _train_summary(folder: Path) -> str:
    lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    sample = (folder / "sample.txt").read_text(encoding="utf-8").strip()
    return f"loss {_loss(first['loss'])} → {_loss(last['loss'])} in {last['step']} steps; sample: {sample[:60]!r}"


def _report_summary(folder: Path) -> str:
    page = folder.parent / REPORT
    _present(page)
    return f"open {page}"


def run(args: argparse.Namespace) -> int:
    if "://" in args.out:  # the stages would write to a local folder named `gs:`
        raise UserError(f"--out {args.out}: the demo writes local folders only, not URLs")
    out = Path(args.out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create {exc.filename} ({exc.strerror})") from None
    bindir = Path(sys.executable).parent
    jcorpus = [sys.executable, "-m", "pipeline.cli"]
    st = Stages(out, args.force)
    st.run("curate", [*jcorpus, "curate", "--config", str(DEMO_CONFIG), "--out", str(out / "curate"),
                      "--overwrite"], _curate_summary)
    curated = str(out / "curate" / "curated")
    st.run("tokenizer", [*jcorpus, "tokenizer", "train", "--input", curated, "--vocab-size", str(args.vocab_size),
                         "--shrink-to-fit", "--out", str(out / "tokenizer")], _tokenizer_summary)
    model = str(out / "tokenizer" / "tokenizer.model")
    st.run("shards", [*jcorpus, "pack", "--input", curated, "--tokenizer", model, "--seq-len", str(args.seq_len),
                    "--out", str(out / "shards"), "--format", "arrow,megatron"], _pack_summary)
    mpiexec = shutil.which("mpiexec", path=str(bindir)) or shutil.which("mpiexec") or "mpiexec"
    run_dir = out / "train"
    train = [mpiexec, "-n", str(args.ranks), sys.executable, "-m", "trainer_bridge.train", "--shards",
             str(out / "shards"), "--model", "tiny", "--steps", str(args.steps), "--global-batch", str(GLOBAL_BATCH),
             "--lr", "2e-3", "--doc-mask", "--out", str(run_dir)]
    sample = [sys.executable, "-m", "trainer_bridge.train", "sample", "--ckpt", "LATEST", "--tokenizer", model,
              "--prompt", "日本の", "--tokens", "60"]
    sample_cmd = shlex.join(sample).replace("LATEST", '"$ckpt"')
    script = (f"{shlex.join(train)} && ckpt=$(ls {shlex.quote(str(run_dir))}/ckpt-*.npz | sort -V | tail -1)"
              f" && {sample_cmd} > {shlex.quote(str(run_dir / 'sample.txt'))}")
    st.run("train", ["bash", "-c", script], _train_summary)
    if (ROOT / "pipeline" / "cmd_report.py").exists():
        st.run("report", [*jcorpus, "report", str(out)], _report_summary)
    print(f"\nall outputs in {out}" + (f"; report: {out / REPORT}" if (out / REPORT).exists() else ""))
    return 0

