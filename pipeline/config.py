"""The curate config (YAML): validated up front so every mistake is one line naming its key."""
from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from apache_beam.io.filesystems import FileSystems

from filters.lang import LanguageGate
from filters.normalize import Normalizer
from pipeline.charset import NOT_TEXT_CODECS
from pipeline.dedup_near import parse_config as parse_near
from pipeline.errors import ConfigError
from pipeline.fsutil import match_files
from pipeline.sources import FORMATS, SourceConfig
from trainer_bridge.userpaths import not_regular

KINDS = ("government", "academic", "reference", "web")
DEFAULT_PRIORITY = KINDS
TOP_KEYS = ("sources", "normalize", "language", "limits", "filters", "dedup", "output")
SOURCE_KEYS = {"name", "kind", "format", "paths", "license", "text_field", "id_field", "url_field",
               "license_field", "text_split", "encoding", "max_record_bytes", "max_decompressed_bytes"}


@dataclass(frozen=True)
class CurateConfig:
    sources: tuple[SourceConfig, ...]
    normalize: Mapping[str, bool] = field(default_factory=dict)
    language: Mapping[str, Any] = field(default_factory=dict)
    max_chars: int = 1_000_000
    filters: Mapping[str, Any] = field(default_factory=lambda: {"enabled": False})
    exact_dedup: bool = True
    near_dedup: Mapping[str, Any] = field(default_factory=lambda: {"enabled": False})
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    # input bytes per output shard (the shard count depends on the input only). A worker holds one shard's
    # documents or candidate sets at a time: near dedup at 300k documents on 2 workers peaked at 712 / 986 /
    # 1,936 MB per worker with 16 / 64 / 256 MB shards, in 603 / 550 / 555 s (docs/dedup.md)
    shard_bytes: int = 64 << 20
    min_shards: int = 4  # so the write step runs in parallel even for small inputs
    samples_per_reason: int = 50
    raw: Mapping[str, Any] = field(default_factory=dict)  # the YAML as loaded, echoed into stats.json


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _check_keys(value: Mapping[str, Any], known: set[str] | tuple[str, ...], key: str) -> None:
    for k in value:
        if k not in known:
            raise ConfigError(f"{key}.{k}: unknown key; known keys: {', '.join(sorted(known))}")


def _kind(value: Any) -> str:
    """How an error names a wrong value: `got an empty list` says more than `got list`."""
    if value is None:
        return "null"
    if value in ("", []):
        return f"an empty {'string' if value == '' else 'list'}"
    return type(value).__name__


def _paths(value: Any, key: str) -> list[str]:
    """A source's paths or globs: one string or a non-empty list of them. An empty string would name the
    config's own folder."""
    if isinstance(value, str) and value:
        return [value]
    expected = f"{key}: expected a non-empty list of path strings, got"
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{expected} {_kind(value)}")
    for j, path in enumerate(value):
        if not (isinstance(path, str) and path):
            raise ConfigError(f"{expected} {_kind(path)} at [{j}]")
    return list(value)


def _resolve(path: str, base_dir: str) -> str:
    """Relative local paths are relative to the config file, and made absolute: a path-based source_id (XML
    records, `id_field: null`) and so a document's id, and which copy dedup keeps, depended on the folder
    `jcorpus` ran in. URLs (gs://, s3://, memory://) pass through, and so does an empty path, for its check
    to refuse (joined, it named the config's own folder)."""
    if "://" in path or not path.strip():
        return path
    return os.path.normpath(os.path.join(os.path.abspath(base_dir), path))


