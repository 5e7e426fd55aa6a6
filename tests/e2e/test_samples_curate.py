"""Curate on the bundled samples: inputs counted independently of the pipeline, and the run balances."""
import gzip
import json
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from pipeline.config import load_config
from pipeline.curate import run_curate

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


def _independent_counts() -> dict[str, int]:
    def lines(rel):
        return sum(1 for line in (SAMPLES / rel).read_text(encoding="utf-8").splitlines() if line.strip())

    with gzip.open(SAMPLES / "web" / "pages.warc.gz", "rb") as fh:
        responses = sum(1 for rec in ArchiveIterator(fh) if rec.rec_type == "response")
    return {"laws": lines("government/laws.jsonl"), "law_xml": 1, "abstracts": lines("academic/abstracts.jsonl"),
            "jats": 1, "wikipedia": lines("reference/wikipedia.jsonl"), "aozora": lines("reference/aozora.jsonl"),
            "fineweb2": lines("web/fineweb2.jsonl"), "web_pages": responses}


def test_bundled_samples_balance_against_independent_counts(tmp_path):
    stats = run_curate(load_config(str(ROOT / "examples" / "demo.yaml")), str(tmp_path / "out"))
    expected = _independent_counts()
    assert {name: s["input_docs"] for name, s in stats["sources"].items()} == expected
    assert stats["conservation"]["ok"] and stats["quarantined_docs"] == 0
    assert stats["input_docs"] == sum(expected.values()) == (
        stats["kept_docs"] + stats["rejected_docs"] + stats["quarantined_docs"])
    on_disk = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert on_disk["kept_docs"] == stats["kept_docs"]
    # the sample WARC's Chinese and English pages are rejected as non-Japanese
    assert stats["sources"]["web_pages"]["rejected_by_reason"].get("lang_not_ja", 0) >= 2
    assert stats["sources"]["jats"]["kept_docs"] == 1
    # the XML law was built from a law that laws.jsonl also holds: one of the two survives
    xml = stats["sources"]["law_xml"]
    assert xml["kept_docs"] == 1 or set(xml["rejected_by_reason"]) <= {"dup_exact", "dup_near"}
    web = stats["sources"]["web_pages"]["rejected_by_reason"]
    assert web.get("skip_http_status") == 1 and web.get("skip_content_type") == 1  # the redirect and the PNG
