"""`OUT/report.html`: the story of a corpus from raw pages to a trained model, in one self-contained file.

Sections appear only for the stages whose outputs exist; a folder with none is an error, not an empty report.
Everything user-provided is HTML-escaped; plots are inline SVG; there are no external requests (no scripts, fonts,
images or styles from the web). Outputs are read through `report_inputs`: a corrupt or hand-edited file is one
line naming it, never a traceback or a wrong figure.
Duplicate clusters and the quality plot cover every row (only small columns are read); the length and hiragana
plots need the text and meta columns, so they show the first SAMPLE_ROWS rows of each output and say so.
"""
from __future__ import annotations

import html
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import report_inputs as inputs
from pipeline import report_plots as plots
from pipeline.accounting import FUNNEL
from pipeline.errors import UserError

QUARANTINE = "quarantined (unreadable)"  # its row among the rejection reasons; no reason has this name
SAMPLE_ROWS = 20000  # documents per output for the length and hiragana plots: they need text and meta, not cheap
STYLE = """body{font:14px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td.n{text-align:right}.ex{font-size:12px;color:#555;white-space:pre-wrap}
figure{margin:.6em 0}svg{max-width:100%;height:auto}.note{color:#666}"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class=n>{esc(_fmt(c))}</td>" if isinstance(c, int | float)
                                    else f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _oneline(text: str) -> str:
    return " ⏎ ".join(line.strip() for line in text.splitlines() if line.strip())


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption class=note>{esc(caption)}</figcaption></figure>"


# --- sections ---------------------------------------------------------------------------------------------------

def _curate_dir(out: Path) -> Path | None:
    for cand in (out, out / "curate"):
        if (cand / "stats.json").exists():
            return cand
    return None


def funnel_section(stats: dict[str, Any], problems: list[str]) -> str:
    rows = [[kind, *funnel, chars] for kind, (funnel, chars) in stats["kinds"].items()]
    total = ["all", *stats["funnel"], stats["kept_chars"]]
    removed = [[r, d, c] for r, (d, c) in stats["reasons"].items()]
    if quarantined := stats["totals"]["quarantined_docs"]:  # an outcome of its own, not only a funnel drop
        removed.append([QUARANTINE, quarantined, "not counted"])
    chars = table(["reason", "documents", "characters removed"], removed)
    return ("<h2>Document funnel</h2><p>Documents left after each stage, per kind. Every input document ends "
            "curated, rejected or quarantined; this run "
            + (f"<b>does not balance</b>: {esc('; '.join(problems))}" if problems else "balances") + ".</p>"
            + table(["kind", "input", *FUNNEL, "kept characters"], [*rows, total]) + chars)


def _sample_file(samples: Path, reason: str) -> Path | None:
    """samples/REASON.jsonl, if REASON is a plain file name and the file stays inside samples/ once links are
    resolved: a reason name like `../../x` in a hand-edited stats.json must not make the report read outside."""
    if reason in ("", ".", "..") or Path(reason).name != reason or "\0" in reason:
        return None
    path = samples / f"{reason}.jsonl"
    if not path.exists() or not path.resolve().is_relative_to(samples.resolve()):
        return None
    return path


def _examples(path: Path, limit: int = 3) -> list[tuple[str, str]]:
    """(url or id, text) of the first `limit` documents of a sample file; line numbers in errors."""
    found: list[tuple[str, str]] = []
    for n, line in enumerate(inputs.read_text(path).split("\n")[:limit], 1):
        if not line.strip():
            continue
        try:
            doc = inputs.obj(inputs.loads(line, f"{path}:{n}"), f"{path}:{n}")
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        label, text = doc.get("url") or doc.get("id"), doc.get("text")
        if not isinstance(label, str) or not isinstance(text, str):
            raise inputs.bad(f"{path}:{n}", doc, "a document with a string 'id' (or 'url') and 'text'")
        found.append((label, text))
    return found


def reasons_section(stats: dict[str, Any], curate: Path) -> str:
    """Rejections by reason and quarantined documents, each with examples: a quarantined page is as much an
    outcome as a rejected one, and was visible only as a drop in the funnel's `readable` column."""
    quarantined = stats["totals"]["quarantined_docs"]
    if not stats["reasons"] and not quarantined:
        return ""
    counts = {r: d for r, (d, _) in stats["reasons"].items()}
    if quarantined:
        counts[QUARANTINE] = quarantined
    parts = ["<h2>Why documents were removed</h2>",
             figure(plots.bar_chart(counts, "documents"), "Rejections by reason (first failing rule)"
                    + (f"; {QUARANTINE}: input that could not be read, with its error" if quarantined else ""))]
    # samples/quarantine.jsonl holds the quarantined documents' errors as their text (sinks._first_samples)
    shown = [(r, r, "examples") for r in stats["reasons"]] + ([("quarantine", QUARANTINE, "example errors")]
                                                              if quarantined else [])
    for name, label, what in shown:
        path = _sample_file(curate / "samples", name)
        if path is None:
            continue
        items = "".join(f"<li class=ex><b>{esc(doc)}</b> {esc(_oneline(text)[:200])}</li>"
                        for doc, text in _examples(path))
        parts.append(f"<details><summary>{esc(label)}: {what}</summary><ul>{items}</ul></details>")
    return "".join(parts)


