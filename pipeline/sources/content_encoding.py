"""Decoders of a WARC response's HTTP `Content-Encoding` (gzip, deflate, br) for warcio, stricter than its own:
a payload that does not decode, or is cut before its compressed stream ends, is quarantined, not read as text
or kept truncated, and a brotli bomb is stopped per block. Installed by the WARC reader (`install_decoders`).
"""
from __future__ import annotations

import zlib

from warcio.bufferedreaders import BufferedReader, DecompressingBufferedReader

BROTLI_BLOCK_CAP = 64 << 20  # decoded bytes per block of a `br` payload; HTML expands ~10x, a bomb far more


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
    block does not decode (garbage then read as text), drops the rest after a later error, saying so on stderr
    only, and keeps a stream cut before its end (a cut-off page). This one decodes nothing more after an error,
    and `error` says why the payload it was fed is unusable, which quarantines the record."""

    def __init__(self, encoding: str) -> None:
        self.encoding, self.corrupt = encoding, None
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self._fresh = True  # nothing decoded yet: `deflate` may still turn out to be raw deflate (no zlib header)

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def error(self) -> str | None:
        """Once the whole payload is fed: corrupt, or cut before the stream's end marker (an empty one is fine)."""
        if self.corrupt or self._fresh or self._d.eof:
            return self.corrupt
        return f"truncated {self.encoding} Content-Encoding: the payload ends before its compressed stream does"

    def decompress(self, data: bytes) -> bytes:
        if self.corrupt:
            return b""
        try:
            out = self._d.decompress(data)
        except zlib.error as exc:
            if self._fresh and self.encoding == "deflate":
                self._d, self._fresh = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.decompress(data)
            self.corrupt = f"corrupt {self.encoding} Content-Encoding: {exc}"
            return b""
        self._fresh = False
        return out


def install_decoders() -> None:
    """Make these warcio's decoders of HTTP payloads (`record.content_stream()`). The reader of the WARC stream
    itself keeps warcio's own: it relies on their fallback to read plain bytes."""
    if DecompressingBufferedReader.DECOMPRESSORS is BufferedReader.DECOMPRESSORS:
        DecompressingBufferedReader.DECOMPRESSORS = dict(BufferedReader.DECOMPRESSORS)
    BufferedReader.DECOMPRESSORS.update(br=BrotliDecoder, gzip=lambda: ZlibDecoder("gzip"),
                                        deflate=lambda: ZlibDecoder("deflate"))
