#!/usr/bin/env python3
"""Rebuild the bundled licence-clean samples from the developers' shared corpora (deterministic).

    python data/samples/build_samples.py [--corpora ../shared/corpora]

Selections use a fixed seed over sorted ids, so the output is byte-identical on every run. The sample
WARC under web/ is built by web/build_sample_warc.py, not here. See SOURCES.md for origins and licences.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from build_markup import build_jats_xml, build_law_xml

HERE = Path(__file__).resolve().parent
SEED = 20250310
LAW_FOR_XML = "egov2013-a093389bdd5bcef2"  # 周辺事態に際して実施する船舶検査活動に関する法律 (has a 別表 table)
LAW_NEAR_COPY = "egov2013-e387f02344845756"  # 軽犯罪法: a lightly edited second "snapshot" is added
ABSTRACT_FOR_JATS = "anlp2025-P7-18"
AOZORA_WORKS = {"aozora-tyuumon": None, "aozora-serohiki": None, "aozora-bottyan": 30_000}  # id -> char cap
# light edits for the near-copy snapshot: kana spellings modernised as later amendments did
NEAR_COPY_EDITS = [("且つ", "かつ"), ("左の各号", "次の各号"), ("虞", "おそれ")]


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(rows: list[dict], k: int, salt: str, always: tuple[str, ...] = (), never: tuple[str, ...] = ()) -> list[dict]:
    """k rows chosen by a seeded RNG over sorted ids (plus `always`), kept in the corpus file order."""
    pool = sorted(r["id"] for r in rows if r["id"] not in always and r["id"] not in never)
    chosen = set(always) | set(random.Random(f"{SEED}:{salt}").sample(pool, k - len(always)))
    return [r for r in rows if r["id"] in chosen]


def tidy(row: dict) -> dict:
    """Keep the corpus record, renaming its provenance field so it cannot be mistaken for a source name."""
    out = dict(row)
    out["origin"] = out.pop("source")
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{path.relative_to(HERE)}: {len(rows)} records, {path.stat().st_size:,} bytes")


def cut_at_sentence(text: str, cap: int | None) -> str:
    if cap is None or len(text) <= cap:
        return text
    end = text.rfind("。", 0, cap)
    return text[: end + 1 if end > 0 else cap]


def laws(corpora: Path) -> list[dict]:
    rows = load(corpora / "government/egov_laws_2013.jsonl")
    small = [r for r in rows if len(r["text"]) <= 12_000]
    chosen = [tidy(r) for r in pick(small, 9, "laws", always=(LAW_FOR_XML, LAW_NEAR_COPY))]
    base = next(r for r in chosen if r["id"] == LAW_NEAR_COPY)
    copy = dict(base, id=LAW_NEAR_COPY + "-edited", near_copy_of=LAW_NEAR_COPY,
                note="synthetic second snapshot: light edits of the 2013 text, for near-duplicate tests")
    for old, new in NEAR_COPY_EDITS:
        copy["text"] = copy["text"].replace(old, new)
    return chosen + [copy]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=HERE.parent.parent.parent / "shared" / "corpora")
    corpora = ap.parse_args().corpora

    law_rows = laws(corpora)
    write_jsonl(HERE / "government/laws.jsonl", law_rows)

    abstracts = load(corpora / "academic/anlp2025_abstracts.jsonl")
    write_jsonl(HERE / "academic/abstracts.jsonl",
                [tidy(r) for r in pick(abstracts, 80, "abstracts", never=(ABSTRACT_FOR_JATS,))])

    wiki = load(corpora / "reference/jawiki_jsquad_paragraphs.jsonl")
    write_jsonl(HERE / "reference/wikipedia.jsonl", [tidy(r) for r in pick(wiki, 300, "wikipedia")])

    aozora = [tidy(r) for r in load(corpora / "reference/aozora_bunko.jsonl") if r["id"] in AOZORA_WORKS]
    for r in aozora:
        cap = AOZORA_WORKS[r["id"]]
        if cap is not None and len(r["text"]) > cap:
            r["text"] = cut_at_sentence(r["text"], cap)
            r["excerpt"] = f"first {len(r['text'])} characters of the work"
    write_jsonl(HERE / "reference/aozora.jsonl", aozora)

    write_jsonl(HERE / "web/fineweb2.jsonl", [tidy(r) for r in load(corpora / "web/fineweb2_ja_text.jsonl")])

    law = next(r for r in load(corpora / "government/egov_laws_2013.jsonl") if r["id"] == LAW_FOR_XML)
    (HERE / "government/law_sample.xml").write_text(build_law_xml(law["text"]), encoding="utf-8")
    abstract_rows = {r["id"]: r for r in abstracts}
    (HERE / "academic/jats_sample.xml").write_text(
        build_jats_xml(abstract_rows[ABSTRACT_FOR_JATS], abstract_rows["anlp2025-Q3-23"]), encoding="utf-8")
    print("government/law_sample.xml, academic/jats_sample.xml written")


if __name__ == "__main__":
    main()
