"""Byte-level input for readers: FileSystems opening, magic-byte decompression, bounded lines (XML streaming is
`pipeline.sources.xmlstream`).

Every reader goes through `open_stream` so that gs:// / s3:// paths, gzip, zstd, bz2 and xz work the same way
everywhere, a decompression bomb stops at a fixed size instead of filling memory, and corrupt or truncated
input surfaces as one `InputError` with a one-line message the reader can put into quarantine.
"""
from __future__ import annotations

import bz2
import lzma
import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

READ_SIZE = 1 << 16  # compressed bytes read from the file at a time
UTF8_BOM = b"\xef\xbb\xbf"
OUT_CHUNK = 1 << 16  # most decompressed bytes produced by one gzip step
ZSTD_MAX_WINDOW = 1 << 27  # refuse zstd frames that would need a >128 MiB window, xz streams a >128 MiB decoder
# Deepest nesting a record may have (JSON objects/arrays, XML elements from the document root); deeper is
# quarantined. A fixed number, so the outcome never depends on the worker's stack; it bounds recursion.
MAX_NESTING = 100
# A record parsed whole (an XML record, a JSON line) costs Python objects per element or value (an
# ElementTree element ~230 bytes, a JSON list ~60), not per byte: one per NODE_BYTES of max_record_bytes at
# most (1M at the default 64 MiB; e-Gov laws spend ~100 bytes an element). A file whose open XML elements,
# in a record or not, nest past MAX_OPEN_ELEMENTS stops there (each stays in memory until it closes).
NODE_BYTES = 64
MAX_OPEN_ELEMENTS = 100 * MAX_NESTING

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE = b"\x2a\x4d\x18"  # bytes 1-3 of a skippable frame's magic 0x184D2A50-0x184D2A5F (little-endian)
BZ2_BLOCK, BZ2_END = b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90"  # pi and sqrt(pi) in BCD
XZ_MAGIC = b"\xfd7zXZ\x00"


class InputError(Exception):
    """Unreadable bytes (corrupt / truncated compression, size limits); the message is one line."""


def one_line(err: BaseException | str, limit: int = 300) -> str:
    """An exception (or message) as a single short line, for Unreadable.error."""
    text = err if isinstance(err, str) else (str(err) or type(err).__name__)
    if not isinstance(err, str) and not isinstance(err, InputError):
        text = f"{type(err).__name__}: {text}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sniff_codec(head: bytes) -> str | None:
    """'gzip', 'zstd', 'bz2', 'xz' or None (plain), decided by magic bytes (the first SNIFF_BYTES), never by the
    file name."""
    return next((name for name, codec in _CODECS.items() if codec.starts(head)), None)


def is_skippable(data: bytes) -> bool:
    """A zstd skippable frame (4-byte magic, 4-byte little-endian size, payload): pzstd starts files with one."""
    return len(data) >= 4 and data[0] & 0xF0 == 0x50 and data[1:4] == ZSTD_SKIPPABLE


