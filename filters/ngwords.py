"""NG-word matching with one Aho-Corasick automaton (leftmost-longest matches) over licensed lists.

Lists shipped in filters/data/hojichar/ (Apache-2.0, see NOTICE there): adult, discrimination, violence
and advertisement keywords from HojiChar. Extra lists are plain UTF-8 files, one keyword per line. Keywords
are normalized like the stored text they are matched against (`normalize.normalize`: a keyword written in
half-width katakana or full-width letters could never match). Matching is case-sensitive.
A short keyword (at most `boundary_max_len` characters), and a katakana keyword of any length, only
counts when it is not glued to a character of the same script on either side, so 「イモ」 does not fire
inside 「ジャガイモ」, 「乳」 not inside 「牛乳」 and 「チンコ」 not inside 「パチンコ」.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import ahocorasick

from filters.lines import DATA, load_phrases
from filters.normalize import normalize

BUILTIN_LISTS: dict[str, Path] = {
    "adult": DATA / "hojichar" / "adult_keywords_ja.txt",
    "discrimination": DATA / "hojichar" / "discrimination_keywords_ja.txt",
    "violence": DATA / "hojichar" / "violence_keywords_ja.txt",
    "ads": DATA / "hojichar" / "advertisement_keywords_ja.txt",
}


def script_of(ch: str) -> str:
    o = ord(ch)
    if 0x3041 <= o <= 0x309F:
        return "hira"
    if 0x30A0 <= o <= 0x30FF or 0xFF66 <= o <= 0xFF9F:
        return "kata"
    if 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F or ch in "々〆ヶ":
        return "kanji"
    if ch.isalnum():
        return "alnum"
    return ""


class NgWordMatcher:
    """Counts keyword hits per list and the characters they cover."""

    def __init__(self, lists: Mapping[str, Path], boundary_max_len: int = 2) -> None:
        self.names = sorted(lists)
        self.boundary_max_len = boundary_max_len
        owners: dict[str, set[str]] = {}
        for name in self.names:
            for word in load_phrases(Path(lists[name])):
                owners.setdefault(normalize(word), set()).add(name)
        self.automaton = ahocorasick.Automaton()
        for word, names in owners.items():
            self.automaton.add_word(word, (word, tuple(sorted(names))))
        if len(self.automaton):
            self.automaton.make_automaton()

    def _glued(self, text: str, start: int, end: int) -> bool:
        left = script_of(text[start - 1]) if start > 0 else ""
        right = script_of(text[end]) if end < len(text) else ""
        return (left != "" and left == script_of(text[start])) or (right != "" and right == script_of(text[end - 1]))

    @staticmethod
    def _all_katakana(word: str) -> bool:
        return all(script_of(ch) == "kata" for ch in word)

    def matches(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]:
        """(start, keyword, lists) for every accepted match."""
        if not len(self.automaton):
            return []
        out = []
        for end_idx, (word, names) in self.automaton.iter_long(text):
            start = end_idx - len(word) + 1
            if (len(word) <= self.boundary_max_len or self._all_katakana(word)) and self._glued(text, start, end_idx + 1):
                continue
            out.append((start, word, names))
        return out

    def stats(self, text: str, japanese_chars: float) -> dict[str, float]:
        """`ng_{list}_hits` per list, and `ng_word_fraction` = matched chars / Japanese chars (Swallow)."""
        hits: Counter = Counter()
        covered = 0
        for _, word, names in self.matches(text):
            covered += len(word)
            for name in names:
                hits[name] += 1
        out = {f"ng_{name}_hits": float(hits[name]) for name in self.names}
        out["ng_word_fraction"] = covered / japanese_chars if japanese_chars else 0.0
        return out
