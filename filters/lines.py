"""Line-level cleaning that runs before the document rules: footer trimming, non-Japanese lines, and
the keys used for site-level frequent-line removal (the per-host counting is a Beam step in
`pipeline/site_lines.py`; this module only decides what a line's identity is and removes lines)."""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import ahocorasick

from filters.textstats import is_japanese_char
from trainer_bridge.userpaths import open_regular

DATA = Path(__file__).resolve().parent / "data"
_SPACE = re.compile(r"\s+")


def text_lines(path: str | Path) -> Iterator[str]:
    """Lines of a UTF-8 text file. A missing file, a folder, a FIFO (opening it blocked forever), or bytes that
    are not UTF-8 text (a binary file read with errors="replace" would load garbage silently) raise one
    ValueError naming the file."""
    try:
        with io.TextIOWrapper(open_regular(path), encoding="utf-8") as fh:
            for line in fh:
                if "\x00" in line:
                    raise ValueError(f"{path} is not a text file (it holds NUL bytes)")
                yield line
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_phrases(path: str | Path) -> list[str]:
    """One phrase per line; blank lines and lines starting with '#' are skipped."""
    return [ln.strip() for ln in text_lines(path) if ln.strip() and not ln.startswith("#")]


def build_automaton(words: Iterable[str]) -> ahocorasick.Automaton:
    """An Aho-Corasick automaton whose values are the words themselves (iter_long = longest match)."""
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    if len(automaton):
        automaton.make_automaton()
    return automaton


def covered_chars(automaton: ahocorasick.Automaton, text: str) -> int:
    """Characters covered by leftmost-longest, non-overlapping matches."""
    if not len(automaton) or not text:
        return 0
    return sum(len(word) for _, word in automaton.iter_long(text))


class FooterTrimmer:
    """Swallow's footer rule: among the last `window` lines, the first line whose characters are more
    than `keyword_fraction` footer phrases starts the footer; it and every line after it are removed."""

    def __init__(self, window: int = 10, keyword_fraction: float = 0.3, keywords: str | Path | None = None) -> None:
        self.window = window
        self.keyword_fraction = keyword_fraction
        self.automaton = build_automaton(load_phrases(keywords or DATA / "footer_keywords_ja.txt"))

    def __call__(self, lines: list[str]) -> tuple[list[str], int]:
        start = max(0, len(lines) - self.window)
        for i in range(start, len(lines)):
            stripped = lines[i].strip()
            if stripped and covered_chars(self.automaton, stripped) > self.keyword_fraction * len(stripped):
                return lines[:i], len(lines) - i
        return lines, 0


def has_japanese(line: str) -> bool:
    return any(is_japanese_char(ch) for ch in line)


def is_non_japanese_line(line: str, max_symbol_run: int = 5) -> bool:
    """A line to drop from a mostly-Japanese document: letters but no Japanese character (an English
    menu, a Latin-script sentence), or a symbol-only line longer than `max_symbol_run` ("=====", "| |").
    Short number lines (a law's paragraph number "２") are kept."""
    stripped = line.strip()
    if not stripped or has_japanese(stripped):
        return False
    if any(ch.isalpha() for ch in stripped):
        return True
    return len(stripped) > max_symbol_run and not any(ch.isdigit() for ch in stripped)


def drop_non_japanese_lines(lines: list[str]) -> tuple[list[str], int]:
    kept = [ln for ln in lines if not is_non_japanese_line(ln)]
    return kept, len(lines) - len(kept)


def line_key(line: str) -> str | None:
    """Identity of a line for site-level frequency counting: NFKC and whitespace removed, so width and
    spacing variants count as one line. Digits are kept: lines that differ only by a number ("記事1",
    "第2条") are usually content. None for lines too short to be boilerplate."""
    folded = _SPACE.sub("", unicodedata.normalize("NFKC", line))
    if len(folded) < 2:
        return None
    return hashlib.blake2b(folded.encode("utf-8"), digest_size=12).hexdigest()


def document_line_keys(text: str) -> set[str]:
    """Distinct line keys of one document (a line repeated inside a page counts once per page)."""
    return {k for k in map(line_key, text.split("\n")) if k is not None}


def remove_keyed_lines(text: str, keys: Collection[str]) -> tuple[str, int]:
    """Remove every line whose key is in `keys`; returns (text, lines removed)."""
    if not keys:
        return text, 0
    kept: list[str] = []
    removed = 0
    for line in text.split("\n"):
        if line_key(line) in keys:
            removed += 1
        else:
            kept.append(line)
    return "\n".join(kept), removed
