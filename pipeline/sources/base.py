"""What every reader yields, so the pipeline treats all formats alike.

A reader is a generator `read(path, source) -> Iterator[RawDoc | Unreadable]`. It streams (bounded
memory whatever the file size), never raises for bad input (it yields `Unreadable` and goes on where it
can), and gives every item a `source_id` that is stable across runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceConfig:
    """One entry of the config's `sources:` list."""

    name: str
    kind: str  # academic | government | web | reference
    format: str  # warc | jsonl | parquet | text | egov_xml | jats_xml
    paths: tuple[str, ...]
    license: str
    text_field: str = "text"
    id_field: str = "id"
    url_field: str = "url"
    license_field: str = "license"
    text_split: str = "file"  # text format only: file | blank_line
    encoding: str = "utf-8"  # text format only: any Python codec, e.g. cp932 for Shift_JIS files
    max_record_bytes: int = 64 * 1024 * 1024  # a single line / record / member larger than this is quarantined
    max_decompressed_bytes: int = 4 * 1024 * 1024 * 1024  # gzip/zstd bomb guard per file


@dataclass
class RawDoc:
    """A readable input document, before extraction and normalization.

    Exactly one of `text` (already plain text) and `html` (raw bytes of an HTML page, charset not yet
    decided) is set. `meta` carries format-specific fields (title, dates, http headers, xml path...).
    """

    source_id: str
    text: str | None = None
    html: bytes | None = None
    url: str | None = None
    license: str | None = None  # per-record licence overrides the source's, when the format carries one
    meta: dict[str, Any] = field(default_factory=dict)
    # A readable record that cannot be a document (an HTTP redirect, an image): rejected with this reason
    # instead of dropped, so that stats.json still accounts for it.
    skip_reason: str | None = None


@dataclass
class Unreadable:
    """Input that could not be read or parsed: it goes to quarantine with the file, position and error."""

    source_id: str  # path plus position (byte offset, line number, record number, element path)
    error: str  # one line: what went wrong, e.g. "gzip: CRC check failed at byte 1234"
    meta: dict[str, Any] = field(default_factory=dict)


class FileIds:
    """The source ids one file has yielded. A repeat gets `#2`, `#3`... appended, so every document of a file
    has its own id: records repeated verbatim are common in scraped dumps, and documents sharing an id would
    share every dedup decision (both copies rejected `dup_exact`, or a distinct text rejected with them).
    Holds every id of the file being read (~100 bytes per record)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.last_suffix: dict[str, int] = {}

    def unique(self, source_id: str) -> str:
        if source_id not in self.seen:
            self.seen.add(source_id)
            return source_id
        n = self.last_suffix.get(source_id, 1) + 1
        while f"{source_id}#{n}" in self.seen:
            n += 1
        self.last_suffix[source_id] = n
        self.seen.add(f"{source_id}#{n}")
        return f"{source_id}#{n}"