def _hiragana(path: Path, metas: pa.Array) -> list[float]:
    values = []
    for meta in metas.to_pylist():
        try:
            v = inputs.loads(meta, f"{path}: column 'meta'").get("lang", {}).get("hiragana_fraction")
        except (ValueError, TypeError, AttributeError):
            raise inputs.bad(f"{path}: column 'meta' holds", meta, "a JSON object with a 'lang' object") from None
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise inputs.bad(f"{path}: meta lang.hiragana_fraction", v, "a number")
        if v is not None:
            values.append(float(v))
    return values


def _distribution(folder: Path) -> dict[str, Any]:
    """Quality of every row (a numeric column, cheap); length and hiragana fraction of the first SAMPLE_ROWS rows
    (they need the text and meta columns, which is most of the data), with how many that is of how many."""
    parts = [q.to_numpy(zero_copy_only=False) for _, (q,) in inputs.scan(folder, ["quality"])]
    quality = np.concatenate(parts) if parts else np.empty(0)  # one value per row: its length is the row count
    lengths: list[np.ndarray] = []
    hira: list[float] = []
    read = 0
    for path, (text, meta) in inputs.scan(folder, ["text", "meta"]):
        text, meta = text[:SAMPLE_ROWS - read], meta[:SAMPLE_ROWS - read]
        read += len(text)
        lengths.append(pc.utf8_length(text).to_numpy(zero_copy_only=False))
        hira += _hiragana(path, meta)
        if read >= SAMPLE_ROWS:
            break
    return {"rows": len(quality), "read": read, "quality": quality,
            "length": np.concatenate(lengths) if lengths else np.empty(0), "hira": np.array(hira)}


def _which(kept: dict[str, Any], rejected: dict[str, Any]) -> str:
    """Which documents a sampled plot shows, so a sample is never taken for the whole output."""
    def one(d: dict[str, Any], name: str) -> str:
        rows, read = d["rows"], d["read"]
        return f"all {rows:,} {name}" if read == rows else f"the first {read:,} of {rows:,} {name}"

    sampled = kept["read"] < kept["rows"] or rejected["read"] < rejected["rows"]
    return f"{one(kept, 'kept')} and {one(rejected, 'rejected')} documents" + (
        " (Parquet files in name order)" if sampled else "")


def distributions_section(curate: Path) -> str:
    kept, rejected = _distribution(curate / "curated"), _distribution(curate / "rejected")
    if not kept["rows"] and not rejected["rows"]:
        return ""
    which = _which(kept, rejected)
    parts = ["<h2>Distributions, kept vs rejected</h2>",
             figure(plots.histograms(kept["length"], rejected["length"], "characters", log=True),
                    f"Document length: {which}" + (
                        "; empty documents (0 characters) are the bar from 0 to 1"
                        if any((d["length"] == 0).any() for d in (kept, rejected)) else "")),
             figure(plots.histograms(kept["hira"], rejected["hira"], "hiragana fraction of letters"),
                    f"Hiragana fraction: {which}")]
    qk, qr = (q[np.isfinite(q)] for q in (kept["quality"], rejected["quality"]))
    if len(qk) or len(qr):
        parts.append(figure(plots.histograms(qk, qr, "quality score"),
                            "fastText quality score: all documents that have one"))
    return "".join(parts)


