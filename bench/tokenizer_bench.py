"""Tokenizer benchmarks: training time / peak RSS versus sample size, and encode throughput.

    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --sizes-mb 1,3 --vocab-size 16000
    .venv/bin/python bench/tokenizer_bench.py --input data/samples --sizes-mb 10,50,100 --threads 2  # the issue's grid
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --grid none,morph,phrase,chunk:8000,12000,16000
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --grid phrase@jinmeiyo,phrase@full:16000
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --variants bunsetsu,chunk+case:8000,16000

Text of a given size is made from the input's sentences: each line joins two randomly drawn sentences
(seeded), so lines stay distinct and SentencePiece cannot collapse repeats — a stand-in for a larger
corpus with the same vocabulary statistics. Each training run is a fresh subprocess, so its peak RSS is
its own. Encode speed is single-threaded: SentencePiece alone (what packing pays) and MeCab phrase
pre-segmentation (what training pays).
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

_CHILD = """
import sys, json, time
sys.path.insert(0, {root!r})
from tokenizer.train import TrainConfig, train_all
sentences = open({path!r}, encoding="utf-8").read().split("\\n")
cfg = TrainConfig(vocab_size={vocab}, policy={policy!r}, threads={threads})
t = time.perf_counter()
train_all(sentences, cfg, baselines=())
print(json.dumps({{"train_seconds": time.perf_counter() - t}}))
"""


def synthetic_lines(sentences: list[str], target_bytes: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines, size = [], 0
    while size < target_bytes:
        line = rng.choice(sentences) + rng.choice(sentences)
        lines.append(line)
        size += len(line.encode("utf-8")) + 1
    return lines


def bench_training(sentences: list[str], sizes_mb: list[float], vocab: int, policy: str, threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes_mb:
            path = Path(tmp) / f"{mb}.txt"
            path.write_text("\n".join(synthetic_lines(sentences, int(mb * 1e6), 0)), encoding="utf-8")
            code = _CHILD.format(root=str(ROOT), path=str(path), vocab=vocab, policy=policy, threads=threads)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                rows.append({"mb": mb, "error": out.stderr.strip().splitlines()[-1]})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
                continue
            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            rows.append({"mb": mb, "vocab_size": vocab, "policy": policy, "threads": threads,
                         **json.loads(out.stdout.strip().splitlines()[-1]),
                         "peak_rss_mb": round(peak_kb / 1024, 1) if peak_kb > before else f"<= {before / 1024:.0f}"})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_encode(model: Path, texts: list[str]) -> dict:
    from tokenizer.policy import presegment
    from tokenizer.train import load

    sp = load(model)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    t = time.perf_counter()
    sp.encode(texts, num_threads=1)
    sp_seconds = time.perf_counter() - t
    t = time.perf_counter()
    for text in texts:
        presegment(text, "phrase")
    mecab_seconds = time.perf_counter() - t
    return {"text_mb": round(mb, 2), "sentencepiece_mb_per_s": round(mb / sp_seconds, 2),
            "mecab_phrase_presegment_mb_per_s": round(mb / mecab_seconds, 2)}


def policy_grid(records: list[tuple[str, str]], policies: list[str], vocab_sizes: list[int]) -> list[str]:
    """Markdown rows: each policy (and both baselines) at each vocabulary size, on the same held-out
    15% that `jcorpus tokenizer train` uses (same sampler, seed 0). A policy may name its inventory
    (`phrase@jis0208`); otherwise `auto` (the level is shown in the model column)."""
    from tokenizer.evaluate import evaluate_models
    from tokenizer.sample import sample_corpus
    from tokenizer.train import TokenizerError, TrainConfig, load, train_all

    sample = sample_corpus(records, 50_000_000, 0, None, 0.15)
    sentences = [s for _, s in sample.sentences]
    rows = ["| V | model | chars/token | ×lossless | morph F1 (P/R) | byte fallback | Rényi 2.5 | 常用 | round trip |",
            "|---|---|---|---|---|---|---|---|---|"]
    for vocab in vocab_sizes:
        models: dict[str, bytes] = {}
        for i, spec in enumerate(policies):
            policy, _, inventory = spec.partition("@")
            cfg = TrainConfig(vocab_size=vocab, policy=policy, inventory=inventory or "auto")
            name = f"{policy} ({cfg.inventory_level})"
            try:
                trained = train_all(sentences, cfg, baselines=("default", "lossless") if i == 0 else ())
            except TokenizerError as exc:
                rows.append(f"| {vocab} | {name} | {exc} | | | | | | |")
                print(rows[-1], flush=True)
                continue
            models.update({name if k == "main" else k: v for k, v in trained.items()})
        if not models:
            continue
        results = evaluate_models({k: load(v) for k, v in models.items()}, sample.heldout)
        ref = results.get("lossless", {}).get("chars_per_token")
        for name, r in results.items():
            rel = f"{r['chars_per_token'] / ref:.2f}" if ref else "-"
            rows.append(f"| {vocab} | {name} | {r['chars_per_token']:.3f} | {rel} | {r['morph_boundary_f1']:.3f} "
                        f"({r['morph_boundary_precision']:.3f}/{r['morph_boundary_recall']:.3f}) | "
                        f"{r['byte_fallback_rate']:.3%} | {r['renyi_efficiency']:.3f} | "
                        f"{r['joyo_kanji_coverage']:.0%} | {r['roundtrip_exact']:.0%} |")
            print(rows[-1], flush=True)
    return rows


CASE_PARTICLES = frozenset("のにをはがでとも")


def variant_cuts(text: str, variant: str) -> list[int]:
    """Experimental policies measured against target 2 (not shipped: both lose F1 faster than they gain
    compression). `bunsetsu`: chunk, plus every particle/auxiliary chain joins the word before it;
    `chunk+case`: chunk, plus a noun keeps one following frequent case particle (の に を は が で と も)
    when no other function word follows."""
    from tokenizer.morph import morpheme_spans
    from tokenizer.policy import _FUNCTION, _NOUNISH, _SYMBOL, cut_points

    cuts = set(cut_points(text, "chunk"))
    spans = morpheme_spans(text)
    for (_, prev_end, prev_pos), (start, end, pos), (_, _, next_pos) in zip(
            spans, spans[1:], [*spans[2:], (0, 0, "")], strict=False):
        if prev_end != start or pos not in _FUNCTION or prev_pos in _SYMBOL:
            continue
        if variant == "bunsetsu" or (prev_pos in _NOUNISH and text[start:end] in CASE_PARTICLES
                                     and next_pos not in _FUNCTION):
            cuts.discard(prev_end)
    return sorted(cuts)


def variant_rows(records: list[tuple[str, str]], variants: list[str], vocab_sizes: list[int]) -> None:
    """chars/token and boundary F1 of the experimental policies (same sample and held-out set as the grid)."""
    from tokenizer.evaluate import evaluate_models
    from tokenizer.sample import sample_corpus
    from tokenizer.train import TrainConfig, load, train_model, trainer_options

    sample = sample_corpus(records, 50_000_000, 0, None, 0.15)
    for variant in variants:
        segs = []
        for sentence in (s for _, s in sample.sentences):
            bounds = [0, *variant_cuts(sentence, variant), len(sentence)]
            segs += [sentence[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        for vocab in vocab_sizes:
            cfg = TrainConfig(vocab_size=vocab, policy="chunk")
            r = evaluate_models({"m": load(train_model(segs, trainer_options("main", cfg)))}, sample.heldout)["m"]
            print(f"| {vocab} | {variant} ({cfg.inventory_level}) | {r['chars_per_token']:.3f} | "
                  f"{r['morph_boundary_f1']:.3f} ({r['morph_boundary_precision']:.3f}/"
                  f"{r['morph_boundary_recall']:.3f}) | {r['byte_fallback_rate']:.3%} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, help="curated Parquet or JSONL (as for jcorpus tokenizer)")
    parser.add_argument("--sizes-mb", default="1,3")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--policy", default="phrase")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", help="a tokenizer.model for the encode benchmark (default: train one)")
    parser.add_argument("--grid", help="instead: policy x vocabulary table, e.g. none,morph,phrase,chunk:8000,16000")
    parser.add_argument("--variants", help="instead: experimental policies, e.g. bunsetsu,chunk+case:8000,16000")
    args = parser.parse_args()

    from pipeline.cmd_tokenizer import read_records
    from tokenizer.sample import split_sentences
    from tokenizer.train import TrainConfig, train_all

    if args.grid:
        policies, _, sizes = args.grid.partition(":")
        policy_grid(list(read_records(args.input)), policies.split(","), [int(v) for v in sizes.split(",")])
        return 0
    if args.variants:
        variants, _, sizes = args.variants.partition(":")
        variant_rows(list(read_records(args.input)), variants.split(","), [int(v) for v in sizes.split(",")])
        return 0
    texts = [text for _, text in read_records(args.input)]
    sentences = [s for text in texts for s in split_sentences(text)]
    results = {"training": bench_training(sentences, [float(x) for x in args.sizes_mb.split(",")],
                                          args.vocab_size, args.policy, args.threads)}
    model = Path(args.model) if args.model else None
    if model is None:
        tmp = Path(tempfile.mkdtemp())
        model = tmp / "bench.model"
        cfg = TrainConfig(vocab_size=8000, policy=args.policy)
        model.write_bytes(train_all(sentences, cfg, baselines=())["main"])
    results["encode"] = bench_encode(model, texts)
    print(json.dumps(results["encode"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
