"""The curate graph: read → prepare → (site lines, filters) → exact / near dedup decisions → sinks → stats.

Documents are spilled to files of their output shard where they are produced and never shuffled. Dedup
steps see the documents still in play and emit decisions (near dedup reads the few texts it verifies back
from the spill files); the sinks apply the decisions per output shard.

Every branch ends in the stats combine, so the graph has a single leaf (some runners, Dask among them,
compute only the last leaf), and the driver commits the outputs only when every source balances.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.accounting import finalize_stats
from pipeline.beamutil import split, split_decided
from pipeline.config import CurateConfig, expand_files
from pipeline.dedup_exact import ExactDedup
from pipeline.documents import DESTINATIONS
from pipeline.errors import ConfigError, UserError, stops_deferred
from pipeline.fsutil import (
    STAGING_PREFIX,
    check_output_folder,
    exists,
    join,
    list_files,
    read_json,
    remove_tree,
    write_bytes,
    write_json,
)
from pipeline.prepare import Prepare, ReadFiles
from pipeline.runner import new_pipeline, pipeline_options, run, workers_local
from pipeline.sinks import Spill, SpilledTexts, WriteOutputs
from pipeline.staging import keep, owned, remove_stale
from pipeline.stats import MergeStats

PARTIAL_STATS = "stats.partial.json"


def build(p: beam.Pipeline, cfg: CurateConfig, files: list[tuple[int, str, int]], tmp_dir: str) -> None:
    stats = []
    read = split(
        p
        | "InputFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadFiles(cfg.sources, sum(f[2] for f in files))), "Read", ("doc", "stats"))
    stats.append(read["stats"])
    prepared = read["doc"] | "Prepare" >> beam.ParDo(Prepare(cfg))
    live, decided = split_decided(prepared, "AfterPrepare")
    done = [decided]
    if cfg.filters.get("enabled", True):
        from pipeline.filter_step import FilterStep

        live = live | "Filters" >> FilterStep(cfg.filters)
        live, decided = split_decided(live, "AfterFilters")
        done.append(decided)
    num_shards = _num_shards(cfg, files)
    spill_counts = (live, *done) | "Spill" >> Spill(tmp_dir, num_shards)
    decisions = []
    exact = None
    if cfg.exact_dedup:
        exact, dedup_stats = live | "ExactDedup" >> ExactDedup(cfg.priority)
        decisions.append(exact)
        stats.append(dedup_stats)
    if cfg.near_dedup.get("enabled"):
        from pipeline.dedup_near import NearDedup

        texts = functools.partial(SpilledTexts, tmp_dir, num_shards, spill_counts)  # one per verification read
        near, near_stats = live | "NearDedup" >> NearDedup(cfg.near_dedup, cfg.priority, exact, texts)
        decisions.append(near)
        stats.append(near_stats)
    all_decisions = (decisions or [p | "NoDedup" >> beam.Create([])]) | "AllDecisions" >> beam.Flatten()
    stats.append((all_decisions, spill_counts) | "Write" >> WriteOutputs(tmp_dir, num_shards, cfg.samples_per_reason))
    (
        stats
        | "AllStats" >> beam.Flatten()
        | "MergeStats" >> beam.CombineGlobally(MergeStats()).without_defaults()
        | "WriteStats" >> beam.Map(lambda s: write_json(join(tmp_dir, PARTIAL_STATS), s))
    )


def _num_shards(cfg: CurateConfig, files: list[tuple[int, str, int]]) -> int:
    """A function of the input, never of the workers."""
    return max(cfg.min_shards, math.ceil(sum(size for _, _, size in files) / cfg.shard_bytes))


# what a curate output is: the folders whose files `commit` replaces, then its two files
OUTPUT_FOLDERS, OUTPUT_FILES = (*DESTINATIONS, "samples"), ("stats.json", "_SUCCESS")
# written into a curate output by `jcorpus report` from it: a replaced output's report describes the old run
DERIVED_FILES = ("report.html",)
INDEX_FILES = "band-index-*.parquet"  # what dedup_near writes into index_out


def check_output(out: str, overwrite: bool) -> None:
    """Refuse an output folder that holds a curate output (any name `commit` replaces; `samples` was missing
    here, and its files were deleted without --overwrite) unless asked to replace it."""
    check_output_folder(out)
    existing = [name for name in OUTPUT_FILES if exists(join(out, name))]  # a folder by its files (object stores)
    existing += [name for name in OUTPUT_FOLDERS if exists(join(out, name)) or list_files(join(out, name, "*"))]
    if existing and not overwrite:
        raise UserError(f"{out} already holds a curate output ({', '.join(existing)}); pass --overwrite to replace it")


def _place(path: str) -> str:
    return path if "://" in path else os.path.realpath(path)


def _check_not_own_output(files: list[tuple[int, str, int]], out: str) -> None:
    """An input file inside --out's own output (a glob over OUT) is refused: each --overwrite run read the last
    one's samples back as input, and the input grew run after run."""
    owned = [_place(join(out, d)) + "/" for d in OUTPUT_FOLDERS] + [_place(join(out, STAGING_PREFIX))]
    for index, path, _ in files:
        if any(_place(path).startswith(prefix) for prefix in owned):
            raise ConfigError(f"sources[{index}].paths: {path} is in the output of --out {out}; a run would read "
                              "its own earlier output (match the inputs outside it)")


