"""`jcorpus demo`: the whole chain on the bundled samples, one line per stage.

Each stage writes `_SUCCESS` and `stage.json` (a fingerprint of its command and of everything upstream);
a re-run skips stages whose fingerprint is unchanged, `--force` redoes them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipeline.errors import UserError
from trainer_bridge.cliargs import integer, output_folder

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "examples" / "demo.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole chain on the bundled samples")
    p.add_argument("--out", default="demo_out", type=output_folder, help="output folder (default demo_out)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--steps", type=integer(1), default=300, help="training steps of the tiny model (default 300)")
    p.add_argument("--ranks", type=integer(1), default=2, help="MPI ranks for training (default 2)")
    p.add_argument("--vocab-size", type=integer(8), default=8000)
    p.add_argument("--seq-len", type=integer(1), default=128)
    p.set_defaults(func=run)


def _inputs_digest() -> str:
    h = hashlib.sha256(DEMO_CONFIG.read_bytes())
    for path in sorted((ROOT / "data" / "samples").rglob("*")):
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


STAGES = ("curate", "tokenizer", "shards", "train", "report")


class Stages:
    def __init__(self, out: Path, force: bool) -> None:
        self.out, self.force, self.chain = out, force, _inputs_digest()
        foreign = [str(out / name) for name in STAGES
                   if (out / name).is_dir() and any((out / name).iterdir()) and not (out / name / "stage.json").exists()]
        if foreign:  # a stage redone deletes its folder: never one the demo did not write
            raise UserError(f"{', '.join(foreign)} not written by jcorpus demo; choose another --out or move "
                            f"{'it' if len(foreign) == 1 else 'them'} away")

    def run(self, name: str, argv: list[str], summary) -> None:
        """Run `argv` unless `out/name` already holds its result; print the stage's key figure."""
        folder = self.out / name
        self.chain = hashlib.sha256(json.dumps([self.chain, name, argv]).encode()).hexdigest()
        marker = folder / "stage.json"
        start = time.perf_counter()
        reused = (not self.force and (folder / "_SUCCESS").exists() and marker.exists()
                  and json.loads(marker.read_text()).get("fingerprint") == self.chain)
        if not reused:
            shutil.rmtree(folder, ignore_errors=True)
            log = self.out / f"{name}.log"
            with log.open("w") as fh:
                done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
            if done.returncode:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise SystemExit(f"demo: stage {name} failed (exit {done.returncode}); log {log}:\n" + "\n".join(tail))
            folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"fingerprint": self.chain, "argv": argv}, indent=1))
            (folder / "_SUCCESS").touch()
        took = "reused" if reused else f"{time.perf_counter() - start:6.1f} s"
        print(f"{name:<10} {took:>9}  {summary(folder)}", flush=True)


def _curate_summary(folder: Path) -> str:
    s = json.loads((folder / "stats.json").read_text())
    return (f"{s['input_docs']} docs in, {s['kept_docs']} kept, {s['rejected_docs']} rejected, "
            f"{s['quarantined_docs']} quarantined; top reasons: "
            + ", ".join(f"{r}={v['docs']}" for r, v in sorted(s["reasons"].items(), key=lambda kv: -kv[1]["docs"])[:4]))


def _tokenizer_summary(folder: Path) -> str:
    ours = json.loads((folder / "eval.json").read_text())["models"]["main"]
    keys = ("chars_per_token", "morph_boundary_f1", "byte_fallback_rate", "roundtrip_exact")
    return ", ".join(f"{k}={ours[k]:.4g}" for k in keys if isinstance(ours.get(k), int | float))


def _pack_summary(folder: Path) -> str:
    m = json.loads((folder / "manifest.json").read_text())
    t = m["totals"]
    return (f"{len(m['shards'])} shard(s), {t['rows']:,} rows of {m['seq_len'] + 1}, {t['tokens']:,} tokens, "
            f"padding {t['padding_rate']:.3%}")


def _train_summary(folder: Path) -> str:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    sample = (folder / "sample.txt").read_text().strip() if (folder / "sample.txt").exists() else ""
    return f"loss {first['loss']:.3f} → {last['loss']:.3f} in {last['step']} steps; sample: {sample[:60]!r}"


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
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
             str(out / "shards"), "--model", "tiny", "--steps", str(args.steps), "--global-batch", "8",
             "--lr", "2e-3", "--doc-mask", "--out", str(run_dir)]
    sample = [sys.executable, "-m", "trainer_bridge.train", "sample", "--ckpt", "LATEST", "--tokenizer", model,
              "--prompt", "日本の", "--tokens", "60"]
    sample_cmd = shlex.join(sample).replace("LATEST", '"$ckpt"')
    script = (f"{shlex.join(train)} && ckpt=$(ls {shlex.quote(str(run_dir))}/ckpt-*.npz | sort -V | tail -1)"
              f" && {sample_cmd} > {shlex.quote(str(run_dir / 'sample.txt'))}")
    st.run("train", ["bash", "-c", script], _train_summary)
    if (ROOT / "pipeline" / "cmd_report.py").exists():
        st.run("report", [*jcorpus, "report", str(out)], lambda f: f"open {out / 'report.html'}")
    print(f"\nall outputs in {out}" + (f"; report: {out / 'report.html'}" if (out / "report.html").exists() else ""))
    return 0

