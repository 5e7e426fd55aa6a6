"""Parquet reader: one document per row, streamed by record batches inside each row group.

The file handle comes from Beam FileSystems (seekable on local, GCS and S3), so pyarrow reads only the
footer and the row groups it is iterating. A row group that fails to decode is quarantined as a whole and
reading goes on with the next one; a row with a value Python cannot hold (a timestamp past year 9999) is
quarantined alone, except nanoseconds, kept as text. Text, id, URL and licence stored as binary are decoded as
UTF-8 (`_text_from_binary`); a schema naming a column twice is quarantined as a whole. Parquet's own compression
is a bomb like gzip's (8 rows of 90 MB text in a 61 kB file took 2.1 GB): see `_rows` for the three limits that
apply before anything is decoded or converted.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import one_line, open_raw
from pipeline.sources.jsonl import record_to_doc

BATCH_ROWS = 256


def _records(batch: Any, sizes: list[int], limit: int) -> Iterator[dict[str, Any] | str]:
    """The batch's rows as dicts, converted a slice of at most `limit` bytes of values at a time; a row over the
    limit, or with a cell that cannot be converted, is an error message instead (never converted), so one bad
    row costs itself only, not the rest of the row group."""
    start = 0
    while start < batch.num_rows:
        if sizes[start] > limit:
            yield f"row of {sizes[start]} bytes of values exceeds max_record_bytes={limit}"
            start += 1
            continue
        end, held = start, 0
        while end < batch.num_rows and held + sizes[end] <= limit:
            held += sizes[end]
            end += 1
        part = batch.slice(start, end - start)
        try:
            yield from part.to_pylist()
        except Exception:  # noqa: BLE001 - OverflowError, ValueError...: found again row by row below
            yield from (_record(part, i) for i in range(part.num_rows))
        start = end


def _record(batch: Any, i: int) -> dict[str, Any] | str:
    record = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            record[name] = column[i].as_py()
        except Exception as e:  # noqa: BLE001 - any conversion failure is this row's quarantine reason
            if (text := _nanoseconds(column[i])) is None:
                return f"column {name!r} cannot be converted to a Python value: {one_line(e)}"
            record[name] = text
    return record


def _text_from_binary(record: dict[str, Any], source: SourceConfig) -> dict[str, Any] | str:
    """The mapped fields stored as binary (Parquet BYTE_ARRAY without the UTF-8 annotation, as some writers
    leave text) decoded as UTF-8. A text or id that is not valid UTF-8 is the row's quarantine reason (a
    replacement character would alter the document, or merge ids); a URL or licence is decoded with
    replacement, as a lone surrogate is in JSONL. Other binary columns go to `meta` as `json_safe` makes them."""
    for name, strict in ((source.text_field, True), (source.id_field, True), (source.url_field, False),
                         (source.license_field, False)):
        value = record.get(name) if name else None
        if not isinstance(value, bytes):
            continue
        try:
            record[name] = value.decode("utf-8", "strict" if strict else "replace")
        except UnicodeDecodeError as e:
            bad = value[e.start:e.start + 4].hex(" ")
            return f"binary column {name!r} is not valid UTF-8 text: invalid byte at {e.start} (bytes {bad})"
    return record


def _nanoseconds(cell: Any) -> str | None:
    """A timestamp, time or duration with nanoseconds Python cannot hold (pandas writes ns columns), as the
    text its microseconds give with the last three digits added: `2024-05-01T12:00:00.123456789+00:00`."""
    import pyarrow as pa

    kind = cell.type
    if not cell.is_valid or not pa.types.is_temporal(kind) or getattr(kind, "unit", None) != "ns":
        return None
    micros, extra = divmod(cell.value, 1000)
    try:
        if pa.types.is_duration(kind):
            text = str(pa.scalar(micros, pa.duration("us")).as_py())
            return f"{text}{'' if '.' in text else '.000000'}{extra:03d}"
        unit = pa.timestamp("us", tz=kind.tz) if pa.types.is_timestamp(kind) else pa.time64("us")
        text = pa.scalar(micros, unit).as_py().isoformat(timespec="microseconds")
    except Exception:  # noqa: BLE001 - an unknown time zone...: the row's own quarantine, as with microseconds
        return None
    cut = text.index(".") + 7
    return f"{text[:cut]}{extra:03d}{text[cut:]}"


def _dictionary_strings(meta: Any) -> list[str]:
    """Byte-array leaf columns (strings, binaries, nested ones too: `tags.list.element`) that some row group
    dictionary-encodes: read as dictionaries, so a value repeated a million times (a few kB of file) is never
    expanded into a million copies by Arrow."""
    return [meta.schema.column(c).path for c in range(meta.num_columns)
            if meta.schema.column(c).physical_type == "BYTE_ARRAY"
            and any("DICTIONARY" in enc for g in range(meta.num_row_groups) for enc in meta.row_group(g).column(c).encodings)]


def _cell_bytes(array: Any) -> np.ndarray:
    """Bytes of the values in each element of `array`, through lists, list views, maps, structs, dictionaries
    (whose values are measured once, not per use) and extension types (by their storage): strings and
    binaries by length, fixed-width values (numbers, booleans, timestamps) by width, so a list of 100M
    integers in one row (800 MB) is over the limit too. A type none of these covers is charged its buffers'
    bytes, spread over its elements."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if isinstance(array, pa.ExtensionArray):
        return _cell_bytes(array.storage)
    if isinstance(array, pa.DictionaryArray):
        sizes = np.append(_cell_bytes(array.dictionary), 0)  # a null index points at the appended 0
        return sizes[array.indices.fill_null(len(sizes) - 1).to_numpy(zero_copy_only=False)]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind):
        return pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):  # 16-byte views, each led by its length
        views = np.frombuffer(array.buffers()[1], np.int32).reshape(-1, 4)
        return views[array.offset:array.offset + len(array), 0].astype(np.int64)
    if isinstance(array, (pa.ListArray, pa.LargeListArray, pa.FixedSizeListArray, pa.ListViewArray,
                          pa.LargeListViewArray)):  # MapArray is a ListArray
        total = np.concatenate([[0], np.cumsum(_cell_bytes(array.values))])
        if isinstance(array, pa.FixedSizeListArray):  # no offsets: element i holds values i*size ... (i+1)*size
            offsets = (array.offset + np.arange(len(array) + 1)) * kind.list_size
        elif isinstance(array, (pa.ListViewArray, pa.LargeListViewArray)):  # views may overlap or go backwards
            starts = array.offsets.to_numpy(zero_copy_only=False)
            return total[starts + array.sizes.to_numpy(zero_copy_only=False)] - total[starts]
        else:
            offsets = array.offsets.to_numpy(zero_copy_only=False)
        return total[offsets[1:]] - total[offsets[:-1]]
    if isinstance(array, pa.StructArray):
        return sum((_cell_bytes(field) for field in array.flatten()), np.zeros(len(array), np.int64))
    try:
        width = kind.bit_width
    except ValueError:  # not fixed-width
        return np.full(len(array), -(-array.nbytes // max(1, len(array))), np.int64)
    return np.full(len(array), max(1, width // 8), np.int64)


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
            meta = pq.read_metadata(handle)  # parsed once: the file is opened with it
            pfile = pq.ParquetFile(handle, metadata=meta, read_dictionary=_dictionary_strings(meta) or None)
        except Exception as e:  # ArrowInvalid "magic bytes not found", OSError, ...
            yield Unreadable(path, f"not a readable Parquet file: {one_line(e)}")
            return
        names = pfile.schema_arrow.names
        if source.text_field not in names:
            yield Unreadable(path, f"no column {source.text_field!r} in Parquet schema (columns: {', '.join(names)[:200]})")
            return
        if twice := sorted(name for name, n in Counter(names).items() if n > 1):
            # a row would keep the last column of a name only: which one is the text (or id...) is ambiguous
            yield Unreadable(path, f"duplicate column names in Parquet schema: {', '.join(map(repr, twice))[:200]} "
                                   f"(which column is meant is ambiguous); no row was read")
            return
        yield from _rows(pfile, path, source)


class _Bomb(Exception):
    """More than max_decompressed_bytes from one file: the message is the rest of the file's quarantine reason."""


def _rows(pfile: Any, path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Row groups are checked against the size their footer declares before any page is decoded, rows
    against max_record_bytes before they become Python values, and the values handed out against
    max_decompressed_bytes (a dictionary repeats its values without declaring them)."""
    row = declared = produced = 0
    cap, total = source.max_decompressed_bytes, pfile.metadata.num_rows
    for group in range(pfile.num_row_groups):
        group_rows, first = pfile.metadata.row_group(group).num_rows, row
        group_bytes = pfile.metadata.row_group(group).total_byte_size
        declared += group_bytes
        # about max_record_bytes decoded at a time: 256 rows of 30 MiB each were one batch (8 GB)
        batch_rows = max(1, min(BATCH_ROWS, source.max_record_bytes * max(group_rows, 1) // max(group_bytes, 1)))
        try:
            if declared > cap:
                raise _Bomb(f"row groups 0-{group} declare {declared} bytes uncompressed")
            for batch in pfile.iter_batches(batch_size=batch_rows, row_groups=[group]):
                sizes = sum((_cell_bytes(c) for c in batch.columns), np.zeros(batch.num_rows, np.int64)).tolist()
                if (produced := produced + sum(sizes)) > cap:
                    raise _Bomb(f"rows 1-{row + batch.num_rows} hold {produced} bytes of values")
                for record in _records(batch, sizes, source.max_record_bytes):
                    row += 1
                    position = f"{path}:row {row}"
                    if not isinstance(record, str):
                        record = _text_from_binary(record, source)
                    yield (Unreadable(position, record) if isinstance(record, str)
                           else record_to_doc(record, source, position))
        except _Bomb as e:
            yield Unreadable(f"{path}:row {row + 1}", f"{e}, more than max_decompressed_bytes={cap} (possible "
                                                      f"decompression bomb); rows {row + 1}-{total} were not read")
            return
        except Exception as e:  # corrupt pages / decompression errors inside the group
            yield Unreadable(f"{path}:row group {group}",
                             f"cannot decode row group {group} (rows {row + 1}-{first + group_rows}): {one_line(e)}")
            row = first + group_rows
