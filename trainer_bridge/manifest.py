"""`SHARDS/manifest.json`: what a pack produced, how to verify it, and the accounting a trainer reports.

The manifest is canonical JSON (sorted keys, no timestamps) so equal inputs give byte-identical manifests.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainer_bridge.megatron import encode_megatron, megatron_dtype
from trainer_bridge.mixture import copies, copy_key, group_of, mixture_group, mixture_report, weight_for
from trainer_bridge.packing import materialize, plan_rows, split_documents, token_dtype
from trainer_bridge.shards import ShardReader, encode_arrow_shard, sha256_hex, sha256_read

MANIFEST_FORMAT = "jcorpus.shards/1"
MANIFEST_NAME = "manifest.json"
TOTALS = ("rows", "tokens", "padding_tokens", "padding_rate", "docs", "split_docs", "split_doc_rate")
# Keys readers index, as key: (JSON type, keys of the object or of each array item). STREAM is what ShardStream
# and jcorpus-train need (a hand-made manifest may hold no more); PACKED is what `jcorpus pack` always writes
# and `shards inspect` prints as well.
STREAM = {"format": (str, ()), "seq_len": (int, ()), "row_len": (int, ()), "vocab_size": (int, ()),
          "tokenizer": (dict, ("eos_id", "pad_id")), "shards": (list, ("file", "sha256", "rows"))}
PACKED = {**STREAM, "token_dtype": (str, ()), "seed": (int, ()), "packing": (str, ()),
          "tokenizer": (dict, ("sha256", "eos_id", "pad_id")), "totals": (dict, TOTALS),
          "megatron": (list, ("prefix", "bin_sha256", "idx_sha256"))}
_JSON_NAMES = {str: "string", int: "integer", dict: "object", list: "array"}
TEXT_BYTES_PER_TOKEN = 3  # Japanese UTF-8 is 3 bytes a character; good tokenizers give 1-2 characters a token


class ManifestError(ValueError):
    """A manifest that is missing, malformed or from another format version."""


def dumps(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def parse(text: str, where: str = MANIFEST_NAME, *, packed: bool = False) -> dict[str, Any]:
    """Parse and validate a manifest, with a one-line error naming what is wrong (never a KeyError later).

    `packed` also requires everything `jcorpus pack` writes (`shards inspect` reads it all); without it, what
    streaming needs.
    """
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    spec = PACKED if packed else STREAM
    missing = [key for key in spec if key not in manifest]
    if missing:
        raise ManifestError(f"{where}: missing keys {missing}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ManifestError(f"{where}: format {manifest['format']!r} is not {MANIFEST_FORMAT!r}")
    for key, (kind, keys) in spec.items():
        value = manifest[key]
        if not isinstance(value, kind):
            raise ManifestError(f"{where}: {key} must be a JSON {_JSON_NAMES[kind]}")
        if kind is dict:
            _check_entry(value, key, keys, where)
        for i, entry in enumerate(value if kind is list else []):
            _check_entry(entry, f"{key}[{i}]", keys, where)
    return manifest


def _check_entry(entry: Any, name: str, keys: Sequence[str], where: str) -> None:
    """An object of the manifest holds the keys its readers index: a one-line error here, not a KeyError later."""
    if not isinstance(entry, dict) or not set(keys) <= set(entry):
        raise ManifestError(f"{where}: {name} must be an object with {', '.join(keys)}")


def listed_files(manifest: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    """Every file a manifest lists: (path under its folder, sha256, size in bytes or None if not recorded)."""
    files = [(s["file"], s["sha256"], s.get("bytes")) for s in manifest["shards"]]
    for part in manifest["megatron"]:
        files += [(f"{part['prefix']}.{ext}", part[f"{ext}_sha256"], part.get(f"{ext}_bytes")) for ext in ("bin", "idx")]
    return files


def verify_files(manifest: Mapping[str, Any], folder: str) -> int:
    """Check every listed file's size and sha256 (and each Arrow shard's rows) against the manifest.

    Raises ManifestError naming the first file that differs; returns how many files were checked.
    """
    files = listed_files(manifest)
    for name, sha256, size in files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ManifestError(f"{name}: missing (the manifest lists it; re-run `jcorpus pack`)")
        actual = os.path.getsize(path)
        if size is not None and actual != size:
            raise ManifestError(f"{name}: {actual:,} bytes, the manifest says {size:,} (truncated or replaced; "
                                "re-run `jcorpus pack`)")
        with open(path, "rb") as handle:
            digest = sha256_read(handle)
        if digest != sha256:
            raise ManifestError(f"{name}: sha256 {digest[:16]}... does not match the manifest's {sha256[:16]}... "
                                "(corrupted or replaced; re-run `jcorpus pack`)")
    for shard in manifest["shards"]:
        reader = ShardReader(os.path.join(folder, shard["file"]))
        if (reader.num_rows, reader.row_len) != (shard["rows"], manifest["row_len"]):
            raise ManifestError(f"{shard['file']}: {reader.num_rows} rows of {reader.row_len} tokens, the manifest "
                                f"says {shard['rows']} rows of {manifest['row_len']}")
        reader.close()
    return len(files)


@dataclass
class PackSettings:
    """Everything that decides the bytes of a pack (besides the documents)."""

    seq_len: int
    vocab_size: int
    eos_id: int
    pad_id: int
    packing: str = "bestfit"
    seed: int = 0
    formats: tuple[str, ...] = ("arrow",)
    mix: dict[str, float] = field(default_factory=dict)
    shard_bytes: int = 256 << 20
    window_rows: int = 4096
    max_open: int = 512
    groups: int = 0  # packing groups; 0 = derive from the token count (write_local)

    @property
    def row_len(self) -> int:
        return self.seq_len + 1

    def n_groups(self, total_tokens: int) -> int:
        """Packing groups: about one shard's worth of tokens each, a function of the input only."""
        return max(1, math.ceil(total_tokens * token_dtype(self.vocab_size).itemsize / self.shard_bytes))

    def groups_for_text(self, text_bytes: int) -> int:
        """The same from the input's text size (known before tokenizing), assuming ~3 UTF-8 bytes per token."""
        return self.n_groups(text_bytes // TEXT_BYTES_PER_TOKEN)

    def options(self) -> dict[str, Any]:
        options = {"seq_len": self.seq_len, "row_len": self.row_len, "seed": self.seed, "packing": self.packing,
                   "formats": list(self.formats), "shard_bytes": self.shard_bytes,
                   "token_dtype": str(token_dtype(self.vocab_size)),
                   "megatron_dtype": str(megatron_dtype(self.vocab_size))}
        if self.packing == "bestfit":
            options.update(window_rows=self.window_rows, max_open=self.max_open)
        if self.groups:
            options["groups"] = self.groups
        return options


# A document copy on its way to packing: (key, source, kind, license, tokens including EOS).
DocCopy = tuple[str, str, str, str, np.ndarray]


def pack_group(group: int, docs: Sequence[DocCopy], s: PackSettings) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Pack one group (sorted here by key) into file contents plus a record of files and statistics."""
    docs = sorted(docs, key=lambda d: d[0])
    keys, sources, tokens = [d[0] for d in docs], [d[1] for d in docs], [d[4] for d in docs]
    options = {"window_rows": s.window_rows, "max_open": s.max_open} if s.packing == "bestfit" else {}
    # Rows exist only in Arrow shards; a Megatron part holds whole documents, so a megatron-only pack plans none.
    plan = plan_rows([len(t) for t in tokens], s.row_len, s.packing, **options) if "arrow" in s.formats else []
    split = split_documents(plan)
    files: dict[str, bytes] = {}
    record: dict[str, Any] = {"shards": [], "megatron": [], "stats": _group_stats(docs, split, len(plan), s)}
    if "arrow" in s.formats:
        per_shard = max(1, s.shard_bytes // (s.row_len * token_dtype(s.vocab_size).itemsize))
        for part, lo in enumerate(range(0, len(plan), per_shard)):
            rows = materialize(plan[lo: lo + per_shard], tokens, keys, sources, s.row_len, s.pad_id, s.vocab_size)
            name = f"shard-{group:05d}-{part:03d}.arrow"
            files[name] = data = encode_arrow_shard(rows, s.vocab_size)
            record["shards"].append({"file": name, "sha256": sha256_hex(data), "rows": len(rows),
                                     "tokens": int(rows.lengths.sum()), "bytes": len(data)})
    if "megatron" in s.formats:
        prefix = f"megatron/part-{group:05d}"
        entry: dict[str, Any] = {"prefix": prefix, "documents": len(tokens), "tokens": int(sum(map(len, tokens)))}
        for ext, data in zip(("bin", "idx"), encode_megatron(tokens, s.vocab_size), strict=True):
            files[f"{prefix}.{ext}"] = data
            entry.update({f"{ext}_sha256": sha256_hex(data), f"{ext}_bytes": len(data)})
        record["megatron"].append(entry)
    return files, record


def _group_stats(docs: Sequence[DocCopy], split: set[int], n_rows: int, s: PackSettings) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for i, (_key, source, kind, license_, tokens) in enumerate(docs):
        entry = {"docs": 1, "tokens": len(tokens), "split_docs": int(i in split)}
        merge_into(stats, {"by_kind": {kind: entry}, "by_source": {source: entry},
                           "licenses": {license_: {"docs": 1, "tokens": len(tokens)}},
                           "mix_out": {mixture_group(s.mix, source, kind): {"output_tokens": len(tokens),
                                                                           "output_docs": 1}}})
    real = sum(len(d[4]) for d in docs)
    padding = n_rows * s.row_len - real if n_rows else 0  # no rows: a megatron-only pack pads nothing
    merge_into(stats, {"totals": {"rows": n_rows, "tokens": real, "padding_tokens": padding,
                                  "docs": len(docs), "split_docs": len(split), "groups": 1}})
    return stats


def merge_into(acc: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """Add nested number dicts (the same rule as pipeline.stats, which trainer_bridge must not import)."""
    for key, value in part.items():
        if isinstance(value, Mapping):
            merge_into(acc.setdefault(key, {}), value)
        else:
            acc[key] = acc.get(key, 0) + value
    return acc


def combine(records: Sequence[Mapping[str, Any]], input_stats: Mapping[str, Any], s: PackSettings,
            tokenizer: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest from every group's record plus the input statistics (`input`, `mix_in`)."""
    stats: dict[str, Any] = {}
    shards, parts = [], []
    for record in records:
        merge_into(stats, record["stats"])
        shards += record["shards"]
        parts += record["megatron"]
    merge_into(stats, {"totals": dict(input_stats.get("input", {}))})
    mix_in, mix_out = input_stats.get("mix_in", {}), stats.pop("mix_out", {})
    tally = {g: {"weight": s.mix.get(g, 1.0), "input_tokens": mix_in[g]["input_tokens"],
                 "output_tokens": mix_out.get(g, {}).get("output_tokens", 0)} for g in mix_in}
    return build(shards=shards, megatron=parts, stats=stats, options=s.options(), tokenizer=tokenizer,
                 mixture=mixture_report(s.mix, tally))


def input_stats_for(doc_id: str, source: str, kind: str, n_tokens: int, text_bytes: int,
                    s: PackSettings) -> dict[str, Any]:
    """Statistics of one input document before mixture (n_tokens includes the EOS).

    An empty document (EOS only) is never packed, so its EOS is no input token either: realized weights compare
    like with like.
    """
    empty = n_tokens <= 1
    return {"input": {"input_docs": 1, "input_text_bytes": text_bytes, "empty_docs": int(empty)},
            "mix_in": {mixture_group(s.mix, source, kind): {"input_tokens": 0 if empty else n_tokens,
                                                           "input_docs": 1}}}


def mixture_copies(doc_id: str, source: str, kind: str, license_: str, tokens: np.ndarray,
                   s: PackSettings) -> list[DocCopy]:
    """The copies of one tokenized document that the mixture keeps (none for an empty document)."""
    if len(tokens) <= 1:
        return []
    n = copies(doc_id, weight_for(s.mix, source, kind), s.seed)
    return [(copy_key(doc_id, c), source, kind, license_, tokens) for c in range(n)]


def write_local(out_dir: str, docs: Sequence[tuple[str, str, str, str, np.ndarray]], s: PackSettings,
                tokenizer: Mapping[str, Any]) -> dict[str, Any]:
    """Pack already tokenized documents (id, source, kind, license, tokens with EOS) without Beam.

    The same bytes and manifest as `jcorpus pack` for the same documents and `s.groups` (0 here means: from the
    token count); for tests, benchmarks and small corpora.
    """
    input_stats: dict[str, Any] = {}
    groups: dict[int, list[DocCopy]] = {}
    kept = []
    for doc_id, source, kind, license_, tokens in docs:
        merge_into(input_stats, input_stats_for(doc_id, source, kind, len(tokens), 0, s))
        kept += mixture_copies(doc_id, source, kind, license_, tokens, s)
    n_groups = s.groups or s.n_groups(sum(len(d[4]) for d in kept))
    for copy in kept:
        groups.setdefault(group_of(copy[0], n_groups, s.seed), []).append(copy)
    records = []
    for group in sorted(groups):
        files, record = pack_group(group, groups[group], s)
        for name, data in files.items():
            path = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(data)
        records.append(record)
    manifest = combine(records, input_stats, s, tokenizer)
    with open(os.path.join(out_dir, MANIFEST_NAME), "w", encoding="utf-8") as handle:
        handle.write(dumps(manifest))
    return manifest


def build(*, shards: list[dict[str, Any]], megatron: list[dict[str, Any]], stats: Mapping[str, Any],
          options: Mapping[str, Any], tokenizer: Mapping[str, Any], mixture: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble the manifest from per-group results (`stats` already merged across groups)."""
    totals = {"rows": 0, "tokens": 0, "padding_tokens": 0, "docs": 0, "split_docs": 0, **stats.get("totals", {})}
    slots = totals["rows"] * options["row_len"]
    totals["padding_rate"] = totals["padding_tokens"] / slots if slots else 0.0
    totals["split_doc_rate"] = totals["split_docs"] / totals["docs"] if totals["docs"] else 0.0
    return {
        "format": MANIFEST_FORMAT,
        "seq_len": options["seq_len"],
        "row_len": options["row_len"],
        "vocab_size": tokenizer["vocab_size"],
        "token_dtype": options["token_dtype"],
        "seed": options["seed"],
        "packing": options["packing"],
        "options": dict(sorted(options.items())),
        "tokenizer": dict(tokenizer),
        "shards": sorted(shards, key=lambda s: s["file"]),
        "megatron": sorted(megatron, key=lambda s: s["prefix"]),
        "totals": totals,
        "by_kind": stats.get("by_kind", {}),
        "by_source": stats.get("by_source", {}),
        "licenses": stats.get("licenses", {}),
        "mixture": dict(mixture),
    }
