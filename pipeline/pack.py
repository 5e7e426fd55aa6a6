"""The pack graph: curated Parquet → tokens + EOS → mixture copies → packing groups → Arrow / Megatron shards.

Determinism for any worker count: each document copy goes to packing group hash(key) mod n, where the driver
derives n from the input's text size in the Parquet footers (never from the workers); a group is sorted by key and
packed by one DoFn call that writes the shards named after the group. The driver writes into a temporary
folder and moves the files into place, manifest last, so a manifest always describes complete shards (and at
least one document: a pack that kept nothing is an error, not an empty output).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.beamutil import split
from pipeline.documents import check_text_column
from pipeline.errors import UserError, stops_deferred
from pipeline.fsutil import (
    check_curate_finished,
    exists,
    join,
    match_files,
    regular_file,
    remove_tree,
    write_bytes,
)
from pipeline.report_inputs import unreadable_parquet
from pipeline.runner import new_pipeline, pipeline_options, run
from pipeline.stats import MergeStats
from tokenizer.train import TokenizerError, load
from trainer_bridge.manifest import (
    MANIFEST_NAME,
    PackSettings,
    combine,
    dumps,
    input_stats_for,
    listed_files,
    mixture_copies,
    pack_group,
    parse,
)
from trainer_bridge.mixture import group_of
from trainer_bridge.packing import token_dtype

COLUMNS = ["id", "source", "kind", "text", "license"]
FORMATS = ("arrow", "megatron")
TMP_PREFIX = ".tmp-pack-"
UNREADABLE_NAME = "unreadable.txt"  # in the temporary folder: the row groups the workers could not read


@dataclass
class PackOptions:
    input: str
    tokenizer: str
    seq_len: int
    out: str
    formats: tuple[str, ...] = ("arrow",)
    mix: dict[str, float] = field(default_factory=dict)
    packing: str = "bestfit"
    seed: int = 0
    shard_bytes: int = 256 << 20
    window_rows: int = 4096
    max_open: int = 512


@dataclass
class TokenizerInfo:
    path: str
    sha256: str
    vocab_size: int
    eos_id: int
    pad_id: int

    def manifest_entry(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "vocab_size": self.vocab_size, "eos_id": self.eos_id, "pad_id": self.pad_id,
                "file": self.path.rsplit("/", 1)[-1], "path": self.path}


def read_tokenizer(path: str) -> TokenizerInfo:
    """Hash and validate the SentencePiece model once in the driver.

    A local path is made absolute: the manifest then names the model the same way however it was typed, and
    `shards inspect` finds it from any folder.
    """
    local = "://" not in path
    path = os.path.abspath(path) if local else path
    if not exists(path):
        raise UserError(f"tokenizer model {path} not found")
    if local and os.path.isdir(path):
        raise UserError(f"--tokenizer {path} is a folder; pass the model file in it ({join(path, 'tokenizer.model')})")
    with FileSystems.open(regular_file(path)) as handle:
        model = handle.read()
    try:
        processor = load(model, path)
    except TokenizerError as exc:
        raise UserError(str(exc)) from None
    if processor.eos_id() < 0:
        raise UserError(f"{path}: the tokenizer has no end-of-document piece </s>")
    pad = processor.pad_id() if processor.pad_id() >= 0 else processor.eos_id()
    return TokenizerInfo(path, hashlib.sha256(model).hexdigest(), processor.get_piece_size(), processor.eos_id(), pad)


class TokenizeAndMix(beam.DoFn):
    """Tokenize one document, append EOS and emit the copies the mixture keeps (plus input statistics).

    Emits ("docs", copy) and ("stats", dict) pairs, split by `pipeline.beamutil.split` (works on every runner).
    """

    def __init__(self, tokenizer: str, settings: PackSettings):
        self.tokenizer, self.settings = tokenizer, settings

    def setup(self) -> None:
        with FileSystems.open(self.tokenizer) as handle:
            self.processor = load(handle.read(), self.tokenizer)  # one processor per worker
        self.eos = self.processor.eos_id()
        self.dtype = token_dtype(self.settings.vocab_size)

    def process(self, row: dict[str, Any]):
        text = row.get("text") or ""
        doc_id, source, kind = str(row["id"]), str(row["source"]), str(row["kind"])
        license_ = str(row.get("license") or "unknown")
        tokens = np.asarray(self.processor.encode(text) + [self.eos], dtype=np.uint32)
        yield "stats", input_stats_for(doc_id, source, kind, len(tokens), len(text.encode("utf-8")), self.settings)
        for key, *rest, copy_tokens in mixture_copies(doc_id, source, kind, license_, tokens, self.settings):
            # Bytes of the shard's token width: a compact, cheap-to-encode shuffle payload.
            yield "docs", (key, *rest, copy_tokens.astype(self.dtype).tobytes())


class ReadRowGroup(beam.DoFn):
    """("rows", row) for the rows of one Parquet row group, opened by its literal path; ("unreadable", message)
    when its pages are corrupt. The driver checked only the footers, so the damage shows here first; the driver
    then stops with that one line instead of a worker traceback.

    Beam's Parquet reader matches every file name as a glob again, so a file under `cur [1]/` would read nothing.
    """

    def process(self, part: tuple[str, int]):
        import pyarrow.parquet as pq

        name, group = part
        try:
            with FileSystems.open(name) as handle:
                pf = pq.ParquetFile(handle)
                for batch in pf.iter_batches(batch_size=1024, row_groups=[group], columns=COLUMNS):
                    yield from (("rows", row) for row in batch.to_pylist())
        except (pa.ArrowException, OSError) as exc:
            yield "unreadable", str(unreadable_parquet(name, exc, f"row group {group}: "))


class PackGroup(beam.DoFn):
    """Pack one group's documents, write its files into the temporary folder, emit its record."""

    def __init__(self, settings: PackSettings, tmp_dir: str):
        self.settings, self.tmp_dir = settings, tmp_dir

    def process(self, item: tuple[int, Any]):
        group, docs = item
        dtype = token_dtype(self.settings.vocab_size)
        copies = [(*d[:4], np.frombuffer(d[4], dtype=dtype)) for d in docs]
        files, record = pack_group(group, copies, self.settings)
        for name, data in sorted(files.items()):
            write_bytes(join(self.tmp_dir, name), data)
        yield record