def _largest_clusters(rejected: Path, n: int = 5) -> list[tuple[str, int]]:
    """(cluster id, rejected members) of the n largest clusters over all rejected rows, ties by id: only the
    dup_cluster column is read, and Arrow counts it."""
    clusters = [c.drop_null() for _, (c,) in inputs.scan(rejected, ["dup_cluster"])]
    if not clusters:
        return []
    counts = pa.table({"c": pa.chunked_array(clusters, pa.string())}).group_by("c").aggregate([("c", "count")])
    top = counts.sort_by([("c_count", "descending"), ("c", "ascending")]).slice(0, n)
    return list(zip(top.column("c").to_pylist(), top.column("c_count").to_pylist(), strict=True))


def _texts(curated: Path, ids: list[str]) -> dict[str, str]:
    """The texts of the kept documents with these ids: every row group's id column, but the text column only of
    the row groups that hold one of them."""
    wanted, found = pa.array(ids, pa.string()), {}
    for path in sorted(curated.glob("*.parquet")) if ids else []:
        pf = inputs.parquet_file(path, ["id", "text"])
        try:
            for g in range(pf.metadata.num_row_groups):
                gids = inputs.cast(path, "id", pf.read_row_group(g, columns=["id"]).column("id"))
                hits = pc.indices_nonzero(pc.is_in(gids, value_set=wanted))
                if len(hits):
                    text = inputs.cast(path, "text", pf.read_row_group(g, columns=["text"]).column("text")).take(hits)
                    found.update(zip(gids.take(hits).to_pylist(), text.to_pylist(), strict=True))
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path}: cannot read it ({inputs.first_line(exc)})") from None
    return found


def dedup_section(stats: dict[str, Any], curate: Path) -> str:
    dedup = stats["dedup"]
    if dedup is None:
        return ""
    if not dedup["sizes"]:
        return "<h2>Duplicates</h2><p>No duplicate clusters were found.</p>"
    top = _largest_clusters(curate / "rejected")
    reps = _texts(curate / "curated", [cid for cid, _ in top])
    missing = [cid for cid, _ in top if cid not in reps]
    return ("<h2>Duplicates</h2>"
            + figure(plots.size_histogram(dedup["sizes"], "cluster size"), "Duplicate cluster sizes (exact and near)")
            + "<p>The largest clusters, counted over all rejected documents.</p>"
            + table(["cluster", "documents", "representative (kept)"],
                    [[cid[:12], n + 1, (reps.get(cid) or "")[:80]] for cid, n in top])
            + (f"<p class=note>No kept document has the id of cluster {esc(', '.join(c[:12] for c in missing))}."
               "</p>" if missing else "")
            + table(["counter", "value"], [[k, v] for k, v in dedup["counters"].items()]))


def licence_section(stats: dict[str, Any]) -> str:
    if not stats["licenses"]:
        return ""
    return ("<h2>Licences</h2><p>What a user of the curated corpus must attribute: documents and characters "
            "kept per licence.</p>" + table(["licence", "documents", "characters"],
                                           [[k, d, c] for k, (d, c) in stats["licenses"].items()]))


def tokenizer_section(path: Path) -> str:
    models = inputs.obj(inputs.obj(inputs.read_json(path), str(path)).get("models", {}), f"{path}: models")
    keys = ["chars_per_token", "morph_boundary_f1", "byte_fallback_rate", "joyo_kanji_coverage", "roundtrip_exact",
            "renyi_efficiency", "vocab_size"]
    rows = [[k, *[inputs.obj(m, f"{path}: models[{name!r}]").get(k, "") for name, m in models.items()]] for k in keys]
    parts = ["<h2>Tokenizer</h2><p>Held-out evaluation of the trained tokenizer against its baselines, trained on "
             "the same sample at the same vocabulary size.</p>", table(["metric", *models], rows)]
    comp = inputs.obj((models.get("main") or {}).get("composition") or {}, f"{path}: models.main.composition")
    if comp:
        counts = {k: inputs.count(v, f"{path}: models.main.composition[{k!r}]") for k, v in comp.items()}
        parts.append(figure(plots.bar_chart(counts, "pieces"), "Vocabulary composition by script"))
    return "".join(parts)


