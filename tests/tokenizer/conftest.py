"""Japanese documents for tokenizer tests: bundled samples, else the shared dev corpora, else skip."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "data" / "samples"
SHARED = ROOT.parent / "shared" / "corpora"
# Redistributable shared files only (the WARC pages are not used here).
SHARED_FILES = ("academic/anlp2025_abstracts.jsonl", "government/egov_laws_2013.jsonl",
                "reference/jawiki_jsquad_paragraphs.jsonl", "reference/aozora_bunko.jsonl",
                "web/fineweb2_ja_text.jsonl")


def _load(files: list[Path], per_kind_chars: int) -> list[tuple[str, str]]:
    docs: list[tuple[str, str]] = []
    used: dict[str, int] = {}
    for path in files:
        kind = path.parent.name
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                text = json.loads(line).get("text")
            except (ValueError, AttributeError):
                continue
            if not isinstance(text, str) or not text or used.get(kind, 0) >= per_kind_chars:
                continue
            text = text[:20_000]
            used[kind] = used.get(kind, 0) + len(text)
            docs.append((kind, text))
    return docs


@pytest.fixture(scope="session")
def ja_docs() -> list[tuple[str, str]]:
    """(kind, text) documents, about 100k characters per kind."""
    files = sorted(BUNDLED.glob("*/*.jsonl"))
    if not files:
        files = [SHARED / f for f in SHARED_FILES if (SHARED / f).is_file()]
    docs = _load(files, 100_000)
    if sum(len(t) for _, t in docs) < 100_000:
        pytest.skip("needs Japanese sample text: data/samples/*/*.jsonl or ../shared/corpora")
    return docs