def open_raw(path: str) -> BinaryIO:
    """The file's bytes exactly as stored (no extension-based decompression by Beam)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


class CodecError(Exception):
    """A corrupt member/frame/stream; `salvaged` is the output decoded before the damage, `at` where in the
    bytes given to the step the damage was found (0: somewhere in them; None: the codec cannot tell)."""

    def __init__(self, message: str, salvaged: bytes = b"", at: int | None = 0) -> None:
        super().__init__(message)
        self.salvaged, self.at = salvaged, at


class _Gzip:
    """One gzip member through zlib, at most OUT_CHUNK bytes out per step (bomb-safe)."""

    head = len(GZIP_MAGIC)  # bytes `starts` needs to see
    buffered = False  # zlib hands back the input it has not used (`unconsumed_tail`)
    padding = False  # NUL bytes allowed between streams

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)

    @staticmethod
    def starts(data: bytes) -> bool:
        return data.startswith(GZIP_MAGIC)

    def feed(self, data: bytes) -> tuple[bytes, bytes, bool]:
        saved = self._d.copy()
        try:
            out = self._d.decompress(data, OUT_CHUNK)
        except zlib.error as e:
            raise CodecError(str(e), *self._salvage(saved, data)) from e
        if self._d.eof:
            return out, self._d.unused_data, True
        return out, self._d.unconsumed_tail, False

    @staticmethod
    def _salvage(d: Any, data: bytes) -> tuple[bytes, int]:
        """Re-decode a failed step in pieces (the failing piece byte by byte) to keep the output that came
        before the error, e.g. a whole member whose CRC is wrong, and find the byte of `data` that failed.
        Bounded: that output was < OUT_CHUNK."""
        parts: list[bytes] = []
        for i in range(0, len(data), 256):
            snap = d.copy()
            try:
                parts.append(d.decompress(data[i:i + 256]))
            except zlib.error:
                for j in range(i, min(i + 256, len(data))):
                    try:
                        parts.append(snap.decompress(data[j:j + 1]))
                    except zlib.error:
                        return b"".join(parts), j
                break
        return b"".join(parts), len(data)


class _Zstd:
    """One zstd frame fed to the decompressor block by block, so one step yields at most one block
    (<= 128 KiB) and a frame cut short is detected (zstandard's readers end silently on truncation).
    A skippable frame is consumed without output."""

    head = len(ZSTD_MAGIC)
    buffered = False
    padding = False

    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        self._state = "header"
        self._checksum = False
        self._skip = 0  # payload bytes of a skippable frame still to consume

    @staticmethod
    def starts(data: bytes) -> bool:
        return data.startswith(ZSTD_MAGIC) or is_skippable(data)

    def _unit(self, data: bytes) -> int:
        """Length of the next complete unit (frame header, block, checksum) at the start of data, 0 if cut."""
        if self._state == "header":
            if len(data) < 5:
                return 0
            fhd = data[4]
            single, fcs, did = fhd >> 5 & 1, fhd >> 6, fhd & 3
            self._checksum = bool(fhd >> 2 & 1)
            size = 5 + (0 if single else 1) + (0, 1, 2, 4)[did] + ((1 if single else 0), 2, 4, 8)[fcs]
            return size if len(data) >= size else 0
        if self._state == "checksum":
            return 4 if len(data) >= 4 else 0
        if len(data) < 3:
            return 0
        header = int.from_bytes(data[:3], "little")
        kind, size = header >> 1 & 3, header >> 3
        if kind == 3 or size > 1 << 17:
            raise CodecError(f"corrupt block header (type {kind}, size {size})")
        total = 3 + (1 if kind == 1 else size)
        return total if len(data) >= total else 0

    def _skip_frame(self, data: bytes) -> tuple[bytes, bytes, bool]:
        if self._state == "header":
            if len(data) < 8:
                return b"", data, False
            self._skip, self._state, data = int.from_bytes(data[4:8], "little"), "skip", data[8:]
        n = min(self._skip, len(data))
        self._skip -= n
        if not self._skip:
            self._state = "end"
        return b"", data[n:], self._state == "end"

    def feed(self, data: bytes) -> tuple[bytes, bytes, bool]:
        if self._state == "skip" or self._state == "header" and is_skippable(data):
            return self._skip_frame(data)
        n = self._unit(data)
        if not n:
            return b"", data, False
        unit, rest = data[:n], data[n:]
        if self._state == "block" and unit[0] & 1:
            self._state = "checksum" if self._checksum else "end"
        elif self._state == "header":
            self._state = "block"
        elif self._state == "checksum":
            self._state = "end"
        try:
            out = self._d.decompress(unit)
        except zstandard.ZstdError as e:
            raise CodecError(str(e)) from e
        return out, rest, self._state == "end"


class _Stdlib:
    """A bz2 or xz stream through Python's decompressor, at most OUT_CHUNK bytes out per step (bomb-safe). These
    decompressors keep the input they have not decoded yet themselves (`buffered`: more output is waiting), and
    report damage without saying where."""

    head = 0
    padding = False

    def __init__(self) -> None:
        self._d = self.new()

    @staticmethod
    def new() -> Any:
        raise NotImplementedError

    @property
    def buffered(self) -> bool:
        return not self._d.needs_input and not self._d.eof

    def feed(self, data: bytes) -> tuple[bytes, bytes, bool]:
        try:
            out = self._d.decompress(data, OUT_CHUNK)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise CodecError(str(e), at=None) from e
        if self._d.eof:
            return out, self._d.unused_data, True
        return out, b"", False


class _Bz2(_Stdlib):
    head = 10  # "BZh", the block size digit, then the magic of the first block (or of the end of an empty stream)
    new = staticmethod(bz2.BZ2Decompressor)

    @staticmethod
    def starts(data: bytes) -> bool:
        return data[:3] == b"BZh" and data[3:4] in b"123456789" and data[4:10] in (BZ2_BLOCK, BZ2_END)


class _Xz(_Stdlib):
    head = len(XZ_MAGIC)
    padding = True  # stream padding: NUL bytes in fours (xz's format, section 2.2)
    new = staticmethod(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=ZSTD_MAX_WINDOW))

    @staticmethod
    def starts(data: bytes) -> bool:
        return data.startswith(XZ_MAGIC)


_CODECS: dict[str, type[_Gzip] | type[_Zstd] | type[_Stdlib]] = {"gzip": _Gzip, "zstd": _Zstd, "bz2": _Bz2, "xz": _Xz}
SNIFF_BYTES = max(codec.head for codec in _CODECS.values())


class DecodedStream:
    """A read-only byte stream over a file, transparently decompressed when it starts with a known magic.

    Multi-member gzip and multi-frame zstd are read to the end. `read` raises `InputError` for corrupt,
    truncated or trailing-garbage input, after handing out every byte decoded before the damage, and
    once `max_bytes` decompressed bytes have been handed out (a decompression bomb).
    """

    def __init__(self, raw: BinaryIO, path: str, max_bytes: int) -> None:
        self._raw, self.path, self.max_bytes = raw, path, max_bytes
        self._pending = self._raw_read(SNIFF_BYTES)
        self.codec = sniff_codec(self._pending)
        self._dec: _Gzip | _Zstd | _Stdlib | None = None
        self._unit_start = 0  # compressed offset of the current member/frame/stream
        self._out = b""
        self.produced = 0  # decompressed bytes handed out so far
        self._consumed = len(self._pending)  # compressed bytes read from the file
        self._eof = False
        self._error: InputError | None = None  # raised once the bytes before it are consumed

    def _raw_read(self, n: int) -> bytes:
        try:
            return self._raw.read(n) or b""
        except OSError as e:
            raise InputError(f"read error: {one_line(e)}") from e

    def _more(self) -> bool:
        more = self._raw_read(READ_SIZE)
        self._consumed += len(more)
        self._pending += more
        return bool(more)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> DecodedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(READ_SIZE):
                parts.append(chunk)
            return b"".join(parts)
        while not self._out and not self._eof:
            if self._error is not None:
                raise self._error
            self._out = self._next_chunk()
        out, self._out = self._out[:n], self._out[n:]
        return out

    def _next_chunk(self) -> bytes:
        if self.codec is None:
            data = self._pending or self._raw_read(READ_SIZE)
            self._pending = b""
            if not data:
                self._eof = True
            self.produced += len(data)  # plain files are not capped: max_decompressed_bytes guards expansion
            return data
        while True:
            if not self._pending and not (self._dec and self._dec.buffered) and not self._more():
                if self._dec is not None:
                    raise self._truncated()
                self._eof = True
                return b""
            if self._dec is None:
                codec = _CODECS[self.codec]
                if codec.padding:
                    self._pending = self._pending.lstrip(b"\0")
                    if not self._pending:
                        continue
                while len(self._pending) < codec.head and self._more():
                    pass
                if not codec.starts(self._pending):
                    offset = self._consumed - len(self._pending)
                    raise InputError(f"{self.codec}: trailing data that is not {self.codec} at byte {offset}")
                self._dec, self._unit_start = codec(), self._consumed - len(self._pending)
            before = len(self._pending)
            try:
                out, self._pending, ended = self._dec.feed(self._pending)
            except CodecError as e:
                where = (f"in the stream from compressed byte {self._unit_start}" if e.at is None  # a step's
                         else f"near compressed byte {self._consumed - len(self._pending) + e.at}")  # input starts there
                self._error = InputError(f"{self.codec}: {one_line(str(e))} ({where})")
                self._pending, self._eof = b"", False
                if e.salvaged:
                    return self._count(e.salvaged)
                raise self._error from e
            if ended:
                self._dec = None
            if out:
                return self._count(out)
            if len(self._pending) == before and not ended and not self._more():
                raise self._truncated()  # an incomplete unit and nothing more to read

    def _truncated(self) -> InputError:
        unit = {"gzip": "member", "zstd": "frame"}.get(self.codec, "stream")
        return InputError(f"{self.codec}: truncated input (end of file inside a compressed {unit} "
                          f"at byte {self._consumed})")

    def _count(self, data: bytes) -> bytes:
        room = self.max_bytes - self.produced
        if len(data) > room:
            self._error = InputError(f"decompressed size exceeds max_decompressed_bytes={self.max_bytes} "
                                     f"(possible decompression bomb); rest of file skipped")
            data = data[:max(room, 0)]
            if not data:
                raise self._error
        self.produced += len(data)
        return data


def open_stream(path: str, max_decompressed_bytes: int) -> DecodedStream:
    """Open `path` through Beam FileSystems; raises InputError (one line) when it cannot be opened."""
    try:
        raw = open_raw(path)
    except Exception as e:  # Beam wraps every backend's errors differently (IOError, BeamIOError, ...)
        raise InputError(f"cannot open: {one_line(e)}") from e
    try:
        return DecodedStream(raw, path, max_decompressed_bytes)
    except InputError:
        raw.close()
        raise


class LineReader:
    """Lines of a byte stream without the newline, never holding more than `max_line_bytes` of one line.

    Yields `(line_no, line)` with line_no counted from 1; `line` is None when the line was longer than
    the cap (its bytes were skipped in bounded chunks, `last_length` says how long it was). The blank
    lines (ASCII whitespace and `blank`, e.g. an encoded U+3000) of a run within one read come out as one
    empty line, the line number advanced past them: a small gzip of 4 GB of newlines is a few seconds of
    C-level scanning instead of four billion Python steps. A `bom` (UTF-8's) starting the first line is not part
    of it: a BOM alone on a blank first line made that line a record (invalid JSON, an empty text block).
    """

    def __init__(self, stream: DecodedStream, max_line_bytes: int, blank: bytes = b"", bom: bytes = b"") -> None:
        self.stream, self.max_line_bytes, self.bom = stream, max_line_bytes, bom
        self.line_no = 0  # number of the last line yielded
        self.last_length = 0
        spaces = rb"[ \t\r\n\x0b\x0c]*"  # bytes.strip()'s whitespace; one class, so sre scans it in C
        self._blanks = re.compile(spaces + (rb"(?:" + re.escape(blank) + spaces + rb")*" if blank else b""))

    def __iter__(self) -> Iterator[tuple[int, bytes | None]]:
        buf = bytearray()
        skipped = -1  # >= 0 while skipping an over-long line: its length so far
        while chunk := self.stream.read(READ_SIZE):
            start = 0
            while True:
                if not buf and skipped < 0:  # at a line start: skip the blank lines that follow at once
                    end = chunk.rfind(b"\n", start, self._blanks.match(chunk, start).end()) + 1
                    if end:
                        self.line_no += chunk.count(b"\n", start, end) - 1
                        yield self._emit(buf, skipped)
                        start = end
                nl = chunk.find(b"\n", start)
                piece = chunk[start:] if nl < 0 else chunk[start:nl]
                if skipped >= 0:
                    skipped += len(piece)
                else:
                    buf += piece
                    if len(buf) > self.max_line_bytes:
                        skipped, buf = len(buf), bytearray()
                if nl < 0:
                    break
                yield self._emit(buf, skipped)
                buf, skipped, start = bytearray(), -1, nl + 1
        if buf or skipped >= 0:
            yield self._emit(buf, skipped)

    def _emit(self, buf: bytearray, skipped: int) -> tuple[int, bytes | None]:
        self.line_no += 1
        if skipped >= 0:
            self.last_length = skipped
            return self.line_no, None
        line = bytes(buf[:-1] if buf.endswith(b"\r") else buf)
        if self.line_no == 1 and self.bom and line.startswith(self.bom):
            line = line[len(self.bom):]
        self.last_length = len(line)
        return self.line_no, line


def decode_text(data: bytes, encoding: str = "utf-8", where: str = "") -> str:
    """Strict decoding (UTF-8: a leading BOM dropped); UnicodeDecodeError becomes a one-line InputError.
    `encoding` is a codec's canonical name (`codecs.lookup(...).name`, as the config stores it)."""
    utf8 = encoding == "utf-8"
    try:
        return data.decode("utf-8-sig" if utf8 else encoding)
    except UnicodeDecodeError as e:
        bad = data[e.start:e.start + 4].hex(" ")
        raise InputError(f"invalid {'UTF-8' if utf8 else encoding} at byte {e.start}{where} (bytes {bad})") from e
