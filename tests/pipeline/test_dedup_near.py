"""NearDedup in Beam: config errors, priority rule, hot buckets, worker-count determinism, incremental index."""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.decisions import ApplyDecisions, rank_prefix
from pipeline.dedup_near import INDEX_META_KEY, NearDedup, _salt, check_edge_accounting, parse_config
from pipeline.documents import doc_id
from pipeline.errors import ConfigError
from pipeline.runner import pipeline_options

PRIORITY = ["government", "academic", "reference", "web"]
WORDS = ["研究", "日本語", "コーパス", "政府", "法律", "公開", "データ", "学習", "モデル", "評価", "文書", "方法",
         "結果", "提案", "地域", "市民", "情報", "技術", "開発", "社会", "経済", "教育", "環境", "制度"]
PARTICLES = ["は", "が", "を", "に", "で", "と", "の", "から"]


def base_text(seed: int, sentences: int = 12) -> str:
    """Distinct synthetic Japanese-like prose (our own text, no licence questions)."""
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) + rng.choice(PARTICLES) for _ in range(rng.randint(4, 7))]
        out.append("".join(words) + rng.choice(["した", "する", "である", "なった"]) + "。")
    return "".join(out)


def near_copy(text: str, seed: int, rate: float = 0.01) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for _ in range(max(1, int(len(chars) * rate))):
        chars[rng.randrange(len(chars))] = rng.choice("あいうえお")
    return "".join(chars).replace("。", "．", 1)


def doc(doc_id: str, text: str, kind: str = "web", quality: float | None = None) -> dict[str, Any]:
    return {"id": doc_id, "source_id": doc_id, "source": "t", "kind": kind, "url": None, "license": "x",
            "text": text, "meta": {}, "quality": quality, "dup_cluster": None, "reject_reason": None, "error": None}


def run_near(docs: list[dict], cfg: dict, tmp_path: Path, workers: int = 1) -> tuple[dict[str, dict], dict]:
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    cfg = {"max_rounds": 4, **cfg}  # clusters here are tiny; fewer unrolled rounds keep the test fast
    with pipeline_options(None, workers, ()) as (runner, options), beam.Pipeline(runner=runner, options=options) as p:
        docs_in = p | beam.Create(docs)
        decisions, stats = docs_in | NearDedup(cfg, PRIORITY)
        kept = (docs_in, decisions) | ApplyDecisions()
        _ = kept | "D" >> beam.Map(json.dumps, sort_keys=True) | "WD" >> beam.io.WriteToText(str(out / "docs"))
        _ = stats | "S" >> beam.Map(json.dumps) | "WS" >> beam.io.WriteToText(str(out / "stats"))
    rows = [json.loads(line) for f in sorted(out.glob("docs*")) for line in f.read_text().splitlines()]
    [stat] = [json.loads(line) for f in out.glob("stats*") for line in f.read_text().splitlines()]
    return {r["id"]: r for r in rows}, stat["dedup"]


def clusters(out: dict[str, dict]) -> dict[str, tuple[str | None, str | None]]:
    return {k: (v["dup_cluster"], v["reject_reason"]) for k, v in out.items() if v["dup_cluster"]}


@pytest.mark.parametrize("cfg,key", [
    ({"num_perm": 1}, "num_perm"), ({"unit": "word"}, "unit"), ({"threshold": 1.5}, "threshold"),
    ({"bands": 20, "rows": 10}, "bands"), ({"bands": 3}, "rows"), ({"verify": "yes"}, "verify"),
    ({"index_in": [3]}, "index_in"), ({"shingle": 5}, "shingle"), ({"weights": [1]}, "weights"),
    # accepted before: inf weights gave 0 bands (nothing found), a 33-bit seed failed mid-run, 300 rounds
    # overflowed Python's recursion while Beam translated the graph, n = 10**21 matched nothing
    ({"weights": [float("inf"), 1]}, "weights"), ({"weights": [True, False]}, "weights"), ({"seed": 2**32}, "seed"),
    ({"max_rounds": 300}, "max_rounds"), ({"n": 10**21}, "n"),
    ({"bands": 9, "rows": 13, "weights": [1, 1]}, "weights"),  # was ignored without a word
    ({"index_out": " "}, "index_out"), ({"index_in": [" "]}, "index_in"),  # blank: not made relative to the config
])
def test_config_errors_name_the_key(cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^dedup\.near\.{key}: "):
        parse_config(cfg)


def test_config_threshold_to_bands() -> None:
    p = parse_config({"threshold": 0.8, "weights": [0.5, 0.5]})
    assert (p.bands, p.rows) == (9, 13)
    assert (parse_config({"bands": 16, "rows": 8}).bands, parse_config({"bands": 16, "rows": 8}).rows) == (16, 8)


def test_rank_prefix_orders_priority_then_quality_then_none() -> None:
    ranks = [rank_prefix("government", None, PRIORITY), rank_prefix("academic", 0.9, PRIORITY),
             rank_prefix("academic", 0.1, PRIORITY), rank_prefix("academic", -2.0, PRIORITY),
             rank_prefix("academic", None, PRIORITY), rank_prefix("web", 1.0, PRIORITY),
             rank_prefix("other", 5.0, PRIORITY)]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks) and all(len(r) == 20 for r in ranks)


