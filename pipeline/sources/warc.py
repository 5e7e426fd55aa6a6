"""WARC reader: HTTP `response` records of `.warc` / `.warc.gz` files as `RawDoc(html=payload bytes)`.

Gzip is handled here, one member at a time, instead of inside warcio, because warcio swallows a
zlib error in the middle of a file (it prints to stderr and reports a clean end of file), which would
silently truncate the input. Owning the member loop gives exact member offsets for `source_id`s of
`Unreadable`s, a per-member size cap, a whole-file decompression-bomb cap, and resynchronisation on
the next gzip header after a corrupt member. Each member's bytes are then parsed by warcio.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, DecompressingBufferedReader

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import one_line

GZIP_MAGIC = b"\x1f\x8b\x08"
RAW_CHUNK = 1 << 20  # compressed bytes read per call
OUT_CHUNK = 1 << 20  # decompressed bytes produced per zlib call (bounds memory between cap checks)
MAX_RESYNC_SCAN = 256 * 1024 * 1024  # give up looking for the next member after this many bytes
LINE_PIECE = 1 << 16  # longest piece of a line read between records (a wrong Content-Length may leave a long one)
BAD_LENGTH = ("WARC Content-Length does not match the record "
              "(its declared end is not followed by the blank lines ending a record)")
# Responses that cannot be documents (images, scripts, styles, binaries) are yielded with a skip_reason.
_NON_TEXT_TYPES = ("text/css", "text/javascript", "text/x-javascript", "text/vcard", "text/calendar")


BROTLI_BLOCK_CAP = 64 << 20  # decoded bytes per block of a `br` payload; HTML expands ~10x, a bomb far more


class _Stop(Exception):
    """Unrecoverable: yield the Unreadable carried in args[0] and end the file."""


class BrotliDecoder:
    """warcio's decoder of `Content-Encoding: br`. warcio 1.8 calls the old brotli API (`decompress`, a settable
    `unused_data`), which brotli >= 1.1 no longer has: every brotli-encoded response was quarantined with an
    AttributeError. One block of a brotli bomb decodes to at most `BROTLI_BLOCK_CAP` bytes, so the payload
    size check then quarantines it."""

    unused_data = None  # warcio asks for bytes after the stream's end: a brotli stream has no next member

    def __init__(self) -> None:
        import brotli

        self._decoder = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        if not self._decoder.can_accept_more_data():  # the previous block reached the cap
            raise ValueError(f"brotli payload decodes to more than {BROTLI_BLOCK_CAP} bytes per block")
        return self._decoder.process(data, output_buffer_limit=BROTLI_BLOCK_CAP)


class ZlibDecoder:
    """warcio's decoder of `Content-Encoding: gzip` / `deflate`. warcio's own hands out the raw bytes when the first
    block does not decode (garbage then read as text) and drops the rest after a later error, saying so on stderr
    only. This one keeps the error in `error`, which quarantines the record, and decodes nothing more."""

    def __init__(self, encoding: str) -> None:
        self.encoding, self.error = encoding, None
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self._fresh = True  # nothing decoded yet: `deflate` may still turn out to be raw deflate (no zlib header)

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def decompress(self, data: bytes) -> bytes:
        if self.error:
            return b""
        try:
            out = self._d.decompress(data)
        except zlib.error as exc:
            if self._fresh and self.encoding == "deflate":
                self._d, self._fresh = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.decompress(data)
            self.error = f"corrupt {self.encoding} Content-Encoding: {exc}"
            return b""
        self._fresh = False
        return out


# The reader of the WARC stream itself keeps warcio's decoders: it relies on their fallback to read plain bytes.
DecompressingBufferedReader.DECOMPRESSORS = dict(BufferedReader.DECOMPRESSORS)
BufferedReader.DECOMPRESSORS.update(br=BrotliDecoder, gzip=lambda: ZlibDecoder("gzip"),
                                    deflate=lambda: ZlibDecoder("deflate"))


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Yield the response records of one WARC file; bad input becomes `Unreadable`, never an exception."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    try:
        fh = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as exc:  # noqa: BLE001 - any open failure is a quarantine record
        yield Unreadable(f"{path}@0", f"cannot open: {one_line(exc)}")
        return
    try:
        head = fh.read(5)
        if head[:2] == GZIP_MAGIC[:2]:
            yield from _read_gzip(fh, head, path, source)
        elif head.startswith(b"WARC/"):
            yield from _read_plain(fh, head, path, source)
        else:
            yield Unreadable(f"{path}@0", f"not a WARC file: starts with {head!r}")
    except Exception as exc:  # noqa: BLE001 - I/O errors from the filesystem layer
        yield Unreadable(f"{path}@?", f"read error: {one_line(exc)}")
    finally:
        fh.close()


# ----------------------------------------------------------------------------------------- gzip
def _read_gzip(fh: BinaryIO, head: bytes, path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    members = _GzipMembers(fh, head, path, source)
    first = True
    for offset, data, error in members:
        if error is not None:
            yield Unreadable(f"{path}@{offset}", error)
            continue
        assert data is not None
        if first and not data.startswith(b"WARC/"):
            yield Unreadable(f"{path}@{offset}", f"not a WARC file: first gzip member starts with {data[:20]!r}")
            return
        first = False
        try:
            records = _Records(io.BytesIO(data))
            for record in records:
                item = _checked(records, record, offset, path, source)
                if item is not None:
                    yield item
        except Exception as exc:  # noqa: BLE001 - warcio parse errors
            yield Unreadable(f"{path}@{offset}", f"bad WARC record in gzip member: {one_line(exc)}")


class _GzipMembers:
    """Iterate `(offset, member_bytes, None)` or `(offset, None, error)` over a multi-member gzip file.

    After a corrupt or oversized member it looks for the next gzip header and goes on; consecutive
    failures before the next good member are reported once. Stops for good on the bomb cap.
    """

    def __init__(self, fh: BinaryIO, head: bytes, path: str, source: SourceConfig) -> None:
        self.fh, self.path = fh, path
        self.max_member = source.max_record_bytes
        self.max_total = source.max_decompressed_bytes
        self.buf = head  # raw bytes not yet consumed, starting at file offset self.pos
        self.pos = 0
        self.total_out = 0
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(RAW_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def __iter__(self) -> Iterator[tuple[int, bytes | None, str | None]]:
        failing = False  # inside a run of bad members: report only the first
        while True:
            while len(self.buf) < 3 and self._fill():
                pass
            if not self.buf:
                return
            start = self.pos
            if not self.buf.startswith(GZIP_MAGIC):
                error = f"garbage instead of a gzip member: {self.buf[:16]!r}"
                if self.buf.strip(b"\0\r\n\t ") == b"" and not self._fill():
                    return  # trailing padding
            else:
                try:
                    data, error = self._member()
                except _Stop as stop:
                    yield start, None, str(stop)
                    return
                if error is None:
                    failing = False
                    yield start, data, None
                    continue
            if not failing:
                yield start, None, error
            failing = True
            if not self._resync(start + 1):
                return

    def _member(self) -> tuple[bytes | None, str | None]:
        """Decompress the member at self.pos; on success self.pos/self.buf move past it."""
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        parts: list[bytes] = []
        size = 0
        data, fed = self.buf, 0  # fed: raw bytes handed to zlib (including unconsumed tail)
        self.buf = b""
        try:
            while not d.eof:
                if not data:
                    if not self._fill():
                        return None, f"truncated gzip member ({size} bytes decompressed before end of file)"
                    data, self.buf = self.buf, b""
                fed += len(data)
                out = d.decompress(data, OUT_CHUNK)
                data = d.unconsumed_tail
                fed -= len(data)
                size += len(out)
                self.total_out += len(out)
                if self.total_out > self.max_total:
                    raise _Stop(f"decompression cap: more than {self.max_total} decompressed bytes in this file")
                if size <= self.max_member:
                    parts.append(out)
                elif parts:
                    parts = []  # keep counting (and checking the cap) but stop holding the bytes
        except zlib.error as exc:
            return None, f"corrupt gzip member: {one_line(exc)}"
        rest = d.unused_data
        self.pos += fed - len(rest)
        self.buf = rest + data + self.buf
        if size > self.max_member:
            return None, f"gzip member of {size} bytes exceeds max_record_bytes={self.max_member}"
        return b"".join(parts), None

    def _resync(self, offset: int) -> bool:
        """Move to the next gzip header at or after `offset`; False when there is none (or no seek)."""
        try:
            self.fh.seek(offset)
        except Exception:  # noqa: BLE001 - unseekable stream: cannot resync
            return False
        self.eof, self.buf, self.pos = False, b"", offset
        scanned = 0
        while scanned < MAX_RESYNC_SCAN:
            if not self._fill():
                return False
            hit = self.buf.find(GZIP_MAGIC)
            if hit >= 0:
                self.pos += hit
                self.buf = self.buf[hit:]
                return True
            keep = len(GZIP_MAGIC) - 1  # the magic may straddle two chunks
            scanned += len(self.buf) - keep
            self.pos += len(self.buf) - keep
            self.buf = self.buf[-keep:]
        return False


# ---------------------------------------------------------------------------------- uncompressed
def _read_plain(fh: BinaryIO, head: bytes, path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    stream = _Prefixed(head, fh)
    records = _Records(stream)
    try:
        for record in records:
            item = _checked(records, record, records.offset, path, source)
            if item is not None:
                yield item
    except Exception as exc:  # noqa: BLE001 - warcio parse errors end an uncompressed file
        yield Unreadable(f"{path}@{records.offset}", f"bad WARC record: {one_line(exc)}")


class _Prefixed(io.RawIOBase):
    """The already-sniffed first bytes followed by the rest of the file (no seek needed)."""

    def __init__(self, head: bytes, fh: BinaryIO) -> None:
        self.head, self.fh, self.offset = head, fh, 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.offset

    def read(self, size: int = -1) -> bytes:
        if self.head:
            out = self.head if size < 0 else self.head[:size]
            self.head = self.head[len(out):]
        else:
            out = self.fh.read(size)
        self.offset += len(out)
        return out


# ------------------------------------------------------------------------------------- records
class _Records(ArchiveIterator):
    """warcio's record iterator, except between records. A record ends with two blank lines; data that is not a
    record before them means its Content-Length is wrong: warcio warns on stderr and parses on from a wrong
    place; here `bad_length` is set and reading resumes at the next line that starts a record ("WARC/")."""

    bad_length = False

    def _consume_blanklines(self) -> tuple[bytes | None, int]:
        self.bad_length, skipped, blank, line_start = False, 0, 0, True
        while line := self.reader.readline(LINE_PIECE):
            if line_start and line.startswith(b"WARC/"):
                return line, skipped
            if line.strip() and not self.bad_length:
                if blank >= 2:
                    return line, skipped  # garbage after a record that ended right: warcio's parse error reports it
                self.bad_length = True
            blank += not line.strip()
            skipped += len(line)
            line_start = line.endswith(b"\n")
        return None, skipped


def _checked(records: _Records, record, offset: int, path: str, source: SourceConfig) -> RawDoc | Unreadable | None:
    """`_to_doc`, quarantined instead when the record does not end where its Content-Length says."""
    item = _to_doc(record, offset, path, source)
    records.read_to_end()  # consumes what follows the record (warcio would only do it on the next iteration)
    if item is None or not records.bad_length:
        return item
    return Unreadable(item.source_id, BAD_LENGTH, meta={"record_offset": offset})


def _to_doc(record, offset: int, path: str, source: SourceConfig) -> RawDoc | Unreadable | None:
    """A response record as RawDoc (with `skip_reason` when it cannot be a document); None for other types."""
    if record.rec_type != "response":
        return None  # warcinfo, request, metadata, revisit... are not inputs at all
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID") or f"{path}@{offset}"
    http = record.http_headers
    content_type = http.get_header("Content-Type") if http is not None else None
    meta = {"warc_date": headers.get_header("WARC-Date"), "http_content_type": content_type,
            "record_offset": offset}
    url = headers.get_header("WARC-Target-URI")
    status = (http.get_statuscode() or "") if http is not None else ""
    if http is not None and not status.startswith("2"):
        return RawDoc(record_id, url=url, meta={**meta, "http_status": status}, skip_reason="skip_http_status")
    if not _is_textual(content_type):
        return RawDoc(record_id, url=url, meta=meta, skip_reason="skip_content_type")
    declared = record.length or 0
    if declared > source.max_record_bytes:
        return Unreadable(record_id, f"record of {declared} bytes exceeds max_record_bytes={source.max_record_bytes}",
                          meta={"record_offset": offset})
    body = _payload(record, source.max_record_bytes)
    if isinstance(body, str):
        return Unreadable(record_id, body, meta={"record_offset": offset})
    return RawDoc(record_id, html=body, url=url, meta=meta)


def _payload(record, limit: int) -> bytes | str:
    """The HTTP payload with chunking and content encoding undone, or why it cannot be read."""
    try:
        stream = record.content_stream()  # undoes chunked transfer and gzip/deflate/br content encoding
        body = stream.read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - broken chunking / content encoding
        return f"cannot read payload: {one_line(exc)}"
    if error := getattr(getattr(stream, "decompressor", None), "error", None):  # a ZlibDecoder's
        return error
    if len(body) > limit:
        return f"payload exceeds max_record_bytes={limit} after decoding"
    missing = getattr(record.raw_stream, "limit", 0)  # warcio's LimitReader: bytes of Content-Length not seen
    if missing > 0 and not record.raw_stream.read(1):
        return f"truncated record: {missing} of {record.length or 0} bytes missing"
    return body


def _is_textual(content_type: str | None) -> bool:
    if not content_type:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _NON_TEXT_TYPES:
        return False
    return mime.startswith("text/") or "html" in mime or "xml" in mime
