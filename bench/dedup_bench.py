"""Near-dedup performance: signatures/s vs datasketch, and the Beam stage's wall time and peak memory.

  .venv/bin/python bench/dedup_bench.py signatures            # per-core docs/s on 1-3k char documents
  .venv/bin/python bench/dedup_bench.py stage --docs 10000 --workers 1 2

Documents are built from the bundled samples (data/samples/*/*.jsonl): paragraphs up to 1-3k characters per
document, and every fifth document a near copy (1 % character edits) of an earlier one. A stage run is the
real `jcorpus curate` (read JSONL, prepare, exact + near dedup, write Parquet; filters off) in a separate
process, so its peak RSS (runner process; largest worker process with --workers 2) is its own.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import CurateConfig  # noqa: E402
from tokenizer.minhash import MinHasher  # noqa: E402
from tokenizer.shingles import ngrams, shingle_hash, shingle_hashes, shingle_key, tokens  # noqa: E402


def paragraphs() -> list[str]:
    out = []
    for f in sorted((ROOT / "data" / "samples").glob("*/*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            text = json.loads(line).get("text") or ""
            out.extend(p for p in text.split("\n") if len(p) >= 40)
    if not out:
        raise SystemExit("error: no bundled samples under data/samples/*/*.jsonl")
    return out


SOURCE_FILES = 16


def synthetic_docs(n: int, seed: int = 0, chars: tuple[int, int] = (1000, 3000)) -> list[dict]:
    rng, paras, docs = random.Random(seed), paragraphs(), []
    for i in range(n):
        if i % 5 == 4:
            src = list(docs[rng.randrange(len(docs))]["text"])
            for _ in range(len(src) // 100):
                src[rng.randrange(len(src))] = rng.choice("あいうえおかきくけこ")
            text = "".join(src)
        else:
            target, parts = rng.randint(*chars), []
            while sum(map(len, parts)) < target:
                parts.append(rng.choice(paras)[: target])
            text = "\n".join(parts)[:target] + f"（{i}）"
        docs.append({"id": f"d{i:08d}", "source_id": str(i), "source": "bench", "kind": rng.choice(["web", "academic"]),
                     "url": None, "license": "x", "text": text, "meta": {}, "quality": None, "dup_cluster": None,
                     "reject_reason": None, "error": None})
    return docs


def _rate(fn, items: list, repeats: int = 3) -> float:
    """Items per second of fn over items, best of `repeats` passes (the machine is shared and noisy)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t)
    return round(len(items) / best, 1)


def _update_loop(encoded: list[bytes]) -> None:
    from datasketch import MinHash

    m = MinHash(num_perm=128)
    for shingle in encoded:
        m.update(shingle)


def bench_signatures(n_docs: int) -> dict:
    """Per-document signature rates on the same unit sequences (tokenizing timed separately).

    Ours: shingle hashing + signature from the units (`tokens()`: a str of characters, a list of morphemes);
    datasketch: given the shingle strings already encoded. Best of 3 passes, so our per-process unit-hash
    cache is warm, as it is after a worker's first documents. `ours_legacy_char_list` feeds the characters
    as a list of one-character strs instead (the dict path morphemes take), to show what the str path buys.
    """
    from datasketch import MinHash

    docs = [d["text"] for d in synthetic_docs(n_docs, seed=1)]
    out: dict = {"docs": n_docs, "mean_chars": round(sum(map(len, docs)) / n_docs)}
    hashers = {scheme: MinHasher(128, 1, scheme) for scheme in ("legacy", "affine64")}
    for unit in ("char", "morph"):
        t0 = time.perf_counter()
        toks = [tokens(shingle_key(t), unit) for t in docs]
        out[f"tokenizing_{unit}_docs_per_s"] = round(n_docs / (time.perf_counter() - t0))
        encoded = [[g.encode("utf-8") for g in ngrams(ts, 5)] for ts in toks]  # datasketch's input: shingle bytes
        rates = {
            "datasketch_default": _rate(lambda e: MinHash(num_perm=128).update_batch(e), encoded),
            "datasketch_update_loop": _rate(_update_loop, encoded),  # the README idiom: update() per shingle
            # the compatibility path: datasketch re-deriving our values one shingle string at a time
            "datasketch_legacy_same_hash": _rate(
                lambda e: MinHash(num_perm=128, hashfunc=shingle_hash, scheme="legacy").update_batch(e), encoded[:20], 1),
        }
        for scheme, hasher in hashers.items():
            rates[f"ours_{scheme}"] = _rate(lambda ts, h=hasher: h.signature(shingle_hashes(ts, 5)), toks)
        if unit == "char":
            lists = [list(ts) for ts in toks]
            rates["ours_legacy_char_list"] = _rate(
                lambda ts, h=hashers["legacy"]: h.signature(shingle_hashes(ts, 5)), lists)
        for key in [k for k in rates if k.startswith("ours_")]:
            rates[f"speedup_{key[5:]}_vs_default"] = round(rates[key] / rates["datasketch_default"], 1)
        for key in ("ours_legacy", "ours_affine64"):
            rates[f"speedup_{key[5:]}_vs_update_loop"] = round(rates[key] / rates["datasketch_update_loop"], 1)
        out[f"signatures_per_s_{unit}5"] = rates
    return out


