"""Readers on broken input: one clear one-line Unreadable per bad item, the good documents around it kept."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from pipeline.sources import RawDoc, SourceConfig, Unreadable, reader_for


def read_all(fmt: str, path: Path | str, **kw) -> list[RawDoc | Unreadable]:
    source = SourceConfig(name="t", kind="web", format=fmt, paths=(), license="ODC-BY-1.0", **kw)
    items = list(reader_for(fmt)(str(path), source))
    for item in items:
        if isinstance(item, Unreadable):
            assert "\n" not in item.error and 0 < len(item.error) < 400, item.error
    return items


def good_lines(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"id": f"doc-{i}", "text": f"これは{i}番目の文書です。" * (1 + i % 7)},
                       ensure_ascii=False).encode() for i in range(start, start + n)]


def kinds(items: list) -> str:
    return "".join("D" if isinstance(i, RawDoc) else "U" for i in items)


def test_bad_lines_are_quarantined_one_by_one(tmp_path: Path) -> None:
    ok = good_lines(4)
    lines = [ok[0], b'{"id": "x", "text": "unterminated', ok[1], b'["a", "list"]', b'{"id": "n", "body": "no text"}',
             b'{"id": "t", "text": 42}', "{\"text\": \"壊れ\"}".encode()[:-5] + b"\xff\xfe\"}", ok[2],
             b'{"text": "\\ud800 lone surrogate"}', b"   ", ok[3]]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = read_all("jsonl", path)
    assert kinds(items) == "DUDUUUUDUD"  # the blank line yields nothing
    bad = [i for i in items if isinstance(i, Unreadable)]
    assert [u.source_id for u in bad] == [f"{path}:line {n}" for n in (2, 4, 5, 6, 7, 9)]
    assert bad[0].error.startswith("invalid JSON: Unterminated string")
    assert "expected an object" in bad[1].error and "list" in bad[1].error
    assert "no text field 'text'" in bad[2].error and "body" in bad[2].error
    assert "is int, expected a string" in bad[3].error
    assert bad[4].error.startswith("invalid UTF-8 at byte") and "ff fe" in bad[4].error
    assert "surrogate" in bad[5].error
    assert [d.source_id for d in items if isinstance(d, RawDoc)] == ["doc-0", "doc-1", "doc-2", "doc-3"]


def test_giant_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "giant.jsonl"
    with path.open("wb") as f:
        f.write(good_lines(1)[0] + b"\n")
        f.write(b'{"text": "' + b"x" * (8 << 20) + b'"}\n')
        f.write(good_lines(1, start=1)[0] + b"\n")
    tracemalloc.start()
    items = read_all("jsonl", path, max_record_bytes=4096)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert kinds(items) == "DUD"
    assert items[1].source_id == f"{path}:line 2"
    assert items[1].error == f"line of {(8 << 20) + 12} bytes exceeds max_record_bytes=4096"
    assert peak < 1 << 20, f"peak {peak} bytes while skipping an 8 MiB line"


def test_corrupt_gzip_keeps_lines_before_the_damage(tmp_path: Path) -> None:
    ok = good_lines(300)
    first = gzip.compress(b"\n".join(ok) + b"\n")
    broken_member = gzip.compress(b"\n".join(good_lines(5, 300)))[:10] + b"\xff" * 64  # reserved block type
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(first + broken_member)
    items = read_all("jsonl", path)
    assert kinds(items) == "D" * 300 + "U"
    assert items[-1].source_id == f"{path}:line 301"
    assert items[-1].error.startswith("gzip: Error -3 while decompressing data: invalid block type")
    assert "lines from 301 on were not read" in items[-1].error


COMPRESS = {"gzip": gzip.compress, "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
            "bz2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("codec", COMPRESS)
def test_truncated_compression(tmp_path: Path, codec: str) -> None:
    data = b"\n".join(good_lines(2000)) + b"\n"
    blob = COMPRESS[codec](data)
    path = tmp_path / "cut.jsonl"
    path.write_bytes(blob[: len(blob) // 2])
    items = read_all("jsonl", path)
    docs = [i for i in items if isinstance(i, RawDoc)]
    least = 0 if codec == "bz2" else 100  # bz2 decodes whole blocks (up to 900 kB): a cut one gives nothing
    assert least <= len(docs) < 2000 and kinds(items) == "D" * len(docs) + "U"
    assert [d.source_id for d in docs] == [f"doc-{i}" for i in range(len(docs))]
    assert items[-1].error.startswith(f"{codec}: truncated input")


def test_crc_mismatch_is_reported(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(b"\n".join(good_lines(20)) + b"\n"))
    blob[-8] ^= 0xFF  # CRC32 trailer
    path = tmp_path / "crc.jsonl.gz"
    path.write_bytes(bytes(blob))
    items = read_all("jsonl", path)
    assert kinds(items) == "D" * 20 + "U" and "incorrect data check" in items[-1].error


@pytest.mark.parametrize("codec", COMPRESS)
def test_decompression_bomb_stops_at_the_cap(tmp_path: Path, codec: str) -> None:
    zeros = (64 if codec in ("gzip", "zstd") else 16) << 20  # bz2 and xz compress 10-20 MB/s
    payload = b"\n".join(good_lines(3)) + b"\n" + b"\0" * zeros
    blob = COMPRESS[codec](payload)
    assert len(blob) < 400_000
    path = tmp_path / "bomb.bin"
    path.write_bytes(blob)
    tracemalloc.start()
    items = read_all("jsonl", path, max_decompressed_bytes=1 << 20, max_record_bytes=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert kinds(items) == "DDDU"
    assert "exceeds max_decompressed_bytes=1048576" in items[-1].error
    assert peak < (16 if codec == "xz" else 8) << 20  # xz's default preset decodes with an 8 MiB dictionary


@pytest.mark.parametrize("codec", COMPRESS)
def test_concatenated_streams_are_read_to_the_end(tmp_path: Path, codec: str) -> None:
    """pbzip2, pixz and `cat a.gz b.gz` write several streams; each is read, then trailing garbage is an error."""
    path = tmp_path / "multi.jsonl"
    path.write_bytes(b"".join(COMPRESS[codec](b"\n".join(good_lines(50, i * 50)) + b"\n") for i in range(3)))
    assert [d.source_id for d in read_all("jsonl", path)] == [f"doc-{i}" for i in range(150)]
    path.write_bytes(path.read_bytes() + b"not compressed")
    items = read_all("jsonl", path)
    assert kinds(items) == "D" * 150 + "U" and f"trailing data that is not {codec}" in items[-1].error


def test_an_xz_stream_that_needs_a_huge_dictionary_is_refused(tmp_path: Path) -> None:
    """The stream header says how much memory decoding needs (the dictionary: up to 4 GiB); like zstd's
    window, more than 128 MiB is refused before it is allocated."""
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 30}]
    path = tmp_path / "dict.jsonl.xz"
    path.write_bytes(lzma.compress(b"\n".join(good_lines(3)) + b"\n", filters=filters))
    (item,) = read_all("jsonl", path)
    assert isinstance(item, Unreadable) and "xz: Memory usage limit" in item.error


def test_xz_stream_padding_between_streams_is_allowed(tmp_path: Path) -> None:
    """xz's format allows NUL bytes (in fours) after a stream; `xz -dc` reads on past them."""
    path = tmp_path / "padded.jsonl.xz"
    parts = [lzma.compress(b"\n".join(good_lines(2, i * 2)) + b"\n") for i in range(2)]
    path.write_bytes(parts[0] + b"\0" * 8 + parts[1] + b"\0" * 4)
    assert [d.source_id for d in read_all("jsonl", path)] == [f"doc-{i}" for i in range(4)]


