"""FilterChain: line cleaning, one annotation pass, named threshold rules in config order, PII masking.

Constructed once per worker from the plain `filters:` config mapping (models and automata are loaded
from their paths here, never pickled). Texts arrive normalized and past the language gate.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from filters.config import FilterConfigError, Plan, resolve
from filters.hosts import HostBlocklist, UrlRules, host_of
from filters.lines import FooterTrimmer, drop_non_japanese_lines
from filters.mojibake import mojibake_stats
from filters.ngwords import BUILTIN_LISTS, NgWordMatcher
from filters.pii import PiiMasker
from filters.quality import QualityModel, check_model
from filters.rules import rejects
from filters.textstats import char_ngram_stats, char_stats, class_counts, line_stats, llmjp_stats

T = TypeVar("T")
# Families in computation order; `ngwords` needs `japanese_chars` from `chars`.
FAMILY_ORDER = ("url", "mojibake", "chars", "char_ngrams", "lines", "llmjp", "ngwords", "words", "quality")


class _Input(NamedTuple):
    """What a statistics family may read about the document (one value per call: no state on the chain)."""

    text: str
    url: str | None
    folded_mojibake: int  # mojibake signature characters normalization rewrote (see filters.mojibake)


Family = Callable[[_Input, dict[str, float]], dict[str, float]]


@dataclass
class FilterResult:
    text: str
    reject_reason: str | None
    stats: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    quality: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _load(key: str, load: Callable[[], T]) -> T:
    """Run a loader; a file it cannot use (missing, a folder, not UTF-8, not a model) is a config error."""
    try:
        return load()
    except (OSError, ValueError) as exc:
        raise FilterConfigError(f"filters.{key}: {exc}") from None


class FilterChain:
    def __init__(self, cfg: Mapping[str, Any] | None) -> None:
        self.plan: Plan = resolve(cfg)
        sec = self.plan.sections
        families = {r.spec.family for r in self.plan.rules}
        # Every configured file is loaded, used or not, so a bad path is a config error before any run.
        ng = sec["ng_words"]
        lists = {**{name: BUILTIN_LISTS[name] for name in ng["lists"]}, **ng["extra_lists"]}
        self.ng = _load("ng_words.extra_lists", lambda: NgWordMatcher(lists, ng["boundary_max_len"]))
        self.hosts = self._hosts(sec["hosts"])
        self.urls = UrlRules(sec["hosts"]["url_substrings"])
        footer = sec["line_cleaning"]["footer"]
        trimmer = _load("line_cleaning.footer.keywords",
                        lambda: FooterTrimmer(footer["window"], footer["keyword_fraction"], footer["keywords"]))
        self.footer = trimmer if footer["enabled"] else None
        self.nonja = sec["line_cleaning"]["non_japanese_lines"]
        pii = sec["pii"]
        self.pii = PiiMasker(pii["kinds"]) if pii["enabled"] else None
        quality = sec["quality"]
        self.quality_model: QualityModel | None = None
        if "quality" in families and self.plan.enabled:
            self.quality_model = _load("quality.model", lambda: QualityModel(quality["model"], quality["max_chars"]))
        elif quality["model"] is not None:
            _load("quality.model", lambda: check_model(quality["model"]))
        # Only the n-gram sizes some rule reads are counted (each size is a full pass over the text).
        ngram_stats = {r.spec.stat for r in self.plan.rules if r.spec.family == "char_ngrams"}
        self._top_sizes = [n for n in (2, 3, 4) if f"top_{n}gram_char_fraction" in ngram_stats]
        self._dup_sizes = [n for n in range(5, 11) if f"dup_{n}gram_char_fraction" in ngram_stats]
        self._family_fn: dict[str, Family] = {
            "url": self._url_stats,
            "mojibake": lambda d, s: mojibake_stats(d.text, d.folded_mojibake),
            "chars": lambda d, s: char_stats(d.text),
            "char_ngrams": lambda d, s: char_ngram_stats(d.text, self._top_sizes, self._dup_sizes),
            "lines": lambda d, s: line_stats(d.text),
            "llmjp": lambda d, s: llmjp_stats(d.text),
            "ngwords": lambda d, s: self.ng.stats(d.text, s.get("japanese_chars", 0.0)),
            "words": self._word_stats,
            "quality": lambda d, s: {"quality_score": self.quality_model.score(d.text)},
        }

    @staticmethod
    def _hosts(hosts: Mapping[str, Any]) -> HostBlocklist:
        if hosts["categories"] and not any(Path(p).is_dir() for p in hosts["blocklists"]):
            raise FilterConfigError("filters.hosts.categories: no UT1 folder in hosts.blocklists to take them from")
        return _load("hosts.blocklists",
                     lambda: HostBlocklist(hosts["blocklists"], hosts["categories"], hosts["patterns"]))

    def _url_stats(self, doc: _Input, stats: dict[str, float]) -> dict[str, float]:
        return {"host_blocked": float(self.hosts.blocked(host_of(doc.url))),
                "url_blocked": float(self.urls.blocked(doc.url))}

    @staticmethod
    def _word_stats(doc: _Input, stats: dict[str, float]) -> dict[str, float]:
        from filters.wordstats import word_stats

        return word_stats(doc.text)

    def _families_for(self, kind: str) -> list[str]:
        needed = {r.spec.family for r in self.plan.rules if r.applies(kind)}
        if "ngwords" in needed:
            needed.add("chars")
        if self.quality_model is not None:
            needed.add("quality")
        return [f for f in FAMILY_ORDER if f in needed]

    def _clean_lines(self, text: str, kind: str, meta: dict[str, Any]) -> str:
        lines = text.split("\n")
        if self.footer is not None:
            lines, removed = self.footer(lines)
            if removed:
                meta["footer_lines_removed"] = removed
        kinds = self.nonja["kinds"]
        if self.nonja["enabled"] and (kinds is None or kind in kinds):
            counts = class_counts(text)
            ja = counts["h"] + counts["k"] + counts["c"] + counts["p"]
            if text and ja / len(text) >= self.nonja["min_japanese_fraction"]:
                lines, removed = drop_non_japanese_lines(lines)
                if removed:
                    meta["non_japanese_lines_removed"] = removed
        return "\n".join(lines)

    def on_document(self, doc: Mapping[str, Any]) -> FilterResult:
        """The chain on a prepared pipeline document (text, url, kind, meta): what curate, `filters eval` and the
        bench all call, so each passes `meta.mojibake_folded`."""
        folded = (doc.get("meta") or {}).get("mojibake_folded", 0)
        return self(doc["text"], url=doc.get("url"), kind=doc["kind"], folded_mojibake=folded)

    def __call__(self, text: str, *, url: str | None, kind: str, folded_mojibake: int = 0) -> FilterResult:
        """`folded_mojibake`: mojibake signature characters normalization rewrote (see filters.mojibake)."""
        if not self.plan.enabled:
            return FilterResult(text, None)
        timings: dict[str, float] = {}
        meta: dict[str, Any] = {}
        t = time.perf_counter()
        text = self._clean_lines(text, kind, meta)
        now = time.perf_counter()
        timings["line_cleaning"], t = now - t, now
        stats: dict[str, float] = {}
        doc = _Input(text, url, folded_mojibake)
        for family in self._families_for(kind):
            stats.update(self._family_fn[family](doc, stats))
            now = time.perf_counter()
            timings[family], t = now - t, now
        reason = "empty_after_cleaning" if not text.strip() else None
        if reason is None:
            for rule in self.plan.rules:
                if rule.applies(kind) and rejects(rule.spec, rule.threshold, stats[rule.spec.stat]):
                    reason = rule.spec.name
                    break
        if self.pii is not None:
            text, counts = self.pii(text)
            found = {k: v for k, v in counts.items() if v}
            if found:
                meta["pii"] = found
            now = time.perf_counter()
            timings["pii"] = now - t
        quality = stats.get("quality_score")
        return FilterResult(text, reason, stats, meta, quality, timings)
