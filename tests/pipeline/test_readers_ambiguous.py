"""Records whose meaning or identity is ambiguous: a JSON key twice, a Parquet column name twice, ids that
differ only in lone surrogates, and Parquet text stored as binary. Each line / row / file ends as exactly one
document or one quarantine row with a reason, never a silently chosen value."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.sources import RawDoc, SourceConfig, Unreadable, read_file


def cfg(fmt: str, **kw) -> SourceConfig:
    return SourceConfig(name="t", kind="reference", format=fmt, paths=(), license="CC-BY-4.0", **kw)


def read(fmt: str, path: Path, **kw) -> list[RawDoc | Unreadable]:
    return list(read_file(str(path), cfg(fmt, **kw)))


def test_jsonl_duplicate_key_is_quarantined_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": "a", "text": "一", "text": "二"}\n'
                    '{"id": "b", "text": "三", "tags": {"x": 1, "x": 2}}\n'
                    '{"id": "c", "text": "四", "id": "d"}\n'
                    '{"id": "e", "text": "五", "tags": [{"x": 1}, {"x": 2}]}\n', encoding="utf-8")
    items = read("jsonl", path)
    assert len(items) == 4
    for item, key in zip(items[:3], ("text", "x", "id"), strict=True):
        assert isinstance(item, Unreadable), item
        assert f"duplicate key {key!r}" in item.error
    assert [i.source_id for i in items[:3]] == [f"{path}:line {n}" for n in (1, 2, 3)]
    ok = items[3]  # the same key in two objects of a list is no duplicate
    assert isinstance(ok, RawDoc) and ok.source_id == "e" and ok.meta == {"tags": [{"x": 1}, {"x": 2}]}


def test_jsonl_ids_with_lone_surrogates_are_quarantined_not_merged(tmp_path: Path) -> None:
    """Replaced, "a\\ud800" and "a\\ud801" were both "a?": the second became "a?#2" and the real "a?" became
    "a?#3" (and across two files the run stopped on ids that differ in the input)."""
    path = tmp_path / "ids.jsonl"
    path.write_text('{"id": "a\\ud800", "text": "一"}\n{"id": "a\\ud801", "text": "二"}\n'
                    '{"id": "a?", "text": "三"}\n{"id": "b\\ud83d\\ude00", "text": "四"}\n', encoding="utf-8")
    items = read("jsonl", path)
    assert all(isinstance(i, Unreadable) and "unpaired surrogate at character 1" in i.error for i in items[:2])
    assert [(i.source_id, i.text) for i in items[2:]] == [("a?", "三"), ("b😀", "四")]  # a pair is valid
    by_line = read("jsonl", path, id_field=None)
    assert [i.source_id for i in by_line] == [f"{path}:line {n}" for n in range(1, 5)]


def test_jsonl_meta_keys_differing_only_in_surrogates_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text('{"id": "a", "text": "一", "k\\udc00": 1, "k\\udc01": 2}\n'
                    '{"id": "b", "text": "二", "k\\udc00": 1}\n', encoding="utf-8")
    bad, ok = read("jsonl", path)
    assert isinstance(bad, Unreadable) and "would both be 'k?'" in bad.error
    assert isinstance(ok, RawDoc) and ok.meta == {"k?": 1}


def parquet(path: Path, columns: list[pa.Array], names: list[str]) -> Path:
    pq.write_table(pa.table(columns, names=names), path)
    return path


@pytest.mark.parametrize("names", [["text", "text", "id"], ["text", "id", "note", "note"]])
def test_parquet_duplicate_column_names_quarantine_the_file(tmp_path: Path, names: list[str]) -> None:
    columns = [pa.array([f"{name}{row}" for row in range(3)]) for name in names]
    path = parquet(tmp_path / "dup.parquet", columns, names)
    assert pq.ParquetFile(path).schema_arrow.names == names  # pyarrow writes and reads them
    [item] = read("parquet", path)
    twice = names[-1] if names[-1] == names[-2] else "text"
    assert isinstance(item, Unreadable) and item.source_id == str(path)
    assert f"duplicate column names in Parquet schema: {twice!r}" in item.error


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_parquet_binary_text_is_decoded_as_utf8(tmp_path: Path, kind: pa.DataType) -> None:
    texts = ["日本語の文章。".encode(), b"\xe6\x97\xa5\xff", "二つ目".encode()]
    path = parquet(tmp_path / "bin.parquet", [
        pa.array(texts, kind), pa.array([b"id-1", b"id-2", "id-３".encode()], kind),
        pa.array([b"https://example.jp/\xff", None, b"https://example.jp/b"], kind),
        pa.array([b"CC0", b"CC0", b"CC0"], kind), pa.array([b"\x00\x01", b"", b"x"], kind)],
        ["text", "id", "url", "license", "blob"])
    first, bad, third = read("parquet", path)
    assert isinstance(first, RawDoc) and isinstance(third, RawDoc)
    assert (first.source_id, first.text, first.license) == ("id-1", "日本語の文章。", "CC0")
    assert first.url == "https://example.jp/\ufffd"  # a URL is carried along, as a JSONL surrogate is
    assert (third.source_id, third.text, third.url) == ("id-３", "二つ目", "https://example.jp/b")
    assert first.meta == {"blob": "\x00\x01"}
    assert isinstance(bad, Unreadable) and bad.source_id == f"{path}:row 2"
    assert bad.error == "binary column 'text' is not valid UTF-8 text: invalid byte at 3 (bytes ff)"


def test_parquet_binary_id_that_is_not_utf8_is_quarantined(tmp_path: Path) -> None:
    path = parquet(tmp_path / "id.parquet", [pa.array(["一", "二"]), pa.array([b"a\xff", b"a\xfe"])], ["text", "id"])
    items = read("parquet", path)
    assert all(isinstance(i, Unreadable) and "binary column 'id' is not valid UTF-8" in i.error for i in items)
    assert len(items) == 2
