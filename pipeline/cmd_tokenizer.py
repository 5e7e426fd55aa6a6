"""`jcorpus tokenizer train|eval`: read curated Parquet (or JSONL) through Beam FileSystems and hand plain
(kind, text) records to `tokenizer/`, which knows nothing about Beam or storage."""
from __future__ import annotations

import argparse
import json
import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pipeline.errors import UserError, stops_deferred
from trainer_bridge.cliargs import MAX_WORKERS, SEED_MAX, integer, number, output_folder

MAX_VOCAB = 1 << 20  # SentencePiece takes an int32 (2**31 was its traceback); no useful vocabulary is near either

if TYPE_CHECKING:
    from tokenizer.train import TrainConfig

KINDS = ("academic", "government", "web", "reference")
# What `tokenizer.build` writes into TOKDIR (tokenizer.json: unigram only).
OUTPUTS = ("tokenizer.model", "tokenizer.vocab", "tokenizer.json", "training.json", "eval.json",
           "baselines/default.model", "baselines/lossless.model")


def _matches(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - Beam raises various errors for "no such path"
        return []


def _expand(path: str) -> list[str]:
    """A file or glob as given; a curate output root: its kept documents (`samples/` holds rejected ones and
    the quarantine's errors); another folder: its Parquet/JSONL files and its subfolders' JSONL."""
    from pipeline.fsutil import check_curate_finished

    check_curate_finished(path)
    if any(ch in path for ch in "*?[") or path.endswith((".parquet", ".jsonl")):
        return sorted(set(_matches(path)))
    base = path.rstrip("/")
    curated = _matches(f"{base}/curated/*.parquet")
    if curated or _matches(f"{base}/stats.json"):
        return sorted(curated)  # none, when the run kept nothing: an error
    return sorted({f for pattern in (f"{base}/*.parquet", f"{base}/*.jsonl", f"{base}/*/*.jsonl")
                   for f in _matches(pattern)})


def read_records(paths: list[str], max_chars: int | None = None) -> Iterator[tuple[str, str]]:
    """(kind, text) from Parquet (`kind`, `text` columns) or JSONL (`text`, `kind` or the folder name). Every
    input must match files: a misspelt one beside others was skipped in silence."""
    files = []
    for path in paths:
        if not (found := _expand(path)):
            raise UserError(f"--input {path}: no .parquet or .jsonl files found")
        files += found
    total = 0
    for name in files:
        for kind, text in _file_records(name):
            total += len(text)
            yield kind, text
            if max_chars and total >= max_chars:
                return


def _file_records(name: str) -> Iterator[tuple[str, str]]:
    """The non-empty documents of one file; one that Arrow or the OS cannot read is one line naming it (Arrow's
    own messages run over lines and may not name the file)."""
    import pyarrow as pa
    from apache_beam.io.filesystems import FileSystems

    from pipeline.fsutil import regular_file
    from pipeline.report_inputs import first_line, unreadable_parquet

    parquet = name.endswith(".parquet")
    try:
        with FileSystems.open(regular_file(name)) as handle:
            yield from (_parquet_records if parquet else _jsonl_records)(name, handle)
    except (pa.ArrowException, OSError) as exc:
        if parquet:
            raise unreadable_parquet(name, exc) from None
        raise UserError(f"cannot read {name}: {first_line(exc)}") from None


def _parquet_records(name: str, handle: BinaryIO) -> Iterator[tuple[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.documents import check_text_column, is_string_type

    pf = pq.ParquetFile(handle)
    columns = [c for c in ("kind", "text") if c in pf.schema_arrow.names]
    if "text" not in columns:
        raise UserError(f"{name}: no 'text' column (is this curated Parquet?)")
    check_text_column(name, pf.schema_arrow)
    if "kind" in columns and not (is_string_type(kind_type := pf.schema_arrow.field("kind").type)
                                  or pa.types.is_null(kind_type)):
        raise UserError(f"{name}: column 'kind' holds {kind_type}, not strings (curated Parquet has the kind names)")
    for batch in pf.iter_batches(columns=columns, batch_size=1024):
        rows = batch.to_pydict()
        kinds = rows.get("kind") or ["unknown"] * len(rows["text"])
        yield from ((kind or "unknown", text) for kind, text in zip(kinds, rows["text"], strict=True) if text)


def _jsonl_records(name: str, handle: BinaryIO) -> Iterator[tuple[str, str]]:
    """A record naming a key twice is refused like invalid JSON: json kept the last `text` without a word."""
    from pipeline.sources.jsonl import DuplicateKey, surrogate_at, unique_keys

    folder = posixpath.basename(posixpath.dirname(name))
    default_kind = folder if folder in KINDS else "unknown"
    decoder = json.JSONDecoder(object_pairs_hook=unique_keys)  # one decoder, not one a line
    for lineno, line in enumerate(handle, 1):
        try:
            row = decoder.decode(line.decode("utf-8-sig"))
        except DuplicateKey as exc:
            raise UserError(f"{name}:{lineno}: {exc}") from None
        except ValueError:
            raise UserError(f"{name}:{lineno}: not valid JSON") from None
        text = row.get("text") if isinstance(row, dict) else None
        if isinstance(text, str) and text:
            kind = row.get("kind") or default_kind
            if not isinstance(kind, str):  # a number or a list was a TypeError deep in the sampler or eval
                raise UserError(f"{name}:{lineno}: 'kind' is a JSON {type(kind).__name__}, expected a string")
            for field, value in (("text", text), ("kind", kind)):
                if (at := surrogate_at(value)) is not None:  # sentencepiece and MeCab take UTF-8 only
                    raise UserError(f"{name}:{lineno}: '{field}' has an unpaired surrogate at character {at} "
                                    "(not valid Unicode)")
            yield kind, text


def _mix(value: str | None) -> dict[str, float] | None:
    """Same syntax and checks as `jcorpus pack --mix`; a weight of 0 skips the kind."""
    from trainer_bridge.mixture import MixtureError, parse_mix

    try:
        weights = parse_mix(value)
    except MixtureError as exc:
        raise UserError(f"--mix: {exc}") from None
    if weights and not any(weights.values()):
        raise UserError("--mix: at least one weight must be > 0")
    return weights or None


def _train(args: argparse.Namespace) -> int:
    from pipeline.fsutil import check_output_folder, exists, join
    from tokenizer.train import TrainConfig

    cfg = TrainConfig(vocab_size=args.vocab_size, model_type=args.model_type, policy=args.policy,
                      inventory=args.inventory, reserved_tokens=args.reserved_tokens,
                      character_coverage=args.character_coverage, max_piece_length=args.max_piece_length,
                      seed=args.seed, threads=args.threads)
    if exists(join(args.out, "tokenizer.model")):  # shards packed with the old model would not decode
        raise UserError(f"{join(args.out, 'tokenizer.model')} already exists; choose another --out or remove "
                        "the old tokenizer")
    check_output_folder(args.out)
    _check_targets(args.out, OUTPUTS)  # before the training, not after it
    created = _created_folder(args.out)
    try:
        report = _build(args, cfg)
    except BaseException:  # a failed or interrupted run leaves no half-written (or empty) --out behind
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise
    from tokenizer.evaluate import format_table

    print(format_table(report["models"]))
    print(f"wrote {args.out}")
    return 0


def _created_folder(out: str) -> Path | None:
    """The outermost folder that writing a local --out creates, or None when it exists: only that is removed
    after a failure, never a folder the user had."""
    if "://" in out or os.path.lexists(out):
        return None
    path = Path(os.path.abspath(out))
    while not os.path.lexists(path.parent):
        path = path.parent
    return path


def _build(args: argparse.Namespace, cfg: TrainConfig) -> dict:
    """Build into a temporary folder (inside a local --out, so the moves are renames), then publish; the eval
    report. An existing --out got the files one by one, and a stop left it half written: a rerun refused it,
    pack took its model."""
    from tokenizer.build import build
    from tokenizer.train import TokenizerError

    remote = "://" in args.out
    if not remote:
        os.makedirs(args.out, exist_ok=True)
    local = Path(tempfile.mkdtemp(prefix="jcorpus-tok-" if remote else ".partial-", dir=None if remote else args.out))
    try:
        report = build(read_records(args.input), local, cfg, args.char_budget, _mix(args.mix), args.holdout,
                       shrink_to_fit=args.shrink_to_fit, log=lambda msg: print(msg, file=sys.stderr))
        with stops_deferred():
            _publish(local, args.out)
        return report
    except TokenizerError as exc:
        raise UserError(str(exc)) from None
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _check_targets(out: str, rels: Iterable[str]) -> None:
    """In a local --out, each output's place must be free or a file and the folders above it folders: a `baselines`
    file or an `eval.json` folder was a FileExistsError/IsADirectoryError traceback after the whole training, with
    some files already moved in."""
    if "://" in out:
        return
    for rel in rels:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = Path(out, *parts[:depth])
            if os.path.lexists(folder) and not folder.is_dir():
                raise UserError(f"--out {out}: {folder} is a file, and the tokenizer writes {rel} there; "
                                "choose another --out or remove it")
        target = Path(out, rel)
        if target.is_dir() and not target.is_symlink():
            raise UserError(f"--out {out}: {target} is a folder, and the tokenizer writes a file there; "
                            "choose another --out or remove it")


def _publish(local: Path, out: str) -> None:
    """Every file into --out, tokenizer.model last: what pack reads and a rerun refuses is there only with the
    rest."""
    from apache_beam.io.filesystems import FileSystems

    remote = "://" in out
    files = sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: (p.name == "tokenizer.model", str(p)))
    _check_targets(out, [path.relative_to(local).as_posix() for path in files])  # before the first move
    for path in files:
        rel = path.relative_to(local).as_posix()
        if remote:
            with FileSystems.create(posixpath.join(out, rel)) as dst:
                dst.write(path.read_bytes())
        else:
            target = Path(out, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def _eval(args: argparse.Namespace) -> int:
    from tokenizer.evaluate import evaluate_models, format_table
    from tokenizer.train import TokenizerError, load

    try:
        models = {"model": load(args.model)}
        for i, path in enumerate(args.baseline or []):
            models[f"baseline{i + 1 if len(args.baseline) > 1 else ''}:{Path(path).stem}"] = load(path)
        results = evaluate_models(models, read_records(args.input, args.max_chars))
    except TokenizerError as exc:
        raise UserError(str(exc)) from None
    if not results["model"]["docs"]:
        raise UserError("--input: no non-empty documents to evaluate")
    print(json.dumps(results, ensure_ascii=False, indent=1) if args.json else format_table(results))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("tokenizer", help="train and evaluate the kanji/kana-aware SentencePiece tokenizer")
    sub = parser.add_subparsers(dest="tokenizer_command", required=True)
    train = sub.add_parser("train", help="sample curated text, train model + baselines, export, evaluate")
    train.add_argument("--input", nargs="+", required=True, help="curated Parquet dir/files (or JSONL); any Beam path")
    train.add_argument("--vocab-size", type=integer(8, MAX_VOCAB), default=16000)
    train.add_argument("--out", required=True, type=output_folder, help="output directory TOKDIR")
    train.add_argument("--policy", choices=("none", "morph", "phrase", "chunk"), default="phrase")
    train.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    train.add_argument("--mix", help="per-kind sampling weights, e.g. web=2,academic=1 (unlisted kinds skipped)")
    train.add_argument("--char-budget", type=integer(1), default=50_000_000, help="characters of sentences to sample")
    train.add_argument("--holdout", type=number(0, 0.9), default=0.15, help="fraction of documents held out for eval.json")
    train.add_argument("--inventory", choices=("auto", "joyo", "jinmeiyo", "jis0208", "full"), default="auto",
                       help="guaranteed single-piece characters (always + kana, punctuation, ASCII); auto: the "
                            "largest level that fits in 60%% of the vocabulary")
    train.add_argument("--reserved-tokens", type=integer(0, MAX_VOCAB), default=16,
                       help="number of <reserved_NNN> control tokens")
    train.add_argument("--character-coverage", type=number(0.98, 1.0), default=1.0)
    train.add_argument("--max-piece-length", type=integer(1, 512), default=16)
    train.add_argument("--shrink-to-fit", action="store_true",
                       help="if the sample cannot support --vocab-size, use the largest size that works")
    train.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    train.add_argument("--threads", type=integer(1, MAX_WORKERS), default=1,
                       help="SentencePiece trainer threads and MeCab worker processes (the model depends on "
                            "the thread count, not on the run: same input, seed and threads give the same bytes)")
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="metrics of a model (and baselines) on documents")
    ev.add_argument("--model", required=True)
    ev.add_argument("--input", nargs="+", required=True)
    ev.add_argument("--baseline", action="append", help="another .model to compare side by side (repeatable)")
    ev.add_argument("--max-chars", type=integer(1), default=None, help="stop reading input after this many characters")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_eval)
