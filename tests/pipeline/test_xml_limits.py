"""XML the readers must stop parsing: a record larger than max_record_bytes, or no usable encoding."""
from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from pipeline.sources import RawDoc, SourceConfig, Unreadable, reader_for

RECORDS = {"egov_xml": ("Law", "<Law><LawBody><LawTitle>{}</LawTitle></LawBody></Law>"),
           "jats_xml": ("article", "<article><front><article-meta><title-group><article-title>{}</article-title>"
                                   "</title-group></article-meta></front></article>")}


def read_all(fmt: str, path: Path, **kw) -> list[RawDoc | Unreadable]:
    source = SourceConfig(name="t", kind="government", format=fmt, paths=(), license="x", **kw)
    return list(reader_for(fmt)(str(path), source))


@pytest.mark.parametrize("fmt", RECORDS)
def test_a_record_over_max_record_bytes_is_never_held_whole(tmp_path: Path, fmt: str) -> None:
    """16 MB of text in one record, max_record_bytes=100 kB: it was parsed and rendered whole (memory grew
    with the record up to max_decompressed_bytes), then quarantined for its text's length. Now parsing
    stops once the open record passes the limit; the records before it are kept."""
    record = RECORDS[fmt][1]
    giant = record.format("条文" * ((16 << 20) // 6))
    path = tmp_path / "giant.xml.gz"
    path.write_bytes(gzip.compress(f"<set>{record.format('前')}{giant}{record.format('後')}</set>".encode()))
    read_all(fmt, path, max_record_bytes=10)  # imports (Beam's file systems) out of the measurement
    tracemalloc.start()
    first, item = read_all(fmt, path, max_record_bytes=100_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert isinstance(first, RawDoc) and first.text.endswith("前")
    assert isinstance(item, Unreadable) and item.source_id == f"{path}#/{RECORDS[fmt][0]}[2]"
    assert item.error == "a record over max_record_bytes=100000 bytes of XML; the rest of the file was not read"
    assert peak < 2 << 20, f"peak {peak} bytes for a record refused after 100 kB"


@pytest.mark.parametrize(("encoding", "error"), [
    ("x-nonsense", "XML declared in x-nonsense, which is no known encoding"),
    ("base64", "XML declared in base64, which is no text encoding"),
    ("hex", "XML declared in hex, which is no text encoding"),
    ("zlib", "XML declared in zlib, which is no text encoding"),
    ("rot13", "XML declared in rot13, which is no text encoding"),
])
@pytest.mark.parametrize("fmt", RECORDS)
def test_xml_in_no_usable_encoding_is_quarantined(tmp_path: Path, fmt: str, encoding: str, error: str) -> None:
    """Python's codec registry also names byte-to-byte codecs; these and unknown names were reader failures
    ("AttributeError: 'bytes' object has no attribute 'encode'", "LookupError: unknown encoding")."""
    path = tmp_path / "law.xml"
    path.write_bytes(f'<?xml version="1.0" encoding="{encoding}"?>\n{RECORDS[fmt][1].format("本文")}'.encode())
    (item,) = read_all(fmt, path)
    assert isinstance(item, Unreadable) and item.source_id == str(path) and item.error == error


@pytest.mark.parametrize("fmt", RECORDS)
def test_a_web_label_python_does_not_know_still_decodes(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "law.xml"
    body = f'<?xml version="1.0" encoding="windows-31j"?>\n{RECORDS[fmt][1].format("第一条の目的")}'
    path.write_bytes(body.encode("cp932"))
    (doc,) = read_all(fmt, path)
    assert isinstance(doc, RawDoc) and doc.text.endswith("第一条の目的")


@pytest.mark.parametrize("fmt", RECORDS)
def test_a_long_token_is_fed_in_growing_reads_and_bounded(tmp_path: Path, fmt: str) -> None:
    """expat rescans an unfinished token on every feed: a 64 MB comment in 64 KiB feeds took 22 s, a 300 MB
    one never ended. Reads now double while no element ends; past max_record_bytes the file stops."""
    import time

    record = RECORDS[fmt][1]
    path = tmp_path / "comment.xml.gz"
    path.write_bytes(gzip.compress(f"<set>{record.format('前')}<!--{'x' * (32 << 20)}-->{record.format('後')}</set>"
                                   .encode(), 1))
    start = time.process_time()
    first, last = read_all(fmt, path)
    assert time.process_time() - start < 2.5  # ~5.5 s before
    assert first.text.endswith("前") and last.text.endswith("後")
    first, stop = read_all(fmt, path, max_record_bytes=1 << 20)
    assert isinstance(stop, Unreadable) and stop.error == (
        "no XML element starts or ends within max_record_bytes=1048576 bytes (a comment, attribute or text "
        "that long); the rest of the file was not read")
