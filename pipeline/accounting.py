"""From the merged run statistics to `stats.json`: per-source totals, the funnel, and the conservation check.

Input counts come from the readers, output counts from the shard writers: two independent tallies, so a
document lost or duplicated anywhere in between makes the run fail instead of going unnoticed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.config import CurateConfig

OUTCOMES = ("kept_docs", "rejected_docs", "quarantined_docs")
# Funnel stages in pipeline order, and which reject reasons each stage owns.
FUNNEL = ("readable", "size", "language", "filters", "dedup_exact", "dedup_near")


def stage_of(reason: str) -> str:
    if reason.startswith("skip_"):  # readable records that are not documents (redirects, images)
        return "readable"
    if reason in ("too_long", "empty_text"):
        return "size"
    if reason.startswith("lang_"):
        return "language"
    if reason == "dup_exact":
        return "dedup_exact"
    if reason == "dup_near":
        return "dedup_near"
    return "filters"


def funnel(input_docs: int, quarantined_docs: int, rejected_by_reason: Mapping[str, int]) -> list[dict[str, Any]]:
    """Documents left after each stage, and removed by it, in pipeline order."""
    removed = {stage: 0 for stage in FUNNEL}
    removed["readable"] = quarantined_docs
    for reason, n in rejected_by_reason.items():
        removed[stage_of(reason)] += n
    left = input_docs
    rows = [{"stage": "input", "docs": left, "removed": 0}]
    for stage in FUNNEL:
        left -= removed[stage]
        rows.append({"stage": stage, "docs": left, "removed": removed[stage]})
    return rows


def _by_kind(sources: Mapping[str, Any]) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {}
    for s in sources.values():
        k = kinds.setdefault(s["kind"], {"input_docs": 0, "quarantined_docs": 0, "kept_chars": 0, "reasons": {}})
        for key in ("input_docs", "quarantined_docs", "kept_chars"):
            k[key] += s[key]
        for reason, n in s["rejected_by_reason"].items():
            k["reasons"][reason] = k["reasons"].get(reason, 0) + n
    return {kind: {"funnel": funnel(k["input_docs"], k["quarantined_docs"], k["reasons"]), "kept_chars": k["kept_chars"]}
            for kind, k in sorted(kinds.items())}


def finalize_stats(partial: dict[str, Any], cfg: CurateConfig, files: list[tuple[int, str, int]]) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    unbalanced: dict[str, Any] = {}
    for i, src in enumerate(cfg.sources):
        s = dict(partial.get("sources", {}).get(src.name, {}))
        s.setdefault("rejected_by_reason", {})
        for key in ("files", "input_bytes", "input_docs", *OUTCOMES, "kept_chars", "rejected_chars"):
            s.setdefault(key, 0)
        s["kind"], s["format"], s["license"] = src.kind, src.format, src.license
        expected_files = sum(1 for idx, _, _ in files if idx == i)
        out = sum(s[k] for k in OUTCOMES)
        if out != s["input_docs"] or s["files"] != expected_files:
            unbalanced[src.name] = {"input_docs": s["input_docs"], "output_docs": out,
                                    "files_read": s["files"], "files_expected": expected_files}
        sources[src.name] = s
    total = {k: sum(s[k] for s in sources.values()) for k in ("input_docs", *OUTCOMES, "input_bytes", "kept_chars")}
    reasons = dict(sorted(partial.get("reasons", {}).items(), key=lambda kv: (-kv[1]["docs"], kv[0])))
    stages = partial.get("stages", {})
    for t in stages.values():
        t["docs_per_second"] = round(t["docs"] / t["seconds"], 1) if t.get("seconds") else None
    return {
        **total,
        "conservation": {"ok": not unbalanced, "rule": "input_docs == kept_docs + rejected_docs + quarantined_docs",
                         "unbalanced": unbalanced},
        "sources": sources,
        "reasons": reasons,
        "funnel": funnel(total["input_docs"], total["quarantined_docs"], {r: v["docs"] for r, v in reasons.items()}),
        "kinds": _by_kind(sources),
        "stages": stages,
        "normalize": partial.get("normalize", {}),
        "dedup": partial.get("dedup", {}),
        "filters": partial.get("filters", {}),
        "licenses": partial.get("licenses", {}),
        "outputs": partial.get("outputs", {}),
        "config": cfg.raw,
    }
