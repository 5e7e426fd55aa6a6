"""Packing and streaming figures: pack MB/s per core (tokenization included), padding and split-document rates of
bestfit vs concat at seq_len 512/2048/8192, and ShardStream read rate in tokens/s from the page cache.

    .venv/bin/python bench/pack_bench.py [--tokenizer TOKDIR/tokenizer.model] [--replicate 4] [--beam]
        [--workers 1,2] [--json OUT.json]

Text comes from ../shared/corpora (academic, government, reference JSONL and the FineWeb-2 excerpt) when present,
else from data/samples. Without --tokenizer a SentencePiece model (vocab 8000, byte fallback) is trained first.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer_bridge.manifest import PackSettings, write_local  # noqa: E402
from trainer_bridge.packing import plan_bestfit, plan_concat, split_documents  # noqa: E402
from trainer_bridge.stream import ShardStream  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpora"


def load_documents() -> list[dict]:
    files = [p for p in sorted(SHARED.glob("*/*.jsonl")) if "manifest" not in p.name] if SHARED.is_dir() else []
    files = files or sorted((ROOT / "data" / "samples").glob("*/*.jsonl"))
    docs = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("text"):
                key = hashlib.sha256(f"{path.stem}\0{record.get('id')}".encode()).hexdigest()[:32]
                docs.append({"id": key, "source": path.stem, "kind": path.parent.name, "text": record["text"],
                             "license": str(record.get("license", "unknown"))})
    return docs


def train_tokenizer(docs: list[dict], out: Path) -> str:
    import sentencepiece as spm

    (out / "train.txt").write_text("\n".join(d["text"] for d in docs), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(out / "train.txt"), model_prefix=str(out / "tok"), vocab_size=8000,
                                   byte_fallback=True, character_coverage=0.9995, pad_id=3, num_threads=2,
                                   input_sentence_size=200000, shuffle_input_sentence=True, minloglevel=2)
    return str(out / "tok.model")


def replicate(docs: list[dict], times: int) -> list[dict]:
    return [dict(d, id=f"{d['id']}-{k}") for k in range(times) for d in docs]


def bench_core(docs: list[dict], model: str, out: Path) -> dict:
    """One process: tokenize + EOS, mixture, bestfit packing, Arrow encode and write (what one Beam worker does)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    megabytes = sum(len(d["text"].encode()) for d in docs) / 1e6
    start = time.process_time()
    tokenized = [(d["id"], d["source"], d["kind"], d["license"],
                  np.asarray(sp.encode(d["text"]) + [sp.eos_id()], dtype=np.uint32)) for d in docs]
    tok_cpu = time.process_time() - start
    settings = PackSettings(seq_len=2048, vocab_size=sp.get_piece_size(), eos_id=sp.eos_id(), pad_id=sp.pad_id())
    write_local(str(out), tokenized, settings, {"vocab_size": sp.get_piece_size(), "sha256": "", "eos_id": 2,
                                                "pad_id": 3})
    cpu = time.process_time() - start
    tokens = sum(len(t[4]) for t in tokenized)
    return {"text_mb": round(megabytes, 2), "tokens": tokens, "cpu_s": round(cpu, 2),
            "tokenize_cpu_s": round(tok_cpu, 2), "mb_per_s_per_core": round(megabytes / cpu, 2),
            "bytes_per_token": round(megabytes * 1e6 / tokens, 2), "vocab_size": sp.get_piece_size(),
            "tokenized": tokenized}


