"""Named threshold rules over document statistics, and the presets that order and parameterise them.

A rule never computes anything: it reads one statistic (computed once by its family in
`filters.annotate`) and compares it with a threshold, so a rejected row's statistics are enough to
re-threshold later. Ops: `min` rejects stat < t, `max` rejects stat > t, `max_incl` rejects stat >= t,
`window` rejects stat outside [lo, hi], `flag` rejects stat >= 1 (no threshold).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleSpec:
    name: str
    stat: str
    op: str
    default: Any
    family: str
    origin: str

    @property
    def upper(self) -> float:
        """Largest meaningful threshold: 1 for a fraction or the quality probability, else unbounded."""
        return 1.0 if self.stat.endswith("_fraction") or self.stat == "quality_score" else math.inf


def _spec(name: str, stat: str, op: str, default: Any, family: str, origin: str) -> tuple[str, RuleSpec]:
    return name, RuleSpec(name, stat, op, default, family, origin)


RULES: dict[str, RuleSpec] = dict([
    # ours
    _spec("mojibake", "mojibake_fraction", "max", 0.02, "mojibake", "jcorpus"),
    _spec("host_blocklist", "host_blocked", "flag", None, "url", "swallow"),
    _spec("url_blocklist", "url_blocked", "flag", None, "url", "jcorpus"),
    _spec("max_short_line_fraction", "short_line_fraction", "max", 0.67, "lines", "fineweb"),
    _spec("max_fragment_char_fraction", "fragment_char_fraction", "max", 0.33, "lines", "jcorpus"),
    _spec("quality", "quality_score", "min", 0.2, "quality", "jcorpus"),
    # Swallow v1 (quality.py apply_v1, ngword.py)
    _spec("min_chars", "chars", "min", 400, "chars", "swallow"),
    _spec("min_japanese_chars", "japanese_chars", "min", 400, "chars", "swallow"),
    _spec("min_japanese_fraction", "japanese_fraction", "min", 0.5, "chars", "swallow"),
    _spec("min_hiragana_fraction", "hiragana_fraction", "min", 0.2, "chars", "swallow"),
    _spec("max_katakana_fraction", "katakana_fraction", "max", 0.5, "chars", "swallow"),
    _spec("avg_sentence_length", "avg_sentence_length", "window", (20, 90), "chars", "swallow"),
    _spec("max_sentence_length", "max_sentence_length", "max", 200, "chars", "swallow"),
    _spec("max_ellipsis_fraction", "ellipsis_fraction", "max", 0.2, "chars", "swallow"),
    _spec("dup_line_fraction", "dup_line_fraction", "max", 0.30, "chars", "swallow"),
    _spec("dup_sentence_fraction", "dup_sentence_fraction", "max", 0.30, "chars", "swallow"),
    _spec("dup_line_char_fraction", "dup_line_char_fraction", "max", 0.20, "chars", "swallow"),
    _spec("dup_sentence_char_fraction", "dup_sentence_char_fraction", "max", 0.20, "chars", "swallow"),
    *[_spec(f"top_{n}gram_char_fraction", f"top_{n}gram_char_fraction", "max", t, "char_ngrams", "swallow")
      for n, t in ((2, 0.20), (3, 0.18), (4, 0.16))],
    *[_spec(f"dup_{n}gram_char_fraction", f"dup_{n}gram_char_fraction", "max", t, "char_ngrams", "swallow")
      for n, t in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))],
    _spec("ng_word_fraction", "ng_word_fraction", "max_incl", 0.05, "ngwords", "swallow"),
    # llm-jp corpus v1 (HojiChar filters)
    _spec("head_kana", "head_kana_chars", "min", 1, "llmjp", "llmjp"),
    _spec("ad_keywords", "ng_ads_hits", "max", 10, "ngwords", "llmjp"),
    _spec("adult_keywords", "ng_adult_hits", "max", 3, "ngwords", "llmjp"),
    _spec("discrimination_keywords", "ng_discrimination_hits", "max", 3, "ngwords", "llmjp"),
    _spec("violence_keywords", "ng_violence_hits", "max", 3, "ngwords", "llmjp"),
    _spec("rare_kuten", "kuten_per_1k_chars", "min", 4.0, "chars", "llmjp"),
    _spec("compression_ratio", "compression_ratio", "window", (0.30, 0.70), "llmjp", "llmjp"),
    # FineWeb-2 jpn_Jpan (datatrove Gopher repetition / FineWeb quality / Gopher quality)
    _spec("gopher_dup_line_fraction", "gopher_dup_line_fraction", "max", 0.328, "lines", "fineweb2"),
    *[_spec(f"gopher_top_{n}gram", f"gopher_top_{n}gram_char_fraction", "max", t, "words", "fineweb2")
      for n, t in ((2, 0.239), (3, 0.196), (4, 0.172))],
    *[_spec(f"gopher_dup_{n}gram", f"gopher_dup_{n}gram_char_fraction", "max", t, "words", "fineweb2")
      for n, t in ((5, 0.243), (6, 0.225), (7, 0.207), (8, 0.19), (9, 0.175), (10, 0.159))],
    _spec("fineweb_line_punct", "line_punct_fraction", "min", 0.096, "lines", "fineweb2"),
    _spec("fineweb_char_dup", "line_char_dup_fraction", "max", 0.1, "lines", "fineweb2"),
    _spec("fineweb_list_ratio", "newlines_per_word", "max", 0.13, "words", "fineweb2"),
    _spec("gopher_min_words", "words", "min", 50, "words", "fineweb2"),
    _spec("gopher_max_words", "words", "max", 100_000, "words", "fineweb2"),
    _spec("gopher_avg_word_length", "avg_word_length", "window", (1, 6), "words", "fineweb2"),
    _spec("gopher_hash_ratio", "hash_per_word", "max", 0.1, "words", "fineweb2"),
    _spec("gopher_ellipsis_ratio", "ellipsis_per_word", "max", 0.1, "words", "fineweb2"),
    _spec("gopher_bullet_lines", "bullet_line_fraction", "max", 0.9, "words", "fineweb2"),
    _spec("gopher_end_ellipsis_lines", "end_ellipsis_line_fraction", "max", 0.3, "words", "fineweb2"),
    _spec("gopher_alpha_words", "alpha_word_fraction", "min", 0.759, "words", "fineweb2"),
    _spec("gopher_stop_words", "stop_words", "min", 2, "words", "fineweb2"),
])


def rejects(spec: RuleSpec, threshold: Any, value: float) -> bool:
    if spec.op == "min":
        return value < threshold
    if spec.op == "max":
        return value > threshold
    if spec.op == "max_incl":
        return value >= threshold
    if spec.op == "window":
        return value < threshold[0] or value > threshold[1]
    return value >= 1  # flag


_SWALLOW_ORDER = [
    "host_blocklist", "min_chars", "dup_line_fraction", "dup_sentence_fraction", "dup_line_char_fraction",
    "dup_sentence_char_fraction", "top_2gram_char_fraction", "top_3gram_char_fraction",
    "top_4gram_char_fraction", *[f"dup_{n}gram_char_fraction" for n in range(5, 11)],
    "min_hiragana_fraction", "max_katakana_fraction", "min_japanese_fraction", "min_japanese_chars",
    "avg_sentence_length", "max_sentence_length", "max_ellipsis_fraction", "ng_word_fraction",
]
_LLMJP_ORDER = ["head_kana", "ad_keywords", "adult_keywords", "discrimination_keywords", "violence_keywords",
                "rare_kuten", "compression_ratio"]
_FINEWEB2_ORDER = [
    "gopher_dup_line_fraction", *[f"gopher_top_{n}gram" for n in (2, 3, 4)],
    *[f"gopher_dup_{n}gram" for n in range(5, 11)],
    "fineweb_line_punct", "fineweb_char_dup", "fineweb_list_ratio",
    "gopher_min_words", "gopher_max_words", "gopher_avg_word_length", "gopher_hash_ratio",
    "gopher_ellipsis_ratio", "gopher_bullet_lines", "gopher_end_ellipsis_lines", "gopher_alpha_words",
    "gopher_stop_words",
]
_WEB = ["web"]

# Each preset is a complete `filters:` mapping (minus `preset`); the user's config overlays it key by key.
PRESETS: dict[str, dict[str, Any]] = {
    "swallow": {
        "rules": {name: {} for name in _SWALLOW_ORDER},
        "line_cleaning": {"footer": {"enabled": True}, "non_japanese_lines": {"enabled": False}},
        "ng_words": {"lists": ["adult", "discrimination", "violence"]},
        "hosts": {"patterns": ["*.5ch.net", "*wikipedia.org"]},
        "pii": {"enabled": False},
    },
    "llmjp": {
        "rules": {name: {} for name in _LLMJP_ORDER},
        "line_cleaning": {"footer": {"enabled": False}, "non_japanese_lines": {"enabled": True}},
        "ng_words": {"lists": ["adult", "discrimination", "violence", "ads"]},
        "pii": {"enabled": False},
    },
    "fineweb2": {
        "rules": {name: {} for name in _FINEWEB2_ORDER},
        "line_cleaning": {"footer": {"enabled": False}, "non_japanese_lines": {"enabled": False}},
        "pii": {"enabled": True, "kinds": ["email", "ip"]},
    },
    # Ours, tuned on bench/labels/dev_labels.jsonl (docs/filters.md): character statistics only (no
    # MeCab), length and sentence-shape rules restricted to web pages so short encyclopedia paragraphs,
    # abstracts and long statute sentences are never judged by web heuristics.
    "default": {
        "rules": {
            "mojibake": {},
            "host_blocklist": {},
            "url_blocklist": {},
            "min_chars": {"threshold": 100, "kinds": _WEB},
            "min_japanese_fraction": {"threshold": 0.4},
            "max_katakana_fraction": {"threshold": 0.6, "kinds": _WEB},
            "avg_sentence_length": {"threshold": [10, 150], "kinds": _WEB},
            "max_ellipsis_fraction": {"threshold": 0.2, "kinds": _WEB},
            "gopher_dup_line_fraction": {"threshold": 0.35, "kinds": _WEB},
            "dup_sentence_char_fraction": {"threshold": 0.20, "kinds": _WEB},
            "top_2gram_char_fraction": {"threshold": 0.20},
            "dup_10gram_char_fraction": {"threshold": 0.30, "kinds": _WEB},
            "max_fragment_char_fraction": {"threshold": 0.33, "kinds": _WEB},
            "ng_word_fraction": {"threshold": 0.04},
        },
        "line_cleaning": {"footer": {"enabled": True}, "non_japanese_lines": {"enabled": True}},
        "ng_words": {"lists": ["adult"]},
        "pii": {"enabled": True},
    },
}