def corpus() -> list[dict]:
    docs = [doc(f"u{i:02d}", base_text(i)) for i in range(8)]                      # unrelated singletons
    a = base_text(100)
    docs += [doc("a-web", near_copy(a, 1), "web", 0.99), doc("z-gov", a, "government"),   # priority beats id
             doc("b-acad", near_copy(a, 2), "academic")]
    b = base_text(200)
    docs += [doc("b1", b, "reference", 0.2), doc("b2", near_copy(b, 3), "reference", 0.7),  # quality
             doc("b0", near_copy(b, 4), "reference", None)]
    c = base_text(300)
    docs += [doc("c2", c, "web"), doc("c1", near_copy(c, 5), "web")]                         # then id
    return docs


EXPECTED = {"z-gov": ("z-gov", None), "a-web": ("z-gov", "dup_near"), "b-acad": ("z-gov", "dup_near"),
            "b2": ("b2", None), "b1": ("b2", "dup_near"), "b0": ("b2", "dup_near"),
            "c1": ("c1", None), "c2": ("c1", "dup_near")}


@pytest.mark.parametrize("unit", ["morph", "char"])
def test_priority_rule_and_stats(unit: str, tmp_path: Path) -> None:
    out, stats = run_near(corpus(), {"unit": unit}, tmp_path)
    assert len(out) == len(corpus())
    assert clusters(out) == EXPECTED
    assert stats["dup_near"] == 5 and stats["near_clusters"] == 3
    assert stats["near_cluster_sizes"] == {"3": 2, "2": 1}


def test_deterministic_across_worker_counts(tmp_path: Path) -> None:
    docs = corpus()
    one, s1 = run_near(docs, {"unit": "char"}, tmp_path, workers=1)
    two, s2 = run_near(list(reversed(docs)), {"unit": "char"}, tmp_path, workers=2)
    assert one == two and s1 == s2


def test_hot_bucket_is_salted_and_gives_the_same_clusters(tmp_path: Path) -> None:
    text = base_text(400)
    docs = [doc(f"h{i:02d}", near_copy(text, i, 0.004)) for i in range(12)] + [doc("x", base_text(401))]
    normal, _ = run_near(docs, {"unit": "char"}, tmp_path)
    salted, stats = run_near(docs, {"unit": "char", "max_bucket": 3}, tmp_path)
    assert stats["near_hot_buckets"] > 0
    assert normal == salted
    assert {v for v, _ in clusters(salted).values()} == {"h00"} and len(clusters(salted)) == 12


@pytest.mark.parametrize("slices", [1000, 1024, 256])
def test_hot_bucket_slices_are_uniform_for_real_ids(slices: int) -> None:
    """Document ids are 32 hex digits (pipeline.documents.doc_id); salting by their last bytes filled 64 of
    1,024 slices (16 of 256), so a hot bucket's slice held ~16x the members `max_bucket` promises."""
    ids = [doc_id("src", str(i)) for i in range(20 * slices)]
    sizes = Counter(_salt(rank_prefix("web", None, PRIORITY) + i, slices) for i in ids)
    assert len(sizes) == slices and max(sizes.values()) < 2 * 20