def run_stage(n_docs: int, workers: int, unit: str, extra: dict | None, shard_mb: int) -> dict:
    """Inside a fresh process: `jcorpus curate` on N synthetic documents in JSONL files (exact + near dedup,
    filters off), timed, with the peak RSS of the runner (this process) and of its largest worker process
    (read from /proc after every stage: see bench/procmem.py for why not from getrusage)."""
    from procmem import after_each_stage, worker_peaks, worker_private

    from pipeline.config import parse_config
    from pipeline.curate import run_curate

    peaks: dict[int, int] = {}
    private: dict[int, int] = {}

    def measure(*_: object) -> None:
        peaks.update(worker_peaks())  # VmHWM only rises: the last reading is the peak
        private.update({pid: max(mb, private.get(pid, 0)) for pid, mb in worker_private().items()})

    after_each_stage(measure)

    docs = synthetic_docs(n_docs)
    near = {"enabled": False} if extra and extra.get("baseline") else {"enabled": True, "unit": unit, **(extra or {})}
    with tempfile.TemporaryDirectory() as tmp:
        sources = []
        for kind in ("academic", "web"):
            mine = [d for d in docs if d["kind"] == kind]
            for part in range(SOURCE_FILES):
                lines = (json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) for d in mine[part::SOURCE_FILES])
                Path(tmp, f"{kind}-{part:02d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            sources.append({"name": kind, "kind": kind, "format": "jsonl", "paths": [f"{tmp}/{kind}-*.jsonl"],
                            "license": "x"})
        cfg = parse_config({"sources": sources, "filters": {"enabled": False}, "dedup": {"near": near},
                            "output": {"shard_bytes": shard_mb << 20}})
        t0 = time.perf_counter()
        stats = run_curate(cfg, f"{tmp}/out", workers=workers)
        wall = time.perf_counter() - t0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dedup = stats.get("dedup", {})
    return {"docs": n_docs, "workers": workers, "unit": unit, "extra": extra or {}, "shard_mb": shard_mb,
            "input_mb": round(sum(len(d["text"].encode()) for d in docs) / 1e6), "wall_s": round(wall, 1),
            "docs_per_s": round(n_docs / wall), "peak_rss_mb_runner": round(rss_self),
            "peak_rss_mb_worker": max(peaks.values()) if workers > 1 else None,
            "private_mb_worker": max(private.values()) if workers > 1 else None,  # largest at a stage's end
            "dup_near": stats["reasons"].get("dup_near", {}).get("docs", 0), "near_clusters": dedup.get("near_clusters"),
            "kept": stats["kept_docs"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("signatures")
    s.add_argument("--docs", type=int, default=300)
    st = sub.add_parser("stage")
    st.add_argument("--docs", type=int, nargs="+", default=[10_000])
    st.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    st.add_argument("--unit", default="morph")
    st.add_argument("--cfg", default="{}", help='extra dedup.near keys as JSON, or {"baseline": true}')
    st.add_argument("--shard-mb", type=int, default=CurateConfig.shard_bytes >> 20,
                    help="output.shard_bytes in MiB (default: the project's): a worker holds one shard")
    one = sub.add_parser("stage-one")  # internal: one measured run in this process
    one.add_argument("docs", type=int)
    one.add_argument("workers", type=int)
    one.add_argument("unit")
    one.add_argument("cfg")
    one.add_argument("shard_mb", type=int)
    args = ap.parse_args()
    if args.cmd == "signatures":
        print(json.dumps(bench_signatures(args.docs), indent=1))
    elif args.cmd == "stage-one":
        print(json.dumps(run_stage(args.docs, args.workers, args.unit, json.loads(args.cfg), args.shard_mb)))
    else:
        for n in args.docs:
            for w in args.workers:
                res = subprocess.run([sys.executable, __file__, "stage-one", str(n), str(w), args.unit, args.cfg,
                                      str(args.shard_mb)],
                                     capture_output=True, text=True)
                print(res.stdout.strip().splitlines()[-1] if res.returncode == 0 else f"failed: {res.stderr[-1500:]}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
