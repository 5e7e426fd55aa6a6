"""Filter-stage benchmark: jcorpus `default` preset vs datatrove's FineWeb-2 Japanese filter chain vs
HojiChar's Japanese chain — same documents, one process each (one core), documents/s, MB/s, per-rule
cost, and accuracy on the dev labels.

    .venv/bin/python bench/filters_bench.py --peer-python /tmp/benchenv/bin/python --target-mb 30

The documents are the developers' shared corpora (bench/labels/dev_config.yaml) prepared exactly as
`curate` prepares them (extraction, normalization, language gate), written to --work (outside the repo:
the pages are copyrighted) and replicated to --target-mb of text. Every system receives the same
language-gated documents; documents the gate rejects count as dropped for every system. The peers run
under --peer-python (a separate venv with `datatrove` and `hojichar`, never the project's).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FW2_STOP_WORDS = ["の", "に", "を", "は", "た", "て", "が", "と", "で", "年", "し", "・", "月", "れ", "さ"]


def prepare(config: str, work: Path, target_mb: float) -> Path:
    """Write the gated documents once, then copies until the text reaches target_mb."""
    sys.path.insert(0, str(ROOT))
    from pipeline.cmd_quality import prepared_documents

    docs, gated = [], []
    for d in prepared_documents(config):
        rec = {"source_id": d["source_id"], "kind": d["kind"], "url": d.get("url"), "text": d["text"],
               "meta": {k: v for k, v in d["meta"].items() if k == "mojibake_folded"}}
        (gated if d.get("reject_reason") else docs).append(rec)
    size = sum(len(d["text"].encode("utf-8")) for d in docs)
    copies = max(1, int(target_mb * 1e6 // max(size, 1)))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for copy in range(copies):
            for d in docs:
                fh.write(json.dumps({**d, "copy": copy}, ensure_ascii=False) + "\n")
    with open(work / "gated.json", "w", encoding="utf-8") as fh:
        json.dump([d["source_id"] for d in gated], fh)
    return path


def _ours(preset: str):
    sys.path.insert(0, str(ROOT))
    from filters.chain import FilterChain

    chain = FilterChain({"preset": preset})

    def run(d, timings):
        result = chain.on_document(d)
        for name, sec in result.timings.items():
            timings[name] += sec
        return result.reject_reason

    return run


def _datatrove():
    from datatrove.data import Document
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.utils.typeshelper import Languages

    ja = Languages.japanese
    chain = [  # huggingface/fineweb-2 configs/jpn_Jpan.yml thresholds, in the FineWeb-2 pipeline order
        GopherRepetitionFilter(dup_line_frac=0.328, dup_para_frac=None, dup_line_char_frac=None,
                               dup_para_char_frac=None, top_n_grams=((2, 0.239), (3, 0.196), (4, 0.172)),
                               dup_n_grams=((5, 0.243), (6, 0.225), (7, 0.207), (8, 0.19), (9, 0.175), (10, 0.159)),
                               language=ja),
        FineWebQualityFilter(line_punct_thr=0.096, new_line_ratio=0.13, char_duplicates_ratio=0.1,
                             short_line_thr=999, language=ja),
        GopherQualityFilter(min_avg_word_length=1, max_avg_word_length=6, max_non_alpha_words_ratio=0.759,
                            stop_words=FW2_STOP_WORDS, min_stop_words=2, language=ja),
    ]

    def run(d, timings):
        doc = Document(text=d["text"], id=d["source_id"])
        for f in chain:
            t = time.perf_counter()
            verdict = f.filter(doc)
            timings[type(f).__name__] += time.perf_counter() - t
            if verdict is not True:
                return verdict[1] if isinstance(verdict, tuple) else type(f).__name__
        return None

    return run


def _hojichar():
    from hojichar import Document
    from hojichar.filters import document_filters as df

    chain = [  # llm-jp corpus v1 order and thresholds, then HojiChar's other Japanese defaults
        df.AcceptJapanese(), df.DiscardAds(), df.DiscardAdultContentJa(), df.DiscardDiscriminationContentJa(),
        df.DiscardViolenceContentJa(), df.DiscardRareKuten(max_average_sentence_length=250),
        df.DiscardBBSComments(), df.CharRepetitionRatioFilter(), df.WordRepetitionRatioFilter(),
        df.DiscardTooManyNouns(), df.DiscardTooManySpecialToken(), df.SingleCharacterRepetitionFilter(),
        df.DiscardTooManyEndingEllipsis(), df.DiscardTooShortLines(), df.MaskPersonalInformation(),
    ]

    def run(d, timings):
        doc = Document(d["text"])
        for f in chain:
            t = time.perf_counter()
            doc = f.apply(doc)
            timings[type(f).__name__] += time.perf_counter() - t
            if doc.is_rejected:
                return type(f).__name__
        return None

    return run


def run_system(system: str, docs_path: Path, preset: str) -> dict:
    """Worker: filter every document in one process; decisions of copy 0 are returned for scoring."""
    with open(docs_path, encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    factory = {"ours": lambda: _ours(preset), "datatrove": _datatrove, "hojichar": _hojichar}[system]
    t = time.perf_counter()
    run = factory()
    setup = time.perf_counter() - t
    warm = run(docs[0], defaultdict(float))  # first-call model/tokenizer loading is setup, not throughput
    del warm
    timings: dict[str, float] = defaultdict(float)
    decisions, reasons = {}, Counter()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for d in docs:
        reason = run(d, timings)
        reasons[reason or "kept"] += 1
        if d["copy"] == 0:
            decisions[d["source_id"]] = reason
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    nbytes = sum(len(d["text"].encode("utf-8")) for d in docs)
    return {"system": system, "docs": len(docs), "bytes": nbytes, "wall_s": wall, "cpu_s": cpu,
            "setup_s": setup, "docs_per_s": len(docs) / cpu, "mb_per_s": nbytes / 1e6 / cpu,
            # per-rule timers are wall clock; scaled by CPU/wall so they add up to the CPU time per document
            "per_rule_ms_per_doc": {k: 1000 * v * (cpu / wall) / len(docs)
                                    for k, v in sorted(timings.items(), key=lambda kv: -kv[1])},
            "reasons": dict(reasons.most_common()), "decisions": decisions}


def accuracy(decisions: dict, gated: list[str], labels_path: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from filters.evaluate import load_labels, score

    labels = load_labels(labels_path)
    rows = []
    for sid, lab in labels.items():
        if sid in gated:
            reason = "lang_not_ja"
        elif sid in decisions:
            reason = decisions[sid]
        else:
            continue
        rows.append({"label": lab["label"], "reject_reason": reason, "ref": lab.get("ref"), "reason": lab.get("reason")})
    r = score(rows)
    return {k: r[k] for k in ("documents", "accuracy", "keep_precision", "keep_recall", "drop_recall")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "bench/labels/dev_config.yaml"))
    ap.add_argument("--labels", default=str(ROOT / "bench/labels/dev_labels.jsonl"))
    ap.add_argument("--work", default="/tmp/jcorpus_filters_bench")
    ap.add_argument("--target-mb", type=float, default=30.0)
    ap.add_argument("--peer-python", default="/tmp/benchenv/bin/python")
    ap.add_argument("--systems", default="ours,datatrove,hojichar")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--out", help="write the full results as JSON here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args.worker:
        print(json.dumps(run_system(args.worker, work / "docs.jsonl", args.preset), ensure_ascii=False))
        return 0
    prepare(args.config, work, args.target_mb)
    gated = json.loads((work / "gated.json").read_text(encoding="utf-8"))
    results = []
    for system in args.systems.split(","):
        python = sys.executable if system == "ours" else args.peer_python
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        out = subprocess.run([python, __file__, "--worker", system, "--work", str(work), "--preset", args.preset],
                             check=True, capture_output=True, text=True, env=env)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["labels"] = accuracy(res["decisions"], gated, Path(args.labels))
        results.append(res)
    print(f"{results[0]['docs']} documents, {results[0]['bytes'] / 1e6:.1f} MB of text, one process each (CPU time)")
    print("| system | docs/s | MB/s | accuracy | keep precision | keep recall | drop recall |")
    print("|---|---|---|---|---|---|---|")
    from filters.evaluate import format_metric  # importable once accuracy() has put ROOT on sys.path

    for r in results:
        lab = r["labels"]
        metrics = " | ".join(format_metric(lab[k]) for k in ("accuracy", "keep_precision", "keep_recall", "drop_recall"))
        print(f"| {r['system']} | {r['docs_per_s']:.0f} | {r['mb_per_s']:.2f} | {metrics} |")
    for r in results:
        costs = ", ".join(f"{k} {v:.3f}" for k, v in list(r["per_rule_ms_per_doc"].items())[:8])
        print(f"{r['system']} CPU ms/doc by rule: {costs}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
