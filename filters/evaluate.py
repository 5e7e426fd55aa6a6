"""Scoring filter decisions against hand labels (keep/drop): accuracy, keep precision/recall, drop
recall, the confusion matrix, and which rules caused each false drop."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filters.lines import text_lines


def load_labels(path: str | Path) -> dict[str, dict[str, Any]]:
    """source_id -> label record; one JSON object per line with `source_id`, `label` (keep|drop), `reason`.
    A source_id labelled twice must carry the same label (a conflict would be settled by line order)."""
    labels: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for n, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(rec, dict) or rec.get("label") not in ("keep", "drop") or not isinstance(
                rec.get("source_id"), str):
            raise ValueError(f"{path}:{n}: needs a JSON object with a string `source_id` and `label` keep|drop")
        sid = rec["source_id"]
        if sid in labels and labels[sid]["label"] != rec["label"]:
            raise ValueError(f"{path}:{n}: source_id {sid!r} is labelled {rec['label']} here and "
                             f"{labels[sid]['label']} on line {lines[sid]}")
        labels.setdefault(sid, rec)
        lines.setdefault(sid, n)
    return labels


def _ratio(part: int, whole: int) -> float | None:
    """None when there is nothing to measure (labels of one class have no recall for the other): it was 0.0,
    which reads as every such document missed."""
    return part / whole if whole else None


def format_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def score(decisions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`decisions`: dicts with `label` (keep|drop), `reject_reason` (None = kept), `ref`, `reason`. A metric
    whose denominator is empty is None."""
    confusion: Counter = Counter()
    false_drops: list[dict[str, Any]] = []
    false_keeps: list[dict[str, Any]] = []
    by_rule: Counter = Counter()
    for d in decisions:
        predicted = "keep" if d["reject_reason"] is None else "drop"
        confusion[(d["label"], predicted)] += 1
        if d["label"] == "keep" and predicted == "drop":
            by_rule[d["reject_reason"]] += 1
            false_drops.append({"ref": d.get("ref"), "rule": d["reject_reason"], "label_reason": d.get("reason")})
        elif d["label"] == "drop" and predicted == "keep":
            false_keeps.append({"ref": d.get("ref"), "label_reason": d.get("reason")})
    tk, fd = confusion[("keep", "keep")], confusion[("keep", "drop")]
    fk, td = confusion[("drop", "keep")], confusion[("drop", "drop")]
    n = tk + fd + fk + td
    return {
        "documents": n,
        "accuracy": _ratio(tk + td, n),
        "keep_precision": _ratio(tk, tk + fk),
        "keep_recall": _ratio(tk, tk + fd),
        "drop_recall": _ratio(td, td + fk),
        "confusion": {"label_keep": {"kept": tk, "dropped": fd}, "label_drop": {"kept": fk, "dropped": td}},
        "false_drops_by_rule": dict(by_rule.most_common()),
        "false_drops": false_drops,
        "false_keeps": false_keeps,
    }


def format_report(result: Mapping[str, Any]) -> str:
    c = result["confusion"]
    lines = [
        f"documents {result['documents']}  accuracy {format_metric(result['accuracy'])}  keep precision "
        f"{format_metric(result['keep_precision'])}  keep recall {format_metric(result['keep_recall'])}  drop recall "
        f"{format_metric(result['drop_recall'])}",
        "confusion (rows = label, columns = decision):",
        f"  keep: kept {c['label_keep']['kept']:4d}  dropped {c['label_keep']['dropped']:4d}",
        f"  drop: kept {c['label_drop']['kept']:4d}  dropped {c['label_drop']['dropped']:4d}",
    ]
    if result["false_drops"]:
        lines.append("false drops (labelled keep) by rule: "
                     + ", ".join(f"{r} {n}" for r, n in result["false_drops_by_rule"].items()))
        lines += [f"  {d['ref']}: {d['rule']} (label: {d['label_reason']})" for d in result["false_drops"]]
    if result["false_keeps"]:
        lines.append("false keeps (labelled drop):")
        lines += [f"  {d['ref']}: {d['label_reason']}" for d in result["false_keeps"]]
    return "\n".join(lines)
