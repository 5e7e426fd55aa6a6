"""`jcorpus quality train` (fastText quality model) and `jcorpus filters eval` (filters vs hand labels).

Both read the config's sources exactly as `curate` does (same readers, extraction, normalization and
language gate, run in-process without a Beam graph) so a label or a training example sees the text the
pipeline would see.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, UserError, stops_deferred
from trainer_bridge.cliargs import integer, output_file
from trainer_bridge.userpaths import not_regular

if TYPE_CHECKING:
    from pipeline.config import CurateConfig

KINDS = ("academic", "government", "web", "reference")
FASTTEXT_SEED_MAX = 2**31 - 1  # fastText's seed is a signed 32-bit int: 2**31 and up crashed inside it
EPOCH_MAX = 1000  # fastText's epoch is an int too; more than 1000 passes over a corpus is a typo, not a plan
SHOWN_IDS = 5  # unmatched label ids named in the text report


def documents(cfg: CurateConfig) -> Iterator[dict[str, Any]]:
    """Every document of the config after extraction, normalization and the language gate, the unreadable
    (`error`) and rejected (`reject_reason`) ones included, so the commands can count what they skip."""
    from pipeline.config import expand_files
    from pipeline.documents import from_reader
    from pipeline.prepare import Prepare
    from pipeline.sources import read_file

    prepare = Prepare(cfg)
    prepare.setup()
    for index, path, _ in expand_files(cfg):
        src = cfg.sources[index]
        for record in read_file(path, src):
            yield from prepare.process(from_reader(src, record))


def prepared_documents(config_path: str) -> Iterator[dict[str, Any]]:
    """The readable documents of the config (rejected ones included): bench/filters_bench.py's input."""
    from pipeline.config import load_config

    return (doc for doc in documents(load_config(config_path)) if not doc.get("error"))


def skip_reason(doc: dict[str, Any]) -> str | None:
    """Why a document has no text to use: `unreadable` (reader or extraction error) or `rejected REASON`."""
    if doc.get("error"):
        return "unreadable"
    return f"rejected {doc['reject_reason']}" if doc.get("reject_reason") else None


def format_counts(counts: Counter) -> str:
    """`3 unreadable, 2 rejected lang_not_ja`: most frequent first, ties by name (deterministic)."""
    return ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def check_out(out: str, overwrite: bool, config: str, inputs: list[str]) -> None:
    """Refuse a bad --out before any document is read: fastText's save_model replaces any file in place, and
    a path it cannot write failed only after training, or left a model without its recipe."""
    if os.path.basename(out) in ("", ".", ".."):
        raise UserError(f"--out: {out} names a folder, not a model file")
    for path in (out, f"{out}.json"):
        if what := not_regular(path):  # fastText's save blocked forever on a FIFO
            raise UserError(f"--out: {path} is {'a folder' if what == 'a directory' else what}, not a file")
        if os.path.exists(path):
            for what, other in (("the config", config), *(("an input file of the config", p) for p in inputs)):
                if "://" not in other and os.path.exists(other) and os.path.samefile(path, other):
                    raise UserError(f"--out: {path} is {what}; choose another --out")
        if os.path.lexists(path) and not overwrite:
            raise UserError(f"--out: {path} already exists; pass --overwrite to replace it")
    from pipeline.fsutil import check_output_folder

    check_output_folder(os.path.dirname(os.path.abspath(out)))


