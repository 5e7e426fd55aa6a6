"""`jcorpus pack` (curated Parquet → token shards) and `jcorpus shards inspect` (summary + decoded rows)."""
from __future__ import annotations

import argparse
import os

from pipeline.errors import UserError
from trainer_bridge.cliargs import SEED_MAX, integer, number, output_folder

MARK_START, MARK_CONT, MARK_PAD = "⟦doc {} ⟧", "⟦… {} @{} ⟧", "⟦pad ×{}⟧"


def register(subparsers) -> None:
    pack = subparsers.add_parser("pack", help="tokenize curated documents and pack them into training shards")
    pack.add_argument("--input", required=True, help="curated Parquet folder, file or glob (local or Beam URL)")
    pack.add_argument("--tokenizer", required=True, help="SentencePiece model (TOKDIR/tokenizer.model)")
    pack.add_argument("--seq-len", type=int, required=True, help="training context T; rows hold T + 1 tokens")
    pack.add_argument("--out", required=True, type=output_folder, help="output folder for shards and manifest.json")
    pack.add_argument("--format", default="arrow", help="comma list of arrow, megatron (default arrow)")
    pack.add_argument("--mix", default="", help="mixture weights per kind or source, e.g. web=1,academic=2.5")
    pack.add_argument("--packing", choices=("bestfit", "concat"), default="bestfit")
    pack.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="seed of the mixture coin and the packing groups")
    pack.add_argument("--shard-mib", type=number(0, above=True), default=256.0, help="target Arrow shard size in MiB (default 256)")
    pack.add_argument("--window-rows", type=integer(1), default=4096, help="bestfit window in rows' worth of tokens")
    pack.add_argument("--runner", default=None, help="Beam runner (default: in-process FnApiRunner)")
    pack.add_argument("--workers", type=integer(1), default=1, help="worker processes for the default runner")
    pack.set_defaults(func=run_pack_command, accepts_extra=True)

    shards = subparsers.add_parser("shards", help="work with packed shards")
    shards_sub = shards.add_subparsers(dest="shards_command", required=True)
    inspect = shards_sub.add_parser("inspect", help="summary table and a few decoded rows")
    inspect.add_argument("shards", metavar="SHARDS", help="folder holding manifest.json (or the manifest itself)")
    inspect.add_argument("--tokenizer", default=None,
                         help="SentencePiece model to decode rows (default: the manifest's, if it exists; else ids)")
    inspect.add_argument("--rows", type=integer(1), default=3, help="how many rows to decode (default 3)")
    inspect.add_argument("--chars", type=integer(1), default=160, help="characters shown per document segment")
    inspect.add_argument("--verify", action="store_true", help="check every shard's sha256 against the manifest")
    inspect.set_defaults(func=run_inspect_command)


def run_pack_command(args: argparse.Namespace) -> int:
    from pipeline.pack import PackOptions, run_pack
    from trainer_bridge.mixture import MixtureError, parse_mix

    try:
        mix = parse_mix(args.mix)
    except MixtureError as exc:
        raise UserError(f"--mix: {exc}") from None
    opts = PackOptions(input=args.input, tokenizer=args.tokenizer, seq_len=args.seq_len, out=args.out,
                       formats=tuple(f.strip() for f in args.format.split(",") if f.strip()), mix=mix,
                       packing=args.packing, seed=args.seed, shard_bytes=max(1, int(args.shard_mib * (1 << 20))),
                       window_rows=args.window_rows)
    manifest = run_pack(opts, runner=args.runner, workers=args.workers, extra=args.extra)
    t = manifest["totals"]
    print(f"packed {t.get('docs', 0):,} documents into {t.get('rows', 0):,} rows of {manifest['row_len']} tokens "
          f"({len(manifest['shards'])} Arrow shards, {len(manifest['megatron'])} Megatron parts); "
          f"padding {t['padding_rate']:.4%}, split documents {t['split_doc_rate']:.2%} -> {args.out}")
    return 0


def _table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[f"{c:,}" if isinstance(c, int) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in cells)


def _decoder(path: str | None):
    if not path:
        return None
    import sentencepiece as spm

    try:
        return spm.SentencePieceProcessor(model_file=path)
    except (OSError, RuntimeError) as exc:
        raise UserError(f"--tokenizer {path}: cannot load ({exc})") from None


