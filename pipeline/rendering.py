"""What a browser shows that the extractors do not: CSS segment breaks between Japanese characters, `<pre>`
indentation. Used by `pipeline.extract`; see docs/extraction.md ("Rendering").

- Segment breaks (CSS Text, "segment break transformation"): a source line break inside a text node, collapsed
  as white space, is removed when the characters on both sides are East Asian Wide, Fullwidth or Halfwidth and
  neither is Hangul. e-Gov law pages wrap lines mid-sentence (`...の` newline `規定により`), and the extractors
  printed `の 規定`. `mark_segment_breaks` puts BREAK right after the character before such a line break; an
  extractor collapses the white space after it into one space (or keeps it, in a `<pre>`, whose marks go first),
  and `unmark` removes BREAK with that space.
- `<pre>` lines: `mark_pre_text` starts each line of a `<pre>` element's text with PRE_LINE, so that the whitespace
  clean-up keeps that line's indentation and space runs (code, aligned text).
"""
from __future__ import annotations

import functools
import re
import sys
import unicodedata

BREAK = "\ufdd1"  # a removed segment break is after this (a noncharacter: no page's own text)
PRE_LINE = "\ufdd2"  # at the start of each line of a <pre>: keep its whitespace
# Script=Hangul: Jamo, tone marks, compatibility Jamo, parenthesized and circled Hangul, Jamo Ext-A, syllables and
# Jamo Ext-B, halfwidth Hangul. All other W/F/H characters take part in the rule.
HANGUL = ((0x1100, 0x11FF), (0x302E, 0x302F), (0x3131, 0x318F), (0x3200, 0x321E), (0x3260, 0x327E),
          (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xFFA0, 0xFFDC))
MAX_TRAILING = 4  # spaces, tabs, CRs between a wide character and the line break (the shared WARC has up to 2)
# A candidate: a line feed after a character from U+1100 on (every wide one is) and at most MAX_TRAILING spaces, tabs
# or CRs, and before white space and another such character; `_cut` checks both exactly. The first lookbehind
# rejects most line feeds of a page at once (markup lines end in `>`), the second a CRLF after anything else: a
# page costs one scan and a Python call per candidate (a few hundred on a law page). Linear: a candidate is at most
# MAX_TRAILING + 1 characters into a run of white space, so at most that many lookaheads read one run.
_EAST = "[\u1100-\U0003ffff]"
_AFTER_EAST = "|".join(f"(?<={_EAST}[ \t\r]{{{n}}}\n)" for n in range(MAX_TRAILING + 1))
_CANDIDATE = re.compile(f"\n(?<=[\u1100-\U0003ffff \t\r]\n)(?<![^\u1100-\U0003ffff \t\r]\r\n)(?:{_AFTER_EAST})"
                        f"(?=[ \t\r\n]*+({_EAST}))")
_UNMARK = re.compile(f"{BREAK} ?")  # the one space an extractor makes of the white space after BREAK
_BR = re.compile(r"<br(?=[\t\n\f\r />])[^<>]*>", re.I | re.A)
_PRE_START = re.compile(r"<pre(?=[\t\n\f\r />])[^<>]*+>?", re.I | re.A)
_PRE_END = re.compile(r"</pre(?=[\t\n\f\r />])", re.I | re.A)


@functools.cache
def is_wide(char: str) -> bool:
    """A character on whose sides a segment break is removed: East Asian Width W, F or H, not Hangul. Assigned
    ones only: Python gives unassigned code points F (U+0378 too); all assigned ones are in U+1100..U+3FFFF."""
    if unicodedata.east_asian_width(char) not in ("W", "F", "H") or unicodedata.category(char) == "Cn":
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in HANGUL)


def one_byte_characters(text: str) -> bool:
    """True if CPython stores `text` in one byte a character (PEP 393), so all its characters are below U+0100:
    `sys.getsizeof` tells in O(1), where `max(text)` reads it all. A runtime that stores more says False."""
    return sys.getsizeof(text) < 2 * len(text)


def mark_segment_breaks(html: str) -> str:
    """Put BREAK after the character before every line break that the CSS rule removes: white space holding a line
    feed, between two wide characters (`の \\r\\n  規`: `の` BREAK ` \\r\\n  規`). With only white space between
    them, the two are in one text node: a line break next to a tag, an ASCII character or Hangul stays a space.
    A page of `one_byte_characters` (none wide; a third of the shared WARC's markup) is not scanned."""
    if one_byte_characters(html):
        return html
    cuts = [cut for m in _CANDIDATE.finditer(html) if (cut := _cut(m))]
    if not cuts:  # the page itself, not a copy
        return html
    return BREAK.join([html[start:end] for start, end in zip([0, *cuts], [*cuts, len(html)], strict=True)])


def _cut(m: re.Match) -> int:
    """Where BREAK goes for this candidate (after the wide character before the white space), or 0: not removed."""
    text, end = m.string, m.start() - 1
    while text[end] in " \t\r":  # the candidate's lookbehind found the character before these
        end -= 1
    return end + 1 if is_wide(text[end]) and is_wide(m.group(1)) else 0


def join_at_marks(html: str) -> str:
    """Apply the marks on the markup itself, for an extractor that drops them (trafilatura drops every character
    that is not printable): each is after a wide character and before white space holding a line feed, then the
    other wide character."""
    parts = html.split(BREAK)
    return parts[0] + "".join([part.lstrip(" \t\r\n") for part in parts[1:]])


def unmark(text: str) -> str:
    """Remove BREAK and the space after it, which the extractor made of the line break and the white space around
    it (a `<pre>`, which keeps its line breaks, has lost its marks before extraction)."""
    return _UNMARK.sub("", text) if BREAK in text else text


# ------------------------------------------------------------------------------------------------ <pre>
def mark_pre_text(html: str, lines: bool = True) -> str:
    """In each `<pre>` element of the markup, start the first line and every line after a line feed or a `<br>`
    with PRE_LINE (not with `lines=False`: trafilatura drops such characters), and drop the segment-break marks: a
    `<pre>` keeps its line breaks. On the markup, before parsing (doing it in the parsed tree cost 60 µs a `<pre>`):
    a line feed inside a tag there gets a mark too, which only makes a nameless attribute. A `<pre>` runs to its
    end tag, or to the end of the page."""
    out, pos = [], 0
    while start := _PRE_START.search(html, pos):
        begin = start.end()
        end_tag = _PRE_END.search(html, begin)
        end = end_tag.start() if end_tag else len(html)
        inner = html[begin:end].replace(BREAK, "")
        if lines:
            inner = _BR.sub(f"\\g<0>{PRE_LINE}", inner.replace("\n", "\n" + PRE_LINE))
            if not inner.startswith(("\n", "\r")):  # a line feed right after <pre> is no line (the parser drops it)
                inner = PRE_LINE + inner
        out += (html[pos:begin], inner)
        pos = end
    out.append(html[pos:])
    return "".join(out)


def for_trafilatura(html: str, present: frozenset[str]) -> str:
    """trafilatura drops every character that is not printable, so the segment-break marks are applied on the
    markup (after the `<pre>`s lose theirs; the `<pre>` line marks would not come through either). `present`: the
    tag names the page has (`pre`)."""
    if "pre" in present:
        html = mark_pre_text(html, lines=False)
    return join_at_marks(html) if BREAK in html else html
