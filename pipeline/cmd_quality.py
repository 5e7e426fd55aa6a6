"""`jcorpus quality train` (fastText quality model) and `jcorpus filters eval` (filters vs hand labels).

Both read the config's sources exactly as `curate` does (same readers, extraction, normalization and
language gate, run in-process without a Beam graph) so a label or a training example sees the text the
pipeline would see.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from pipeline.errors import ConfigError, UserError
from trainer_bridge.cliargs import SEED_MAX, integer, output_file

KINDS = ("academic", "government", "web", "reference")


def prepared_documents(config_path: str) -> Iterator[dict[str, Any]]:
    """Every readable document of the config after extraction, normalization and the language gate."""
    from pipeline.config import expand_files, load_config
    from pipeline.documents import from_reader
    from pipeline.prepare import Prepare
    from pipeline.sources import read_file

    cfg = load_config(config_path)
    prepare = Prepare(cfg)
    prepare.setup()
    for index, path, _ in expand_files(cfg):
        src = cfg.sources[index]
        for record in read_file(path, src):
            doc = from_reader(src, record)
            if doc.get("error"):
                continue
            for out in prepare.process(doc):
                if not out.get("error"):
                    yield out


def _filters_cfg(config_path: str, preset: str | None) -> dict[str, Any]:
    from pipeline.config import load_config

    filters = dict(load_config(config_path).filters)
    if preset:
        filters["preset"] = preset
        filters["enabled"] = True
    return filters


def _chain(filters: dict[str, Any]):
    from filters.chain import FilterChain
    from filters.config import FilterConfigError

    try:
        return FilterChain(filters)
    except FilterConfigError as exc:
        raise ConfigError(str(exc)) from None


def run_eval(args: argparse.Namespace) -> int:
    from filters.evaluate import format_report, load_labels, score

    try:
        labels = load_labels(args.labels)
    except (OSError, ValueError) as exc:
        raise UserError(f"--labels: {exc}") from None
    chain = _chain(_filters_cfg(args.config, args.preset))
    decisions, seconds, chars = [], 0.0, 0
    matched: set[str] = set()  # a label can match documents of several sources
    for doc in prepared_documents(args.config):
        label = labels.get(doc["source_id"])
        if label is None:
            continue
        matched.add(doc["source_id"])
        reason = doc.get("reject_reason")
        if reason is None:
            t = time.perf_counter()
            reason = chain(doc["text"], url=doc.get("url"), kind=doc["kind"]).reject_reason
            seconds += time.perf_counter() - t
            chars += len(doc["text"])
        decisions.append({"label": label["label"], "reject_reason": reason, "ref": label.get("ref", doc["source_id"]),
                          "reason": label.get("reason")})
    if not decisions:
        raise UserError("no document of the config matches a label's source_id")
    result = score(decisions)
    result["unmatched_labels"] = len(labels) - len(matched)
    result["filter_seconds"] = round(seconds, 3)
    result["filter_chars"] = chars
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(format_report(result))
        if result["unmatched_labels"]:
            print(f"({result['unmatched_labels']} labels matched no document of the config)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from filters.quality import train

    overlap = set(args.positive) & set(args.negative)
    if overlap:
        raise UserError(f"--positive and --negative share kinds: {', '.join(sorted(overlap))}")
    pos: list[str] = []
    neg: list[str] = []
    for doc in prepared_documents(args.config):
        if doc.get("reject_reason"):
            continue
        if doc["kind"] in args.positive:
            pos.append(doc["text"])
        elif doc["kind"] in args.negative:
            neg.append(doc["text"])
    try:
        summary = train(pos, neg, args.out, seed=args.seed, epoch=args.epoch, quantize=not args.no_quantize)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with open(args.out, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    command = (f"jcorpus quality train --config {args.config} --positive {' '.join(args.positive)} "
               f"--negative {' '.join(args.negative)} --seed {args.seed} --epoch {args.epoch} --out {args.out}"
               + (" --no-quantize" if args.no_quantize else ""))
    recipe = {"command": command,
              "config": args.config, "positive_kinds": args.positive, "negative_kinds": args.negative,
              "sha256": digest, **summary}
    with open(f"{args.out}.json", "w", encoding="utf-8") as fh:
        json.dump(recipe, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {args.out} ({summary['positive_docs']} positive, {summary['negative_docs']} negative docs; "
          f"sha256 {digest[:16]}) and {args.out}.json")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    quality = subparsers.add_parser("quality", help="fastText quality model")
    qsub = quality.add_subparsers(dest="quality_command", required=True)
    tr = qsub.add_parser("train", help="train a quantized fastText classifier on MeCab-segmented text")
    tr.add_argument("--config", required=True, help="curate config whose sources provide the text")
    tr.add_argument("--positive", nargs="+", choices=KINDS, default=["academic", "government", "reference"])
    tr.add_argument("--negative", nargs="+", choices=KINDS, default=["web"])
    tr.add_argument("--out", required=True, type=output_file, help="model path (.ftz); a .json recipe is written next to it")
    tr.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    tr.add_argument("--epoch", type=integer(1), default=10)
    tr.add_argument("--no-quantize", action="store_true", help="save a full .bin model instead of .ftz")
    tr.set_defaults(func=run_train)

    filters = subparsers.add_parser("filters", help="quality filter tools")
    fsub = filters.add_subparsers(dest="filters_command", required=True)
    ev = fsub.add_parser("eval", help="accuracy of the config's filters against keep/drop hand labels")
    ev.add_argument("--config", required=True)
    ev.add_argument("--labels", required=True, help="JSONL with source_id, label (keep|drop), reason")
    ev.add_argument("--preset", help="override filters.preset (and enable filters)")
    ev.add_argument("--json", action="store_true", help="print the full result as JSON")
    ev.set_defaults(func=run_eval)