def describe_row(tokens, length: int, offsets, ids, positions, decode, chars: int) -> str:
    """One row as text with its document boundaries marked (decoded when a tokenizer is given)."""
    parts = []
    bounds = list(offsets) + [length]
    for i, start in enumerate(offsets):
        segment = [int(t) for t in tokens[start: bounds[i + 1]]]
        body = decode(segment) if decode else " ".join(map(str, segment))
        body = body if len(body) <= chars else body[: chars // 2] + " … " + body[-chars // 2:]
        name = ids[i][:12] + ("#" + ids[i].rsplit("#", 1)[1] if "#" in ids[i] else "")  # keep the copy number
        mark = MARK_START.format(name) if positions[i] == 0 else MARK_CONT.format(name, positions[i])
        parts.append(mark + body.replace("\n", "⏎"))
    if length < len(tokens):
        parts.append(MARK_PAD.format(len(tokens) - length))
    return "".join(parts)


def run_inspect_command(args: argparse.Namespace) -> int:
    from trainer_bridge.manifest import MANIFEST_NAME, ManifestError, parse
    from trainer_bridge.shards import ShardReader
    from trainer_bridge.stream import ShardStream

    path = args.shards if args.shards.endswith(".json") else os.path.join(args.shards, MANIFEST_NAME)
    if not os.path.exists(path):
        raise UserError(f"{path} not found (is {args.shards} a `jcorpus pack` output?)")
    try:
        with open(path, encoding="utf-8") as handle:
            m = parse(handle.read(), where=path)
    except ManifestError as exc:
        raise UserError(str(exc)) from None
    t = m["totals"]
    print(f"{path}: seq_len {m['seq_len']}, vocab {m['vocab_size']:,} ({m['token_dtype']}), packing {m['packing']}, "
          f"seed {m['seed']}, tokenizer sha256 {m['tokenizer']['sha256'][:16]}…")
    print(_table(["shard", "rows", "tokens", "MiB", "sha256"],
                 [[s["file"], s["rows"], s.get("tokens", 0), f"{s.get('bytes', 0) / 2**20:.2f}", s["sha256"][:16]]
                  for s in m["shards"]]))
    print(f"\nrows {t.get('rows', 0):,}  tokens {t.get('tokens', 0):,}  padding {t.get('padding_tokens', 0):,} "
          f"({t.get('padding_rate', 0):.4%})  documents {t.get('docs', 0):,}  split {t.get('split_docs', 0):,} "
          f"({t.get('split_doc_rate', 0):.2%})  input documents {t.get('input_docs', 0):,}")
    for title in ("by_kind", "by_source"):
        entries = m.get(title, {})
        print("\n" + _table([title[3:], "docs", "tokens", "split_docs"],
                            [[k, v["docs"], v["tokens"], v["split_docs"]] for k, v in sorted(entries.items())]))
    groups = m.get("mixture", {}).get("groups", {})
    if groups:
        print("\n" + _table(["mixture", "weight", "target_share", "realized_share"],
                            [[g, v["weight"], f"{v['target_share']:.4f}", f"{v['realized_share']:.4f}"]
                             for g, v in groups.items()]))
    if args.verify:
        try:
            stream = ShardStream(path, global_batch_size=1, prefetch=0)
            for shard in range(len(m["shards"])):
                stream._reader(shard)
        except Exception as exc:  # ShardIntegrityError and unreadable files alike: one line
            raise UserError(str(exc)) from None
        print(f"\nverified {len(m['shards'])} shards against the manifest")
    recorded = m["tokenizer"].get("path")
    decoder = _decoder(args.tokenizer or (recorded if recorded and os.path.exists(recorded) else None))
    shown = 0
    for shard in m["shards"]:
        if shown >= args.rows:
            break
        try:
            reader = ShardReader(os.path.join(os.path.dirname(path), shard["file"]))
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise UserError(f"shard {shard['file']}: cannot read it ({type(exc).__name__}: {exc}); "
                            "`--verify` checks every shard against the manifest") from None
        table = reader.table()
        for i in range(min(args.rows - shown, reader.num_rows)):
            row = table.slice(i, 1).to_pylist()[0]
            print(f"\n--- {shard['file']} row {i} ({row['length']} tokens, {len(row['doc_offsets'])} segments)")
            print(describe_row(reader.tokens(i), row["length"], row["doc_offsets"], row["doc_ids"],
                               row["doc_positions"], decoder.decode if decoder else None, args.chars))
            shown += 1
    return 0
