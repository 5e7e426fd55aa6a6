"""Validation of the `filters:` config mapping, overlaid on a preset, into a resolved plan.

Every error is one line starting with the dotted key (`filters.rules.min_chars.threshold: ...`) so the
CLI can print it without a traceback.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from filters.rules import PRESETS, RULES, RuleSpec

KINDS = ("academic", "government", "web", "reference")
TOP_KEYS = ("enabled", "preset", "rules", "line_cleaning", "pii", "ng_words", "hosts", "quality", "site_lines")
SECTION_KEYS = {
    "line_cleaning": ("footer", "non_japanese_lines"),
    "pii": ("enabled", "kinds"),
    "ng_words": ("lists", "extra_lists", "boundary_max_len"),
    "hosts": ("blocklists", "categories", "patterns", "url_substrings"),
    "quality": ("model", "threshold", "max_chars"),
    "site_lines": ("enabled", "min_docs", "fanout"),  # read by pipeline/site_lines.py
}
FOOTER_KEYS = ("enabled", "window", "keyword_fraction", "keywords")
NONJA_KEYS = ("enabled", "min_japanese_fraction", "kinds")
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
    return FilterConfigError(f"filters.{key}: {msg}")


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


def number(value: Any, key: str) -> float:
    if not is_number(value):
        raise _fail(key, f"expected a number, got {value!r}")
    return value


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}")
    return value


def str_list(value: Any, key: str, choices: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _fail(key, f"expected a list of strings, got {value!r}")
    if choices is not None:
        for v in value:
            if v not in choices:
                raise _fail(key, f"unknown value {v!r}; expected one of {', '.join(choices)}")
    return list(value)


def _threshold(spec: RuleSpec, value: Any, key: str) -> Any:
    if spec.op == "flag":
        if value is not None:
            raise _fail(key, "this rule is a yes/no flag and takes no threshold")
        return None
    if spec.op == "window":
        if (not isinstance(value, list | tuple) or len(value) != 2 or not all(is_number(v) for v in value)
                or value[0] > value[1]):
            raise _fail(key, f"expected [low, high] with low <= high, got {value!r}")
        return (value[0], value[1])
    return number(value, key)


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


def resolve(cfg: Mapping[str, Any] | None) -> Plan:
    """Overlay the user's `filters:` mapping on its preset and validate every value."""
    cfg = _mapping(cfg, "") if cfg is not None else {}
    _check_keys(cfg, TOP_KEYS, "")
    enabled = boolean(cfg.get("enabled", True), "enabled")
    preset = cfg.get("preset", "default")
    if preset != "none" and preset not in PRESETS:
        raise _fail("preset", f"unknown preset {preset!r}; expected one of {', '.join([*PRESETS, 'none'])}")
    base = copy.deepcopy(PRESETS.get(preset, {}))
    rules_cfg = _merge_rules(base.get("rules", {}), _mapping(cfg.get("rules"), "rules"))
    if "quality" in cfg:  # `quality.threshold` is the threshold of the `quality` rule
        q = _mapping(cfg["quality"], "quality")
        _check_keys(q, SECTION_KEYS["quality"], "quality")
        if q.get("model"):
            params = rules_cfg.setdefault("quality", {})
            params.setdefault("enabled", True)
            if "threshold" in q:
                params["threshold"] = q["threshold"]
    active: list[ActiveRule] = []
    for name, params in rules_cfg.items():
        spec = RULES[name]
        if not boolean(params.get("enabled", True), f"rules.{name}.enabled"):
            continue
        threshold = _threshold(spec, params.get("threshold", spec.default), f"rules.{name}.threshold")
        kinds = params.get("kinds")
        kinds = frozenset(str_list(kinds, f"rules.{name}.kinds", KINDS)) if kinds is not None else None
        active.append(ActiveRule(spec, threshold, kinds))
    sections: dict[str, dict[str, Any]] = {}
    for section, keys in SECTION_KEYS.items():
        merged = _mapping(base.get(section), section)
        user = _mapping(cfg.get(section), section)
        _check_keys(user, keys, section)
        if section == "line_cleaning":
            for sub, subkeys in (("footer", FOOTER_KEYS), ("non_japanese_lines", NONJA_KEYS)):
                part = _mapping(merged.get(sub), f"{section}.{sub}")
                upd = _mapping(user.get(sub), f"{section}.{sub}")
                _check_keys(upd, subkeys, f"{section}.{sub}")
                part.update(upd)
                merged[sub] = part
        else:
            merged.update(user)
        sections[section] = merged
    if any(r.spec.name == "quality" for r in active) and not sections["quality"].get("model"):
        raise _fail("quality.model", "the quality rule is enabled but no model path is configured")
    return Plan(enabled=enabled, preset=preset, rules=active, sections=sections)
