"""Readers by config `format`. Each opens its files through apache_beam.io.filesystems."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable

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


__all__ = ["FORMATS", "RawDoc", "Reader", "SourceConfig", "Unreadable", "reader_for"]