def commit(out: str, tmp_dir: str, stats: dict[str, Any], overwrite: bool,
           index: tuple[str, str] | None = None) -> None:
    """Move the finished files into place; `_SUCCESS` is written last so readers never see half an output (it
    goes first from an output being replaced), and a stop signal waits for the end (`stops_deferred`).
    Without --overwrite the folder is checked again: another run on the same --out that committed meanwhile
    was replaced silently, both runs saying they wrote it."""
    if not overwrite:
        try:
            check_output(out, overwrite=False)
        except UserError as exc:
            remove_tree(tmp_dir)
            remove_tree(index[0] if index else None)  # the staged index too (it stayed behind forever)
            raise UserError(f"{exc} (another run wrote it while this one ran)") from None
    with stops_deferred():
        if index:
            _replace_index(*index)
        _replace(out, tmp_dir, stats)


def _replace_index(stage: str, index_out: str) -> None:
    """The band index staged by this run replaces the one in `index_out`, whatever shards that one had. Files
    are listed, never a folder tested: an object store has no folders (`exists` is False for a prefix)."""
    old = list_files(join(index_out, INDEX_FILES))
    if old:
        FileSystems.delete(old)
    new = list_files(join(stage, INDEX_FILES))
    if new:
        FileSystems.rename(new, [join(index_out, p.rsplit("/", 1)[-1]) for p in new])
    remove_tree(stage)


def _replace(out: str, tmp_dir: str, stats: dict[str, Any]) -> None:
    if exists(join(out, "_SUCCESS")):
        FileSystems.delete([join(out, "_SUCCESS")])
    old = [p for d in OUTPUT_FOLDERS for p in list_files(join(out, d, "*"))]
    old += [join(out, n) for n in (*OUTPUT_FILES, *DERIVED_FILES) if exists(join(out, n))]
    if "://" not in out:  # a file where an output folder goes (it failed the run's end with a traceback)
        old += [p for d in OUTPUT_FOLDERS if os.path.lexists(p := join(out, d)) and not os.path.isdir(p)]
    if old:
        FileSystems.delete(old)
    moved = [p for d in OUTPUT_FOLDERS for p in list_files(join(tmp_dir, d, "*"))]
    targets = [join(out, p[len(tmp_dir):].lstrip("/")) for p in moved]
    if "://" not in out:  # local renames need the folders; object stores have none
        for d in DESTINATIONS:
            os.makedirs(join(out, d), exist_ok=True)
        for t in targets:
            os.makedirs(os.path.dirname(t), exist_ok=True)
    if moved:
        FileSystems.rename(moved, targets)
    write_json(join(out, "stats.json"), stats)
    write_bytes(join(out, "_SUCCESS"), b"")
    remove_tree(tmp_dir)


def run_curate(cfg: CurateConfig, out: str, *, runner: str | None = None, workers: int = 1,
               beam_args: tuple[str, ...] = (), overwrite: bool = False) -> dict[str, Any]:
    check_output(out, overwrite)
    files = expand_files(cfg)
    _check_not_own_output(files, out)
    index_out = _make_index_folder(cfg, overwrite, out)
    run_id = uuid.uuid4().hex[:12]
    tmp_dir = join(out, f"{STAGING_PREFIX}{run_id}")
    # staging folders of runs killed (SIGKILL, a dead machine) stayed forever; only provably stale ones go
    remove_stale(out)
    if index_out and index_out != out:
        remove_stale(index_out)
    # the band index is staged beside the old one and replaces it at the commit, like the outputs: written in
    # place, a stopped run left part of one and a smaller run left the shards it did not rewrite
    # (its own name: with index_out = OUT, one folder for both had the index commit remove the outputs' stage)
    index_stage = join(index_out, f"{STAGING_PREFIX}{run_id}-index") if index_out else None
    run_cfg = dataclasses.replace(cfg, near_dedup={**cfg.near_dedup, "index_out": index_stage}) if index_out else cfg
    try:  # the owner marker goes in before the pipeline runs and is refreshed until it ends (staging.py); its
        # thread starts after the worker pool forked (a fork is made only while the runner has one thread)
        with pipeline_options(runner, workers, beam_args) as (beam_runner, options), \
                owned([tmp_dir, *([index_stage] if index_stage else [])], run_id,
                      workers_local(runner, beam_runner, beam_args)), \
                new_pipeline(beam_runner, options, runner) as p:
            build(p, run_cfg, files, tmp_dir)
            result = run(p, runner)
    except BaseException:  # a failed or interrupted run leaves no half output behind
        remove_tree(tmp_dir)
        remove_tree(index_stage)
        raise
    try:
        stats = _checked_stats(cfg, files, tmp_dir, result)
    except BaseException as exc:  # the outputs stay for inspection (the message names them); the index goes
        remove_tree(index_stage)
        keep(tmp_dir, next((line.strip()[:200] for line in str(exc).splitlines() if line.strip()), type(exc).__name__))
        raise
    commit(out, tmp_dir, stats, overwrite, (index_stage, index_out) if index_out else None)
    return stats


