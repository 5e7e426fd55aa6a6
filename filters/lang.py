"""Language gate from script statistics.

Kana is the decisive signal: Chinese text shares the kanji but never uses hiragana or katakana, and
Korean, Latin or Cyrillic pages have few CJK characters at all. No model file is needed, so the gate is
exact, fast (one pass over the text) and has no false positives on Chinese.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# One C-speed pass: `str.translate` maps every kana/kanji code point to a private-use marker per script,
# then `str.count` tallies the markers (a Python loop over characters was the slowest step of the spine).
_HIRA, _KATA, _KANJI = "\ue001", "\ue002", "\ue003"
_RANGES = ((0x3041, 0x309F, _HIRA), (0x30A0, 0x30FF, _KATA), (0x31F0, 0x31FF, _KATA), (0xFF66, 0xFF9F, _KATA),
           (0x4E00, 0x9FFF, _KANJI), (0x3400, 0x4DBF, _KANJI), (0xF900, 0xFAFF, _KANJI), (0x20000, 0x3134F, _KANJI))
_SCRIPT_TABLE = {cp: mark for lo, hi, mark in _RANGES for cp in range(lo, hi + 1)}
_SCRIPT_TABLE.update({ord("々"): _KANJI, ord("〆"): _KANJI})
_SCRIPT_TABLE.update({ord(mark): None for mark in (_HIRA, _KATA, _KANJI)})  # markers already in the text
_NOT_LETTER = re.compile(r"[\W\d_]")


def script_counts(text: str) -> dict[str, int]:
    """Counts of letters by script; `letters` are word characters that are not digits or `_`."""
    marked = text.translate(_SCRIPT_TABLE)
    return {
        "letters": len(text) - len(_NOT_LETTER.findall(text)),
        "hiragana": marked.count(_HIRA),
        "katakana": marked.count(_KATA),
        "kanji": marked.count(_KANJI),
    }


def script_stats(text: str) -> dict[str, float]:
    """Fractions of letters: kana (hiragana + katakana), Japanese (kana + kanji), hiragana."""
    c = script_counts(text)
    letters = c["letters"] or 1
    kana = c["hiragana"] + c["katakana"]
    return {
        "letters": float(c["letters"]),
        "kana_fraction": kana / letters,
        "hiragana_fraction": c["hiragana"] / letters,
        "japanese_fraction": (kana + c["kanji"]) / letters,
    }


@dataclass(frozen=True)
class LanguageGate:
    """Japanese when there is some kana and most letters are Japanese script.

    Defaults were chosen on the shared dev corpora (docs/curate.md): Japanese Wikipedia paragraphs full of
    Latin names sit at a Japanese fraction near 0.4, English abstracts at 0, Chinese pages have no kana.
    """

    min_kana_fraction: float = 0.05
    min_japanese_fraction: float = 0.3
    min_letters: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> LanguageGate:
        cfg = dict(cfg or {})
        fields = {"min_kana_fraction", "min_japanese_fraction", "min_letters"}
        for key, value in cfg.items():
            if key not in fields:
                raise ValueError(f"language.{key}: unknown key; known keys: {', '.join(sorted(fields))}")
            if key == "min_letters" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"language.{key}: expected a non-negative integer, got {value!r}")
            if key != "min_letters" and (not isinstance(value, int | float) or isinstance(value, bool)
                                         or not 0 <= value <= 1):
                raise ValueError(f"language.{key}: expected a fraction between 0 and 1, got {value!r}")
        return cls(**cfg)

    def __call__(self, text: str) -> tuple[str | None, dict[str, float]]:
        """(reject reason or None, statistics)."""
        stats = script_stats(text)
        if (stats["letters"] < self.min_letters or stats["kana_fraction"] < self.min_kana_fraction
                or stats["japanese_fraction"] < self.min_japanese_fraction):
            return "lang_not_ja", stats
        return None, stats
