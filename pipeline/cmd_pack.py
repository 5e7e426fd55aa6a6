"""`jcorpus pack` (curated Parquet → token shards) and `jcorpus shards inspect` (summary + decoded rows)."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable

from pipeline.cmd_curate import BEAM_OPTIONS
from pipeline.errors import UserError
from trainer_bridge.cliargs import MAX_SEQ_LEN, MAX_WORKERS, SEED_MAX, integer, number, output_folder
from trainer_bridge.userpaths import open_regular

MARK_START, MARK_CONT, MARK_PAD = "⟦doc {} ⟧", "⟦… {} @{} ⟧", "⟦pad ×{}⟧"
Decode = Callable[[list[int]], str]


def register(subparsers) -> None:
    pack = subparsers.add_parser("pack", help="tokenize curated documents and pack them into training shards",
                                 description=BEAM_OPTIONS)
    pack.add_argument("--input", required=True, help="curated Parquet folder, file or glob (local or Beam URL)")
    pack.add_argument("--tokenizer", required=True, help="SentencePiece model (TOKDIR/tokenizer.model)")
    pack.add_argument("--seq-len", type=int, required=True,
                      help=f"training context T, at most {MAX_SEQ_LEN:,}; rows hold T + 1 tokens")
    pack.add_argument("--out", required=True, type=output_folder, help="output folder for shards and manifest.json")
    pack.add_argument("--format", default="arrow", help="comma list of arrow, megatron (default arrow)")
    pack.add_argument("--mix", default="", help="mixture weights per kind or source, e.g. web=1,academic=2.5")
    pack.add_argument("--packing", choices=("bestfit", "concat"), default="bestfit")
    pack.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="seed of the mixture coin and the packing groups")
    pack.add_argument("--shard-mib", type=number(0, above=True), default=256.0, help="target Arrow shard size in MiB (default 256)")
    pack.add_argument("--window-rows", type=integer(1), default=4096, help="bestfit window in rows' worth of tokens")
    pack.add_argument("--runner", default=None, help="Beam runner (default: in-process FnApiRunner)")
    pack.add_argument("--workers", type=integer(1, MAX_WORKERS), default=1, help="worker processes for the default runner")
    pack.set_defaults(func=run_pack_command, accepts_extra=True)

    shards = subparsers.add_parser("shards", help="work with packed shards")
    shards_sub = shards.add_subparsers(dest="shards_command", required=True)
    inspect = shards_sub.add_parser("inspect", help="summary table and a few decoded rows")
    inspect.add_argument("shards", metavar="SHARDS", help="folder holding manifest.json (or the manifest itself)")
    inspect.add_argument("--tokenizer", default=None,
                         help="SentencePiece model to decode rows; its sha256 must match the manifest's "
                              "(default: the manifest's model, if it exists; else ids)")
    inspect.add_argument("--rows", type=integer(1), default=3, help="how many rows to decode (default 3)")
    inspect.add_argument("--chars", type=integer(1), default=160, help="characters shown per document segment")
    inspect.add_argument("--verify", action="store_true",
                         help="check every file the manifest lists (size, sha256, rows) before the summary")
    inspect.set_defaults(func=run_inspect_command)


def run_pack_command(args: argparse.Namespace) -> int:
    from pipeline.fsutil import check_output_folder
    from pipeline.pack import PackOptions, run_pack
    from trainer_bridge.mixture import MixtureError, parse_mix

    if args.seq_len > MAX_SEQ_LEN:  # rows of padding by the gigabyte, or a numpy ArrayMemoryError
        raise UserError(f"--seq-len {args.seq_len} is more than {MAX_SEQ_LEN:,} tokens")
    try:
        mix = parse_mix(args.mix)
    except MixtureError as exc:
        raise UserError(f"--mix: {exc}") from None
    check_output_folder(args.out)
    opts = PackOptions(input=args.input, tokenizer=args.tokenizer, seq_len=args.seq_len, out=args.out,
                       formats=tuple(f.strip() for f in args.format.split(",") if f.strip()), mix=mix,
                       packing=args.packing, seed=args.seed, shard_bytes=max(1, int(args.shard_mib * (1 << 20))),
                       window_rows=args.window_rows)
    manifest = run_pack(opts, runner=args.runner, workers=args.workers, extra=args.extra)
    if unmatched := manifest["mixture"]["unmatched_names"]:  # as tokenizer train says it: a typo weighs nothing
        print(f"jcorpus pack: warning: --mix {', '.join(unmatched)} matched no source or kind", file=sys.stderr)
    print(pack_summary(manifest, args.out))
    return 0


def pack_summary(manifest: dict, out: str) -> str:
    """One line on what the pack wrote; rows, padding and splits exist only in Arrow shards."""
    t, parts = manifest["totals"], len(manifest["megatron"])
    if not manifest["shards"]:
        return (f"packed {t['docs']:,} documents ({t['tokens']:,} tokens) into {parts} Megatron parts, one sequence "
                f"per document -> {out}")
    return (f"packed {t['docs']:,} documents into {t['rows']:,} rows of {manifest['row_len']} tokens "
            f"({len(manifest['shards'])} Arrow shards, {parts} Megatron parts); "
            f"padding {t['padding_rate']:.4%}, split documents {t['split_doc_rate']:.2%} -> {out}")


def _table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[f"{c:,}" if isinstance(c, int) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in cells)


def _decoder(explicit: str | None, manifest: dict, folder: str) -> tuple[Decode | None, str]:
    """A decoder for the packing tokenizer (`--tokenizer`, else the manifest's path, relative to its folder).

    A model whose sha256 differs from the manifest's is refused: it would decode garbage, or crash on ids beyond
    its vocabulary. Without a model the rows are shown as ids, and the note returned says why.
    """
    recorded = manifest["tokenizer"].get("path")
    path = explicit or (os.path.join(folder, recorded) if recorded else None)
    if path is None or not (explicit or os.path.isfile(path)):
        why = f"tokenizer {path} not found" if path else "the manifest names no tokenizer file"
        return None, f"(rows shown as token ids: {why}; pass --tokenizer MODEL)"
    try:
        with open_regular(path) as handle:  # a FIFO would block forever
            model = handle.read()
    except OSError as exc:  # a folder, a FIFO, a missing file
        raise UserError(f"--tokenizer {path}: cannot read it ({exc.strerror or exc})") from None
    digest, expected = hashlib.sha256(model).hexdigest(), manifest["tokenizer"]["sha256"]
    if digest != expected:
        raise UserError(f"tokenizer {path}: sha256 {digest[:16]}… is not the manifest's {expected[:16]}… "
                        "(the shards were packed with another model; pass that one with --tokenizer)")
    from tokenizer.train import load

    return load(model, path).decode, ""


def _segment_name(doc_id: str, copy: int | None) -> str:
    """12 characters of a segment's id and its mixture copy; a shard packed before the `doc_copies` column
    (copy None) spelled a repeat `id#k` in the id itself."""
    if copy is None:
        return doc_id[:12] + ("#" + doc_id.rsplit("#", 1)[1] if "#" in doc_id else "")
    return doc_id[:12] + (f" copy {copy}" if copy else "")


def describe_row(tokens, length: int, offsets, ids, copies, positions, decode, chars: int) -> str:
    """One row as text with its document boundaries marked (decoded when a tokenizer is given); `copies` is
    None for a shard without `doc_copies`."""
    parts = []
    bounds = list(offsets) + [length]
    for i, start in enumerate(offsets):
        segment = [int(t) for t in tokens[start: bounds[i + 1]]]
        body = decode(segment) if decode else " ".join(map(str, segment))
        body = body if len(body) <= chars else body[: chars // 2] + " … " + body[-chars // 2:]
        name = _segment_name(ids[i], None if copies is None else copies[i])
        mark = MARK_START.format(name) if positions[i] == 0 else MARK_CONT.format(name, positions[i])
        parts.append(mark + body.replace("\n", "⏎"))
    if length < len(tokens):
        parts.append(MARK_PAD.format(len(tokens) - length))
    return "".join(parts)


def run_inspect_command(args: argparse.Namespace) -> int:
    from trainer_bridge.manifest import verify_files

    path, m = _read_manifest(args.shards)
    folder = os.path.dirname(path)
    decode, note = _decoder(args.tokenizer, m, folder) if m["shards"] else (None, "")  # refuse before any output
    if args.verify:
        try:
            checked = verify_files(m, folder)
        except (ValueError, OSError) as exc:  # ManifestError, and pyarrow's ArrowInvalid, are ValueErrors
            raise UserError(f"--verify: {path}: {exc}") from None
        print(f"verified {checked} files against the manifest's sizes and sha256 ({len(m['shards'])} Arrow shards, "
              f"their rows too; {len(m['megatron'])} Megatron parts, .bin and .idx)\n")
    _print_summary(path, m)
    if not m["shards"]:
        print(f"\n(no Arrow rows to show: this pack wrote only Megatron parts under {os.path.join(folder, 'megatron')})")
        return 0
    if note:
        print("\n" + note)
    _print_rows(m, path, decode, args.rows, args.chars)
    return 0


def _read_manifest(shards: str) -> tuple[str, dict]:
    from trainer_bridge.manifest import MANIFEST_NAME, ManifestError, parse

    path = shards if shards.endswith(".json") else os.path.join(shards, MANIFEST_NAME)
    if not os.path.exists(path):
        raise UserError(f"{path} not found (is {shards} a `jcorpus pack` output?)")
    try:
        with open_regular(path) as handle:  # reading a FIFO would block forever
            return path, parse(handle.read(), where=path, packed=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ManifestError as exc:
        raise UserError(str(exc)) from None


def _print_summary(path: str, m: dict) -> None:
    t = m["totals"]
    print(f"{path}: seq_len {m['seq_len']}, vocab {m['vocab_size']:,} ({m['token_dtype']}), packing {m['packing']}, "
          f"seed {m['seed']}, tokenizer sha256 {m['tokenizer']['sha256'][:16]}…")
    if m["shards"]:
        print(_table(["shard", "rows", "tokens", "MiB", "sha256"],
                     [[s["file"], s["rows"], s.get("tokens", 0), f"{s.get('bytes', 0) / 2**20:.2f}", s["sha256"][:16]]
                      for s in m["shards"]]))
    if m["megatron"]:
        print(_table(["megatron part", "documents", "tokens", "bin sha256"],
                     [[p["prefix"], p.get("documents", 0), p.get("tokens", 0), p["bin_sha256"][:16]]
                      for p in m["megatron"]]))
    print(f"\nrows {t['rows']:,}  tokens {t['tokens']:,}  padding {t['padding_tokens']:,} ({t['padding_rate']:.4%})  "
          f"documents {t['docs']:,}  split {t['split_docs']:,} ({t['split_doc_rate']:.2%})  "
          f"input documents {t.get('input_docs', 0):,}")
    for title in ("by_kind", "by_source"):
        entries = m.get(title, {})
        print("\n" + _table([title[3:], "docs", "tokens", "split_docs"],
                            [[k, v["docs"], v["tokens"], v["split_docs"]] for k, v in sorted(entries.items())]))
    groups = m.get("mixture", {}).get("groups", {})
    if groups:
        print("\n" + _table(["mixture", "weight", "target_share", "realized_share"],
                            [[g, v["weight"], f"{v['target_share']:.4f}", f"{v['realized_share']:.4f}"]
                             for g, v in groups.items()]))


def _print_rows(m: dict, manifest_path: str, decode: Decode | None, rows: int, chars: int) -> None:
    from trainer_bridge.manifest import ManifestError, check_file
    from trainer_bridge.shards import ShardReader

    folder, shown = os.path.dirname(manifest_path), 0
    for shard in m["shards"]:
        if shown >= rows:
            break
        try:
            reader = ShardReader(check_file(folder, shard["file"]))  # a FIFO would block the open forever
        except ManifestError as exc:
            raise UserError(f"{manifest_path}: {exc}") from None
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"shard {shard['file']}: cannot read it ({type(exc).__name__}: {exc}); "
                            "`--verify` checks every shard against the manifest") from None
        table = reader.table()
        for i in range(min(rows - shown, reader.num_rows)):
            row = table.slice(i, 1).to_pylist()[0]
            print(f"\n--- {shard['file']} row {i} ({row['length']} tokens, {len(row['doc_offsets'])} segments)")
            try:
                print(describe_row(reader.tokens(i), row["length"], row["doc_offsets"], row["doc_ids"],
                                   row.get("doc_copies"), row["doc_positions"], decode, chars))
            except IndexError as exc:  # sentencepiece: "piece id is out of range"
                raise UserError(f"shard {shard['file']} row {i} holds a token id the tokenizer does not have "
                                f"({str(exc).rstrip('.')}): a corrupt shard? (`--verify` checks every shard against "
                                "the manifest)") from None
            shown += 1