def test_verification_drops_lsh_false_positives(tmp_path: Path) -> None:
    a = base_text(500)
    docs = [doc("p", a), doc("q", near_copy(a, 9, 0.08))]  # ~0.6 char-5-gram Jaccard: a candidate, not a dup
    loose, _ = run_near(docs, {"unit": "char", "verify": False, "bands": 32, "rows": 2}, tmp_path)
    strict, stats = run_near(docs, {"unit": "char", "bands": 32, "rows": 2}, tmp_path)
    assert clusters(loose) == {"p": ("p", None), "q": ("p", "dup_near")}
    assert clusters(strict) == {} and stats["near_rejected_edges"] >= 1


def test_index_round_trip_and_incremental_run(tmp_path: Path) -> None:
    index = tmp_path / "index"
    first = corpus()
    out1, _ = run_near(first, {"unit": "char", "index_out": str(index)}, tmp_path)
    kept = {k for k, v in out1.items() if not v["reject_reason"]}
    table = pq.read_table(sorted(index.glob("*.parquet")))
    params = parse_config({"unit": "char"})
    assert set(table.column("id").to_pylist()) == kept
    assert table.num_rows == len(kept) * params.bands
    signed = table.filter(pc.is_valid(table.column("signature")))
    assert sorted(signed.column("id").to_pylist()) == sorted(kept) and set(signed.column("band").to_pylist()) == {0}
    assert {len(s) for s in signed.column("signature").to_pylist()} == {4 * params.num_perm}
    meta = json.loads(pq.read_schema(sorted(index.glob("*.parquet"))[0]).metadata[INDEX_META_KEY])
    assert meta == params.signature_params()

    new = [doc("n-copy", near_copy(first[8]["text"], 77), "government"), doc("n-new", base_text(999))]
    out2, stats = run_near(new, {"unit": "char", "index_in": [str(index)]}, tmp_path)
    assert clusters(out2) == {"n-copy": ("z-gov", "dup_near")}
    assert stats["dup_near"] == 1 and stats["near_verified_edges"] >= 1 and "near_unverified_edges" not in stats
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_in: .*num_perm=128 \(now 64\)"):
        NearDedup({"unit": "char", "num_perm": 64, "index_in": [str(index)]}, PRIORITY)
    with pytest.raises(ConfigError, match="no index file"):
        NearDedup({"unit": "char", "index_in": [str(tmp_path / "missing")]}, PRIORITY)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.parquet").write_text("junk")  # ArrowInvalid traceback before
    with pytest.raises(ConfigError, match=r"^dedup\.near\.index_in: .*a\.parquet is not a readable Parquet file"):
        NearDedup({"unit": "char", "index_in": [str(tmp_path / "junk")]}, PRIORITY)


def test_edges_to_an_earlier_index_are_checked_against_the_threshold(tmp_path: Path) -> None:
    """The index has no shingles, and the bucket's word stood: a pair at J ~0.6 that a loose banding proposes
    was merged against an index, and kept in one run over both. Each kept document's signature is now in the
    index, and the MinHash estimate of J decides; an index written without signatures is still trusted."""
    a, b = base_text(500), base_text(501)
    loose = {"unit": "char", "bands": 32, "rows": 2}
    index = tmp_path / "index"
    run_near([doc("p", a), doc("r", b)], {**loose, "index_out": str(index)}, tmp_path)
    later = [doc("q", near_copy(a, 9, 0.08)), doc("s", near_copy(b, 3))]  # J ~0.6 to p; a near copy of r
    out, stats = run_near(later, {**loose, "index_in": [str(index)]}, tmp_path)
    assert clusters(out) == {"s": ("r", "dup_near")}
    assert stats["near_rejected_edges"] >= 1 and stats["near_verified_edges"] >= 1
    assert "near_unverified_edges" not in stats
    for path in index.glob("*.parquet"):  # as written before signatures were kept
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["signature"]).replace_schema_metadata(table.schema.metadata), path)
    out, stats = run_near(later, {**loose, "index_in": [str(index)]}, tmp_path)
    assert clusters(out) == {"q": ("p", "dup_near"), "s": ("r", "dup_near")}
    assert stats["near_unverified_edges"] >= 2


