"""The benchmark's perturbed-copy input: sized, seeded, and new kanji strings with the kana left alone."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "tokenizer_bench", Path(__file__).resolve().parents[2] / "bench" / "tokenizer_bench.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)
KANJI = re.compile(r"[\u4e00-\u9fff]")


def test_perturbed_documents(ja_docs: list[tuple[str, str]], tmp_path: Path) -> None:
    size = 3 * sum(len(t.encode()) for _, t in ja_docs)
    docs = list(bench.perturbed_documents(ja_docs, size))
    assert size <= sum(len(t.encode()) for _, t in docs) < size + max(len(t.encode()) for _, t in ja_docs)
    assert docs[: len(ja_docs)] == ja_docs  # copy 0 is the input itself
    copy1 = docs[len(ja_docs) : 2 * len(ja_docs)]
    assert [k for k, _ in copy1] == [k for k, _ in ja_docs]
    assert [KANJI.sub("", t) for _, t in copy1] == [KANJI.sub("", t) for _, t in ja_docs]  # only kanji change
    changed = sum(a != b for (_, t), (_, u) in zip(ja_docs, copy1, strict=True) for a, b in zip(t, u, strict=True))
    assert 0.1 < changed / sum(len(KANJI.findall(t)) for _, t in ja_docs) < 0.4  # about a quarter of the kanji
    assert docs == list(bench.perturbed_documents(ja_docs, size))
    bench.write_jsonl(iter(docs[:3]), tmp_path)
    assert sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*/docs.jsonl")) == 3
