"""Tokenizer benchmarks: `jcorpus tokenizer train` time / peak RSS versus input size, and encode throughput.

    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --sizes-mb 10,50,100 --threads 2  # issue 5
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --grid none,morph,phrase,chunk:8000,12000,16000
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --grid phrase@jinmeiyo,phrase@full:16000
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --variants bunsetsu,chunk+case:8000,16000
    .venv/bin/python bench/tokenizer_bench.py --input /work/shared/corpora --variants aligned,phrase+aligned:8000,16000
    .venv/bin/python bench/debian_ja_docs.py /tmp/debian-ja && .venv/bin/python bench/tokenizer_bench.py \
        --input /work/shared/corpora --extra-train /tmp/debian-ja/docs.jsonl --grid phrase,none,morph,chunk:16000,32000

Input of a given size is made of perturbed copies of the input documents (`perturbed_documents`): copy 0
is the documents as they are; every further copy replaces a random quarter of the kanji (a fresh choice
per copy) by other kanji of the corpus. Kana, particles, punctuation and document structure stay, while
kanji compounds become new strings, so the number of distinct phrase segments keeps growing with the
size as in real text (dev corpora: 42k distinct segments in 1M characters; 100 MB of copies: 497k, in
line with the dev corpus' own growth rate, ~ size^0.65). Plain repetition (or pairs of dev sentences, as
an earlier version of this bench did) keeps ~34k distinct segments at any size, which makes
SentencePiece's EM look far cheaper than it is. Each size is written as JSONL and trained by the real
CLI in a fresh subprocess; peak RSS is the sum over the process tree (incl. the MeCab workers), sampled
every 0.2 s. Encode speed is single-threaded (per core): SentencePiece alone (what packing pays) and
MeCab phrase pre-segmentation (what training pays per MB, before `--threads` workers).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def perturbed_documents(records: list[tuple[str, str]], target_bytes: int, seed: int = 0,
                        fraction: float = 0.25) -> Iterator[tuple[str, str]]:
    """(kind, text) documents totalling at least `target_bytes` of UTF-8: copies of `records`, each copy
    after the first with a fresh random `fraction` of the kanji types mapped to other kanji."""
    kanji = sorted({c for _, text in records for c in text if "\u4e00" <= c <= "\u9fff"})
    if not kanji or not any(text for _, text in records):
        raise ValueError("perturbed_documents needs Japanese documents with kanji")
    size, copy = 0, 0
    while True:
        rng = random.Random(f"{seed}:{copy}")
        table = str.maketrans({k: rng.choice(kanji) for k in kanji if copy and rng.random() < fraction})
        for kind, text in records:
            if size >= target_bytes:
                return
            text = text.translate(table)
            size += len(text.encode("utf-8"))
            yield kind, text
        copy += 1


def write_jsonl(docs: Iterator[tuple[str, str]], folder: Path) -> None:
    """One `KIND/docs.jsonl` per kind, the layout `jcorpus tokenizer train --input` reads."""
    handles = {}
    try:
        for kind, text in docs:
            if kind not in handles:
                (folder / kind).mkdir(parents=True, exist_ok=True)
                handles[kind] = open(folder / kind / "docs.jsonl", "w", encoding="utf-8")
            handles[kind].write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    finally:
        for handle in handles.values():
            handle.close()


def run_measured(cmd: list[str]) -> tuple[int, float, float, str]:
    """Run `cmd`; (exit code, wall seconds, peak RSS in MB summed over its process tree, stderr)."""
    import psutil

    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        root, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
            except psutil.Error:
                pass  # a worker exited between listing and reading
            time.sleep(0.2)
        err.seek(0)
        return proc.returncode, time.perf_counter() - start, peak / 2**20, err.read().decode(errors="replace")


def bench_training(records: list[tuple[str, str]], sizes_mb: list[float], vocab: int, policy: str,
                   threads: int) -> list[dict]:
    rows = []
    for mb in sizes_mb:
        with tempfile.TemporaryDirectory() as tmp:
            write_jsonl(perturbed_documents(records, int(mb * 1e6)), Path(tmp) / "in")
            cmd = [sys.executable, "-m", "pipeline.cli", "tokenizer", "train", "--input", f"{tmp}/in",
                   "--vocab-size", str(vocab), "--policy", policy, "--threads", str(threads), "--out", f"{tmp}/out"]
            code, wall, peak_mb, err = run_measured(cmd)
            if code != 0:
                rows.append({"mb": mb, "error": err.strip().splitlines()[-1]})
            else:
                training = json.loads((Path(tmp) / "out" / "training.json").read_text())
                rows.append({"mb": mb, "vocab_size": vocab, "policy": policy, "threads": threads,
                             "wall_seconds": round(wall, 1), "peak_rss_mb": round(peak_mb),
                             "sampled_chars": training["data"]["sampled_chars"], "seconds": training["seconds"],
                             "sha256": training["sha256"]["tokenizer.model"]})
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
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


def policy_grid(records: list[tuple[str, str]], policies: list[str], vocab_sizes: list[int],
                extra: list[tuple[str, str]] = ()) -> list[str]:
    """Markdown rows: each policy (and both baselines) at each vocabulary size, on the same held-out
    15% that `jcorpus tokenizer train` uses (same sampler, seed 0). A policy may name its inventory
    (`phrase@jis0208`); otherwise `auto` (the level is shown in the model column). `extra` documents
    are sampled whole into the training text of every model and never held out, so the held-out set
    stays that of `records`."""
    from tokenizer.evaluate import evaluate_models
    from tokenizer.sample import sample_corpus
    from tokenizer.train import TokenizerError, TrainConfig, load, train_all

    sample = sample_corpus(records, 50_000_000, 0, None, 0.15)
    sentences = [s for _, s in sample.sentences]
    sentences += [s for _, s in sample_corpus(extra, 50_000_000, 0, None, 0.0).sentences] if extra else []
    print(f"training sample: {len(sentences):,} sentences, {sum(map(len, sentences)):,} chars; "
          f"held out: {len(sample.heldout)} documents", flush=True)
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


ALIGNED = {"aligned": "none", "phrase+aligned": "phrase"}  # variant -> where pieces may not cross


def aligned_seed_file(sentences: list[str], policy: str, folder: Path, max_chars: int = 8) -> Path:
    """SentencePiece seed pieces (`seed_sentencepieces_file`) that are unions of whole MeCab morphemes
    inside the policy's segments, 2..max_chars long, seen at least twice; scored by frequency x length as
    SentencePiece scores its own suffix-array seeds. Tests the idea that pieces built only from whole
    morphemes keep boundary precision near 1 while growing longer."""
    from collections import Counter

    from tokenizer.morph import morpheme_spans
    from tokenizer.policy import cut_points

    counts: Counter[str] = Counter()
    for text in sentences:
        bounds = sorted({0, len(text), *(e for span in morpheme_spans(text) for e in span[:2])})
        cuts = set(cut_points(text, policy))
        for i, a in enumerate(bounds):
            for b in bounds[i + 1:]:
                if b - a > max_chars or any(c in cuts for c in range(a + 1, b)):
                    break
                if b - a >= 2:
                    counts[text[a:b]] += 1
    seeds = sorted(((p, f) for p, f in counts.items() if f >= 2 and p.strip() == p and "\t" not in p),
                   key=lambda pf: (-pf[1] * len(pf[0]), pf[0]))
    path = folder / "seeds.tsv"
    path.write_text("".join(f"{p}\t{f * len(p)}\n" for p, f in seeds), encoding="utf-8")
    return path


def variant_rows(records: list[tuple[str, str]], variants: list[str], vocab_sizes: list[int]) -> None:
    """chars/token and boundary F1 of the experimental policies (same sample and held-out set as the grid)."""
    from tokenizer.evaluate import evaluate_models
    from tokenizer.policy import cut_points
    from tokenizer.sample import sample_corpus
    from tokenizer.train import TrainConfig, load, train_model, trainer_options

    sample = sample_corpus(records, 50_000_000, 0, None, 0.15)
    sentences = [s for _, s in sample.sentences]
    for variant in variants:
        extra, segs = {}, []
        with tempfile.TemporaryDirectory() as tmp:
            if variant in ALIGNED:
                extra["seed_sentencepieces_file"] = str(aligned_seed_file(sentences, ALIGNED[variant], Path(tmp)))
            for sentence in sentences:
                cuts = cut_points(sentence, ALIGNED[variant]) if variant in ALIGNED else variant_cuts(sentence, variant)
                bounds = [0, *cuts, len(sentence)]
                segs += [sentence[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
            for vocab in vocab_sizes:
                cfg = TrainConfig(vocab_size=vocab, policy="chunk")
                model = train_model(segs, trainer_options("main", cfg) | extra)
                r = evaluate_models({"m": load(model)}, sample.heldout)["m"]
                print(f"| {vocab} | {variant} ({cfg.inventory_level}) | {r['chars_per_token']:.3f} | "
                      f"{r['morph_boundary_f1']:.3f} ({r['morph_boundary_precision']:.3f}/"
                      f"{r['morph_boundary_recall']:.3f}) | {r['byte_fallback_rate']:.3%} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, help="curated Parquet or JSONL (as for jcorpus tokenizer)")
    parser.add_argument("--sizes-mb", default="10,50,100", help="input sizes to train on ('' = encode only)")
    parser.add_argument("--vocab-size", type=int, default=16000)
    parser.add_argument("--policy", default="phrase")
    parser.add_argument("--threads", type=int, default=2, help="jcorpus tokenizer train --threads")
    parser.add_argument("--model", help="a tokenizer.model for the encode benchmark (default: train one)")
    parser.add_argument("--grid", help="instead: policy x vocabulary table, e.g. none,morph,phrase,chunk:8000,16000")
    parser.add_argument("--variants", help="instead: experimental policies, e.g. bunsetsu,chunk+case:8000,16000")
    parser.add_argument("--extra-train", nargs="+", default=[],
                        help="with --grid: more documents (Parquet or JSONL) for every model's training text, "
                             "never held out (e.g. the output of bench/debian_ja_docs.py)")
    args = parser.parse_args()

    from pipeline.cmd_tokenizer import read_records
    from tokenizer.sample import split_sentences
    from tokenizer.train import TrainConfig, train_all

    records = list(read_records(args.input))
    if args.grid:
        policies, _, sizes = args.grid.partition(":")
        extra = list(read_records(args.extra_train)) if args.extra_train else []
        policy_grid(records, policies.split(","), [int(v) for v in sizes.split(",")], extra)
        return 0
    if args.variants:
        variants, _, sizes = args.variants.partition(":")
        variant_rows(records, variants.split(","), [int(v) for v in sizes.split(",")])
        return 0
    if args.sizes_mb:
        bench_training(records, [float(x) for x in args.sizes_mb.split(",")], args.vocab_size, args.policy,
                       args.threads)
    model = Path(args.model) if args.model else None
    if model is None:
        model = Path(tempfile.mkdtemp()) / "bench.model"
        sentences = [s for _, text in records for s in split_sentences(text)]
        model.write_bytes(train_all(sentences, TrainConfig(vocab_size=8000, policy=args.policy), baselines=())["main"])
    print(json.dumps(bench_encode(model, [text for _, text in records])), flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
