"""Morphological analysis with fugashi + unidic-lite: one lazily created Tagger per process.

MeCab is fast per character but slow and memory-hungry on pathological single inputs (a 10 MB line
with no sentence end), so text is cut at sentence ends and newlines and packed into chunks of at most
MAX_CHUNK_CHARS before it reaches the tagger. A "sentence" longer than MAX_SENTENCE_CHARS is cut blindly
into pieces of its own: within one run of a single character class (ーーー, aaa) MeCab's time grows with the
square of the run (20k characters of ー: 0.3 s; 1M characters: 17 s with 20k pieces, 2 s with 2k).
Whitespace is not a morpheme (MeCab skips it).
"""
from __future__ import annotations

import re
from collections.abc import Iterator

MAX_CHUNK_CHARS = 20_000
MAX_SENTENCE_CHARS = 2_000
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
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
    """Cut `text` at 。！？!? and newlines into pieces of at most `max_chars`; a sentence over
    MAX_SENTENCE_CHARS is cut blindly, each piece a chunk of its own."""
    longest = min(max_chars, MAX_SENTENCE_CHARS)
    buf: list[str] = []
    size = 0
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > longest:
            if buf:
                yield "".join(buf)
                buf, size = [], 0
            yield sentence[:longest]
            sentence = sentence[longest:]
        if size + len(sentence) > max_chars and buf:
            yield "".join(buf)
            buf, size = [], 0
        if sentence:
            buf.append(sentence)
            size += len(sentence)
    if buf:
        yield "".join(buf)


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
        for line in chunk.split("\n"):
            if line.strip():  # MeCab's node API stops reading at a NUL: so does this
                out.extend(tag.parse(line.partition("\0")[0]).split("\t")[:-1])
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
