"""JSON Lines reader (plain, gzip, zstd, bz2 or xz by magic bytes): one document per line.

A bad line (invalid JSON or UTF-8, not an object, no string text, longer than `max_record_bytes`, nested
deeper than `MAX_NESTING`, a key twice in one object, an id with a lone surrogate) becomes one Unreadable and
reading goes on; corrupt compression ends the file with one Unreadable for the rest.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.io import (
    MAX_NESTING,
    NODE_BYTES,
    UTF8_BOM,
    InputError,
    LineReader,
    decode_text,
    open_stream,
)

TOO_DEEP = f"record nested deeper than {MAX_NESTING} levels of objects/arrays"
MAX_BAD_LINES = 10_000


class TooDeep(ValueError):
    """A value nested deeper than MAX_NESTING (the record itself counted as level 1)."""


class DuplicateKey(ValueError):
    """A JSON object names a key twice. Python keeps the last value, other parsers the first or fail: which one
    the record means is unknowable, and the dropped one would vanish without a trace. The message names the key."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object as a dict, or DuplicateKey naming a key it gives twice."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise DuplicateKey(f"duplicate key {key[:100]!r} in a JSON object (which of its values is meant is ambiguous)")
    return record


def json_safe(value: Any, depth: int = 0) -> Any:
    """A value that `json.dumps` accepts (meta is serialized at the sink): dates and bytes become strings, lone
    surrogates in keys and strings are replaced. Raises TooDeep past MAX_NESTING levels, DuplicateKey for keys
    that differ only in lone surrogates (replaced, they would be one key and lose a value)."""
    if isinstance(value, str):
        return _valid_str(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple)) and depth >= MAX_NESTING:
        raise TooDeep(TOO_DEEP)
    if isinstance(value, Mapping):
        safe = {_valid_str(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
        if len(safe) != len(value):
            key = next(k for k in map(str, value) if _valid_str(k) != k)
            raise DuplicateKey(f"keys differing only in unpaired surrogates (not valid Unicode) would both be "
                               f"{_valid_str(key)[:100]!r}")
        return safe
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def _valid_str(text: str) -> str:
    """Lone surrogates (from JSON escapes like \\ud800) cannot be written as UTF-8: replace them."""
    return text if surrogate_at(text) is None else text.encode("utf-8", "replace").decode("utf-8")


def surrogate_at(text: str) -> int | None:
    """Where the first lone surrogate of `text` is (a JSON escape like \\ud800 alone), or None."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as e:
        return e.start


def _optional_str(value: Any) -> str | None:
    return _valid_str(value.strip()) or None if isinstance(value, str) else None


def _scalar_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def record_to_doc(record: Any, source: SourceConfig, position: str) -> RawDoc | Unreadable:
    """Map one structured record (JSON object, Parquet row) to a RawDoc using the source's field names.

    `position` ("path:line N" / "path:row N") is the fallback source_id and the quarantine location.
    """
    if not isinstance(record, Mapping):
        return Unreadable(position, f"record is a JSON {type(record).__name__}, expected an object")
    if source.text_field not in record:
        fields = _valid_str(", ".join(map(str, record))[:200])
        return Unreadable(position, f"no text field {source.text_field!r} (fields: {fields})")
    text = record[source.text_field]
    if not isinstance(text, str):
        return Unreadable(position, f"text field {source.text_field!r} is {type(text).__name__}, expected a string")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        return Unreadable(position, f"text field has an unpaired surrogate at character {e.start} (not valid Unicode)")
    if size > source.max_record_bytes:
        return Unreadable(position, f"text of {size} bytes exceeds max_record_bytes={source.max_record_bytes}")
    record_id = _scalar_id(record.get(source.id_field))
    if record_id is not None and (at := surrogate_at(record_id)) is not None:
        # replaced, "a\\ud800" and "a\\ud801" would both be "a?", the id of a third record too
        return Unreadable(position, f"id field {source.id_field!r} has an unpaired surrogate at character {at} (not "
                                    f"valid Unicode, so not a unique id; `id_field: null` identifies records by line)")
    source_id = record_id or _valid_str(position)
    url = record.get(source.url_field)
    lic = record.get(source.license_field)
    used = {source.text_field, source.id_field, source.url_field, source.license_field}
    try:
        meta = json_safe({k: v for k, v in record.items() if k not in used})
    except (TooDeep, DuplicateKey) as e:
        return Unreadable(position, str(e))
    return RawDoc(source_id=source_id, text=text, url=_optional_str(url), license=_optional_str(lic), meta=meta)


def _int(digits: str) -> int | str:
    """A JSON integer; one longer than Python converts (4,300 digits by default) stays its digit string, so
    a valid line is never refused for a number in a field jcorpus only carries along."""
    limit = sys.get_int_max_str_digits()
    return digits if limit and len(digits.lstrip("-")) > limit else int(digits)


# one decoder: json.loads(object_pairs_hook=...) builds one a call, which tripled the parsing time
_DECODER = json.JSONDecoder(parse_int=_int, object_pairs_hook=unique_keys)


def _values_at_most(line: bytes) -> int:
    opened = line.count(b"[") + line.count(b"{") - line.count(b"[]") - line.count(b"{}")
    return 1 + line.count(b",") + opened


def _parse_line(line: bytes, source: SourceConfig, position: str) -> RawDoc | Unreadable:
    most = source.max_record_bytes // NODE_BYTES
    # a value is the first in a non-empty container or follows a comma: a bound counted before json.loads builds
    # them (a 27 MB line of [] took 1.5 GB); only a line that long can pass it
    if len(line) > 2 * most and (values := _values_at_most(line)) > most:
        return Unreadable(position, f"record of up to {values} JSON values exceeds one per {NODE_BYTES} bytes of "
                                    f"max_record_bytes ({most})")
    try:
        text = decode_text(line)
        record = _DECODER.decode(text)
    except (InputError, DuplicateKey) as e:
        return Unreadable(position, str(e))
    except json.JSONDecodeError as e:
        return Unreadable(position, f"invalid JSON: {e.msg} at column {e.colno}")
    except RecursionError:  # far deeper than MAX_NESTING: the same outcome as a record json_safe refuses
        return Unreadable(position, TOO_DEEP)
    return record_to_doc(record, source, position)


def _lines(lines: LineReader, path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    for line_no, line in lines:
        position = f"{path}:line {line_no}"
        if line is None:
            yield Unreadable(position, f"line of {lines.last_length} bytes exceeds "
                                       f"max_record_bytes={source.max_record_bytes}")
        elif line.strip():
            yield _parse_line(line, source, position)


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """Documents of one JSONL file; blank lines are skipped, every other line yields exactly one item.

    A file that is mostly not JSONL records (more than MAX_BAD_LINES unreadable lines, and more of them
    than documents) ends with one Unreadable for the rest: a small gzip of `1\n` lines would otherwise
    become billions of quarantine rows.
    """
    try:
        stream = open_stream(path, source.max_decompressed_bytes)
    except InputError as e:
        yield Unreadable(path, str(e))
        return
    lines = LineReader(stream, source.max_record_bytes, bom=UTF8_BOM)
    good = bad = 0
    with stream:
        try:
            for item in _lines(lines, path, source):
                if bad > max(MAX_BAD_LINES, good):  # and this line is not the last: it stands for the rest
                    yield Unreadable(f"{path}:line {lines.line_no}",
                                     f"{bad:,} of the {good + bad:,} records before it were unreadable (is this "
                                     f"JSONL?); lines from {lines.line_no} on were not read")
                    return
                yield item
                good, bad = (good + 1, bad) if isinstance(item, RawDoc) else (good, bad + 1)
        except InputError as e:
            yield Unreadable(f"{path}:line {lines.line_no + 1}",
                             f"{e}; lines from {lines.line_no + 1} on were not read")
