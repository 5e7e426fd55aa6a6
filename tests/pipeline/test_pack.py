"""`jcorpus pack` end to end on curated-style Parquet: round trip, determinism across workers, CLI and inspect."""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.pack import PackOptions, run_pack

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
# Fallback text written for these tests (no third-party content), used when the bundled samples are absent.
FALLBACK = [
    "今日は朝から雨が降っていたので、駅まで歩くのをやめてバスに乗った。",
    "図書館で借りた本を返す前に、気になった段落をノートに書き写しておいた。",
    "この論文では、日本語の文を形態素に分割する手法を比較し、その誤りを分析する。",
    "市役所の窓口は平日の午前九時から午後五時まで開いています。",
    "新しい条例は来年四月一日から施行され、対象となる事業者には届出が求められる。",
    "山の上から見た町の灯りは、まるで星空を地面に映したようだった。",
    "実験の結果、提案手法は従来手法よりも少ない計算量で同程度の精度を達成した。",
    "駅前の小さな喫茶店では、店主が毎朝自分で豆を焙煎している。",
    "第一条 この法律は、公共の福祉の増進に寄与することを目的とする。",
    "カタカナ語やアルファベットの略語が混じる文章でも、分割は安定していることが望ましい。",
]


def _sample_rows() -> list[dict]:
    rows = []
    for path in sorted(SAMPLES.glob("*/*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:40]):
            record = json.loads(line)
            text = str(record.get("text") or "")[:6000]
            rows.append({"source": path.stem, "kind": path.parent.name, "source_id": str(record.get("id", i)),
                         "text": text, "license": str(record.get("license") or "unknown")})
    if len(rows) < 20:
        rng = np.random.default_rng(0)
        for i in range(120):
            picks = rng.choice(len(FALLBACK), size=int(rng.integers(1, 25)))
            rows.append({"source": ("memo", "paper", "law")[i % 3], "kind": ("web", "academic", "government")[i % 3],
                         "source_id": str(i), "text": "".join(FALLBACK[p] for p in picks), "license": "CC0-1.0"})
    for row in rows:
        row["id"] = hashlib.sha256(f"{row['source']}\0{row['source_id']}".encode()).hexdigest()[:32]
    return rows


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Curated-style Parquet (two files) and a small SentencePiece model trained on it in seconds."""
    import sentencepiece as spm

    base = tmp_path_factory.mktemp("pack-corpus")
    rows = _sample_rows()
    table = pa.Table.from_pylist(rows)
    (base / "curated").mkdir()
    half = len(rows) // 2
    pq.write_table(table.slice(0, half), base / "curated" / "part-00000.parquet")
    pq.write_table(table.slice(half), base / "curated" / "part-00001.parquet")
    lines = [line for r in rows for line in r["text"].splitlines() if line.strip()]
    text = "\n".join(lines)[:300_000]
    (base / "train.txt").write_text(text, encoding="utf-8")
    # SentencePiece needs room for every character of the 98% coverage set; small vocabularies otherwise.
    counts = sorted(Counter(text).values(), reverse=True)
    required = int(np.searchsorted(np.cumsum(counts), 0.98 * len(text))) + 1
    spm.SentencePieceTrainer.train(
        input=str(base / "train.txt"), model_prefix=str(base / "tok"), vocab_size=max(1000, required + 400),
        byte_fallback=True, character_coverage=0.98, hard_vocab_limit=False, pad_id=3, num_threads=1,
        minloglevel=2)
    return {"curated": base / "curated", "model": base / "tok.model", "rows": rows}


def _pack(corpus, out, workers=1, **kw):
    opts = PackOptions(input=str(corpus["curated"]), tokenizer=str(corpus["model"]), out=str(out),
                       seq_len=kw.pop("seq_len", 64), **kw)
    return run_pack(opts, workers=workers)


def _documents_from_shards(out: Path, manifest: dict) -> dict[str, list[int]]:
    pieces: dict[str, list[tuple[int, list[int]]]] = {}
    for shard in manifest["shards"]:
        for row in pa.ipc.open_file(str(out / shard["file"])).read_all().to_pylist():
            bounds = row["doc_offsets"] + [row["length"]]
            for i, key in enumerate(row["doc_ids"]):
                pieces.setdefault(key, []).append((row["doc_positions"][i], row["tokens"][bounds[i]: bounds[i + 1]]))
    return {k: [t for _, seg in sorted(v) for t in seg] for k, v in pieces.items()}


def test_round_trip_text_to_shards_to_documents(corpus, tmp_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(corpus["model"]))
    manifest = _pack(corpus, tmp_path / "out", formats=("arrow", "megatron"))
    docs = _documents_from_shards(tmp_path / "out", manifest)
    texts = {r["id"]: r["text"] for r in corpus["rows"] if r["text"]}
    assert set(docs) == set(texts)
    for doc_id, tokens in docs.items():
        assert tokens[-1] == sp.eos_id() and sp.eos_id() not in tokens[:-1]
        assert sp.decode(tokens[:-1]) == sp.decode(sp.encode(texts[doc_id]))
    t = manifest["totals"]
    assert t["input_docs"] == len(corpus["rows"]) and t["docs"] == len(texts)
    assert manifest["tokenizer"]["sha256"] == hashlib.sha256(corpus["model"].read_bytes()).hexdigest()
    assert manifest["seq_len"] == 64 and manifest["token_dtype"] == "uint16"
    long_docs = sum(len(tok) > 65 for tok in docs.values())
    assert t["split_docs"] == long_docs  # bestfit: only documents longer than a row are split
    for s in manifest["shards"]:
        assert hashlib.sha256((tmp_path / "out" / s["file"]).read_bytes()).hexdigest() == s["sha256"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]
    # Megatron parts hold the same documents, EOD included.
    from tests.trainer_bridge.test_megatron import read_mmidxidx

    megatron = []
    for part in manifest["megatron"]:
        prefix = tmp_path / "out" / part["prefix"]
        megatron += read_mmidxidx(prefix.with_suffix(".idx").read_bytes(), prefix.with_suffix(".bin").read_bytes())
    assert sorted(megatron) == sorted(docs.values())


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_byte_identical_shards_for_one_and_two_workers(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    common = {"formats": ("arrow", "megatron"), "shard_bytes": 20_000, "mix": {"academic": 1.7, "web": 0.6}}
    one = _pack(corpus, tmp_path / "one", **common)
    two = _pack(corpus, tmp_path / "two", workers=2, **common)
    assert two == one
    assert one["totals"]["groups"] > 2  # several packing groups, so two workers really share the packing
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_cli_pack_mix_and_inspect(corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["pack", "--input", str(corpus["curated"]), "--tokenizer", str(corpus["model"]), "--seq-len", "128",
            "--out", str(out), "--mix", "academic=2,government=0.5", "--packing", "concat"]
    assert cli_main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packing"] == "concat" and manifest["mixture"]["spec"] == {"academic": 2.0, "government": 0.5}
    if "academic" in manifest["mixture"]["groups"]:
        assert manifest["mixture"]["groups"]["academic"]["realized_weight"] == pytest.approx(2.0)
    capsys.readouterr()
    assert cli_main(["shards", "inspect", str(out), "--tokenizer", str(corpus["model"]), "--verify"]) == 0
    shown = capsys.readouterr().out
    assert "shard-00000-000.arrow" in shown and "verified" in shown and "⟦doc " in shown and "realized_share" in shown
    assert cli_main(argv) == 2  # the output exists already
    assert cli_main(argv[:-4] + ["--mix", "academic=two"]) == 2
    assert cli_main(["pack", "--input", str(tmp_path / "none"), "--tokenizer", str(corpus["model"]),
                     "--seq-len", "8", "--out", str(tmp_path / "x")]) == 2
    assert cli_main(["shards", "inspect", str(tmp_path / "none")]) == 2
    (tmp_path / "bad").mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}), tmp_path / "bad" / "a.parquet")
    assert cli_main(["pack", "--input", str(tmp_path / "bad"), "--tokenizer", str(corpus["model"]),
                     "--seq-len", "8", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--mix" in err and "no Parquet files" in err
    assert "missing columns ['source', 'kind', 'license']" in err
    shard = out / "shard-00000-000.arrow"
    shard.write_bytes(shard.read_bytes()[:100])  # a truncated shard: one line, not pyarrow's traceback
    assert cli_main(["shards", "inspect", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "shard-00000-000.arrow: cannot read it (ArrowInvalid" in err and "--verify" in err and "\n" not in err


def test_a_stop_during_the_commit_waits_for_it(corpus, tmp_path, monkeypatch):
    """A Ctrl-C between the shards' rename and the manifest's left shards with no manifest."""
    import os
    import signal

    import pipeline.pack as pack

    rename = pack.FileSystems.rename

    def stopped_midway(sources, targets):
        if not any("_temporary" in t or ".tmp" in t for t in targets):  # the commit's renames, not a step's
            os.kill(os.getpid(), signal.SIGINT)
        return rename(sources, targets)

    monkeypatch.setattr(pack.FileSystems, "rename", stopped_midway)
    manifest = _pack(corpus, tmp_path / "out")
    assert (tmp_path / "out" / "manifest.json").exists() and manifest["totals"]["docs"]
