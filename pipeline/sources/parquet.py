"""Parquet reader: one document per row, streamed by record batches inside each row group.

The file handle comes from Beam FileSystems (seekable on local, GCS and S3), so pyarrow reads only the
footer and the row groups it is iterating. A row group that fails to decode is quarantined as a whole and
reading goes on with the next one; a row with a value Python cannot hold (a timestamp past year 9999) is
quarantined alone.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import one_line, open_raw
from pipeline.sources.jsonl import record_to_doc

BATCH_ROWS = 256


def _records(batch: Any) -> list[dict[str, Any] | str]:
    """The batch's rows as dicts; where a cell cannot be converted, that row is an error message instead, so
    one bad value costs its row only, not the rest of the row group."""
    try:
        return batch.to_pylist()
    except Exception:  # noqa: BLE001 - OverflowError, ValueError...: found again row by row below
        return [_record(batch, i) for i in range(batch.num_rows)]


def _record(batch: Any, i: int) -> dict[str, Any] | str:
    record = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            record[name] = column[i].as_py()
        except Exception as e:  # noqa: BLE001 - any conversion failure is this row's quarantine reason
            return f"column {name!r} cannot be converted to a Python value: {one_line(e)}"
    return record


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Documents of one Parquet file; rows are numbered from 1 for fallback ids ("path:row N")."""
    import pyarrow.parquet as pq

    try:
        handle = open_raw(path)
    except Exception as e:  # Beam backends raise different error types
        yield Unreadable(path, f"cannot open: {one_line(e)}")
        return
    with handle:
        try:
            pfile = pq.ParquetFile(handle)
        except Exception as e:  # ArrowInvalid "magic bytes not found", OSError, ...
            yield Unreadable(path, f"not a readable Parquet file: {one_line(e)}")
            return
        names = pfile.schema_arrow.names
        if source.text_field not in names:
            yield Unreadable(path, f"no column {source.text_field!r} in Parquet schema (columns: {', '.join(names)[:200]})")
            return
        row = 0
        for group in range(pfile.num_row_groups):
            group_rows = pfile.metadata.row_group(group).num_rows
            first = row
            try:
                for batch in pfile.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                    for record in _records(batch):
                        row += 1
                        position = f"{path}:row {row}"
                        yield (Unreadable(position, record) if isinstance(record, str)
                               else record_to_doc(record, source, position))
            except Exception as e:  # corrupt pages / decompression errors inside the group
                yield Unreadable(f"{path}:row group {group}",
                                 f"cannot decode row group {group} (rows {row + 1}-{first + group_rows}): {one_line(e)}")
                row = first + group_rows