def test_an_id_indexed_twice_with_two_texts_is_matched_against_both(tmp_path: Path) -> None:
    """An id keeps its name when its text changes between runs, so two indexes hold two signatures under it:
    one was picked by arrival order, and a copy of the newer text was kept or not by file order and workers."""
    old, new = base_text(600), base_text(601)
    loose = {"unit": "char", "bands": 32, "rows": 2}
    first, second = tmp_path / "i1", tmp_path / "i2"
    run_near([doc("x", old)], {**loose, "index_out": str(first)}, tmp_path)
    run_near([doc("x", new)], {**loose, "index_out": str(second)}, tmp_path)
    for order, workers in (([first, second], 1), ([second, first], 1), ([first, second], 2)):
        out, _ = run_near([doc("c", near_copy(new, 3))], {**loose, "index_in": [str(i) for i in order]}, tmp_path,
                          workers=workers)
        assert clusters(out) == {"c": ("x", "dup_near")}, (order, workers)


def test_every_candidate_edge_is_accounted_for() -> None:
    assert check_edge_accounting({"near_candidate_edges": 5, "near_verified_edges": 3, "near_rejected_edges": 1,
                                  "near_unverified_edges": 1}, verify=True) is None
    assert check_edge_accounting({"near_candidate_edges": 0}, verify=True) is None  # nothing to check
    assert check_edge_accounting({"near_candidate_edges": 7}, verify=False) is None  # every candidate is an edge
    lost = check_edge_accounting({"near_candidate_edges": 9, "near_verified_edges": 3, "near_rejected_edges": 1}, True)
    assert lost == "near dedup lost edges: 9 candidates, but 3 verified + 1 rejected + 0 unverified"
    assert check_edge_accounting({"near_candidate_edges": 4}, verify=True).startswith("near dedup lost edges: 4")


def test_verifying_an_exact_copy_reuses_the_smaller_ends_set(monkeypatch) -> None:
    """Same verdict as shingling the copy, without shingling it (MeCab dominated verification of copies)."""
    import pipeline.dedup_near as near

    text, other = base_text(1), near_copy(base_text(1), 2, rate=0.3)
    [(_, edge)] = near._hand_min_set((("0:min", ["1:copy"]), text), "morph", 5)
    calls: list[str] = []
    real = near.shingle_set

    def counting(t: str, unit: str, n: int):
        calls.append(t)
        return real(t, unit, n)

    monkeypatch.setattr(near, "shingle_set", counting)
    assert list(near._verify_edge((edge, text), "morph", 5, 0.8)) == [
        ("edge", ("1:copy", "0:min")), ("stats", near._stat(near_verified_edges=1))]
    assert calls == []  # the copy was not shingled
    verdict = list(near._verify_edge((edge, other), "morph", 5, 0.8))
    assert calls == [other] and verdict == [("stats", near._stat(near_rejected_edges=1))]
    with pytest.raises(RuntimeError, match="no text reached verification"):
        list(near._verify_edge((edge, None), "morph", 5, 0.8))


def test_band_keys_of_a_copy_are_remembered_not_recomputed(monkeypatch):
    """Exact copies reach near dedup too; a copy seen lately costs a digest, not MeCab and MinHash, and gives
    the keys a fresh computation gives. The memory empties itself when full."""
    from pipeline import dedup_near

    tokenised: list[str] = []
    real = dedup_near.shingle_set
    monkeypatch.setattr(dedup_near, "shingle_set", lambda text, *a: tokenised.append(text) or real(text, *a))
    monkeypatch.setattr(dedup_near, "SKETCHES_REMEMBERED", 2)
    texts = ["本文です。" * 20, "別の文章です。" * 20, "本文です。" * 20, "三つ目の文章。" * 20, "本文です。" * 20, ""]
    docs = [{"id": f"{i:032x}", "kind": "web", "text": t} for i, t in enumerate(texts)]
    p = parse_config({"enabled": True})

    def sketch():
        fn = dedup_near._Sketch(p, ["web"])
        fn.setup()
        return fn

    fn = sketch()
    remembered = [list(fn.process(d)) for d in docs]
    assert tokenised == [texts[0], texts[1], texts[3], texts[0], ""]  # the 3rd is a copy; the memory filled at the 4th
    assert remembered == [list(sketch().process(d)) for d in docs]
    assert remembered[0] and remembered[-1] == []