def _checked_stats(cfg: CurateConfig, files: list[tuple[int, str, int]], tmp_dir: str, result: Any) -> dict[str, Any]:
    """The run's statistics once its ids are unique and its accounting balances."""
    counters = beam_counters(result)
    partial = read_json(join(tmp_dir, PARTIAL_STATS))
    check_unique_ids(cfg, partial.get("id_collisions", {}), tmp_dir)
    stats = finalize_stats(partial, cfg, files)
    if not stats["conservation"]["ok"]:
        raise RuntimeError(f"document accounting does not balance, outputs left in {tmp_dir}: "
                           f"{stats['conservation']['unbalanced']}")
    if cfg.near_dedup.get("enabled"):
        from pipeline.dedup_near import check_edge_accounting, parse_config

        lost = check_edge_accounting(stats.get("dedup", {}), parse_config(cfg.near_dedup).verify)
        if lost:
            raise RuntimeError(f"{lost}; outputs left in {tmp_dir}")
    stats["beam_counters"] = counters
    return stats


def _make_index_folder(cfg: CurateConfig, overwrite: bool, out: str) -> str | None:
    """The band index folder, if any: one that cannot be made is a config error now, not a failure at the end
    of the run, and one holding an index is replaced only with --overwrite. One inside an output folder of
    --out is refused: made there, it failed the commit after the whole run ("another run wrote it"), and with
    --overwrite the commit deleted the new index as part of the output it replaced."""
    index_out = cfg.near_dedup.get("index_out") if cfg.near_dedup.get("enabled") else None
    if not (isinstance(index_out, str) and index_out):
        return None
    for folder in OUTPUT_FOLDERS:
        if (_place(index_out).rstrip("/") + "/").startswith(_place(join(out, folder)).rstrip("/") + "/"):
            raise ConfigError(f"dedup.near.index_out: {index_out} is inside {join(out, folder)}, an output folder "
                              "of --out, which each run replaces; put the index beside it (OUT itself will do)")
    if "://" not in index_out:
        try:
            os.makedirs(index_out, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"dedup.near.index_out: cannot create {index_out}: {exc.strerror or exc}") from None
    if not overwrite and list_files(join(index_out, INDEX_FILES)):
        raise ConfigError(f"dedup.near.index_out: {index_out} already holds a band index; pass --overwrite to "
                          "replace it")
    return index_out


def check_unique_ids(cfg: CurateConfig, collisions: dict[str, Any], tmp_dir: str) -> None:
    """Documents sharing an id would share their dedup decisions: a config error, nothing is committed."""
    if not collisions:
        return
    remove_tree(tmp_dir)
    i, src = next((i, s) for i, s in enumerate(cfg.sources) if s.name in collisions)
    shared = collisions[src.name]
    by_field = src.format in ("jsonl", "parquet")
    fix = ("name a unique field as `id_field`, or set `id_field: null` to identify records by file and line"
           if by_field else "is one input file a copy of another?")
    raise ConfigError(f"sources[{i}].{'id_field' if by_field else 'paths'}: {shared['docs']} documents of source {src.name!r} in different files "
                      f"share an id ({', '.join(map(repr, sorted(shared['source_ids'])[:3]))}); ids must be unique "
                      f"within a source: {fix}")


def beam_counters(result) -> dict[str, int]:
    """Beam's own counters of the run, where the runner reports them (the Dask runner does not)."""
    try:
        return {c.key.metric.name: c.committed or c.attempted for c in result.metrics().query()["counters"]}
    except Exception:  # noqa: BLE001 - a runner without metrics support
        return {}