def packing_section(path: Path) -> str:
    m = inputs.obj(inputs.read_json(path), str(path))
    t = inputs.obj(m.get("totals", {}), f"{path}: totals")
    kinds = [[k, v.get("docs"), v.get("tokens"), v.get("split_docs")]
             for k, v in sorted(inputs.obj(m.get("by_kind", {}), f"{path}: by_kind").items())]
    mix = [[k, v.get("weight"), v.get("target_share"), v.get("realized_share")]
           for k, v in sorted(inputs.obj((m.get("mixture") or {}).get("groups", {}), f"{path}: mixture.groups").items())]
    return ("<h2>Packing</h2>" + table(["", "value"], [
        ["sequence length", m.get("seq_len")], ["rows", t.get("rows")], ["tokens", t.get("tokens")],
        ["padding rate", t.get("padding_rate")], ["split documents", t.get("split_docs")],
        ["packing", m.get("packing")], ["token dtype", m.get("token_dtype")]])
        + table(["kind", "documents", "tokens", "split documents"], kinds)
        + (table(["group", "weight", "target share", "realized share"], mix) if mix else ""))


def training_section(path: Path) -> str:
    rows, partial = inputs.metrics(path)
    if not rows:
        return ""
    steps = [r["step"] for r in rows]
    parts = ["<h2>Training</h2>",
             figure(plots.line_chart(steps, {"loss": [r["loss"] for r in rows]}, "step", "loss"), "Training loss"),
             figure(plots.line_chart(steps, {"tokens/s": [r.get("tokens_per_s") or 0 for r in rows]}, "step",
                                     "tokens/s"), "Throughput over all ranks")]
    if partial:
        parts.append(f"<p class=note>The last line of {esc(path.name)} is incomplete (training still running, or "
                     "stopped mid-write) and is left out.</p>")
    sample = path.parent / "sample.txt"
    if sample.exists():
        parts.append(f"<p>Generated sample:</p><div class=ex>{esc(inputs.read_text(sample)[:600])}</div>")
    return "".join(parts)


def _guarded(path: Path, section: Callable[[Path], str]) -> str:
    """A stage file of another shape than this version writes: one line naming it, whatever broke."""
    try:
        return section(path)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: cannot report on it ({type(exc).__name__}: {inputs.first_line(exc)}); "
                        "is it a jcorpus output of this version?") from None


def build_report(out: Path) -> str:
    """The page; what the reader must not miss (a curate output that does not add up) also goes to stderr."""
    curate = _curate_dir(out)
    sections = []
    if curate is not None:
        stats = inputs.load_stats(curate / "stats.json")
        problems = inputs.imbalance(curate, stats)
        if problems:
            print(f"jcorpus report: warning: {curate}: this run does NOT balance: {'; '.join(problems)}",
                  file=sys.stderr)
        sections += [funnel_section(stats, problems), reasons_section(stats, curate), distributions_section(curate),
                     dedup_section(stats, curate), licence_section(stats)]
    for path, section in ((out / "tokenizer" / "eval.json", tokenizer_section),
                          (out / "shards" / "manifest.json", packing_section),
                          (out / "train" / "metrics.jsonl", training_section)):
        if path.exists():
            sections.append(_guarded(path, section))
    body = "".join(s for s in sections if s)
    if not body:
        raise UserError(f"{out}: no stage outputs found (expected a curate output, or a folder holding curate/ "
                        "tokenizer/ shards/ train/); no report written")
    name = out.resolve().name or str(out.resolve())  # `report .` is named after the folder, not ""
    return (f"<!DOCTYPE html><html lang=ja><head><meta charset=utf-8><title>jcorpus report</title>"
            f"<style>{STYLE}</style></head><body><h1>jcorpus report: {esc(name)}</h1>{body}</body></html>\n")


def write_report(out: Path) -> Path:
    """Written to a new file in OUT and renamed over report.html: a reader never sees half a report, and a
    symlink or FIFO named report.html is replaced, not followed (overwriting its target) or blocked on."""
    target = out / "report.html"
    page = build_report(out).encode("utf-8")
    tmp = out / f".report.html.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "xb") as fh:  # "x": never through an existing file or link; mode from the umask
            fh.write(page)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
    return target
