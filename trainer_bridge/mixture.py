"""Mixture weights per kind or source, applied per document deterministically by a keyed hash of its id.

A weight w gives floor(w) copies of every document plus one more with probability frac(w), decided by a hash
of (seed, id) rather than a random generator, so the decision is the same on every worker and every re-run.
Weights above 1 therefore repeat (upsample) a part of the corpus and weights below 1 subsample it.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

# Repeating data beyond ~16 epochs adds next to nothing (Muennighoff et al. 2023, "Scaling Data-Constrained Language
# Models"); 100 copies leaves room and stops a typo such as 1e308 before an endless pack.
MAX_WEIGHT = 100.0


class MixtureError(ValueError):
    """A malformed `--mix` specification."""


def parse_mix(spec: str | None) -> dict[str, float]:
    """Parse `web=1,academic=2.5` into {"web": 1.0, "academic": 2.5}; an empty spec means no reweighting."""
    weights: dict[str, float] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise MixtureError(f"mixture item {item!r} is not NAME=WEIGHT")
        try:
            weight = float(value)
        except ValueError:
            raise MixtureError(f"mixture weight for {name!r} is not a number: {value!r}") from None
        if not 0 <= weight <= MAX_WEIGHT:  # NaN fails this too
            raise MixtureError(f"mixture weight for {name!r} must be a finite number >= 0 and <= {MAX_WEIGHT:g}, "
                              f"got {value!r}")
        if name in weights:
            raise MixtureError(f"mixture names {name!r} twice")
        weights[name] = weight
    return weights


def unit_hash(key: str, seed: int, purpose: str) -> float:
    """A uniform number in [0, 1) that depends only on (purpose, seed, key): the deterministic coin of this module."""
    digest = hashlib.blake2b(f"{purpose}\0{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def weight_for(mix: Mapping[str, float], source: str, kind: str) -> float:
    """A source name overrides its kind; anything the mix does not name keeps weight 1."""
    if source in mix:
        return mix[source]
    return mix.get(kind, 1.0)


def copies(doc_id: str, weight: float, seed: int) -> int:
    """How many times a document appears in the packed output under `weight`."""
    whole = math.floor(weight)
    return whole + (1 if unit_hash(doc_id, seed, "mix") < weight - whole else 0)


# One copy of a document: (input id, copy number: 0 for the document itself, k for its k-th mixture repeat).
CopyKey = tuple[str, int]


def copy_key(doc_id: str, copy: int) -> CopyKey:
    """The unique key of one copy. A pair, not a string: `id#k` for repeats was also the id of a document whose
    id holds `#k` (any Parquet can be packed), so the shards' provenance named two documents alike."""
    return doc_id, copy


def mixture_report(mix: Mapping[str, float], tally: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Target vs realized shares per mixture group (source if named in the mix, otherwise kind).

    `tally[group]` holds `weight`, `input_tokens` and `output_tokens`. The target share of a group is
    weight * input_tokens normalized over all groups; the realized share is its share of the output tokens.
    """
    target_total = sum(t["weight"] * t["input_tokens"] for t in tally.values())
    output_total = sum(t["output_tokens"] for t in tally.values())
    groups = {}
    for name in sorted(tally):
        t = tally[name]
        groups[name] = {
            "weight": t["weight"],
            "input_tokens": t["input_tokens"],
            "output_tokens": t["output_tokens"],
            "realized_weight": t["output_tokens"] / t["input_tokens"] if t["input_tokens"] else None,
            "target_share": t["weight"] * t["input_tokens"] / target_total if target_total else 0.0,
            "realized_share": t["output_tokens"] / output_total if output_total else 0.0,
        }
    unused = sorted(set(mix) - set(tally))
    return {"spec": dict(sorted(mix.items())), "groups": groups, "unmatched_names": unused}


def mixture_group(mix: Mapping[str, float], source: str, kind: str) -> str:
    """The name a document is tallied under in the mixture report."""
    return source if source in mix else kind


def group_of(key: CopyKey, n_groups: int, seed: int) -> int:
    """The packing group of a document copy: a hash, so membership never depends on worker count. The hashed
    text may be the same for two keys (`a` copy 1, and `a#1`): that only puts them in one group, as any two
    keys may be; they stay two records there."""
    doc_id, copy = key
    return int(unit_hash(doc_id if copy == 0 else f"{doc_id}#{copy}", seed, "group") * n_groups)
