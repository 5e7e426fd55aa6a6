"""Multi-output steps that run on every Beam runner.

Beam's DaskRunner puts all tagged outputs of a DoFn into one collection and drops what `finish_bundle`
emits, so steps here emit `(tag, value)` pairs from `process` and `split` separates them with plain
single-output transforms, which every runner executes the same way.
"""
from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam


def split(pcoll, label: str, tags: Iterable[str]) -> dict[str, beam.PCollection]:
    """{tag: PCollection of the values emitted as (tag, value)}."""
    return {tag: pcoll | f"{label}.{tag}" >> beam.FlatMap(lambda e, t=tag: [e[1]] if e[0] == t else [])
            for tag in tags}


def decided(doc: dict) -> bool:
    """A document already rejected or quarantined only flows on to the sinks."""
    return bool(doc.get("reject_reason") or doc.get("error"))


def split_decided(docs, label: str):
    """(documents still in play, documents already decided)."""
    return (docs | f"{label}.live" >> beam.Filter(lambda d: not decided(d)),
            docs | f"{label}.decided" >> beam.Filter(decided))
