"""Planted near-duplicate benchmark: precision/recall of near-dup methods against measured Jaccard.

Distinct base documents (academic, government, reference; web FineWeb-2 texts as extra singletons) each get a
"web" copy with 2-10 % random character edits (substitute/insert/delete), added or removed boilerplate lines,
、。<->，． swaps and ASCII/katakana width changes. Each pair's Jaccard is measured on morpheme and character
5-gram sets of the dedup key. Methods, all on the same documents in one run:
  morph5  NearDedup(unit=morph, n=5)   char5  NearDedup(unit=char, n=5)   (Beam, FnApiRunner, 1 worker)
  datatrove  datatrove's MinHash (Japanese word tokenizer, 5-grams, its default 14x8), run from a separate
             virtualenv given by --datatrove-python (skipped when absent).
Reported: recall by Jaccard bin, recall at J >= 0.8, pairwise precision, false merges (base documents
merged with another base document) and how often the non-web original is the kept copy.

  .venv/bin/python bench/dedup_planted.py --corpora ../shared/corpora --datatrove-python /tmp/dtenv/bin/python
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipeline.dedup_near import NearDedup  # noqa: E402
from tokenizer.shingles import jaccard, shingle_set  # noqa: E402

PRIORITY = ["government", "academic", "reference", "web"]
BOILERPLATE = ["この記事をシェアする", "トップページへ戻る | サイトマップ | お問い合わせ", "Copyright (C) 2024 Example Inc. All rights reserved.",
               "関連記事はこちら", "広告", "ページの先頭へ"]
HALF_KANA = {unicodedata.normalize("NFKC", chr(c)): chr(c) for c in range(0xFF66, 0xFF9E)}
BASE_FILES = [("academic/anlp2025_abstracts.jsonl", "academic", 260), ("government/egov_laws_2013.jsonl", "government", 49),
              ("reference/jawiki_jsquad_paragraphs.jsonl", "reference", 400)]
MAX_CHARS = 4000


def load_bases(corpora: Path) -> list[dict]:
    bases = []
    for rel, kind, limit in BASE_FILES:
        for i, line in enumerate((corpora / rel).read_text(encoding="utf-8").splitlines()[:limit]):
            text = json.loads(line)["text"].strip()[:MAX_CHARS]
            if len(text) >= 100:
                bases.append({"id": f"{kind[:3]}{i:04d}", "kind": kind, "text": text})
    for i, line in enumerate((corpora / "web/fineweb2_ja_text.jsonl").read_text(encoding="utf-8").splitlines()):
        bases.append({"id": f"fw{i:04d}", "kind": "web", "text": json.loads(line)["text"].strip()[:MAX_CHARS], "single": True})
    return bases


def perturb(text: str, rng: random.Random, edits: tuple[float, float]) -> tuple[str, str]:
    """A near copy and a short description of what was done."""
    rate = rng.uniform(*edits)
    chars, pool = list(text), sorted(set(text))  # sorted: set order varies with PYTHONHASHSEED
    for _ in range(int(len(chars) * rate)):
        pos, op = rng.randrange(len(chars)), rng.random()
        if op < 0.5:
            chars[pos] = rng.choice(pool)
        elif op < 0.75:
            chars.insert(pos, rng.choice(pool))
        elif len(chars) > 1:
            del chars[pos]
    out, done = "".join(chars), [f"edit={rate:.3f}"]
    lines = out.split("\n")
    if len(lines) > 3 and rng.random() < 0.3:
        del lines[rng.randrange(len(lines))]
        done.append("line-")
    if rng.random() < 0.5:
        lines = [rng.choice(BOILERPLATE)] + lines + [rng.choice(BOILERPLATE)]
        done.append("boiler+")
    out = "\n".join(lines)
    if rng.random() < 0.5:
        out = out.translate(str.maketrans("、。，．", "，．、。"))
        done.append("punct")
    if rng.random() < 0.5:
        out = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else HALF_KANA.get(c, c) for c in out)
        done.append("width")
    return out, " ".join(done)


def make_docs(bases: list[dict], seed: int, edits: tuple[float, float]) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    docs, pairs = [], []
    for b in bases:
        docs.append({"id": b["id"], "kind": b["kind"], "text": b["text"], "group": b["id"]})
        if b.get("single"):
            continue
        text, how = perturb(b["text"], rng, edits)
        docs.append({"id": "web-" + b["id"], "kind": "web", "text": text, "group": b["id"]})
        ja, jc = (jaccard(shingle_set(b["text"], u, 5), shingle_set(text, u, 5)) for u in ("morph", "char"))
        pairs.append({"orig": b["id"], "copy": "web-" + b["id"], "j_morph": ja, "j_char": jc, "how": how})
    return docs, pairs


def run_near(docs: list[dict], unit: str, threshold: float, tmp: Path) -> tuple[dict[str, str | None], float]:
    full = [{"source_id": d["id"], "source": "bench", "url": None, "license": "x", "meta": {}, "quality": None,
             "dup_cluster": None, "reject_reason": None, "error": None, **{k: d[k] for k in ("id", "kind", "text")}}
            for d in docs]
    out = tmp / f"near-{unit}-{threshold}"
    t0 = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(["--direct_num_workers=1"])) as p:
        decisions, _ = p | beam.Create(full) | NearDedup({"unit": unit, "threshold": threshold}, PRIORITY)
        _ = decisions | beam.Map(lambda kv: json.dumps([kv[0], kv[1][1]])) | beam.io.WriteToText(str(out))
    rows = [json.loads(line) for f in tmp.glob(f"near-{unit}-{threshold}*") for line in f.read_text().splitlines()]
    return {d["id"]: None for d in docs} | dict(rows), time.perf_counter() - t0  # no decision: no cluster


DATATROVE_SCRIPT = r'''
import json, sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.typeshelper import Languages
work = sys.argv[1]
cfg = MinhashConfig(hash_config=HashConfig(precision=64), n_grams=5)
read = lambda: JsonlReader(work + "/in", text_key="text", id_key="id")
LocalPipelineExecutor([read(), MinhashDedupSignature(output_folder=work + "/sig", config=cfg, language=Languages.japanese)],
                      tasks=1, logging_dir=work + "/log1").run()
LocalPipelineExecutor([MinhashDedupBuckets(input_folder=work + "/sig", output_folder=work + "/buckets", config=cfg)],
                      tasks=cfg.num_buckets, logging_dir=work + "/log2").run()
LocalPipelineExecutor([MinhashDedupCluster(input_folder=work + "/buckets", output_folder=work + "/ids", config=cfg,
                                           save_cluster_id=True)], tasks=1, logging_dir=work + "/log3").run()
LocalPipelineExecutor([read(), MinhashDedupFilter(input_folder=work + "/ids", exclusion_writer=JsonlWriter(work + "/removed"),
                                                  load_cluster_ids=True),
                       JsonlWriter(work + "/kept")], tasks=1, logging_dir=work + "/log4").run()
print(json.dumps({"buckets": cfg.num_buckets, "hashes_per_bucket": cfg.hashes_per_bucket}))
'''


def run_datatrove(docs: list[dict], python: str, tmp: Path) -> tuple[dict[str, str | None], float, str]:
    """datatrove keeps the first document of a cluster in reading order: we feed priority order, as a user would."""
    import gzip

    work = tmp / "dt"
    (work / "in").mkdir(parents=True)
    ordered = sorted(docs, key=lambda d: (PRIORITY.index(d["kind"]), d["id"]))
    (work / "in" / "docs.jsonl").write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n"
                                                    for d in ordered), encoding="utf-8")
    t0 = time.perf_counter()
    res = subprocess.run([python, "-c", DATATROVE_SCRIPT, str(work)], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError("datatrove run failed: " + res.stderr[-2000:])
    elapsed = time.perf_counter() - t0
    clusters: dict[str, str | None] = {}
    cid_rep: dict[int, str] = {}
    for folder in ("kept", "removed"):
        for f in sorted((work / folder).glob("*")):
            with gzip.open(f, "rt", encoding="utf-8") if f.suffix == ".gz" else open(f, encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    cid = rec.get("metadata", {}).get("minhash_cluster_id")
                    cid = None if cid in (None, -1) else cid  # -1: in no cluster
                    clusters[rec["id"]] = cid
                    if folder == "kept" and cid is not None:
                        cid_rep[cid] = rec["id"]
    labels = {i: (cid_rep.get(c, f"cluster{c}") if c is not None else None) for i, c in clusters.items()}
    return labels, elapsed, res.stdout.strip().splitlines()[-1]


def evaluate(labels: dict[str, str | None], docs: list[dict], pairs: list[dict], axis: str) -> dict:
    group = {d["id"]: d["group"] for d in docs}
    members: dict[str, list[str]] = {}
    for i, c in labels.items():
        if c is not None:
            members.setdefault(c, []).append(i)
    pred_pairs = same = 0
    merged_groups: set[str] = set()
    for ids in members.values():
        groups = {group[i] for i in ids}
        if len(groups) > 1:
            merged_groups |= groups
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                pred_pairs += 1
                same += group[ids[a]] == group[ids[b]]
    bins = [(0.0, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    by_bin, found_hi, hi, orig_kept, found = {}, 0, 0, 0, 0
    for lo, up in bins:
        sel = [p for p in pairs if lo <= p[axis] < up]
        hit = [p for p in sel if labels.get(p["orig"]) is not None and labels.get(p["orig"]) == labels.get(p["copy"])]
        by_bin[f"{lo:.1f}-{min(up, 1.0):.1f}"] = f"{len(hit)}/{len(sel)}"
        if lo >= 0.8:
            found_hi, hi = found_hi + len(hit), hi + len(sel)
        for p in hit:
            found += 1
            orig_kept += labels[p["orig"]] == p["orig"]
    n_groups = len(set(group.values()))
    found_all = sum(1 for p in pairs if labels.get(p["orig"]) is not None and labels.get(p["orig"]) == labels.get(p["copy"]))
    return {"recall_by_jaccard": by_bin, "recall_at_0.8": round(found_hi / max(hi, 1), 4),
            "recall_all_planted": round(found_all / max(len(pairs), 1), 4),
            "pair_precision": round(same / max(pred_pairs, 1), 4), "false_merge_rate": round(len(merged_groups) / n_groups, 4),
            "original_kept": round(orig_kept / max(found, 1), 4), "pairs_found": found, "pairs": len(pairs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora")
    ap.add_argument("--datatrove-python", default=None, help="python of a separate venv with datatrove[processing]")
    ap.add_argument("--thresholds", default="0.8,0.5", help="NearDedup Jaccard thresholds to run (comma-separated)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--edits", default="0.02,0.10", help="range of the character edit rate of the copies")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if not args.corpora.is_dir():
        print(f"error: corpora not found at {args.corpora}", file=sys.stderr)
        return 2
    edits = tuple(float(x) for x in args.edits.split(","))
    docs, pairs = make_docs(load_bases(args.corpora), args.seed, edits)
    result: dict = {"docs": len(docs), "pairs": len(pairs), "edit_rate": edits, "methods": {}}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for threshold in (float(t) for t in args.thresholds.split(",")):
            for unit in ("morph", "char"):
                labels, secs = run_near(docs, unit, threshold, tmp)
                result["methods"][f"{unit}5@{threshold}"] = {
                    "seconds": round(secs, 1), **evaluate(labels, docs, pairs, "j_morph" if unit == "morph" else "j_char")}
        if args.datatrove_python:
            labels, secs, cfg = run_datatrove(docs, args.datatrove_python, tmp)
            result["methods"]["datatrove"] = {"seconds": round(secs, 1), "config": json.loads(cfg),
                                              **evaluate(labels, docs, pairs, "j_morph")}
    print(json.dumps(result, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