def test_damage_in_a_bz2_or_xz_stream_names_the_stream(tmp_path: Path) -> None:
    """Their decompressors do not say where the damage is: the message names the stream, not a made-up byte."""
    first = bz2.compress(b"\n".join(good_lines(20)) + b"\n")
    broken = bytearray(bz2.compress(b"\n".join(good_lines(20, 20)) + b"\n"))
    broken[len(broken) // 2] ^= 0xFF
    path = tmp_path / "flip.jsonl.bz2"
    path.write_bytes(first + bytes(broken))
    items = read_all("jsonl", path)
    assert kinds(items) == "D" * 20 + "U"
    assert items[-1].error.startswith(f"bz2: Invalid data stream (in the stream from compressed byte {len(first)})")


def test_text_that_starts_like_a_bz2_header_is_text(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_bytes("BZh9 は bzip2 の見出しに似た行\n".encode())
    (doc,) = read_all("text", path)
    assert doc.text.startswith("BZh9")


def test_the_damaged_byte_of_a_gzip_is_named(tmp_path: Path) -> None:
    first = gzip.compress(b"\n".join(good_lines(300)) + b"\n")
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(first + gzip.compress(b"x")[:10] + b"\xff" * 64)  # a reserved block type at byte 10
    error = read_all("jsonl", path)[-1].error
    assert f"(near compressed byte {len(first) + 10})" in error, error  # it was byte 8, the sniffed head, always


def test_trailing_garbage_after_gzip(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(good_lines(3)) + b"\n") + b"not gzip at all")
    items = read_all("jsonl", path)
    assert kinds(items) == "DDDU" and "trailing data that is not gzip" in items[-1].error


def test_missing_file(tmp_path: Path) -> None:
    for fmt in ("jsonl", "parquet", "text", "egov_xml", "jats_xml"):
        (item,) = read_all(fmt, tmp_path / "nope.dat")
        assert isinstance(item, Unreadable) and item.error.startswith("cannot open"), fmt


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"\n".join(good_lines(3)))
    (item,) = read_all("parquet", path)
    assert item.source_id == str(path) and item.error.startswith("not a readable Parquet file")
    assert "magic bytes" in item.error


