"""Readers by config `format`. Each opens its files through apache_beam.io.filesystems."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from pipeline.sources.base import FileIds, RawDoc, SourceConfig, Unreadable

Reader = Callable[[str, SourceConfig], Iterator[RawDoc | Unreadable]]

FORMATS = ("warc", "jsonl", "parquet", "text", "egov_xml", "jats_xml")


def reader_for(fmt: str) -> Reader:
    """The reader for a config `format` (imported lazily so a worker loads only what it uses)."""
    if fmt == "warc":
        from pipeline.sources.warc import read
    elif fmt == "jsonl":
        from pipeline.sources.jsonl import read
    elif fmt == "parquet":
        from pipeline.sources.parquet import read
    elif fmt == "text":
        from pipeline.sources.text import read
    elif fmt == "egov_xml":
        from pipeline.sources.egov_xml import read
    elif fmt == "jats_xml":
        from pipeline.sources.jats_xml import read
    else:
        raise ValueError(f"unknown source format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return read


def read_file(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """A file's records, each with a source id of its own within the file (see `FileIds`)."""
    ids = FileIds()
    for record in reader_for(source.format)(path, source):
        record.source_id = ids.unique(record.source_id)
        yield record


__all__ = ["FORMATS", "RawDoc", "Reader", "SourceConfig", "Unreadable", "read_file", "reader_for"]
