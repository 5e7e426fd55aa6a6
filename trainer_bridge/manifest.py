"""`SHARDS/manifest.json`: what a pack produced, how to verify it, and the accounting a trainer reports.

The manifest is canonical JSON (sorted keys, no timestamps) so equal inputs give byte-identical manifests.
"""
from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from trainer_bridge.megatron import encode_megatron, megatron_dtype
from trainer_bridge.mixture import (
    CopyKey,
    copies,
    copy_key,
    group_of,
    mixture_group,
    mixture_report,
    weight_for,
)
from trainer_bridge.packing import materialize, plan_rows, split_documents, token_dtype
from trainer_bridge.shards import ShardReader, encode_arrow_shard, sha256_hex, sha256_read

MANIFEST_FORMAT = "jcorpus.shards/1"
MANIFEST_NAME = "manifest.json"
TOTALS = ("rows", "tokens", "padding_tokens", "padding_rate", "docs", "split_docs", "split_doc_rate")
# What readers index, with its JSON type: `str`; `int` (an integer >= 0, never a boolean); `float` (any finite
# number); {key: type} an object holding those keys (`key?`: checked when present; `*`: every key); [type] an array
# of such items. STREAM is what ShardStream and jcorpus-train need (a hand-made manifest may hold no more); PACKED
# is what `jcorpus pack` always writes and `shards inspect` prints as well.
SHARD = {"file": str, "sha256": str, "rows": int, "bytes?": int, "tokens?": int}
PART = {"prefix": str, "bin_sha256": str, "idx_sha256": str, "bin_bytes?": int, "idx_bytes?": int,
        "documents?": int, "tokens?": int}
STREAM = {"format": str, "seq_len": int, "row_len": int, "vocab_size": int, "token_dtype?": str,
          "tokenizer": {"eos_id": int, "pad_id": int}, "shards": [SHARD], "megatron?": [PART]}
_BY = {"*": {"docs": int, "tokens": int, "split_docs": int}}
PACKED = {**{k: v for k, v in STREAM.items() if k not in ("token_dtype?", "megatron?")},
          "token_dtype": str, "seed": int, "packing": str, "megatron": [PART],
          "tokenizer": {"sha256": str, "eos_id": int, "pad_id": int, "path?": str},
          "totals": {**dict.fromkeys(TOTALS, int), "padding_rate": float, "split_doc_rate": float, "input_docs?": int}, "by_kind?": _BY, "by_source?": _BY,
          "mixture?": {"groups?": {"*": {"weight": float, "target_share": float, "realized_share": float}}}}
_JSON_NAMES = {str: "a JSON string", int: "a JSON integer >= 0", float: "a finite JSON number"}
TEXT_BYTES_PER_TOKEN = 3  # Japanese UTF-8 is 3 bytes a character; good tokenizers give 1-2 characters a token


class ManifestError(ValueError):
    """A manifest that is missing, malformed or from another format version."""