def build(p: beam.Pipeline, row_groups: list[tuple[str, int]], settings: PackSettings, tok: TokenizerInfo,
          tmp_dir: str) -> None:
    read = split(p | "InputRowGroups" >> beam.Create(row_groups) | "Spread" >> beam.Reshuffle()
                 | "Read" >> beam.ParDo(ReadRowGroup()), "Read", ("rows", "unreadable"))
    (
        read["unreadable"]
        | "AllUnreadable" >> beam.combiners.ToList()
        | "WriteUnreadable" >> beam.Map(_write_unreadable, tmp_dir)
    )
    tagged = read["rows"] | "TokenizeAndMix" >> beam.ParDo(TokenizeAndMix(tok.path, settings))
    parts = split(tagged, "Tokenized", ("docs", "stats"))
    docs = parts["docs"]
    input_stats = parts["stats"] | "InputStats" >> beam.CombineGlobally(MergeStats())
    tokenizer = tok.manifest_entry()
    (
        docs
        | "AssignGroup" >> beam.Map(lambda d: (group_of(d[0], settings.groups, settings.seed), d))
        | "ByGroup" >> beam.GroupByKey()
        | "Pack" >> beam.ParDo(PackGroup(settings, tmp_dir))
        | "AllRecords" >> beam.combiners.ToList()
        | "Manifest" >> beam.Map(lambda recs, st: combine(recs, st, settings, tokenizer),
                                 st=beam.pvalue.AsSingleton(input_stats))
        | "WriteManifest" >> beam.Map(lambda m: write_bytes(join(tmp_dir, MANIFEST_NAME), dumps(m).encode("utf-8")))
    )


def _write_unreadable(found: list[str], tmp_dir: str) -> None:
    """One line per unreadable row group, in a fixed order, for the driver (nothing when all were read)."""
    if found:
        write_bytes(join(tmp_dir, UNREADABLE_NAME), "\n".join(sorted(found)).encode("utf-8"))


def input_row_groups(path: str) -> tuple[list[tuple[str, int]], int]:
    """The Parquet row groups to pack, as (file, index), and their text size from the footers (no data read).

    Each file is checked for the columns the pack needs (a one-line error otherwise). The text size decides the
    number of packing groups in the driver, so it is a function of the input alone on every runner.
    """
    import pyarrow.parquet as pq

    files, shown = _input_files(path)
    if not files:
        raise UserError(f"no Parquet files match {shown}")
    parts, text_bytes = [], 0
    for name in files:
        try:
            with FileSystems.open(regular_file(name)) as handle:
                meta = pq.read_metadata(handle)
        except Exception as exc:  # pyarrow raises ArrowInvalid for a non-Parquet file
            raise unreadable_parquet(name, exc) from None
        _check_schema(name, meta.schema.to_arrow_schema())
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            parts.append((name, g))
            text_bytes += sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)
                              if group.column(c).path_in_schema == "text")
    return parts, text_bytes


def _input_files(path: str) -> tuple[list[str], str]:
    """The files `--input` names, and how to name them in an error.

    An existing folder (its `*.parquet`) or file is taken literally, as its name may hold `[`; only a path that
    does not exist is a glob (or, without glob characters, a remote folder such as gs://bucket/curated).
    """
    check_curate_finished(path)
    if "://" not in path and os.path.isdir(path):
        files = (os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".parquet"))
        # a folder named *.parquet (a partitioned dataset's) is not a part; a FIFO or device is refused by name
        return [regular_file(f) for f in files if not os.path.isdir(f)], join(path, "*.parquet")
    pattern = path if exists(path) or any(c in path for c in "*?[") or path.endswith(".parquet") else join(path, "*.parquet")
    try:
        return sorted(match_files(pattern)), pattern
    except Exception:  # Beam raises BeamIOError when nothing matches on some filesystems
        return [], pattern


