"""Dedup decisions: precedence rules, and exact + near dedup meeting in the output shards of a real run."""
import glob
import json

import pyarrow.parquet as pq
import pytest

from pipeline.config import parse_config
from pipeline.curate import run_curate
from pipeline.decisions import apply_decisions, rank_node
from tests.pipeline.test_dedup_near import base_text, near_copy

DOC = {"id": "b", "kind": "web", "quality": None, "text": "x", "reject_reason": None, "error": None,
       "dup_cluster": None}


def test_exact_wins_over_near_and_reports_the_overlap() -> None:
    doc, overlap = apply_decisions(DOC, [("dup_near", "n"), (None, "b"), ("dup_exact", "e")])
    assert (doc["reject_reason"], doc["dup_cluster"], overlap) == ("dup_exact", "n", True)  # the near root
    doc, overlap = apply_decisions(DOC, [(None, "b"), ("dup_exact", "e")])
    assert (doc["reject_reason"], doc["dup_cluster"], overlap) == ("dup_exact", "e", False)
    doc, overlap = apply_decisions(DOC, [(None, "b"), ("dup_near", "n")])
    assert (doc["reject_reason"], doc["dup_cluster"], overlap) == ("dup_near", "n", False)


def test_representative_names_itself_and_no_decision_changes_nothing() -> None:
    doc, _ = apply_decisions(DOC, [(None, "b"), (None, "b")])
    assert (doc["reject_reason"], doc["dup_cluster"]) == (None, "b")
    assert apply_decisions(DOC, []) == (DOC, False)
    assert DOC["dup_cluster"] is None  # the input document is never changed in place


def test_decided_documents_keep_their_first_reason() -> None:
    rejected = {**DOC, "reject_reason": "lang_not_ja"}
    assert apply_decisions(rejected, [("dup_exact", "e")])[0]["reject_reason"] == "lang_not_ja"


def test_decision_order_does_not_matter() -> None:
    decisions = [("dup_near", "n2"), ("dup_near", "n1")]
    assert apply_decisions(DOC, decisions) == apply_decisions(DOC, decisions[::-1])
    assert apply_decisions(DOC, decisions)[0]["dup_cluster"] == "n1"


def test_rank_orders_priority_then_quality_then_id() -> None:
    prio = ["government", "web"]
    nodes = [rank_node({"id": "a", "kind": "web", "quality": 0.1}, prio),
             rank_node({"id": "z", "kind": "government", "quality": None}, prio),
             rank_node({"id": "b", "kind": "web", "quality": 0.9}, prio)]
    assert [n[-1] for n in sorted(nodes)] == ["z", "b", "a"]


@pytest.mark.parametrize("workers", [1, 2])
def test_exact_and_near_dedup_in_one_run(tmp_path, workers: int) -> None:
    """A law, its verbatim web copy (exact) and an edited web copy (near) mirrored twice: every copy points at
    the law, the mirrors too, although their exact representative is itself a near duplicate. A loose LSH
    also proposes `other` and its heavily edited copy `loose`; verification, which reads their texts back
    from the spill files, rejects that edge."""
    law, other = base_text(1, 20), base_text(2, 20)
    rows = {"law.jsonl": [{"id": "law", "text": law}],
            "web.jsonl": [{"id": "copy", "text": law}, {"id": "edited", "text": near_copy(law, 3)},
                          *({"id": f"mirror{i}", "text": near_copy(law, 3)} for i in (1, 2)),
                          {"id": "other", "text": other}, {"id": "loose", "text": near_copy(other, 9, 0.08)}]}
    for name, lines in rows.items():
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    cfg = parse_config({
        "sources": [{"name": "laws", "kind": "government", "format": "jsonl", "paths": [str(tmp_path / "law.jsonl")],
                     "license": "public-domain"},
                    {"name": "web", "kind": "web", "format": "jsonl", "paths": [str(tmp_path / "web.jsonl")],
                     "license": "x"}],
        "filters": {"enabled": False},
        "dedup": {"near": {"enabled": True, "unit": "char", "max_rounds": 4, "bands": 32, "rows": 2}},
    })
    stats = run_curate(cfg, str(tmp_path / "out"), workers=workers)
    out = {r["source_id"]: r for d in ("curated", "rejected")
           for f in glob.glob(str(tmp_path / "out" / d / "*.parquet")) for r in pq.read_table(f).to_pylist()}
    law_id = out["law"]["id"]
    assert out["law"].get("reject_reason") is None and out["law"]["dup_cluster"] == law_id
    assert (out["copy"]["reject_reason"], out["copy"]["dup_cluster"]) == ("dup_exact", law_id)
    mirrors = sorted(out[m]["reject_reason"] for m in ("edited", "mirror1", "mirror2"))
    assert mirrors == ["dup_exact", "dup_exact", "dup_near"]
    assert {out[m]["dup_cluster"] for m in ("edited", "mirror1", "mirror2")} == {law_id}
    for loner in ("other", "loose"):
        assert out[loner].get("reject_reason") is None and out[loner]["dup_cluster"] is None
    d = stats["dedup"]
    assert d["near_rejected_edges"] >= 1 and "near_unverified_edges" not in d
    assert d["near_candidate_edges"] == d["near_verified_edges"] + d["near_rejected_edges"]
    assert stats["dedup"]["near_also_exact"] == 3 and stats["dedup"]["dup_near"] == 4
    assert stats["reasons"]["dup_near"]["docs"] == 1 and stats["conservation"]["ok"]