def _source(raw: Any, i: int, base_dir: str) -> SourceConfig:
    key = f"sources[{i}]"
    raw = _mapping(raw, key)
    _check_keys(raw, SOURCE_KEYS, key)
    for required in ("name", "kind", "format", "paths", "license"):
        if required not in raw:
            raise ConfigError(f"{key}.{required}: missing")
    if raw["kind"] not in KINDS:
        raise ConfigError(f"{key}.kind: {raw['kind']!r} is not one of {', '.join(KINDS)}")
    if raw["format"] not in FORMATS:
        raise ConfigError(f"{key}.format: {raw['format']!r} is not one of {', '.join(FORMATS)}")
    paths = _paths(raw["paths"], f"{key}.paths")
    for name in ("name", "license"):
        if not isinstance(raw[name], str) or not raw[name]:
            raise ConfigError(f"{key}.{name}: expected a non-empty string")
    if raw.get("text_split", "file") not in ("file", "blank_line"):
        raise ConfigError(f"{key}.text_split: expected 'file' or 'blank_line'")
    for name in ("text_field", "id_field", "url_field", "license_field"):
        value = raw.get(name, "x")
        if not (isinstance(value, str) and value) and not (value is None and name != "text_field"):
            raise ConfigError(f"{key}.{name}: expected a field name{'' if name == 'text_field' else ' or null'}, "
                              f"got {value!r}")
    encoding = raw.get("encoding", "utf-8")
    try:
        lines_split = (isinstance(encoding, str) and "a\n".encode(encoding) == b"a\n"  # blank_line cuts bytes at \n
                       and codecs.lookup(encoding).name not in NOT_TEXT_CODECS)
    except (LookupError, UnicodeError):
        lines_split = False
    if not lines_split:
        raise ConfigError(f"{key}.encoding: expected an ASCII-compatible Python codec (utf-8, cp932, euc_jp, "
                          f"iso2022_jp...), got {encoding!r}")
    raw["encoding"] = codecs.lookup(encoding).name  # canonical, so readers compare names, never look them up
    for name in ("max_record_bytes", "max_decompressed_bytes"):
        _int_at_least(raw, name, 1, key)
    raw["paths"] = tuple(_resolve(p, base_dir) for p in paths)
    return SourceConfig(**raw)


def _filters(cfg: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """Resolve the files the filters load (relative to the config) and check the block before any run."""
    from filters import FilterConfigError
    from filters.chain import FilterChain

    cfg = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}
    quality, hosts, ngw = cfg.get("quality"), cfg.get("hosts"), cfg.get("ng_words")
    if isinstance(quality, dict) and isinstance(quality.get("model"), str):
        quality["model"] = _resolve(quality["model"], base_dir)
    if isinstance(hosts, dict) and isinstance(hosts.get("blocklists"), list):
        hosts["blocklists"] = [_resolve(p, base_dir) if isinstance(p, str) else p for p in hosts["blocklists"]]
    if isinstance(ngw, dict) and isinstance(ngw.get("extra_lists"), Mapping):
        ngw["extra_lists"] = {k: _resolve(p, base_dir) if isinstance(p, str) else p
                              for k, p in ngw["extra_lists"].items()}
    footer = (cfg.get("line_cleaning") or {}).get("footer") if isinstance(cfg.get("line_cleaning"), Mapping) else None
    if isinstance(footer, Mapping) and isinstance(footer.get("keywords"), str):
        cfg["line_cleaning"] = {**cfg["line_cleaning"], "footer": {**footer,
                                                                   "keywords": _resolve(footer["keywords"], base_dir)}}
    try:
        FilterChain(cfg)  # the whole block, switched off or not: a mistake there must not wait for the day it is on
    except FilterConfigError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def _int_at_least(block: dict[str, Any], key: str, least: int, where: str) -> None:
    """An optional integer setting (absent: the default applies)."""
    value = block.get(key, least)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{where}.{key}: expected an integer >= {least}, got {value!r}")


