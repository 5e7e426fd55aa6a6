"""The document record: construction from readers' output and the Parquet schemas of the three outputs."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pyarrow as pa

from pipeline.errors import UserError
from pipeline.sources.base import RawDoc, SourceConfig, Unreadable

DESTINATIONS = ("curated", "rejected", "quarantine")
TIMINGS_KEY = "_timings"  # per-document seconds per stage, summed by the sinks, never written out
NORMALIZE_KEY = "_normalize"  # a spilled document's meta.normalize, for the sinks to sum (`pack`)
# meta keys the steps after the reader write (prepare, extract and its charset decision, filters, site lines);
# a record's own field of that name (a JSONL key, a Parquet column) is kept as `field:<name>`, so a step
# neither overwrites it nor reads it back as its own (a field `normalize: yes` crashed the write step's counts)
STEP_META_KEYS = frozenset({
    "normalize", "lang", "html_bytes", "filters", "stats", "pii", "footer_lines_removed",
    "non_japanese_lines_removed", "html_truncated", "fallback", "extractor", "charset", "charset_source",
    "declared", "overridden", "invalid_sequences", "site_lines_removed", "mojibake_folded",
})
FIELD_PREFIX = "field:"


def _field_key(key: str) -> str:
    """A record's field name as a meta key: a step's key, or a name that already starts with `field:`, gets the
    prefix (once more), so `normalize` and `field:normalize` stay two keys."""
    return FIELD_PREFIX + key if key in STEP_META_KEYS or key.startswith(FIELD_PREFIX) else key

_BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("license", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("meta", pa.string(), nullable=False),
    pa.field("quality", pa.float64()),
    pa.field("dup_cluster", pa.string()),
]
SCHEMAS = {
    "curated": pa.schema(_BASE_FIELDS),
    "rejected": pa.schema([*_BASE_FIELDS, pa.field("reject_reason", pa.string(), nullable=False)]),
    "quarantine": pa.schema([*_BASE_FIELDS, pa.field("error", pa.string(), nullable=False)]),
}


def check_text_column(name: str, schema: pa.Schema) -> None:
    """Curated Parquet read back (tokenizer, pack) has one column of each name and its document text as strings;
    a one-line error otherwise, not a TypeError deep in a reader (a column named twice: a KeyError, or the pack
    silently took the last `id`)."""
    if twice := sorted(n for n, count in Counter(schema.names).items() if count > 1):
        raise UserError(f"{name}: columns named twice: {', '.join(map(repr, twice))[:200]} (which one is meant is "
                        f"ambiguous)")
    if "text" not in schema.names:
        return  # each reader says which columns it needs
    if not is_string_type(text := schema.field("text").type):
        text = text.value_type if pa.types.is_dictionary(text) else text
        raise UserError(f"{name}: column 'text' holds {text}, not strings (curated Parquet has the document text)")


def is_string_type(type_: pa.DataType) -> bool:
    """A column of strings (dictionary-encoded ones too)."""
    type_ = type_.value_type if pa.types.is_dictionary(type_) else type_
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def doc_id(source_name: str, source_id: str) -> str:
    """Stable across runs and machines: the same source record always gets the same id."""
    return hashlib.sha256(f"{source_name}\0{source_id}".encode()).hexdigest()[:32]


def _base(src: SourceConfig, source_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc_id(src.name, source_id), "source_id": source_id, "source": src.name, "kind": src.kind,
        "url": None, "license": src.license, "text": "", "meta": meta, "quality": None,
        "dup_cluster": None, "reject_reason": None, "error": None,
    }


def from_reader(src: SourceConfig, item: RawDoc | Unreadable) -> dict[str, Any]:
    """A document dict (see docs/curate.md); HTML stays in `_html` until the extract step decodes it."""
    meta = {_field_key(k): v for k, v in item.meta.items()}
    doc = _base(src, item.source_id, meta)
    if isinstance(item, Unreadable):
        doc["error"] = item.error
        return doc
    doc["url"] = item.url
    if item.skip_reason:
        doc["reject_reason"] = item.skip_reason
        return doc
    if item.license:
        doc["license"] = item.license
    if item.html is not None:
        doc["_html"] = item.html
    else:
        doc["text"] = item.text or ""
    return doc


def copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to change: Beam elements are immutable, and runners that pass the same object to several
    consumers (DaskRunner) would otherwise see one step's changes in another branch."""
    return {**doc, "meta": dict(doc["meta"]), TIMINGS_KEY: dict(doc.get(TIMINGS_KEY) or {})}


def destination(doc: dict[str, Any]) -> str:
    if doc.get("error"):
        return "quarantine"
    if doc.get("reject_reason"):
        return "rejected"
    return "curated"


def pack(doc: dict[str, Any]) -> bytes:
    """A document as one opaque byte string, the form it takes in the sinks' spill files (`sinks.SpillDocuments`).

    `meta` goes as the JSON text its Parquet column holds (sorted keys), so the shard writer neither parses
    nor re-serializes it (a third of the write step); the normalization counts stats.json sums ride beside
    it under `NORMALIZE_KEY`."""
    meta = doc.get("meta") or {}
    spilled = {**doc, "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True),
               NORMALIZE_KEY: meta.get("normalize") or {}}
    return json.dumps(spilled, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def unpack(blob: bytes) -> dict[str, Any]:
    """A spilled document: as `pack` took it, except that `meta` is its JSON text."""
    return json.loads(blob)