def dumps(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def parse(text: str | bytes, where: str = MANIFEST_NAME, *, packed: bool = False) -> dict[str, Any]:
    """Parse and validate a manifest (bytes: as UTF-8), with a one-line error naming what is wrong (never a
    KeyError, UnicodeDecodeError or RecursionError later).

    `packed` also requires everything `jcorpus pack` writes (`shards inspect` reads it all); without it, what
    streaming needs.
    """
    try:
        manifest = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ManifestError(f"{where}: not a manifest (JSON nested too deeply)") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    spec = PACKED if packed else STREAM
    missing = [key for key in spec if not key.endswith("?") and key not in manifest]
    if missing:
        raise ManifestError(f"{where}: missing keys {missing}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ManifestError(f"{where}: format {manifest['format']!r} is not {MANIFEST_FORMAT!r}")
    _check_members(manifest, spec, "", where)
    _check_values(manifest, where)
    return manifest


def _check(value: Any, kind: Any, name: str, where: str) -> None:
    """`value` has the JSON type `kind` (see STREAM): a one-line error here, not a KeyError or TypeError later."""
    if isinstance(kind, list):
        if not isinstance(value, list):
            raise ManifestError(f"{where}: {name} must be a JSON array")
        for i, item in enumerate(value):
            _check(item, kind[0], f"{name}[{i}]", where)
    elif isinstance(kind, dict):
        required = [key for key in kind if key[-1] not in "?*"]
        if not isinstance(value, dict) or not set(required) <= set(value):
            raise ManifestError(f"{where}: {name} must be an object with {', '.join(required) or 'string keys'}")
        _check_members(value, kind, f"{name}.", where)
    elif not _is_json(value, kind):
        raise ManifestError(f"{where}: {name} must be {_JSON_NAMES[kind]}, got {json.dumps(value)[:40]}")


def _check_members(value: Mapping[str, Any], kind: Mapping[str, Any], prefix: str, where: str) -> None:
    for key, item_kind in kind.items():
        for sub in value if key == "*" else [key.rstrip("?")]:
            if sub in value:
                _check(value[sub], item_kind, prefix + sub, where)


def _is_json(value: Any, kind: type) -> bool:
    if kind is str:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return type(value) is int and value >= 0 if kind is int else math.isfinite(value)


def _check_values(m: Mapping[str, Any], where: str) -> None:
    """What types cannot say: sizes that agree, ids inside the vocabulary, file names inside the manifest's folder."""
    if m["seq_len"] < 1 or m["row_len"] != m["seq_len"] + 1 or m["vocab_size"] < 1:
        raise ManifestError(f"{where}: seq_len {m['seq_len']}, row_len {m['row_len']} and vocab_size "
                            f"{m['vocab_size']} must be >= 1, with row_len = seq_len + 1")
    for key in ("eos_id", "pad_id"):
        if m["tokenizer"][key] >= m["vocab_size"]:
            raise ManifestError(f"{where}: tokenizer.{key} {m['tokenizer'][key]} is not below vocab_size "
                                f"{m['vocab_size']}")
    expected = str(token_dtype(m["vocab_size"]))
    if m.get("token_dtype", expected) != expected:
        raise ManifestError(f"{where}: token_dtype {m['token_dtype']!r} is not {expected!r}, the token type of "
                            f"vocab_size {m['vocab_size']}")
    for name in [s["file"] for s in m["shards"]] + [p["prefix"] for p in m.get("megatron", [])]:
        if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            raise ManifestError(f"{where}: file name {name!r} is not a path inside the manifest's folder "
                                "(absolute, empty or with a '..' part)")


def listed_files(manifest: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    """Every file a manifest lists: (path under its folder, sha256, size in bytes or None if not recorded)."""
    files = [(s["file"], s["sha256"], s.get("bytes")) for s in manifest["shards"]]
    for part in manifest["megatron"]:
        files += [(f"{part['prefix']}.{ext}", part[f"{ext}_sha256"], part.get(f"{ext}_bytes")) for ext in ("bin", "idx")]
    return files


def check_file(folder: str, name: str, size: int | None = None, fs: pafs.FileSystem | None = None) -> str:
    """The path of a listed file, refused when it is missing, not a regular file (opening a FIFO blocks forever, a
    device never ends) or, given `size`, of another size. A stat: cheap enough for every shard before any opening.
    `fs` is the pyarrow filesystem of a URI manifest (then `folder` is a path on it)."""
    path = f"{folder}/{name}" if fs else os.path.join(folder, name)
    try:
        info = fs.get_file_info(path) if fs else os.stat(path)  # both follow symlinks
    except OSError:  # a dangling symlink, a path through a file, no permission
        info = None
    if info is None or (fs and info.type == pafs.FileType.NotFound):
        raise ManifestError(f"{name}: missing (the manifest lists it; re-run `jcorpus pack`)")
    if not (info.type == pafs.FileType.File if fs else stat.S_ISREG(info.st_mode)):
        raise ManifestError(f"{name}: not a regular file (a FIFO, device or folder where the manifest lists a file)")
    actual = info.size if fs else info.st_size
    if size is not None and actual != size:
        raise ManifestError(f"{name}: {actual:,} bytes, the manifest says {size:,} (truncated or replaced; "
                            "re-run `jcorpus pack`)")
    return path


def verify_files(manifest: Mapping[str, Any], folder: str) -> int:
    """Check every listed file's size and sha256 (and each Arrow shard's rows) against the manifest.

    Raises ManifestError naming the first file that differs; returns how many files were checked.
    """
    files = listed_files(manifest)
    for name, sha256, size in files:
        with open(check_file(folder, name, size), "rb") as handle:
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


# A document copy on its way to packing: ((id, copy number), source, kind, license, tokens including EOS).
DocCopy = tuple[CopyKey, str, str, str, np.ndarray]


def pack_group(group: int, docs: Sequence[DocCopy], s: PackSettings) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Pack one group (sorted here by key, then the rest of the record) into file contents plus a record of files
    and statistics. Ids are unique in curated output, but a pack takes any Parquet: copies sharing a key would
    keep their arrival order, which depends on the workers."""
    docs = sorted(docs, key=lambda d: (*d[:4], d[4].tobytes()))  # the whole record: copies may share a key
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