def _bool(block: dict[str, Any], key: str, where: str) -> bool:
    value = block.get(key, True)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def parse_config(data: Any, base_dir: str = ".") -> CurateConfig:
    data = _mapping(data, "config")
    _check_keys(data, TOP_KEYS, "config")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise ConfigError("sources: expected a non-empty list")
    parsed = tuple(_source(s, i, base_dir) for i, s in enumerate(sources))
    names = [s.name for s in parsed]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"sources: name {dup!r} is used twice")

    normalize = _mapping(data.get("normalize"), "normalize")
    language = _mapping(data.get("language"), "language")
    try:
        Normalizer(normalize)
        LanguageGate.from_config(language)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    limits = _mapping(data.get("limits"), "limits")
    _check_keys(limits, {"max_chars"}, "limits")
    max_chars = limits.get("max_chars", 1_000_000)
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars <= 0:
        raise ConfigError("limits.max_chars: expected a positive integer")

    filters = _filters(_mapping(data.get("filters"), "filters") or {"enabled": False}, base_dir)
    dedup = _mapping(data.get("dedup"), "dedup")
    _check_keys(dedup, {"enabled", "priority", "exact", "near"}, "dedup")
    dedup_on = _bool(dedup, "enabled", "dedup")
    priority = dedup.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, list | tuple) or sorted(map(str, priority)) != sorted(KINDS):
        raise ConfigError(f"dedup.priority: expected an ordering of {', '.join(KINDS)}")
    exact = _mapping(dedup.get("exact"), "dedup.exact")
    _check_keys(exact, {"enabled"}, "dedup.exact")
    near = _mapping(dedup.get("near"), "dedup.near")
    settings = sorted(near) if "enabled" not in near else []
    near.setdefault("enabled", False)
    params = parse_near(near)  # every key checked, also while near dedup is off (a misspelt key left it off silently)
    if settings:  # settings for a step that is off by default ran nothing, silently
        raise ConfigError("dedup.near.enabled: missing; near dedup is off unless `enabled: true` "
                          f"(set it, or `enabled: false` to keep {', '.join(settings)} for later)")
    if params.index_out:  # relative to the config, as paths are
        near["index_out"] = _resolve(params.index_out, base_dir)
    if params.index_in:
        near["index_in"] = [_resolve(p, base_dir) for p in params.index_in]
    if not dedup_on:
        near["enabled"] = False

    output = _mapping(data.get("output"), "output")
    _check_keys(output, {"shard_bytes", "min_shards", "samples_per_reason"}, "output")
    for k, least in (("shard_bytes", 1), ("min_shards", 1), ("samples_per_reason", 0)):
        _int_at_least(output, k, least, "output")

    return CurateConfig(
        sources=parsed, normalize=normalize, language=language, max_chars=max_chars, filters=filters,
        exact_dedup=dedup_on and _bool(exact, "enabled", "dedup.exact"), near_dedup=near, priority=tuple(priority),
        shard_bytes=output.get("shard_bytes", CurateConfig.shard_bytes),
        min_shards=output.get("min_shards", CurateConfig.min_shards),
        samples_per_reason=output.get("samples_per_reason", CurateConfig.samples_per_reason), raw=data,
    )


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last one, silently) and a key
    that is not a string (every key of the config is a name; a list or mapping key is not even hashable)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ConfigError(f"config: key {key!r} is not a string (line {line}, {type(key).__name__})")
            if key in seen:
                raise ConfigError(f"config: key {key!r} given twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What went wrong and where, on one line (`found character '\\t' that cannot start any token, line 2,
    column 1`): PyYAML's first line is often only the context (`while scanning for the next token`)."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not problem:
        return str(exc).splitlines()[0]
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def load_config(path: str) -> CurateConfig:
    try:
        with FileSystems.open(path) as fh:
            data = yaml.load(fh.read().decode("utf-8"), Loader=_StrictLoader)  # a SafeLoader
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {path} is not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {_yaml_problem(exc)}") from None
    base_dir = os.path.dirname(path) if "://" not in path else "."
    return parse_config(data, base_dir or ".")


def expand_files(cfg: CurateConfig) -> list[tuple[int, str, int]]:
    """(source index, path, size in bytes) for every input file, sorted; an empty glob is a config error."""
    files: list[tuple[int, str, int]] = []
    for i, src in enumerate(cfg.sources):
        matched: dict[str, int] = {}
        files_seen: set[str] = set()  # one file named twice (a symlink, another spelling) is read once
        for pattern in src.paths:
            try:
                found = match_files(pattern)
            except Exception as exc:  # a filesystem error (missing bucket, no credentials) is a config problem
                raise ConfigError(f"sources[{i}].paths: cannot list {pattern!r}: {str(exc).splitlines()[0]}") from None
            if not found:
                raise ConfigError(f"sources[{i}].paths: no file matches {pattern!r} (source {src.name!r})")
            for path, size in found.items():
                _check_input(path, f"sources[{i}].paths", src.name)
                real = path if "://" in path else os.path.realpath(path)
                if real not in files_seen:
                    files_seen.add(real)
                    matched[path] = size
        files.extend((i, p, size) for p, size in sorted(matched.items()))
    return files


def _check_input(path: str, key: str, source: str) -> None:
    """Refused before anything is read: a local name that is not UTF-8 crashed the graph's construction, a
    folder became a quarantined "document", a FIFO or a device hung the run, and a file the user may not read
    was a successful run of nothing."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a local name (surrogate escapes)
        raise ConfigError(f"{key}: the file name {path!r} is not UTF-8; rename it (source {source!r})") from None
    what = not_regular(path)
    if what:
        raise ConfigError(f"{key}: {path} is not a regular file ({what}; source {source!r})")
    if "://" not in path and os.path.exists(path) and not os.access(path, os.R_OK):  # a success of nothing
        raise ConfigError(f"{key}: {path} cannot be read (permission denied; source {source!r})")