def _filters_cfg(cfg: CurateConfig, preset: str | None) -> dict[str, Any]:
    filters = dict(cfg.filters)
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
    from pipeline.config import load_config

    try:
        labels = load_labels(args.labels)
    except (OSError, ValueError) as exc:
        raise UserError(f"--labels: {exc}") from None
    if not labels:
        raise UserError(f"--labels: {args.labels} holds no labels")
    cfg = load_config(args.config)
    chain = _chain(_filters_cfg(cfg, args.preset))
    decisions, seconds, chars, read = [], 0.0, 0, 0
    skipped: Counter = Counter()  # rejected documents are not skipped: a rejection is a drop decision
    matched: set[str] = set()  # a label can match documents of several sources
    for doc in documents(cfg):
        read += 1
        if doc.get("error"):
            skipped["unreadable"] += 1
            continue
        label = labels.get(doc["source_id"])
        if label is None:
            continue
        matched.add(doc["source_id"])
        reason = doc.get("reject_reason")
        if reason is None:
            t = time.perf_counter()
            reason = chain.on_document(doc).reject_reason
            seconds += time.perf_counter() - t
            chars += len(doc["text"])
        decisions.append({"label": label["label"], "reject_reason": reason, "ref": label.get("ref", doc["source_id"]),
                          "reason": label.get("reason")})
    unmatched = [sid for sid in labels if sid not in matched]  # label file order
    read_note = f"{read} documents in the config; skipped: {format_counts(skipped)}"
    if not decisions:
        raise UserError(f"no document of the config matches a label's source_id ({len(labels)} labels, e.g. "
                        f"{', '.join(unmatched[:SHOWN_IDS])}; {read_note})")
    result = score(decisions)
    result.update(unmatched_labels=len(unmatched), unmatched_label_ids=unmatched, config_documents=read,
                  skipped=dict(sorted(skipped.items())), filter_seconds=round(seconds, 3), filter_chars=chars)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    print(format_report(result))
    print(f"({read_note})")
    if unmatched:
        more = ", ..." if len(unmatched) > SHOWN_IDS else ""
        print(f"({len(unmatched)} labels matched no document of the config: {', '.join(unmatched[:SHOWN_IDS])}{more})")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from filters.quality import TrainingError, train
    from pipeline.config import expand_files, load_config

    overlap = set(args.positive) & set(args.negative)
    if overlap:
        raise UserError(f"--positive and --negative share kinds: {', '.join(sorted(overlap))}")
    cfg = load_config(args.config)
    check_out(args.out, args.overwrite, args.config, [path for _, path, _ in expand_files(cfg)])
    sides = {"positive": args.positive, "negative": args.negative}
    texts: dict[str, list[str]] = {side: [] for side in sides}
    skipped: dict[str, Counter] = {side: Counter() for side in sides}
    for doc in documents(cfg):
        side = next((s for s, kinds in sides.items() if doc["kind"] in kinds), None)
        if side is None:
            continue  # a kind in neither class: not training data
        why = skip_reason(doc)
        if why:
            skipped[side][why] += 1
        else:
            texts[side].append(doc["text"])
    for side, kinds in sides.items():
        if not texts[side]:
            raise UserError(f"no {side} document (kinds {', '.join(kinds)}) to train on: "
                            f"{sum(skipped[side].values())} read, skipped: {format_counts(skipped[side])}")
    out = Path(args.out)
    # model and recipe are made beside --out and renamed into place together: a stopped or failed training
    # left a model without its recipe, or with an older model's
    model_part, recipe_part = (out.with_name(f".{name}.{secrets.token_hex(4)}.part")
                               for name in (out.name, f"{out.name}.json"))
    try:
        try:
            summary = train(texts["positive"], texts["negative"], model_part, seed=args.seed, epoch=args.epoch,
                            quantize=not args.no_quantize)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        except TrainingError as exc:
            raise UserError(f"{exc}; no model written") from None
        for side in sides:  # texts whose MeCab segmentation is empty are not training lines
            if len(texts[side]) > summary[f"{side}_docs"]:
                skipped[side]["empty after segmentation"] = len(texts[side]) - summary[f"{side}_docs"]
        digest = hashlib.sha256(model_part.read_bytes()).hexdigest()
        command = (f"jcorpus quality train --config {args.config} --positive {' '.join(args.positive)} "
                   f"--negative {' '.join(args.negative)} --seed {args.seed} --epoch {args.epoch} --out {args.out}"
                   + (" --no-quantize" if args.no_quantize else ""))
        recipe = {"command": command,
                  "config": args.config, "positive_kinds": args.positive, "negative_kinds": args.negative,
                  "sha256": digest, "skipped": {side: dict(counts) for side, counts in skipped.items()}, **summary}
        recipe_part.write_text(json.dumps(recipe, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        with stops_deferred():
            os.replace(model_part, out)
            os.replace(recipe_part, f"{out}.json")
    finally:
        model_part.unlink(missing_ok=True)
        recipe_part.unlink(missing_ok=True)
    total = skipped["positive"] + skipped["negative"]
    print(f"wrote {args.out} ({summary['positive_docs']} positive, {summary['negative_docs']} negative docs; "
          f"skipped: {format_counts(total)}; sha256 {digest[:16]}) and {args.out}.json")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    quality = subparsers.add_parser("quality", help="fastText quality model")
    qsub = quality.add_subparsers(dest="quality_command", required=True)
    tr = qsub.add_parser("train", help="train a quantized fastText classifier on MeCab-segmented text")
    tr.add_argument("--config", required=True, help="curate config whose sources provide the text")
    tr.add_argument("--positive", nargs="+", choices=KINDS, default=["academic", "government", "reference"])
    tr.add_argument("--negative", nargs="+", choices=KINDS, default=["web"])
    tr.add_argument("--out", required=True, type=output_file, help="model path (.ftz); a .json recipe is written next to it")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing model and recipe")
    tr.add_argument("--seed", type=integer(0, FASTTEXT_SEED_MAX), default=0)
    tr.add_argument("--epoch", type=integer(1, EPOCH_MAX), default=10)
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
