"""`OUT/report.html`: the story of a corpus from raw pages to a trained model, in one self-contained file.

Sections appear only for the stages whose outputs exist; a folder with none is an error, not an empty report.
Everything user-provided is HTML-escaped; plots are inline SVG; there are no external requests (no scripts, fonts,
images or styles from the web).
"""
from __future__ import annotations

import glob
import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline import report_plots as plots
from pipeline.accounting import FUNNEL
from pipeline.errors import UserError

MAX_ROWS = 20000  # rows read per output for the distributions
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


def _curate_dir(out: Path) -> Path | None:
    for cand in (out, out / "curate"):
        if (cand / "stats.json").exists():
            return cand
    return None


def _read_rows(folder: Path, columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(glob.glob(str(folder / "*.parquet"))):
        rows.extend(pq.read_table(f, columns=columns).to_pylist())
        if len(rows) >= MAX_ROWS:
            break
    return rows[:MAX_ROWS]


def funnel_section(stats: dict[str, Any]) -> str:
    rows = [[kind, *[r["docs"] for r in k["funnel"]], k["kept_chars"]] for kind, k in stats["kinds"].items()]
    total = ["all", *[r["docs"] for r in stats["funnel"]], stats["kept_chars"]]
    chars = table(["reason", "documents", "characters removed"],
                  [[r, v["docs"], v["chars"]] for r, v in stats["reasons"].items()])
    return ("<h2>Document funnel</h2><p>Documents left after each stage, per kind. Every input document ends "
            "curated, rejected or quarantined; this run "
            + ("balances" if stats["conservation"]["ok"] else "<b>does not balance</b>") + ".</p>"
            + table(["kind", "input", *FUNNEL, "kept characters"], [*rows, total]) + chars)


def reasons_section(stats: dict[str, Any], curate: Path) -> str:
    if not stats["reasons"]:
        return ""
    parts = ["<h2>Why documents were removed</h2>",
             figure(plots.bar_chart({r: v["docs"] for r, v in stats["reasons"].items()}, "documents"),
                    "Rejections by reason (first failing rule)")]
    for reason in stats["reasons"]:
        path = curate / "samples" / f"{reason}.jsonl"
        if not path.exists():
            continue
        examples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:3]]
        items = "".join(f"<li class=ex><b>{esc(e.get('url') or e['id'])}</b> {esc(_oneline(e['text'])[:200])}</li>"
                        for e in examples)
        parts.append(f"<details><summary>{esc(reason)}: examples</summary><ul>{items}</ul></details>")
    return "".join(parts)


def distributions_section(curate: Path) -> str:
    cols = ["text", "meta", "quality"]
    kept, rejected = _read_rows(curate / "curated", cols), _read_rows(curate / "rejected", cols)
    if not kept and not rejected:
        return ""

    def series(rows, key):
        if key == "length":
            return [len(r["text"]) for r in rows]
        if key == "quality":
            return [r["quality"] for r in rows if r["quality"] is not None]
        return [json.loads(r["meta"]).get("lang", {}).get("hiragana_fraction") for r in rows]

    parts = ["<h2>Distributions, kept vs rejected</h2>",
             figure(plots.histograms(series(kept, "length"), series(rejected, "length"), "characters", log=True),
                    "Document length"),
             figure(plots.histograms(*(([v for v in series(x, "hira") if v is not None]) for x in (kept, rejected)),
                                     "hiragana fraction of letters"), "Hiragana fraction")]
    qk, qr = series(kept, "quality"), series(rejected, "quality")
    if qk or qr:
        parts.append(figure(plots.histograms(qk, qr, "quality score"), "fastText quality score"))
    return "".join(parts)


def dedup_section(stats: dict[str, Any], curate: Path) -> str:
    dedup = stats.get("dedup") or {}
    hist = {k: v for key in ("exact_cluster_sizes", "near_cluster_sizes") for k, v in (dedup.get(key) or {}).items()}
    if not hist:
        return "<h2>Duplicates</h2><p>No duplicate clusters were found.</p>" if dedup else ""
    members = Counter(r["dup_cluster"] for r in _read_rows(curate / "rejected", ["dup_cluster"]) if r["dup_cluster"])
    reps = {r["id"]: r["text"] for r in _read_rows(curate / "curated", ["id", "text"]) if r["id"] in members}
    top = [[cid[:12], n + 1, reps.get(cid, "")[:80]] for cid, n in members.most_common(5)]
    return ("<h2>Duplicates</h2>" + figure(plots.size_histogram(hist, "cluster size"), "Duplicate cluster sizes")
            + table(["cluster", "documents", "representative (kept)"], top)
            + table(["counter", "value"], [[k, v] for k, v in sorted(dedup.items()) if not isinstance(v, dict)]))


