"""WARC reader: HTTP `response` records of `.warc` / `.warc.gz` files as `RawDoc(html=payload bytes)`.

Gzip is handled here, one member at a time, instead of inside warcio, because warcio swallows a
zlib error in the middle of a file (it prints to stderr and reports a clean end of file), which would
silently truncate the input. Owning the member loop gives exact member offsets for `source_id`s of
`Unreadable`s, a whole-file decompression-bomb cap, and resynchronisation on the next gzip header after a
corrupt member. Each member's bytes are then parsed by warcio as they are decompressed, the first
`max_record_bytes` of them at once: a member holding many records (a WARC gzipped as one file) is read like an
uncompressed file, each record held to `max_record_bytes`, and a cut loses only the record it falls in.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NoReturn

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.content_encoding import install_decoders
from pipeline.sources.io import one_line

GZIP_MAGIC = b"\x1f\x8b\x08"
RAW_CHUNK = 1 << 20  # compressed bytes read per call
OUT_CHUNK = 1 << 20  # decompressed bytes produced per zlib call (bounds memory between cap checks)
MAX_RESYNC_SCAN = 256 * 1024 * 1024  # give up looking for the next member after this many bytes
LINE_PIECE = 1 << 16  # longest piece of a line read between records (a wrong Content-Length may leave a long one)
# Largest WARC or HTTP header block. A fixed cap, not max_record_bytes: warcio holds a block as one str and joins
# a long line's 16 KiB blocks one at a time (quadratic: a 100 MB header line took minutes), and real blocks are a
# few KiB (web servers refuse response headers over 8-64 KiB), so 1 MiB only ever stops damage or a bomb.
MAX_HEADER_BYTES = 1 << 20
BAD_LENGTH = ("WARC Content-Length does not match the record "
              "(its declared end is not followed by the blank lines ending a record)")
CUT_SHORT = "truncated record: the file ends before the blank lines that end the record"
# bytes kept from the start of the current record, so the records a too-long Content-Length swallowed can be read
# again, and how many times over when those overrun too (each level holds a copy of what is left); past either,
# they are reported lost instead (one quarantine row). 4 levels of 16 MiB bound it at ~200 MB.
KEEP_BYTES = 16 << 20
MAX_REREADS = 4
WARC_TYPES = frozenset({"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion",
                        "continuation"})
# Responses that cannot be documents (images, scripts, styles, binaries) are yielded with a skip_reason.
_NON_TEXT_TYPES = ("text/css", "text/javascript", "text/x-javascript", "text/vcard", "text/calendar")


# HTTP Content-Encoding decoders of our own (brotli's current API, corrupt or cut gzip/deflate quarantined)
install_decoders()


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
    first = True
    for offset, member, error in _GzipMembers(fh, head, source):
        if member is None:
            yield Unreadable(f"{path}@{offset}", str(error))
            continue
        if first and member.fh.error is None and not member.start.startswith(b"WARC/"):  # one cut short: its error
            yield Unreadable(f"{path}@{offset}", f"not a WARC file: first gzip member starts with {member.start!r}")
            return
        first = False
        yield from _records_of(_Records(member, member_offset=offset), path, source)


class _MemberFailed(Exception):
    """A gzip member that does not decompress; raised again by every later read of it."""


class _MemberCorrupt(_MemberFailed):
    """zlib may notice damage late (at worst at the member's CRC), so the bytes it decoded before may be garbage
    already (in a test, a second copy of an earlier record): a corrupt member held whole is one row, unparsed."""


class _Inflater:
    """The decompressed bytes of the gzip member at `members.pos`, decompressed as they are read (at most
    OUT_CHUNK per call). A failure is kept in `error` (`fatal` for the file's bomb cap) and raised as
    `_MemberFailed`; at the member's end `members` moves past it."""

    def __init__(self, members: _GzipMembers) -> None:
        self.members, self.size, self.error, self.fatal = members, 0, None, False
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._data, members.buf = members.buf, b""  # raw bytes not yet handed to zlib
        self._fed = 0  # raw bytes zlib consumed

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes; b"" at the member's end."""
        if self.error is not None:
            raise _MemberFailed(self.error)
        size = size if 0 < size < OUT_CHUNK else OUT_CHUNK
        m = self.members
        while not self._d.eof:
            if not self._data:
                if not m.fill():
                    self._fail(f"truncated gzip member ({self.size} bytes decompressed before end of file)")
                self._data, m.buf = m.buf, b""
            try:
                out = self._d.decompress(self._data, size)
            except zlib.error as exc:
                self._fail(f"corrupt gzip member: {one_line(exc)}", _MemberCorrupt)
            tail = b"" if self._d.eof else self._d.unconsumed_tail  # at the end zlib may leave unused_data there too
            self._fed += len(self._data) - len(tail)
            self._data = tail
            self.size += len(out)
            m.total_out += len(out)
            if m.total_out > m.max_total:
                self._fail(f"decompression cap: more than {m.max_total} decompressed bytes in this file", fatal=True)
            if self._d.eof:  # hand back the bytes after the member
                m.pos += self._fed - len(self._d.unused_data)
                m.buf = self._d.unused_data
            if out:
                return out
        return b""

    def read_upto(self, size: int) -> bytes:
        """Up to `size` bytes; fewer at the member's end, or at a truncation or the bomb cap, which the next `read`
        raises again: the records decompressed before it are parsed first."""
        parts: list[bytes] = []
        try:
            while size > 0 and (out := self.read(size)):
                parts.append(out)
                size -= len(out)
        except _MemberCorrupt:
            raise  # the bytes before may be garbage
        except _MemberFailed:
            pass  # the bytes before are sound
        return b"".join(parts)

    def drain(self) -> None:
        """Decompress what the records left (all of it after a parse error): the member's end, or its failure."""
        while self.read():
            pass

    def _fail(self, error: str, kind: type[_MemberFailed] = _MemberFailed, fatal: bool = False) -> NoReturn:
        self.error, self.fatal = error, fatal
        raise kind(error)


class _GzipMembers:
    """Iterate `(offset, member stream, None)` or `(offset, None, error)` over a multi-member gzip file.

    A member's first `max_record_bytes` are decompressed at once (one zlib call per MiB, then parsed from
    memory); the rest, if any (a WARC gzipped as one file, or one oversized record), as it is parsed. A member
    cut short (or stopped by the bomb cap) is still parsed up to there: its error is then the one row of the
    record it cut. A corrupt member yields what was parsed before zlib noticed, nothing if it was held whole.
    After a failure it looks for the next gzip header and goes on; consecutive failures before the next good
    member are reported once. Stops for good on the bomb cap.
    """

    def __init__(self, fh: BinaryIO, head: bytes, source: SourceConfig) -> None:
        self.fh = fh
        self.max_member = source.max_record_bytes
        self.max_total = source.max_decompressed_bytes
        self.buf = head  # raw bytes not yet consumed, starting at file offset self.pos
        self.pos = 0
        self.total_out = 0
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(RAW_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def __iter__(self) -> Iterator[tuple[int, _Prefixed | None, str | None]]:
        failing = False  # inside a run of bad members: report only the first
        while True:
            while len(self.buf) < 3 and self.fill():
                pass
            if not self.buf:
                return
            start = self.pos
            if not self.buf.startswith(GZIP_MAGIC):
                error = f"garbage instead of a gzip member: {self.buf[:16]!r}"
                if self.buf.strip(b"\0\r\n\t ") == b"" and not self.fill():
                    return  # trailing padding
            else:
                inflater = _Inflater(self)
                try:
                    yield start, _Prefixed(inflater.read_upto(self.max_member + 1), inflater), None
                    inflater.drain()
                    failing = False
                    continue
                except _MemberFailed as exc:
                    if inflater.fatal:
                        yield start, None, str(exc)
                        return
                    error = str(exc)
            if not failing:
                yield start, None, error
            failing = True
            if not self._resync(start + 1):
                return

    def _resync(self, offset: int) -> bool:
        """Move to the next gzip header at or after `offset`; False when there is none (or no seek)."""
        try:
            self.fh.seek(offset)
        except Exception:  # noqa: BLE001 - unseekable stream: cannot resync
            return False
        self.eof, self.buf, self.pos = False, b"", offset
        scanned = 0
        while scanned < MAX_RESYNC_SCAN:
            if not self.fill():
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
    yield from _records_of(_Records(_Prefixed(head, fh)), path, source)


class _Prefixed(io.RawIOBase):
    """The already-read first bytes followed by the rest of the stream (no seek needed)."""

    def __init__(self, head: bytes, fh: BinaryIO | _Inflater) -> None:
        self.start = head[:20]
        self.head, self.fh, self.offset = io.BytesIO(head), fh, 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.offset

    def read(self, size: int = -1) -> bytes:
        out = self.head.read(size) or self.fh.read(size)
        self.offset += len(out)
        return out


# ------------------------------------------------------------------------------------- records
class _BadHeaders(Exception):
    """A WARC or HTTP header block cut off by the end of the input, or larger than MAX_HEADER_BYTES."""


class _HeaderLines:
    """The lines of one header block, read for warcio's parser: MAX_HEADER_BYTES in all, each ending in a newline.
    Read in pieces: warcio's `readline(n)` may stop short of both `n` and the newline."""

    def __init__(self, stream, what: str) -> None:
        self.stream, self.what, self.left = stream, what, MAX_HEADER_BYTES

    def readline(self, _length: int | None = None, start: bytes = b"", may_end: bool = False) -> bytes:
        """The next line, continuing `start` (already read); with `may_end`, b"" is the clean end of the input."""
        pieces = [start]
        self.left -= len(start)
        while not pieces[-1].endswith(b"\n") and self.left >= 0 and (piece := self.stream.readline(self.left + 1)):
            self.left -= len(piece)
            pieces.append(piece)
        line = b"".join(pieces)
        if self.left < 0:
            raise _BadHeaders(f"{self.what} headers exceed {MAX_HEADER_BYTES} bytes")
        # no newline: the end of the input, unless the record's Content-Length ends inside its HTTP headers
        if not line.endswith(b"\n") and (line or not may_end) and getattr(self.stream, "limit", 1) > 0:
            raise _BadHeaders(f"truncated record: the file ends inside its {self.what} headers")
        return line


class _HeaderParser(StatusAndHeadersParser):
    """warcio's parser of a WARC or HTTP header block, reading through `_HeaderLines`."""

    def __init__(self, statuslist: list[str], what: str, verify: bool) -> None:
        super().__init__(statuslist, verify)
        self.what = what

    def parse(self, stream, full_statusline: bytes | None = None) -> StatusAndHeaders:
        lines = _HeaderLines(stream, self.what)
        # the first line may be the first LINE_PIECE of a longer one; no WARC line at all is the end of the input
        first = lines.readline(start=full_statusline or b"", may_end=self.what == "WARC")
        return super().parse(lines, first)


class _Loader(ArcWarcRecordLoader):
    """warcio's record parser with bounded header blocks, reading WARC only."""

    def __init__(self) -> None:
        super().__init__(verify_http=False, arc2warc=False)
        self.warc_parser = _HeaderParser(self.WARC_TYPES, "WARC", verify=True)
        self.http_parser = _HeaderParser(self.HTTP_TYPES, "HTTP", verify=False)
        self.http_req_parser = _HeaderParser(self.HTTP_VERBS, "HTTP", verify=False)

    def _ensure_target_uri_format(self, rec_headers: StatusAndHeaders) -> str:
        """The URI warcio decides by whether a block has HTTP headers. A response without one (url None) is
        still a page: warcio crashed on `None.startswith`; its WARC Content-Type says whether it is HTTP."""
        uri = super()._ensure_target_uri_format(rec_headers)
        if uri is None and (rec_headers.get_header("Content-Type") or "").startswith("application/http"):
            return "http:"
        return uri or ""


class _Damaged:
    """A record whose headers could not be read: one Unreadable, then reading resumes at the next `WARC/` line."""

    rec_type = "damaged"

    def __init__(self, error: str) -> None:
        self.error, self.raw_stream = error, io.BytesIO()


class _Tape:
    """The stream a `_Records` reads (with warcio's offsets: bytes read so far), keeping what was read since
    the current record's start; past KEEP_BYTES only the last LINE_PIECE (more than warcio reads ahead)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.kept, self.kept_from, self.pos = stream, bytearray(), 0, 0

    def tell(self) -> int:
        return self.pos

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.pos += len(data)
        self.kept += data
        if len(self.kept) > KEEP_BYTES:
            del self.kept[:-LINE_PIECE]
            self.kept_from = self.pos - len(self.kept)
        return data

    def keep_from(self, offset: int) -> None:
        if offset > self.kept_from:
            del self.kept[: offset - self.kept_from]
            self.kept_from = offset

    def between(self, start: int, end: int) -> bytes | None:
        """The bytes from `start` to `end`, None if those from `start` are no longer kept."""
        return None if start < self.kept_from else bytes(self.kept[start - self.kept_from: end - self.kept_from])


class _Records(ArchiveIterator):
    """warcio's record iterator, except around records.

    A record ends with two blank lines; data that is not a record before them means its Content-Length is wrong:
    warcio warns on stderr and parses on from a wrong place; here `bad_length` is set and reading resumes at the
    next line that starts a record ("WARC/"), as it does after a record whose headers are damaged. In an
    uncompressed file (`member_offset` None) a record not followed by its blank lines is cut short (`cut_short`).
    """

    bad_length = cut_short = resync = False

    def __init__(self, stream: BinaryIO, member_offset: int | None = None, base: int = 0, reread: int = 0,
                 ends_at_record: bool = False) -> None:
        self.tape = _Tape(stream)
        super().__init__(self.tape)
        self.loader, self.known_format, self.member_offset, self.base = _Loader(), "warc", member_offset, base
        # a reread's input ends where the next record starts: a record it cuts short had a Content-Length too long
        self.start, self.reread, self.ends_at_record = 0, reread, ends_at_record

    def where(self) -> dict[str, int]:
        """Where the current record starts: its own offset in an uncompressed file; its gzip member's, and its
        own in that member's data (a file gzipped as one member has all its records in member 0)."""
        if self.member_offset is None:
            return {"record_offset": self.base + self.start}
        return {"record_offset": self.member_offset, "offset_in_member": self.base + self.start}

    def swallowed(self) -> bytes | None:
        """After a record ran past its end: the bytes from the first record start inside it to where reading
        resumed (the records its Content-Length ran over), b"" if none, None if they were not kept. A record
        start is a `WARC/` line after the blank lines that end a record; only without one, any `WARC/` line (a
        page quoting a WARC record in its text has such lines too)."""
        data = None if self.reread >= MAX_REREADS else self.tape.between(self.start, self.offset)
        if data is None:
            return None
        if starts := [hit + len(end) for end in (b"\r\n\r\n", b"\n\n") if (hit := data.find(end + b"WARC/", 1)) >= 0]:
            return data[min(starts):]
        hit = data.find(b"\nWARC/", 1)
        return data[hit + 1:] if hit >= 0 else b""

    def _next_record(self, next_line: bytes | None):
        self.start = self.offset
        self.tape.keep_from(self.start)
        try:
            return super()._next_record(next_line)
        except _BadHeaders as exc:
            self.member_info, self.resync = None, True
            return _Damaged(str(exc))

    def _consume_blanklines(self) -> tuple[bytes | None, int]:
        resync, self.resync = self.resync, False
        self.bad_length = self.cut_short = False
        skipped, blank, line_start = 0, 0, True
        while line := self.reader.readline(LINE_PIECE):
            if line_start and line.startswith(b"WARC/"):
                return line, skipped
            if line.strip() and not (self.bad_length or resync):
                if blank >= 2:
                    return line, skipped  # garbage after a record that ended right: warcio's parse error reports it
                self.bad_length = True
            line_start = line.endswith(b"\n")
            blank += line_start and not line.strip()
            skipped += len(line)
        self.cut_short = blank < 2 and self.member_offset is None and not (self.bad_length or resync)
        return None, skipped


def _records_of(records: _Records, path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Each response record once. A parse error ends the stream with one Unreadable; a gzip member that fails
    is reported by `_GzipMembers` (a record is yielded only once the line after it is read, so not one it cut)."""
    try:
        for record in records:
            where = records.where()
            item = _checked(records, record, where, path, source)
            if item is not None:
                yield item
            if records.bad_length or getattr(record.raw_stream, "limit", 0) > 0:  # its Content-Length ran past
                yield from _swallowed(records, where, path, source)  # its end, or past the end of the input
    except _MemberFailed:
        return
    except Exception as exc:  # noqa: BLE001 - warcio parse errors
        where = records.where()
        inside = "" if records.member_offset is None else " in gzip member"
        yield Unreadable(f"{path}@{where['record_offset']}", f"bad WARC record{inside}: {one_line(exc)}",
                         meta={**where, "file": path})


def _swallowed(records: _Records, where: dict[str, int], path: str,
               source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """The records a too-long Content-Length ran over, read again from the bytes kept (they were lost)."""
    data = records.swallowed()
    if data is None:
        yield Unreadable(f"{path}@{where['record_offset']}#overrun", f"{BAD_LENGTH}; any records it ran over "
                         f"(more than {KEEP_BYTES} bytes, or past {MAX_REREADS} records that overran in turn) "
                         "cannot be read again", meta={**where, "file": path})
    elif data:
        start = records.offset - len(data)  # where the data starts, in the stream `records` reads
        inner = _Records(io.BytesIO(data), records.member_offset, base=records.base + start, reread=records.reread + 1,
                         ends_at_record=records.next_line is not None or records.ends_at_record)
        yield from _records_of(inner, path, source)


def _checked(records: _Records, record, where: dict[str, int], path: str,
             source: SourceConfig) -> RawDoc | Unreadable | None:
    """`_to_doc`, quarantined instead when the record does not end where its Content-Length says, or is cut short."""
    item = _to_doc(record, where, path, source, records.ends_at_record)
    records.read_to_end()  # consumes what follows the record (warcio would only do it on the next iteration)
    if item is None:
        return None
    if records.bad_length:
        return Unreadable(item.source_id, BAD_LENGTH, meta={**where, "file": path})
    if records.cut_short and isinstance(item, RawDoc):
        return Unreadable(item.source_id, CUT_SHORT, meta={**where, "file": path})
    return item


def _to_doc(record, where: dict[str, int], path: str, source: SourceConfig,
            ends_at_record: bool) -> RawDoc | Unreadable | None:
    """A response record as RawDoc (with `skip_reason` when it cannot be a document); None for other types."""
    quarantine = {**where, "file": path}
    if isinstance(record, _Damaged):
        return Unreadable(f"{path}@{where['record_offset']}", record.error, meta=quarantine)
    headers = record.rec_headers
    record_id = headers.get_header("WARC-Record-ID") or f"{path}@{where['record_offset']}"
    if record.rec_type not in WARC_TYPES:  # damaged headers, not a record to skip: it may have been a page
        found = f"unknown WARC-Type {record.rec_type!r}" if record.rec_type else "no WARC-Type header"
        return Unreadable(record_id, f"bad WARC record: {found}", meta=quarantine)
    if record.rec_type != "response":
        return None  # warcinfo, request, metadata, revisit... are not inputs at all
    http = record.http_headers
    content_type = http.get_header("Content-Type") if http is not None else None
    meta = {"warc_date": headers.get_header("WARC-Date"), "http_content_type": content_type,
            "record_offset": where["record_offset"]}
    url = headers.get_header("WARC-Target-URI")
    status = (http.get_statuscode() or "") if http is not None else ""
    if http is not None and not status.startswith("2"):
        return RawDoc(record_id, url=url, meta={**meta, "http_status": status}, skip_reason="skip_http_status")
    if not _is_textual(content_type):
        return RawDoc(record_id, url=url, meta=meta, skip_reason="skip_content_type")
    declared = record.length or 0
    if declared > source.max_record_bytes:
        return Unreadable(record_id, f"record of {declared} bytes exceeds max_record_bytes={source.max_record_bytes}",
                          meta=quarantine)
    body = _payload(record, source.max_record_bytes, ends_at_record)
    if isinstance(body, str):
        return Unreadable(record_id, body, meta=quarantine)
    return RawDoc(record_id, html=body, url=url, meta=meta)


def _payload(record, limit: int, ends_at_record: bool) -> bytes | str:
    """The HTTP payload with chunking and content encoding undone, or why it cannot be read."""
    try:
        stream = record.content_stream()  # undoes chunked transfer and gzip/deflate/br content encoding
        body = stream.read(limit + 1)
    except _MemberFailed:
        raise  # the gzip member itself: `_GzipMembers` reports it
    except Exception as exc:  # noqa: BLE001 - broken chunking / content encoding
        return f"cannot read payload: {one_line(exc)}"
    if len(body) > limit:
        return f"payload exceeds max_record_bytes={limit} after decoding"
    if error := getattr(getattr(stream, "decompressor", None), "error", None):  # content_encoding.ZlibDecoder's
        return error
    missing = getattr(record.raw_stream, "limit", 0)  # warcio's LimitReader: bytes of Content-Length not seen
    if missing > 0 and not record.raw_stream.read(1):
        if ends_at_record:  # a reread's input ends at the next record: not the file's end
            return BAD_LENGTH
        return f"truncated record: {missing} of {record.length or 0} bytes missing"
    return body


def _is_textual(content_type: str | None) -> bool:
    if not content_type:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _NON_TEXT_TYPES:
        return False
    return mime.startswith("text/") or "html" in mime or "xml" in mime
