"""Curate on the developers' whole dev corpora (skipped on a clone without ../shared)."""
import glob
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.curate import run_curate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shared_corpora.yaml"


def test_shared_corpora_keep_the_good_and_drop_the_foreign(tmp_path, shared_corpora):
    stats = run_curate(load_config(str(EXAMPLE)), str(tmp_path / "out"))
    assert stats["conservation"]["ok"]
    assert stats["quarantined_docs"] == 0  # everything there is readable
    rows = {d: [r for f in glob.glob(str(tmp_path / "out" / d / "*.parquet")) for r in pq.read_table(f).to_pylist()]
            for d in ("curated", "rejected")}
    by_source = {d: Counter(r["source"] for r in rs) for d, rs in rows.items()}
    src = stats["sources"]
    # laws are kept unless they are copies of another law
    law_rejects = [r["reject_reason"] for r in rows["rejected"] if r["source"] == "egov_laws"]
    assert all(reason.startswith("dup_") for reason in law_rejects)
    # abstracts: only the English ones go, and they go as non-Japanese
    for r in rows["rejected"]:
        if r["source"] == "anlp2025":
            assert r["reject_reason"] == "lang_not_ja" and not any("\u3040" <= c <= "\u30ff" for c in r["text"])
    assert by_source["curated"]["jawiki"] >= 0.99 * src["jawiki"]["input_docs"]
    assert by_source["curated"]["aozora"] == src["aozora"]["input_docs"]
    # web pages: the manifest says which are not Japanese
    manifest = {json.loads(line)["warc_record_id"]: json.loads(line)
                for line in (shared_corpora / "web" / "web_pages.manifest.jsonl").read_text().splitlines()}
    foreign = [(r.get("reject_reason") or "kept") for d in rows.values() for r in d
               if r["source"] == "web_pages" and manifest[r["source_id"]]["lang"] != "ja"]
    assert len(foreign) == sum(1 for m in manifest.values() if m["lang"] != "ja")
    assert sum(reason.startswith("lang_") for reason in foreign) >= 0.9 * len(foreign), Counter(foreign)
    japanese_lang_rejects = [r for r in rows["rejected"] if r["source"] == "web_pages"
                             and manifest[r["source_id"]]["lang"] == "ja" and r["reject_reason"].startswith("lang_")]
    assert not japanese_lang_rejects
