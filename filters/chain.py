"""FilterChain: line cleaning, one annotation pass, named threshold rules in config order, PII masking.

Constructed once per worker from the plain `filters:` config mapping (models and automata are loaded
from their paths here, never pickled). Texts arrive normalized and past the language gate.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from filters.config import Plan, resolve
from filters.hosts import HostBlocklist, UrlRules, host_of
from filters.lines import FooterTrimmer, drop_non_japanese_lines
from filters.mojibake import mojibake_stats
from filters.ngwords import BUILTIN_LISTS, NgWordMatcher
from filters.pii import PiiMasker
from filters.rules import rejects
from filters.textstats import char_ngram_stats, char_stats, class_counts, line_stats, llmjp_stats

# Families in computation order; `ngwords` needs `japanese_chars` from `chars`.
FAMILY_ORDER = ("url", "mojibake", "chars", "char_ngrams", "lines", "llmjp", "ngwords", "words", "quality")


@dataclass
class FilterResult:
    text: str
    reject_reason: str | None
    stats: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    quality: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


class FilterChain:
    def __init__(self, cfg: Mapping[str, Any] | None) -> None:
        self.plan: Plan = resolve(cfg)
        sec = self.plan.sections
        families = {r.spec.family for r in self.plan.rules}
        ng = sec["ng_words"]
        self.ng: NgWordMatcher | None = None
        if "ngwords" in families:
            lists = {name: BUILTIN_LISTS[name] for name in self._ng_lists(ng.get("lists", list(BUILTIN_LISTS)))}
            lists.update(ng.get("extra_lists") or {})
            self.ng = NgWordMatcher(lists, int(ng.get("boundary_max_len", 2)))
        hosts = sec["hosts"]
        try:
            self.hosts = HostBlocklist(hosts.get("blocklists") or (), hosts.get("categories") or (),
                                       hosts.get("patterns") or ())
        except OSError as exc:
            from filters.config import FilterConfigError

            raise FilterConfigError(f"filters.hosts.blocklists: {exc}") from None
        self.urls = UrlRules(hosts.get("url_substrings") or ())
        footer = sec["line_cleaning"].get("footer") or {}
        self.footer = FooterTrimmer(int(footer.get("window", 10)), float(footer.get("keyword_fraction", 0.3)),
                                    footer.get("keywords")) if footer.get("enabled", False) else None
        self.nonja = sec["line_cleaning"].get("non_japanese_lines") or {}
        pii = sec["pii"]
        self.pii = PiiMasker(pii.get("kinds", PiiMasker.KINDS)) if pii.get("enabled", False) else None
        self.quality_model = None
        if "quality" in families:
            from filters.quality import QualityModel

            self.quality_model = QualityModel(sec["quality"]["model"], int(sec["quality"].get("max_chars", 20_000)))
        # Only the n-gram sizes some rule reads are counted (each size is a full pass over the text).
        ngram_stats = {r.spec.stat for r in self.plan.rules if r.spec.family == "char_ngrams"}
        self._top_sizes = [n for n in (2, 3, 4) if f"top_{n}gram_char_fraction" in ngram_stats]
        self._dup_sizes = [n for n in range(5, 11) if f"dup_{n}gram_char_fraction" in ngram_stats]
        self._family_fn: dict[str, Callable[[str, str | None, dict[str, float]], dict[str, float]]] = {
            "url": self._url_stats,
            "mojibake": lambda t, u, s: mojibake_stats(t),
            "chars": lambda t, u, s: char_stats(t),
            "char_ngrams": lambda t, u, s: char_ngram_stats(t, self._top_sizes, self._dup_sizes),
            "lines": lambda t, u, s: line_stats(t),
            "llmjp": lambda t, u, s: llmjp_stats(t),
            "ngwords": lambda t, u, s: self.ng.stats(t, s.get("japanese_chars", 0.0)),
            "words": self._word_stats,
            "quality": lambda t, u, s: {"quality_score": self.quality_model.score(t)},
        }

    @staticmethod
    def _ng_lists(names: Any) -> list[str]:
        from filters.config import str_list

        return str_list(names, "ng_words.lists", tuple(BUILTIN_LISTS))

    def _url_stats(self, text: str, url: str | None, stats: dict[str, float]) -> dict[str, float]:
        return {"host_blocked": float(self.hosts.blocked(host_of(url))), "url_blocked": float(self.urls.blocked(url))}

    @staticmethod
    def _word_stats(text: str, url: str | None, stats: dict[str, float]) -> dict[str, float]:
        from filters.wordstats import word_stats

        return word_stats(text)

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
        kinds = self.nonja.get("kinds")
        if self.nonja.get("enabled", False) and (kinds is None or kind in kinds):
            counts = class_counts(text)
            ja = counts["h"] + counts["k"] + counts["c"] + counts["p"]
            if text and ja / len(text) >= float(self.nonja.get("min_japanese_fraction", 0.3)):
                lines, removed = drop_non_japanese_lines(lines)
                if removed:
                    meta["non_japanese_lines_removed"] = removed
        return "\n".join(lines)

    def __call__(self, text: str, *, url: str | None, kind: str) -> FilterResult:
        if not self.plan.enabled:
            return FilterResult(text, None)
        timings: dict[str, float] = {}
        meta: dict[str, Any] = {}
        t = time.perf_counter()
        text = self._clean_lines(text, kind, meta)
        now = time.perf_counter()
        timings["line_cleaning"], t = now - t, now
        stats: dict[str, float] = {}
        for family in self._families_for(kind):
            stats.update(self._family_fn[family](text, url, stats))
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