def _check_schema(name: str, schema: pa.Schema) -> None:
    """The columns the pack reads exist and `text` holds strings (else the tokenizer fails inside the pipeline)."""
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise UserError(f"{name}: missing columns {missing} (curated Parquet needs {COLUMNS})")
    check_text_column(name, schema)


def run_pack(opts: PackOptions, runner: str | None = None, workers: int = 1, extra: list[str] | None = None) -> dict:
    """Run the pack pipeline and return the manifest; raises UserError for fixable mistakes."""
    if opts.seq_len < 1:
        raise UserError(f"--seq-len must be positive, got {opts.seq_len}")
    unknown = set(opts.formats) - set(FORMATS)
    if unknown or not opts.formats:
        raise UserError(f"--format takes {','.join(FORMATS)}, got {','.join(opts.formats)}")
    if opts.packing not in ("bestfit", "concat"):
        raise UserError(f"--packing is bestfit or concat, got {opts.packing!r}")
    final_manifest = join(opts.out, MANIFEST_NAME)
    if exists(final_manifest):
        raise UserError(f"{final_manifest} already exists; choose another --out or remove the old shards")
    row_groups, text_bytes = input_row_groups(opts.input)
    tok = read_tokenizer(opts.tokenizer)
    settings = PackSettings(seq_len=opts.seq_len, vocab_size=tok.vocab_size, eos_id=tok.eos_id, pad_id=tok.pad_id,
                            packing=opts.packing, seed=opts.seed, formats=tuple(opts.formats), mix=dict(opts.mix),
                            shard_bytes=opts.shard_bytes, window_rows=opts.window_rows, max_open=opts.max_open)
    settings.groups = settings.groups_for_text(text_bytes)
    tmp_dir = join(opts.out, TMP_PREFIX + uuid.uuid4().hex[:12])
    created = "://" not in opts.out and not os.path.exists(opts.out)
    try:
        with pipeline_options(runner, workers, extra or []) as (beam_runner, options), \
                new_pipeline(beam_runner, options, runner) as p:
            build(p, row_groups, settings, tok, tmp_dir)
            run(p, runner)
        manifest = _checked_manifest(tmp_dir, opts.input)
    except BaseException:  # a failed, refused or interrupted run leaves no half output behind
        _discard(tmp_dir, opts.out if created else None)
        raise
    _commit(tmp_dir, opts.out, manifest)
    return manifest


def _checked_manifest(tmp_dir: str, source: str) -> dict:
    """The run's manifest, if every row group was read and a document was kept; else the one line why not."""
    unreadable = join(tmp_dir, UNREADABLE_NAME)
    if exists(unreadable):  # curated outputs are the input: a corrupt one is re-made, not packed without it
        with FileSystems.open(unreadable) as handle:
            found = handle.read().decode("utf-8").splitlines()
        more = f" (and {len(found) - 1} more unreadable row groups)" if len(found) > 1 else ""
        raise UserError(found[0] + more)
    manifest_path = join(tmp_dir, MANIFEST_NAME)
    with FileSystems.open(manifest_path) as handle:
        manifest = parse(handle.read().decode("utf-8"), where=manifest_path, packed=True)
    if not manifest["totals"]["docs"]:
        raise UserError(_nothing_packed(manifest, source))
    return manifest


def _nothing_packed(manifest: dict, source: str) -> str:
    """Why a pack kept no document: no documents, only empty ones, or mixture weights that dropped them all."""
    t = manifest["totals"]
    docs, empty = t.get("input_docs", 0), t.get("empty_docs", 0)
    if not docs:
        return f"{source} holds no documents: nothing to pack"
    if docs == empty:
        return f"{source} holds only empty documents ({docs:,}): nothing to pack"
    spec = ",".join(f"{k}={v:g}" for k, v in manifest["mixture"]["spec"].items())
    return f"--mix {spec} kept none of the {docs - empty:,} non-empty documents: nothing to pack"


def _discard(tmp_dir: str, created_out: str | None) -> None:
    """Remove the temporary folder, and the output folder this run created (only if left empty)."""
    remove_tree(tmp_dir)
    if created_out:
        with contextlib.suppress(OSError):
            os.rmdir(created_out)


def _commit(tmp_dir: str, out: str, manifest: dict) -> None:
    """Move every file into `out`, the manifest last, and remove the temporary folder; a stop signal waits."""
    moves = [name for name, _, _ in listed_files(manifest)]
    with stops_deferred():
        if manifest["megatron"] and not exists(join(out, "megatron")):
            FileSystems.mkdirs(join(out, "megatron"))
        FileSystems.rename([join(tmp_dir, m) for m in moves], [join(out, m) for m in moves])
        FileSystems.rename([join(tmp_dir, MANIFEST_NAME)], [join(out, MANIFEST_NAME)])
        remove_tree(tmp_dir)