def test_parquet_without_text_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"body": ["a"], "id": ["1"]}), path)
    (item,) = read_all("parquet", path)
    assert "no column 'text'" in item.error and "body" in item.error


def test_parquet_rows_with_bad_values(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": ["良い", None, "x" * 5000, "also good"]}), path)
    items = read_all("parquet", path, max_record_bytes=1000)
    assert kinds(items) == "DUUD"
    assert items[1].source_id == f"{path}:row 2" and "is NoneType" in items[1].error
    assert "exceeds max_record_bytes=1000" in items[2].error


def test_parquet_bombs_stop_at_max_decompressed_bytes(tmp_path: Path) -> None:
    """Row groups of 4 x 2.1 MB of text, zstd-compressed to a few hundred bytes each (a dictionary of one
    value); max_decompressed_bytes 10 MB: the first group is read, the rest is one row; a footer that
    declares too much stops the file before its pages are decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["あ" * 700_000] * 8}), path, compression="zstd", row_group_size=4)
    assert path.stat().st_size < 50_000
    items = read_all("parquet", path, max_decompressed_bytes=10_000_000)
    assert kinds(items) == "DDDDU" and items[-1].source_id == f"{path}:row 5"
    assert "rows 1-8 hold 16800000 bytes of values, more than max_decompressed_bytes=10000000" in items[-1].error
    assert items[-1].error.endswith("rows 5-8 were not read")
    path = tmp_path / "plain.parquet"  # no dictionary: the footer declares every byte
    pq.write_table(pa.table({"text": [f"{i}" + "あ" * 700_000 for i in range(8)]}), path, row_group_size=4,
                   use_dictionary=False, compression="zstd")
    items = read_all("parquet", path, max_decompressed_bytes=6_000_000)
    assert kinds(items) == "U" and "row groups 0-0 declare" in items[0].error and "rows 1-8 were not read" in items[0].error


def test_parquet_numbers_count_toward_max_record_bytes(tmp_path: Path) -> None:
    """Only strings were measured, so a row holding a list of millions of integers (a few kB of Parquet:
    delta-encoded) became a Python list of millions of ints; fixed-width values now count by width."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "numbers.parquet"
    counts = pa.array([[1, 2], list(range(200_000)), [3]], pa.list_(pa.int64()))
    pq.write_table(pa.table({"text": ["良い", "短い", "also good"], "counts": counts}), path, compression="zstd")
    items = read_all("parquet", path, max_record_bytes=1_000_000)
    assert kinds(items) == "DUD"
    assert items[1].error == "row of 1600006 bytes of values exceeds max_record_bytes=1000000"


@pytest.mark.parametrize("kind", ["list_view", "large_list_view", "string_view", "binary_view", "json"])
def test_parquet_view_and_extension_columns_count_toward_max_record_bytes(tmp_path: Path, kind: str) -> None:
    """Column types Arrow restores from a file's stored schema (list views, string/binary views, extension
    types such as arrow.json) were measured as 0 bytes, so a row of 24 MB of values, or 100 MB of JSON text in
    a 50 kB file, passed both limits; each now counts as its plain equivalent does (1.6 MB here)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    values, small = {"list_view": ([list(range(200_000))], [1, 2]),
                     "large_list_view": ([list(range(200_000))], [1, 2]),
                     "string_view": (["x" * 1_600_000], "ab"), "binary_view": ([b"x" * 1_600_000], b"ab"),
                     "json": (['"' + "x" * 1_599_998 + '"'], "{}")}[kind]
    kind_type = {"list_view": pa.list_view(pa.int64()), "large_list_view": pa.large_list_view(pa.int64()),
                 "string_view": pa.string_view(), "binary_view": pa.binary_view(), "json": pa.json_()}[kind]
    path = tmp_path / f"{kind}.parquet"
    table = pa.table({"text": ["良い", "短い", "also good"], "extra": pa.array([small, values[0], None], kind_type)})
    pq.write_table(table, path, compression="zstd")
    assert pq.read_schema(path).field("extra").type == kind_type  # what the reader gets back, not a plain type
    items = read_all("parquet", path, max_record_bytes=1_000_000)
    assert kinds(items) == "DUD"
    assert items[1].error == "row of 1600006 bytes of values exceeds max_record_bytes=1000000"


def test_view_and_extension_arrays_measure_as_their_plain_equivalents() -> None:
    """`_cell_bytes` on views, list views and extension arrays, whole and sliced, against the same values in
    plain string, binary and list arrays."""
    import pyarrow as pa

    from pipeline.sources.parquet import _cell_bytes

    texts = ["ab", None, "x" * 5, "", "長い" * 10]
    lists = [[1, 2], None, [], list(range(7)), [3]]
    pairs = [(pa.array(texts, pa.string_view()), pa.array(texts)),
             (pa.array([t and t.encode() for t in texts], pa.binary_view()), pa.array([t and t.encode() for t in texts])),
             (pa.array(texts, pa.json_()), pa.array(texts)),
             (pa.array(lists, pa.list_view(pa.int32())), pa.array(lists, pa.list_(pa.int32()))),
             (pa.array(lists, pa.large_list_view(pa.int64())), pa.array(lists, pa.list_(pa.int64())))]
    for special, plain in pairs:
        for start in range(3):
            assert _cell_bytes(special.slice(start)).tolist() == _cell_bytes(plain.slice(start)).tolist(), special.type


PEAK_RSS = """
import re, sys
from pipeline.sources import SourceConfig, reader_for
source = SourceConfig(name="t", kind="web", format="parquet", paths=(), license="x", max_record_bytes=1_000_000)
items = list(reader_for("parquet")(sys.argv[1], source))
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)  # ru_maxrss outlives exec
print(len(items), items[0].error, items[-1].error, peak, sep="\\n")
"""


@pytest.mark.parametrize("layout", ["text", "list", "struct"])
def test_a_repeated_dictionary_value_is_never_expanded(tmp_path: Path, layout: str) -> None:
    """One 3 MB value, 5,000 rows pointing at it (in the text column, or in a list or struct column next to
    a short text): 15 GB in a 40 kB file whose footer has no Arrow schema (another writer's), so Arrow would
    read the column as plain strings, 256 copies per batch (2.4 GB peak; 15.8 GB nested). Read as a
    dictionary, rows over max_record_bytes are quarantined from their Arrow lengths."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    big = pa.DictionaryArray.from_arrays(pa.array([0] * 5000, pa.int32()), pa.array(["あ" * 1_000_000]))
    columns = {"text": big} if layout == "text" else {"text": ["短い"] * 5000, "tags": (
        pa.ListArray.from_arrays(pa.array(range(5001), pa.int32()), big) if layout == "list"
        else pa.StructArray.from_arrays([big], ["note"]))}
    path = tmp_path / "dict.parquet"
    pq.write_table(pa.table(columns), path, compression="zstd", store_schema=False)
    assert path.stat().st_size < 100_000 and pq.ParquetFile(path).schema_arrow.field("text").type == pa.string()
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.splitlines()
    size = 3_000_000 + (0 if layout == "text" else 6)
    assert out[:2] == ["1281", f"row of {size} bytes of values exceeds max_record_bytes=1000000"]  # 5 batches,
    assert "rows 1281-5000 were not read" in out[2]  # then max_decompressed_bytes (4 GB) for the rest
    assert int(out[3]) < 600_000, f"peak RSS {int(out[3]) >> 10} MB"


def test_text_reader_invalid_utf8_and_limits(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes("正しい段落。\n\n".encode() + b"\x82\xa0\x82\xa2 shift_jis\n\n" + "次の段落。".encode())
    (whole,) = read_all("text", bad)
    assert isinstance(whole, Unreadable) and whole.error.startswith("invalid UTF-8 at byte 20")
    items = read_all("text", bad, text_split="blank_line")
    assert kinds(items) == "DUD" and items[1].source_id == f"{bad}#block 2"
    assert "block starting at line 3" in items[1].error
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 5000 + b"\n\nsmall\n")
    (too_big,) = read_all("text", big, max_record_bytes=1000)
    assert "larger than max_record_bytes=1000" in too_big.error
    assert kinds(read_all("text", big, text_split="blank_line", max_record_bytes=1000)) == "UD"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE Law [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<{root}><LawNum>&lol9;</LawNum></{root}>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<{root}><LawNum>&xxe;</LawNum></{root}>"""


@pytest.mark.parametrize("fmt,root", [("egov_xml", "Law"), ("jats_xml", "article")])
@pytest.mark.parametrize("attack", ["billion_laughs", "external_entity"])
def test_xml_attacks_are_refused(tmp_path: Path, fmt: str, root: str, attack: str) -> None:
    template = BILLION_LAUGHS if attack == "billion_laughs" else EXTERNAL
    path = tmp_path / f"{attack}.xml"
    path.write_text(template.replace("{root}", root), encoding="utf-8")
    (item,) = read_all(fmt, path)
    assert isinstance(item, Unreadable) and item.source_id == str(path)
    assert item.error.startswith("refused by defusedxml: EntitiesForbidden")
    assert ("lol" if attack == "billion_laughs" else "xxe") in item.error


def test_malformed_xml_after_a_good_law(samples_dir: Path, tmp_path: Path) -> None:
    law = (samples_dir / "government/law_sample.xml").read_text(encoding="utf-8").split("?>", 1)[1]
    path = tmp_path / "two.xml.gz"
    path.write_bytes(gzip.compress(f"<Laws>{law}<Law><LawNum>壊れた</Law></Laws>".encode()))
    items = read_all("egov_xml", path)
    assert kinds(items) == "DU" and items[0].source_id == f"{path}#/Laws/Law[1]"
    assert items[1].source_id == f"{path}#/Law[2]"
    assert items[1].error.startswith("malformed XML: mismatched tag: line")


def test_malformed_jats(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<article><front><article-meta><title-group><article-title>題</article-title>", encoding="utf-8")
    (item,) = read_all("jats_xml", path)
    assert item.error.startswith("malformed XML: no element found")


def test_xml_bomb_by_compression(tmp_path: Path) -> None:
    path = tmp_path / "big.xml.gz"
    path.write_bytes(gzip.compress(b"<Law><LawNum>" + b" " * (16 << 20) + b"</LawNum></Law>"))
    (item,) = read_all("egov_xml", path, max_decompressed_bytes=1 << 20)
    assert "exceeds max_decompressed_bytes" in item.error


def nested(depth: int) -> str:
    """A JSON value of `depth` objects inside each other."""
    return '{"a":' * depth + "1" + "}" * depth


def at_stack_depth(frames: int, fn):
    """fn() called under `frames` extra Python frames, like a reader deep inside a Beam worker's stack."""
    return fn() if frames == 0 else at_stack_depth(frames - 1, fn)


def test_nesting_past_the_limit_is_one_unreadable_line(tmp_path: Path) -> None:
    from pipeline.sources.jsonl import MAX_NESTING

    ok = good_lines(4)
    within = f'{{"id": "ok", "text": "本文", "m": {nested(MAX_NESTING - 1)}}}'.encode()
    lines = [ok[0], f'{{"id": "deep", "text": "本文", "m": {nested(488)}}}'.encode(), ok[1],
             f'{{"id": "deeper", "text": "本文", "m": [{nested(100_000)}]}}'.encode(), ok[2], within, ok[3]]
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = read_all("jsonl", path)
    assert kinds(items) == "DUDUDDD"
    assert [u.error for u in items if isinstance(u, Unreadable)] == \
           [f"record nested deeper than {MAX_NESTING} levels of objects/arrays"] * 2
    assert at_stack_depth(600, lambda: read_all("jsonl", path)) == items  # the worker's stack does not decide


def test_lone_surrogates_in_keys_are_replaced_like_in_values(tmp_path: Path) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_bytes(b'{"id": "a", "text": "x", "\\ud800": 1, "m": {"\\udc00": ["\\udbff"]}}\n'
                     b'{"id": "b", "body": "x", "\\ud800": 1}\n')
    doc, bad = read_all("jsonl", path)
    assert doc.meta == {"?": 1, "m": {"?": ["?"]}}
    assert json.dumps(doc.meta, ensure_ascii=False).encode("utf-8")
    assert bad.error.encode("utf-8") and "no text field" in bad.error


def test_parquet_value_python_cannot_hold_costs_its_row_only(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    deep: object = 1
    for _ in range(101):
        deep = [deep]
    path = tmp_path / "cells.parquet"
    ts = pa.array([0, int(2.5e18), 5, 0], pa.timestamp("us"))  # 2.5e18 µs: year 81190, past Python's datetime
    pq.write_table(pa.table({"text": ["一", "二", "三", "四"], "deep": [None, None, None, deep], "ts": ts}), path)
    items = read_all("parquet", path)
    assert kinds(items) == "DUDU" and [d.text for d in items if isinstance(d, RawDoc)] == ["一", "三"]
    assert items[1].source_id == f"{path}:row 2"
    assert items[1].error == "column 'ts' cannot be converted to a Python value: OverflowError: date value out of range"
    assert items[3].error == "record nested deeper than 100 levels of objects/arrays"  # as in JSONL


def test_parquet_nanoseconds_are_kept_as_text(tmp_path: Path) -> None:
    """pandas writes nanosecond columns; Python's datetime holds microseconds, so a value with nanoseconds used
    to quarantine its row. It is kept, as ISO text with all nine digits (a value Python holds stays as before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "ns.parquet"
    crawled = pa.array([1_714_564_800_123_456_789, 1_714_564_800_000_000_000, None], pa.timestamp("ns", tz="Asia/Tokyo"))
    took = pa.array([1_001, -1, 5_000], pa.duration("ns"))
    pq.write_table(pa.table({"text": ["一", "二", "三"], "crawled": crawled, "took": took}), path)
    items = read_all("parquet", path)
    assert kinds(items) == "DDD"
    assert [(d.meta["crawled"], d.meta["took"]) for d in items] == [
        ("2024-05-01T21:00:00.123456789+09:00", "0:00:00.000001001"),
        ("2024-05-01T21:00:00+09:00", "-1 day, 23:59:59.999999999"),
        (None, "0:00:00.000005"),
    ]


def test_parquet_nanoseconds_that_python_cannot_show_cost_their_row_only(tmp_path: Path) -> None:
    """A time zone Python does not know failed the ISO text of a nanosecond value outside the row's own
    check, and quarantined the whole row group (two good rows lost); with microseconds it was one row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for unit in ("us", "ns"):
        path = tmp_path / f"{unit}.parquet"
        mars = pa.array([1_000_000_001_000, None, None], pa.timestamp(unit, tz="Mars/Base"))
        pq.write_table(pa.table({"text": ["一", "二", "三"], "at": mars}), path)
        assert kinds(read_all("parquet", path)) == "UDD", unit


def skippable(kind: int, payload: bytes) -> bytes:
    """A zstd skippable frame: magic 0x184D2A50 + kind, little-endian payload size, payload."""
    return (0x184D2A50 + kind).to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload


def test_zstd_skippable_frames_are_skipped(tmp_path: Path) -> None:
    ok = good_lines(6)
    frame = [zstandard.ZstdCompressor().compress(b"\n".join(ok[i:i + 3]) + b"\n") for i in (0, 3)]
    path = tmp_path / "skip.jsonl.zst"  # first frame as pzstd writes it, a big one between frames, one at the end
    path.write_bytes(skippable(0, b"\x08\0\0\0") + frame[0] + skippable(15, b"x" * 200_000) + frame[1]
                     + skippable(5, b""))
    items = read_all("jsonl", path)
    assert [d.source_id for d in items] == [f"doc-{i}" for i in range(6)]
    path.write_bytes(frame[0] + skippable(1, b"payload")[:-2])
    items = read_all("jsonl", path)
    assert kinds(items) == "DDDU" and items[-1].error.startswith("zstd: truncated input")


@pytest.mark.parametrize("fmt,root,inner,nest", [
    ("egov_xml", "Law", "<LawBody><MainProvision>{}</MainProvision></LawBody>", "Div"),
    ("jats_xml", "article", "<body>{}</body>", "sec")])
def test_xml_nesting_past_the_limit_is_one_unreadable_record(tmp_path: Path, fmt: str, root: str, inner: str,
                                                             nest: str) -> None:
    from pipeline.sources.io import MAX_NESTING

    def record(depth: int) -> str:  # its deepest element, <p>, at level `depth` (<Records> is level 1)
        n = depth - 3 - inner.count("</")
        body = f"<{nest}>" * n + "<p>深い本文</p>" + f"</{nest}>" * n
        return f"<{root}>{inner.format(body)}</{root}>"

    path = tmp_path / "deep.xml"
    path.write_text(f"<Records>{record(5)}{record(3000)}{record(MAX_NESTING)}{record(MAX_NESTING + 1)}{record(5)}"
                    "</Records>", encoding="utf-8")
    items = read_all(fmt, path)
    assert kinds(items) == "DUDUD" and all(d.text.endswith("深い本文") for d in items if isinstance(d, RawDoc))
    assert [u.source_id for u in items if isinstance(u, Unreadable)] == [f"{path}#/Records/{root}[{n}]" for n in (2, 4)]
    assert items[1].error == f"<{root}> nested deeper than {MAX_NESTING} levels of elements"
    assert at_stack_depth(600, lambda: read_all(fmt, path)) == items


def test_records_of_many_tiny_nodes_are_bounded_by_count(tmp_path: Path) -> None:
    """max_record_bytes bounded an XML record's or a JSON line's bytes, but memory goes by element or value:
    ~58x the bytes for a law of empty elements, ~55x for a line of [] (a 27 MB line took 1.5 GB). One node
    per NODE_BYTES of max_record_bytes at most."""
    from pipeline.sources.io import NODE_BYTES

    limit = 64_000
    most = limit // NODE_BYTES
    law = "<Law><LawNum>第一号</LawNum><LawBody><LawTitle>試験法</LawTitle>{}</LawBody></Law>"
    path = tmp_path / "laws.xml"
    path.write_text(f"<Laws>{law.format('<a/>' * (most - 10))}{law.format('<a/>' * 2 * most)}{law.format('')}"
                    "</Laws>", encoding="utf-8")
    items = read_all("egov_xml", path, max_record_bytes=limit)
    assert kinds(items) == "DU" and items[1].error == (f"a record of over {most} XML elements (one per {NODE_BYTES} "
                                                       "bytes of max_record_bytes); the rest of the file was not read")
    path = tmp_path / "wide.jsonl"
    path.write_text("".join(json.dumps({"id": str(n), "text": "あい", "x": [[]] * k}) + "\n"
                            for n, k in enumerate((most - 10, 3 * most, 5))), encoding="utf-8")
    items = read_all("jsonl", path, max_record_bytes=limit)
    assert kinds(items) == "DUD" and items[1].error.startswith(f"record of up to {3 * most + 4} JSON values exceeds")


@pytest.mark.parametrize("fmt,root", [("egov_xml", "Law"), ("jats_xml", "article")])
def test_xml_nesting_outside_records_stops_the_file(tmp_path: Path, fmt: str, root: str) -> None:
    """Elements outside a record were never checked for depth: 11 kB of gzipped <a> took 900 MB."""
    from pipeline.sources.io import MAX_OPEN_ELEMENTS

    record = f"<{root}><LawNum>第一号</LawNum><LawBody><LawTitle>法</LawTitle></LawBody><body><p>本文</p></body></{root}>"
    path = tmp_path / "deep.xml.gz"
    n = MAX_OPEN_ELEMENTS + 1
    path.write_bytes(gzip.compress(f"<r>{record}{'<a>' * n}{record}{'</a>' * n}</r>".encode()))
    tracemalloc.start()
    try:
        items = read_all(fmt, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kinds(items) == "DU" and items[1].error == (f"XML elements nested over {MAX_OPEN_ELEMENTS} deep; the "
                                                       "rest of the file was not read")
    assert peak < 30_000_000


def test_parquet_rows_are_decoded_about_max_record_bytes_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Batches were 256 rows whatever their size: 10 rows of 30 MiB were decoded at once (1 GB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.sources import parquet

    batches: list[int] = []
    records = parquet._records
    monkeypatch.setattr(parquet, "_records", lambda batch, sizes, limit: (batches.append(sum(sizes)),
                                                                          records(batch, sizes, limit))[1])
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": [f"{i}" + "あ" * 1_000_000 for i in range(10)]}), path, use_dictionary=False,
                   compression="zstd")
    items = read_all("parquet", path, max_record_bytes=4_000_000)
    assert kinds(items) == "D" * 10 and len(batches) == 10 and max(batches) < 4_000_000
