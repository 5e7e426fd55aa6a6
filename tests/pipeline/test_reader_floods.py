"""Small files that expand into floods: blank lines, unreadable lines, huge JSON integers."""
from __future__ import annotations

import io
import time
import tracemalloc
import zlib
from pathlib import Path

from pipeline.sources import RawDoc, Unreadable
from pipeline.sources.io import DecodedStream, LineReader
from pipeline.sources.jsonl import MAX_BAD_LINES
from tests.pipeline.test_reader_broken import good_lines, kinds, read_all


def lines_of(data: bytes, blank: bytes = b"") -> list[tuple[int, bytes | None]]:
    return list(LineReader(DecodedStream(io.BytesIO(data), "mem", 1 << 40), 1 << 20, blank))


def test_a_run_of_blank_lines_is_one_line_per_read_and_the_numbers_stay_right() -> None:
    data = b"a\n" + b"\n \r\n\t\n" * 100_000 + b"  b \nc\n\n"
    got = lines_of(data)
    text = [(n, line) for n, line in got if line.strip()]  # a blank line cut by a read keeps its spaces
    assert text == [(1, b"a"), (300_002, b"  b "), (300_003, b"c")] and got[-1] == (300_004, b"")
    assert len(got) < 20  # 400 KB: 7 reads
    assert lines_of(b"\n\nx") == [(2, b""), (3, b"x")]
    x = b"x" * 10  # the stream's first read is its 8-byte head
    assert lines_of(x + "\n\u3000\n \u3000 \ny\n".encode(), "\u3000".encode()) == [(1, x), (3, b""), (4, b"y")]
    assert lines_of(x + "\n\u3000\ny\n".encode()) == [(1, x), (2, "\u3000".encode()), (3, b"y")]  # JSONL: not blank
    data = b"a\n" + b"\n" * 200_000 + b"b" * 70_000 + b"\n"  # a long line after the run, across reads
    got = lines_of(data)
    assert got[0] == (1, b"a") and got[-1] == (200_002, b"b" * 70_000) and all(line == b"" for _, line in got[1:-1])


def test_a_gzip_of_newlines_is_scanned_not_stepped_through(tmp_path: Path) -> None:
    """400 MB of newlines in 1.8 MB of gzip took a Python step per line (~2 min per 200 MB)."""
    comp = zlib.compressobj(1, wbits=31)
    parts = [comp.compress(b"\n" * (1 << 20)) for _ in range(400)]
    path = tmp_path / "newlines.jsonl.gz"
    path.write_bytes(b"".join([*parts, comp.compress(b'{"text": "end"}\n'), comp.flush()]))
    start = time.process_time()
    items = read_all("jsonl", path)
    assert time.process_time() - start < 10
    assert [(i.source_id, i.text) for i in items] == [(f"{path}:line {400 * (1 << 20) + 1}", "end")]


def test_a_file_of_mostly_unreadable_lines_ends_with_one_row_for_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "ones.jsonl"
    path.write_bytes(b"1\n" * (MAX_BAD_LINES + 500))
    items = read_all("jsonl", path)
    assert len(items) == MAX_BAD_LINES + 2 and all(isinstance(i, Unreadable) for i in items)
    assert items[-1].source_id == f"{path}:line {MAX_BAD_LINES + 2}"
    assert f"lines from {MAX_BAD_LINES + 2} on were not read" in items[-1].error
    # exactly at the limit and then the end: nothing left, so no row for "the rest"
    path.write_bytes(b"1\n" * (MAX_BAD_LINES + 1))
    assert len(read_all("jsonl", path)) == MAX_BAD_LINES + 1
    # more documents than bad lines: every line is read, each bad one quarantined on its own
    path.write_bytes(b"\n".join(good_lines(MAX_BAD_LINES + 2) + [b"1"] * (MAX_BAD_LINES + 1)) + b"\n")
    assert kinds(read_all("jsonl", path)) == "D" * (MAX_BAD_LINES + 2) + "U" * (MAX_BAD_LINES + 1)


def test_a_json_integer_longer_than_python_converts_is_kept_as_its_digits(tmp_path: Path) -> None:
    big = "9" * 5000
    path = tmp_path / "big.jsonl"
    path.write_text(f'{{"id": {big}, "text": "大きな数", "n": -{big}, "m": 12}}\n', encoding="utf-8")
    (doc,) = read_all("jsonl", path)
    assert isinstance(doc, RawDoc) and doc.source_id == big and doc.meta == {"n": f"-{big}", "m": 12}


def test_a_text_block_of_many_short_lines_is_held_as_its_bytes(tmp_path: Path) -> None:
    """A block of one-byte lines was held as a bytes object per line: 70x its size (4 GB for 60 MB)."""
    path = tmp_path / "short.txt"
    path.write_bytes(b"1\n" * 200_000 + b"\nlast")
    read_all("text", tmp_path / "missing.txt", text_split="blank_line")  # imports out of the measurement
    tracemalloc.start()
    block, last = read_all("text", path, text_split="blank_line")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert block.text == "1\n" * 199_999 + "1" and last.text == "last" and last.meta == {"line": 200_002}
    assert peak < 6 << 20, f"peak {peak >> 20} MB for a 400 kB block"  # 24 MB as a list of lines
