"""Validation of the `filters:` config mapping, overlaid on a preset, into a resolved plan.

Every value is checked whether or not its part is switched on (a typo in a switched-off part is still a
typo, and switching it on later must not be the moment it surfaces). Every error is one line starting
with the dotted key (`filters.rules.min_chars.threshold: ...`) so the CLI can print it without a
traceback. Files are checked when `filters.chain` loads them.
"""
from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from filters.ngwords import BUILTIN_LISTS
from filters.pii import PiiMasker
from filters.rules import PRESETS, RULES, RuleSpec

KINDS = ("academic", "government", "web", "reference")
RULE_KEYS = ("enabled", "threshold", "kinds")


class FilterConfigError(ValueError):
    """A bad `filters:` config; the message starts with the dotted key."""


@dataclass(frozen=True)
class ActiveRule:
    spec: RuleSpec
    threshold: Any
    kinds: frozenset[str] | None

    def applies(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


@dataclass
class Plan:
    enabled: bool
    preset: str
    rules: list[ActiveRule]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fail(key: str, msg: str) -> FilterConfigError:
    return FilterConfigError(f"filters.{key}: {msg}" if key else f"filters: {msg}")


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(key, f"expected a mapping, got {value!r}")
    return dict(value)


def _check_keys(value: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
    for k in value:
        if k not in allowed:
            raise _fail(f"{key}.{k}" if key else str(k), f"unknown key; known keys: {', '.join(allowed)}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(value: Any, key: str, high: float = math.inf) -> float:
    """A finite number in [0, high]: every number here is a count, length, rate or fraction, and NaN
    compares false with everything (a NaN threshold rejects all documents or none, silently)."""
    if not is_number(value):
        raise _fail(key, f"expected a number, got {value!r}")
    if not (math.isfinite(value) and 0 <= value <= high):
        bounds = f"in [0, {high:g}]" if math.isfinite(high) else ">= 0"
        raise _fail(key, f"expected a finite number {bounds}, got {value!r}")
    return value


fraction = partial(number, high=1.0)


def integer(value: Any, key: str, least: int, most: int | None = None) -> int:
    """A whole number in [least, most] (int() would truncate 2.9 to 2 silently)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least or (most is not None and value > most):
        bounds = f">= {least}" if most is None else f"in [{least}, {most}]"
        raise _fail(key, f"expected an integer {bounds}, got {value!r}")
    return value


def boolean(value: Any, key: str) -> bool:
    """Only true/false: a string such as "no" is truthy and would switch the part on."""
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}")
    return value


def _list(value: Any, key: str, what: str) -> list[Any]:
    """A list, never a string (iterating "*.5ch.net" gives the entry "*", which matches every host)."""
    if not isinstance(value, list | tuple):
        raise _fail(key, f"expected a list of {what}, got {value!r}")
    return list(value)


def str_list(value: Any, key: str, choices: tuple[str, ...] | None = None) -> list[str]:
    items = _list(value, key, "non-empty strings")
    for v in items:
        if not isinstance(v, str) or not v:
            raise _fail(key, f"expected a list of non-empty strings, got {value!r}")
        if choices is not None and v not in choices:
            raise _fail(key, f"unknown value {v!r}; expected one of {', '.join(choices)}")
    return items


def path(value: Any, key: str) -> str:
    """A non-empty path string (open() takes an int as a file descriptor: `keywords: 2` closed stderr)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise _fail(key, f"expected a non-empty path, got {value!r}")
    return value


def path_list(value: Any, key: str) -> list[str]:
    return [path(v, f"{key}[{i}]") for i, v in enumerate(_list(value, key, "paths"))]


def path_map(value: Any, key: str) -> dict[str, str]:
    """`name: PATH` pairs; the name becomes a statistic's name (`ng_<name>_hits`)."""
    if not isinstance(value, Mapping):
        raise _fail(key, f"expected a mapping of name: path, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not name:
            raise _fail(key, f"expected names that are non-empty strings, got {name!r}")
    return {name: path(p, f"{key}.{name}") for name, p in value.items()}


# A section's fields: key -> (check(value, dotted key), default when absent; None = not set).
Fields = dict[str, tuple[Callable[[Any, str], Any], Any]]


def _fields(raw: Any, key: str, fields: Fields) -> dict[str, Any]:
    """Check every given key of a section (unknown keys refused) and fill in the defaults."""
    raw = _mapping(raw, key)
    _check_keys(raw, tuple(fields), key)
    return {name: check(raw[name], f"{key}.{name}") if name in raw else default
            for name, (check, default) in fields.items()}


def _part(fields: Fields) -> tuple[Callable[[Any, str], Any], dict[str, Any]]:
    """A nested mapping (line_cleaning.footer) as one field of its section."""
    return partial(_fields, fields=fields), {name: default for name, (_, default) in fields.items()}


def _kinds(value: Any, key: str) -> list[str]:
    """Source kinds a rule or cleaning step applies to; `[]` (no document at all) is refused, not taken."""
    kinds = str_list(value, key, choices=KINDS)
    if not kinds:
        raise _fail(key, "an empty list applies it to no document; to turn it off, set enabled: false")
    return kinds


_FOOTER: Fields = {"enabled": (boolean, False), "window": (partial(integer, least=1), 10),
                   "keyword_fraction": (fraction, 0.3), "keywords": (path, None)}
_NON_JAPANESE: Fields = {"enabled": (boolean, False), "min_japanese_fraction": (fraction, 0.3), "kinds": (_kinds, None)}
SECTIONS: dict[str, Fields] = {
    "line_cleaning": {"footer": _part(_FOOTER), "non_japanese_lines": _part(_NON_JAPANESE)},
    "pii": {"enabled": (boolean, False), "kinds": (partial(str_list, choices=PiiMasker.KINDS), PiiMasker.KINDS)},
    "ng_words": {"lists": (partial(str_list, choices=tuple(BUILTIN_LISTS)), tuple(BUILTIN_LISTS)),
                 "extra_lists": (path_map, {}), "boundary_max_len": (partial(integer, least=0), 2)},
    "hosts": {"blocklists": (path_list, ()), "categories": (str_list, ()), "patterns": (str_list, ()),
              "url_substrings": (str_list, ())},
    "quality": {"model": (path, None), "threshold": (fraction, None), "max_chars": (partial(integer, least=1), 20_000)},
    # read by pipeline/site_lines.py; a line in one page is not site boilerplate, hence min_docs >= 2
    "site_lines": {"enabled": (boolean, False), "min_docs": (partial(integer, least=2), 5),
                   "fanout": (partial(integer, least=1, most=4096), 16)},  # partial sums per hot line
}
TOP_KEYS = ("enabled", "preset", "rules", *SECTIONS)


def section(name: str, raw: Any) -> dict[str, Any]:
    """One checked section with its defaults filled in (`SiteLines` reads `site_lines` this way)."""
    return _fields(raw, name, SECTIONS[name])


def _overlay(base: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """The user's keys over the preset's; a mapping in both (line_cleaning.footer) is overlaid key by key."""
    out = dict(base)
    for k, v in user.items():
        nested = isinstance(base.get(k), Mapping) and (v is None or isinstance(v, Mapping))
        out[k] = {**base[k], **(v or {})} if nested else v
    return out


def _preset(value: Any) -> str:
    if not isinstance(value, str) or (value != "none" and value not in PRESETS):
        raise _fail("preset", f"unknown preset {value!r}; expected one of {', '.join([*PRESETS, 'none'])}")
    return value


def _threshold(spec: RuleSpec, value: Any, key: str) -> Any:
    if spec.op == "flag":
        if value is not None:
            raise _fail(key, "this rule is a yes/no flag and takes no threshold")
        return None
    if spec.op == "window":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _fail(key, f"expected [low, high], got {value!r}")
        low, high = (number(v, key, spec.upper) for v in value)
        if low > high:
            raise _fail(key, f"expected [low, high] with low <= high, got {value!r}")
        return (low, high)
    return number(value, key, spec.upper)


def _rule_params(name: str, raw: Any) -> dict[str, Any]:
    """Normalise the shorthands `name: false`, `name: 0.3`, `name: [lo, hi]` to a mapping."""
    if isinstance(raw, bool):
        return {"enabled": raw}
    if is_number(raw) or isinstance(raw, list):
        return {"threshold": raw}
    params = _mapping(raw, f"rules.{name}")
    _check_keys(params, RULE_KEYS, f"rules.{name}")
    return params


def _merge_rules(base: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    merged = {name: _rule_params(name, p) for name, p in base.items()}
    for name, raw in user.items():
        if name not in RULES:
            raise _fail(f"rules.{name}", f"unknown rule; known rules: {', '.join(RULES)}")
        merged.setdefault(name, {}).update(_rule_params(name, raw))
    return merged


def _add_quality_rule(rules: dict[str, dict[str, Any]], quality: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """`quality.model` adds the `quality` rule and `quality.threshold` is its threshold; without a model
    the other quality keys would be ignored silently."""
    if quality["model"] is None:
        if given:
            raise _fail("quality.model", f"missing; quality.{next(iter(given))} has no model to apply to")
        return
    params = rules.setdefault("quality", {})
    params.setdefault("enabled", True)
    if quality["threshold"] is not None:
        params["threshold"] = quality["threshold"]


def _rules(merged: Mapping[str, dict[str, Any]]) -> list[ActiveRule]:
    """The enabled rules in order; a disabled rule's values are checked too."""
    active: list[ActiveRule] = []
    for name, params in merged.items():
        spec = RULES[name]
        enabled = boolean(params.get("enabled", True), f"rules.{name}.enabled")
        threshold = _threshold(spec, params.get("threshold", spec.default), f"rules.{name}.threshold")
        kinds = params.get("kinds")
        kinds = frozenset(_kinds(kinds, f"rules.{name}.kinds")) if kinds is not None else None
        if enabled:
            active.append(ActiveRule(spec, threshold, kinds))
    return active


def _check_ng_lists(ng: Mapping[str, Any], active: list[ActiveRule]) -> None:
    """An extra list named like a built-in one replaced it silently; a rule counting a list that is not loaded
    (`ad_keywords` with the default preset's lists, `preset: llmjp` with `lists: [adult]`) failed mid-run with a
    KeyError."""
    if clash := sorted(set(ng["extra_lists"]) & set(BUILTIN_LISTS)):
        raise _fail(f"ng_words.extra_lists.{clash[0]}", "is the name of a built-in list; give the extra list "
                    "another name (its counts are ng_<name>_hits)")
    loaded = {*ng["lists"], *ng["extra_lists"]}
    for rule in active:
        stat = rule.spec.stat
        if stat.startswith("ng_") and stat.endswith("_hits") and (name := stat[3:-5]) not in loaded:
            raise _fail(f"rules.{rule.spec.name}", f"counts the {name!r} NG-word list, which ng_words.lists does "
                        f"not load; add {name!r} there or disable the rule")


def resolve(cfg: Mapping[str, Any] | None) -> Plan:
    """Overlay the user's `filters:` mapping on its preset and check every value, used or not."""
    cfg = _mapping(cfg, "")
    _check_keys(cfg, TOP_KEYS, "")
    enabled = boolean(cfg.get("enabled", True), "enabled")
    preset = _preset(cfg.get("preset", "default"))
    base = copy.deepcopy(PRESETS.get(preset, {}))
    sections = {name: section(name, _overlay(_mapping(base.get(name), name), _mapping(cfg.get(name), name)))
                for name in SECTIONS}
    rules = _merge_rules(base.get("rules", {}), _mapping(cfg.get("rules"), "rules"))
    _add_quality_rule(rules, sections["quality"], _mapping(cfg.get("quality"), "quality"))
    active = _rules(rules)
    if any(r.spec.name == "quality" for r in active) and sections["quality"]["model"] is None:
        raise _fail("quality.model", "the quality rule is enabled but no model path is configured")
    _check_ng_lists(sections["ng_words"], active)
    return Plan(enabled=enabled, preset=preset, rules=active, sections=sections)
