"""Plain text reader (gzip, zstd, bz2 or xz by magic bytes): one document per file or per blank-line block.

Text is UTF-8 unless the source names another `encoding` (Aozora Bunko's files are Shift_JIS: `cp932`).
With `text_split: blank_line`, lines holding only whitespace (ASCII or the ideographic space U+3000)
separate documents, and block N (counted from 1 over non-empty blocks) gets source_id "path#block N".
"""
from __future__ import annotations

from collections.abc import Iterator

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import UTF8_BOM, DecodedStream, InputError, LineReader, decode_text, open_stream

IDEOGRAPHIC_SPACE = "\u3000"


def _is_blank(line: bytes, space: bytes) -> bool:
    return not line.replace(space, b"").strip()


def _whole_file(stream: DecodedStream, path: str, cap: int, encoding: str) -> RawDoc | Unreadable:
    parts: list[bytes] = []
    size = 0
    while chunk := stream.read(1 << 16):
        size += len(chunk)
        if size > cap:
            return Unreadable(path, f"file is larger than max_record_bytes={cap}; use text_split: blank_line "
                                    f"or raise the limit")
        parts.append(chunk)
    try:
        return RawDoc(source_id=path, text=decode_text(b"".join(parts), encoding))
    except InputError as e:
        return Unreadable(path, str(e))


def _blocks(stream: DecodedStream, path: str, cap: int, encoding: str) -> Iterator[RawDoc | Unreadable]:
    space = IDEOGRAPHIC_SPACE.encode(encoding, errors="ignore")
    lines = LineReader(stream, cap, space, UTF8_BOM if encoding in ("utf-8", "utf-8-sig") else b"")
    # the block's lines, each followed by "\n": one buffer, not an object per line (30M one-byte lines took 4 GB)
    block = bytearray()
    size, first_line, number, too_long = 0, 0, 0, False

    def flush() -> RawDoc | Unreadable:
        source_id = f"{path}#block {number}"
        if too_long:
            return Unreadable(source_id, f"block starting at line {first_line} exceeds max_record_bytes={cap}")
        try:
            return RawDoc(source_id=source_id, text=decode_text(bytes(block[:-1]), encoding,
                                                                f" of the block starting at line {first_line}"),
                          meta={"line": first_line})
        except InputError as e:
            return Unreadable(source_id, str(e))

    for line_no, line in lines:
        if line is not None and _is_blank(line, space):
            if block or too_long:
                yield flush()
            block, size, too_long = bytearray(), 0, False
            continue
        if not block and not too_long:
            number, first_line = number + 1, line_no
        size += (lines.last_length if line is None else len(line)) + 1
        if line is None or size > cap:
            too_long, block = True, bytearray()
        elif not too_long:
            block += line
            block += b"\n"
    if block or too_long:
        yield flush()


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Documents of one text file (see module docstring for ids)."""
    if source.text_split not in ("file", "blank_line"):
        yield Unreadable(path, f"unknown text_split {source.text_split!r}; expected file or blank_line")
        return
    try:
        stream = open_stream(path, source.max_decompressed_bytes)
    except InputError as e:
        yield Unreadable(path, str(e))
        return
    with stream:
        if source.text_split == "file":
            try:
                yield _whole_file(stream, path, source.max_record_bytes, source.encoding)
            except InputError as e:
                yield Unreadable(path, str(e))
            return
        emitted = 0
        try:
            for item in _blocks(stream, path, source.max_record_bytes, source.encoding):
                emitted += 1
                yield item
        except InputError as e:
            yield Unreadable(f"{path}#block {emitted + 1}", f"{e}; the rest of the file was not read")