def licence_section(stats: dict[str, Any]) -> str:
    lic = stats.get("licenses") or {}
    if not lic:
        return ""
    return ("<h2>Licences</h2><p>What a user of the curated corpus must attribute: documents and characters "
            "kept per licence.</p>" + table(["licence", "documents", "characters"],
                                           [[k, v["docs"], v["chars"]] for k, v in sorted(lic.items())]))


def tokenizer_section(tokdir: Path) -> str:
    path = tokdir / "eval.json"
    if not path.exists():
        return ""
    models = json.loads(path.read_text()).get("models", {})
    keys = ["chars_per_token", "morph_boundary_f1", "byte_fallback_rate", "joyo_kanji_coverage", "roundtrip_exact",
            "renyi_efficiency", "vocab_size"]
    rows = [[k, *[m.get(k, "") for m in models.values()]] for k in keys]
    parts = ["<h2>Tokenizer</h2><p>Held-out evaluation of the trained tokenizer against its baselines, trained on "
             "the same sample at the same vocabulary size.</p>", table(["metric", *models], rows)]
    comp = (models.get("main") or {}).get("composition")
    if comp:
        parts.append(figure(plots.bar_chart(comp, "pieces"), "Vocabulary composition by script"))
    return "".join(parts)


def packing_section(shards: Path) -> str:
    path = shards / "manifest.json"
    if not path.exists():
        return ""
    m = json.loads(path.read_text())
    t = m.get("totals", {})
    kinds = [[k, v.get("docs"), v.get("tokens"), v.get("split_docs")] for k, v in sorted(m.get("by_kind", {}).items())]
    mix = [[k, v.get("weight"), v.get("target_share"), v.get("realized_share")]
           for k, v in sorted((m.get("mixture") or {}).get("groups", {}).items())]
    return ("<h2>Packing</h2>" + table(["", "value"], [
        ["sequence length", m.get("seq_len")], ["rows", t.get("rows")], ["tokens", t.get("tokens")],
        ["padding rate", t.get("padding_rate")], ["split documents", t.get("split_docs")],
        ["packing", m.get("packing")], ["token dtype", m.get("token_dtype")]])
        + table(["kind", "documents", "tokens", "split documents"], kinds)
        + (table(["group", "weight", "target share", "realized share"], mix) if mix else ""))


def training_section(run: Path) -> str:
    path = run / "metrics.jsonl"
    if not path.exists():
        return ""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return ""
    steps = [r["step"] for r in rows]
    parts = ["<h2>Training</h2>",
             figure(plots.line_chart(steps, {"loss": [r["loss"] for r in rows]}, "step", "loss"), "Training loss"),
             figure(plots.line_chart(steps, {"tokens/s": [r.get("tokens_per_s", 0) for r in rows]}, "step",
                                     "tokens/s"), "Throughput over all ranks")]
    sample = run / "sample.txt"
    if sample.exists():
        parts.append(f"<p>Generated sample:</p><div class=ex>{esc(sample.read_text(encoding='utf-8')[:600])}</div>")
    return "".join(parts)


def build_report(out: Path) -> str:
    curate = _curate_dir(out)
    sections = []
    if curate is not None:
        stats = json.loads((curate / "stats.json").read_text())
        stats["reasons"] = dict(sorted(stats["reasons"].items(), key=lambda kv: (-kv[1]["docs"], kv[0])))
        sections += [funnel_section(stats), reasons_section(stats, curate), distributions_section(curate),
                     dedup_section(stats, curate), licence_section(stats)]
    sections += [tokenizer_section(out / "tokenizer"), packing_section(out / "shards"), training_section(out / "train")]
    body = "".join(s for s in sections if s)
    if not body:
        raise UserError(f"{out}: no stage outputs found (expected a curate output, or a folder holding curate/ "
                        "tokenizer/ shards/ train/); no report written")
    return (f"<!DOCTYPE html><html lang=ja><head><meta charset=utf-8><title>jcorpus report</title>"
            f"<style>{STYLE}</style></head><body><h1>jcorpus report: {esc(out.name)}</h1>{body}</body></html>\n")


def write_report(out: Path) -> Path:
    target = out / "report.html"
    target.write_text(build_report(out), encoding="utf-8")
    return target
