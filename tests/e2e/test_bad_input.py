"""Every kind of bad input ends in quarantine with a one-line error; the readable documents go on."""
import glob
import gzip
import json

import pyarrow.parquet as pq

from pipeline.config import parse_config
from pipeline.curate import run_curate

JA = "日本語の文章はひらがなとカタカナと漢字で書かれている。"
BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Law><LawNum>&lol3;</LawNum></Law>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE Law [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Law><LawBody><LawTitle>&xxe;</LawTitle></LawBody></Law>"""


def test_bad_inputs_are_quarantined_not_fatal(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = json.dumps({"id": "ok", "text": JA}, ensure_ascii=False)
    (d / "mixed.jsonl").write_bytes(
        (good + "\n").encode() + b'{"id": "bad-utf8", "text": "\xff\xfe"}\n' + b"not json\n"
        + json.dumps({"id": "giant", "text": "あ" * 5000}).encode() + b"\n")
    (d / "bomb.jsonl.gz").write_bytes(gzip.compress(("\n".join([good.replace('"ok"', f'"b{i}"') for i in range(5)])
                                                     + "\n" + "x" * 3_000_000).encode()))
    (d / "notgzip.jsonl.gz").write_bytes(b"this is not gzip at all")
    (d / "law_bomb.xml").write_text(BOMB)
    (d / "law_xxe.xml").write_text(EXTERNAL)
    (d / "law_broken.xml").write_text("<Law><LawBody><LawTitle>途中で終わる")
    (d / "fake.warc.gz").write_bytes(gzip.compress(b"<html>not a warc</html>"))
    (d / "fake.parquet").write_bytes(b"PAR1 but not really")
    (d / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 10)
    cfg = parse_config({"sources": [
        {"name": "jsonl", "kind": "web", "format": "jsonl", "paths": [str(d / "*.jsonl*")], "license": "x",
         "max_record_bytes": 4000, "max_decompressed_bytes": 1_000_000},
        {"name": "laws", "kind": "government", "format": "egov_xml", "paths": [str(d / "law_*.xml")], "license": "x"},
        {"name": "warc", "kind": "web", "format": "warc", "paths": [str(d / "fake.warc.gz")], "license": "x"},
        {"name": "pq", "kind": "web", "format": "parquet", "paths": [str(d / "fake.parquet")], "license": "x"},
        {"name": "txt", "kind": "reference", "format": "text", "paths": [str(d / "*.txt")], "license": "x"},
    ], "filters": {"enabled": False}})
    stats = run_curate(cfg, str(tmp_path / "out"))
    assert stats["conservation"]["ok"]
    quarantined = [r for f in glob.glob(str(tmp_path / "out" / "quarantine" / "*.parquet"))
                   for r in pq.read_table(f).to_pylist()]
    by_source = {}
    for r in quarantined:
        by_source.setdefault(r["source"], []).append(r["error"])
        assert r["error"] and "\n" not in r["error"] and "Traceback" not in r["error"]
    assert len(by_source["jsonl"]) >= 5  # bad UTF-8, bad JSON, giant line, gzip bomb, not gzip
    assert len(by_source["laws"]) == 3 and len(by_source["warc"]) == 1 and len(by_source["pq"]) == 1
    assert len(by_source["txt"]) == 1
    kept = stats["sources"]["jsonl"]["kept_docs"] + stats["sources"]["jsonl"]["rejected_docs"]
    assert kept >= 2  # the good line and the readable head of the bomb file go on
    assert not any("passwd" in (r["text"] or "") or "root:" in (r["text"] or "") for r in quarantined)