def bench_beam(docs: list[dict], model: str, out: Path, workers: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.pack import PackOptions, run_pack

    curated = out / "curated"
    if not curated.exists():
        curated.mkdir(parents=True)
        table = pa.Table.from_pylist(docs)
        step = max(1, len(docs) // 8)
        for i, lo in enumerate(range(0, len(docs), step)):
            pq.write_table(table.slice(lo, step), curated / f"part-{i:05d}.parquet")
    megabytes = sum(len(d["text"].encode()) for d in docs) / 1e6
    opts = PackOptions(input=str(curated), tokenizer=model, seq_len=2048, out=str(out / f"shards-w{workers}"),
                       shard_bytes=8 << 20)
    start, cpu = time.perf_counter(), _cpu_with_children()
    run_pack(opts, workers=workers)
    wall, cpu = time.perf_counter() - start, _cpu_with_children() - cpu
    return {"workers": workers, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "mb_per_s": round(megabytes / wall, 2),
            "mb_per_s_per_core_wall": round(megabytes / wall / workers, 2),
            "mb_per_cpu_s": round(megabytes / cpu, 2)}


def _cpu_with_children() -> float:
    """CPU seconds of this process plus its finished children (Beam's worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def packing_rates(lengths: list[int], seq_len: int) -> dict:
    row = seq_len + 1
    out = {"docs": len(lengths), "docs_longer_than_row": sum(n > row for n in lengths)}
    for name, planner in (("bestfit", plan_bestfit), ("concat", plan_concat)):
        start = time.perf_counter()
        plan = planner(lengths, row)
        seconds = time.perf_counter() - start
        padding = len(plan) * row - sum(lengths)
        out[name] = {"rows": len(plan), "padding_rate": padding / (len(plan) * row),
                     "split_doc_rate": len(split_documents(plan)) / len(lengths), "plan_s": round(seconds, 3)}
    return out


def bench_stream(tokenized: list, out: Path, vocab: int, batches: int) -> dict:
    settings = PackSettings(seq_len=2048, vocab_size=vocab, eos_id=2, pad_id=3)
    write_local(str(out), tokenized, settings, {"vocab_size": vocab, "sha256": "", "eos_id": 2, "pad_id": 3})
    result = {}
    for prefetch in (0, 2):
        stream = ShardStream(str(out / "manifest.json"), global_batch_size=32, prefetch=prefetch)
        stream.next()  # opens and verifies the shards: not part of the steady state
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            stream.next_batch_with_offsets()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        tokens = batches * 32 * 2049
        result[f"prefetch{prefetch}"] = {"tokens_per_s_wall": round(tokens / seconds),
                                         "tokens_per_cpu_s": round(tokens / cpu)}
        stream.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--replicate", type=int, default=2, help="corpus copies for the throughput runs")
    parser.add_argument("--beam", action="store_true", help="also time the Beam pipeline (`jcorpus pack`)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--stream-batches", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    docs = load_documents()
    results: dict = {"corpus_docs": len(docs), "corpus_mb": round(sum(len(d["text"].encode()) for d in docs) / 1e6, 2)}
    with tempfile.TemporaryDirectory(prefix="pack-bench-") as tmp:
        tmp_path = Path(tmp)
        model = args.tokenizer or train_tokenizer(docs, tmp_path)
        core = bench_core(replicate(docs, args.replicate), model, tmp_path / "core")
        tokenized = core.pop("tokenized")
        results["core"] = core
        lengths = [len(t[4]) for t in sorted(tokenized[: len(docs)], key=lambda t: t[0])]
        results["packing_corpus"] = {str(t): packing_rates(lengths, t) for t in (512, 2048, 8192)}
        rng = np.random.default_rng(0)  # the research note's synthetic mix: lognormal, median 400 tokens
        synthetic = [int(n) + 1 for n in np.clip(rng.lognormal(np.log(400), 1.2, 200_000), 1, 200_000)]
        results["packing_synthetic_200k"] = {str(t): packing_rates(synthetic, t) for t in (512, 2048, 8192)}
        results["stream"] = bench_stream(tokenized, tmp_path / "stream", core["vocab_size"], args.stream_batches)
        if args.beam:
            os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
            results["beam"] = [bench_beam(replicate(docs, args.replicate), model, tmp_path, int(w))
                               for w in args.workers.split(",")]
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
