"""Morphological analysis with fugashi + unidic-lite: one lazily created Tagger per process.

MeCab is fast per character but slow and memory-hungry on pathological single inputs (a 10 MB line
with no sentence end), so text is cut at sentence ends and newlines and packed into chunks of at most
MAX_CHUNK_CHARS before it reaches the tagger. A "sentence" longer than MAX_SENTENCE_CHARS is tagged in
windows of that many characters (`_tag_long`): within one run of a single character class (ーーー, aaa)
MeCab's time grows with the square of the run (20k characters of ー: 0.3 s; 1M characters: 17 s with 20k
pieces, 2 s with 2k). A window is cut at the end of a morpheme MeCab found with right context to spare, not
blindly (a blind cut split the word at every 2,000th character of an unpunctuated sentence).
MeCab reads C strings, so its input is also cut at every NUL (it stopped reading there, and every morpheme
after a NUL was lost); a run of NULs is a 補助記号 morpheme of its own, as MeCab makes of any other control
character (U+0001-U+001F, U+007F, C1: each run its own symbol, never part of a word, so no cut is needed
there).
Whitespace is not a morpheme (MeCab skips it).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate

MAX_CHUNK_CHARS = 20_000
MAX_SENTENCE_CHARS = 2_000
CUT_CONTEXT = 64  # characters of right context a window's cut point keeps (MeCab's lattice looks ahead)
_END_CHARS = "。！？!?\n"  # what a chunk is cut after
_SENTENCE_END = re.compile(f"(?<=[{_END_CHARS}])")
_END_CHAR = re.compile(f"[{_END_CHARS}]")
_NUL_RUN = re.compile("(\0+)")
_NUL_POS = "補助記号"  # what MeCab gives a run of any other control character
_TAGGERS: dict[str, object] = {}
# MeCab output formats of 1 and 2 fields per morpheme (surface; surface, pos1), each field ended by a tab
# and each line by "|"; fugashi splits the arguments like a shell, MeCab reads \t as a tab.
_FORMATS = {1: r'-O "" -F "%m\\t" -U "%m\\t" -E "|"', 2: r'-O "" -F "%m\\t%f[0]\\t" -U "%m\\t%f[0]\\t" -E "|"'}


def _tagger(args: str):
    """The process-wide fugashi Tagger for `args` (created on first use so importing this module stays cheap)."""
    if args not in _TAGGERS:
        import fugashi  # local import: workers that never tag pay nothing

        _TAGGERS[args] = fugashi.Tagger(args)
    return _TAGGERS[args]


def chunks(text: str, max_chars: int = MAX_CHUNK_CHARS) -> Iterator[str]:
    """Cut `text` after 。！？!? and newlines into pieces of at most `max_chars`; a sentence over
    min(max_chars, MAX_SENTENCE_CHARS) is a piece of its own, uncut (the tagger windows it)."""
    longest = min(max_chars, MAX_SENTENCE_CHARS)
    buf: list[str] = []
    size = 0
    for sentence in _SENTENCE_END.split(text):
        if (len(sentence) > longest or size + len(sentence) > max_chars) and buf:
            yield "".join(buf)
            buf, size = [], 0
        if len(sentence) > longest:
            yield sentence
        elif sentence:
            buf.append(sentence)
            size += len(sentence)
    if buf:
        yield "".join(buf)


def _parse(tag, text: str) -> list[str]:
    return tag.parse(text).split("\t")[:-1]


def _tag_long(tag, text: str, fields: int) -> list[str]:
    """MeCab's fields for one sentence (no sentence end inside) longer than MAX_SENTENCE_CHARS, a window of
    that many characters at a time. A window keeps its morphemes up to the last end that has CUT_CONTEXT
    characters of text after it (or else any end) in its second half, so each call moves on by at least half
    a window (linear time); the rest is tagged again in the next window. Only a window whose second half
    holds no morpheme end is cut blindly at its end."""
    out: list[str] = []
    start, half = 0, MAX_SENTENCE_CHARS // 2
    while len(text) - start > MAX_SENTENCE_CHARS:
        window = text[start:start + MAX_SENTENCE_CHARS]
        flat = _parse(tag, window)
        ends = _ends(window, flat[::fields])
        inside = [i for i, end in enumerate(ends) if half <= end < len(window)]
        roomy = [i for i in inside if ends[i] <= len(window) - CUT_CONTEXT]
        if kept := (roomy or inside):
            last = kept[-1]
            out.extend(flat[:(last + 1) * fields])
            start += ends[last]
        else:
            out.extend(flat)
            start += len(window)
    return out + _parse(tag, text[start:])


def _ends(text: str, surfaces: list[str]) -> list[int]:
    """The end offset in `text` of each surface (MeCab skips whitespace; it never rewrites its input: were it
    to, no end is given and the caller keeps its window whole)."""
    if "".join(surfaces) == text:  # nothing skipped: the common case, without a find per morpheme
        return list(accumulate(map(len, surfaces)))
    ends, cursor = [], 0
    for surface in surfaces:
        found = text.find(surface, cursor)
        if found < 0:
            return []
        cursor = found + len(surface)
        ends.append(cursor)
    return ends


def _tag_line(tag, line: str, fields: int, long: bool) -> list[str]:
    """MeCab's fields for one line, cut at NUL runs (each a morpheme of its own); `long`: the line is one
    sentence over MAX_SENTENCE_CHARS."""
    out: list[str] = []
    for i, part in enumerate(_NUL_RUN.split(line)):
        if i % 2:
            out.extend([part, _NUL_POS][:fields])
        elif part:  # not strip(): MeCab keeps U+00A0, U+3000 and \x1f as morphemes, even alone
            out.extend(_tag_long(tag, part, fields) if long and len(part) > MAX_SENTENCE_CHARS else _parse(tag, part))
    return out


def _fields(text: str, fields: int) -> list[str]:
    """MeCab's own output for each line of `text`: `fields` tab-ended fields per morpheme, ASCII whitespace
    skipped (MeCab keeps U+3000, U+00A0 and the other Unicode spaces as morphemes).

    MeCab formats the fields in C (no surface or feature holds a tab or a space: it skips whitespace) and
    ends each line with a mark that keeps fugashi from stripping a last surface such as U+00A0; a Python
    node object per morpheme, and its UniDic feature, cost several times the parse itself (1.04M dev
    characters: node surfaces and pos1 1.58 s; here 0.64 s, surfaces alone 0.41 s).
    """
    tag = _tagger(_FORMATS[fields])
    out: list[str] = []
    for chunk in chunks(text):
        # a chunk over MAX_SENTENCE_CHARS holding no sentence end but its last character is one long sentence
        long = len(chunk) > MAX_SENTENCE_CHARS and not _END_CHAR.search(chunk, 0, len(chunk) - 1)
        for line in chunk.split("\n"):
            if line.strip():
                out.extend(_tag_line(tag, line, fields, long))
    return out


def morphemes_with_pos(text: str) -> list[tuple[str, str]]:
    """(surface, UniDic pos1) for every morpheme, e.g. [('言語', '名詞'), ('が', '助詞')]."""
    flat = _fields(text, 2)
    return list(zip(flat[::2], flat[1::2], strict=True))


def morphemes(text: str) -> list[str]:
    """Surfaces of the morphemes of `text`; ASCII whitespace is dropped, U+3000 and other Unicode spaces are not."""
    return _fields(text, 1)


def morpheme_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, pos1) character offsets of each morpheme in `text` (surfaces are exact substrings)."""
    spans: list[tuple[int, int, str]] = []
    cursor = 0
    for surface, pos in morphemes_with_pos(text):
        start = text.find(surface, cursor)
        if start < 0:  # MeCab never rewrites input; guard anyway rather than misalign everything after
            continue
        cursor = start + len(surface)
        spans.append((start, cursor, pos))
    return spans
