"""Language gate from script statistics.

Kana is the decisive signal: Chinese text shares the kanji but never uses hiragana or katakana, and
Korean, Latin or Cyrillic pages have few CJK characters at all. No model file is needed, so the gate is
exact, fast (one pass over the text) and has no false positives on Chinese.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KANJI_EXTRA = frozenset("々〆")


def script_counts(text: str) -> dict[str, int]:
    """Counts of letters by script; `letters` counts every character that `str.isalpha` accepts."""
    hira = kata = kanji = letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        cp = ord(ch)
        if 0x3041 <= cp <= 0x309F:
            hira += 1
        elif 0x30A0 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
            kata += 1
        elif (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF
              or 0x20000 <= cp <= 0x3134F or ch in _KANJI_EXTRA):
            kanji += 1
    return {"letters": letters, "hiragana": hira, "katakana": kata, "kanji": kanji}


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
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"language.{key}: expected a number, got {value!r}")
        return cls(**cfg)

    def __call__(self, text: str) -> tuple[str | None, dict[str, float]]:
        """(reject reason or None, statistics)."""
        stats = script_stats(text)
        if (stats["letters"] < self.min_letters or stats["kana_fraction"] < self.min_kana_fraction
                or stats["japanese_fraction"] < self.min_japanese_fraction):
            return "lang_not_ja", stats
        return None, stats
