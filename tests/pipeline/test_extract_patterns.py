"""extract's hand-tuned patterns against the plain patterns they replace, on random markup.

Each was rewritten for speed (possessive runs, names grouped by first letter, a first-letter lookahead); the
plain form is the specification, so any input on which the two differ is a defect.
"""
from __future__ import annotations

import random
import re

from pipeline import extract

SHORT_NODE_SPEC = re.compile(r">(\s*(?:[\u0800-\uffff]|&#?\w{1,12};)\s*)<")
# characters that decide these patterns: markup, every kind of space (U+3000 and U+2003 are both \s and in
# U+0800..U+FFFF), the range's edges, an astral character, entity parts
PIECES = [">", "<", "</", " ", "\n", "\t", "\u3000", "\u2003", "\u205f", "\xa0", "\x85", "\u1680", "a", "B", "東", "の",
          "&", "#", ";", "1", "amp", "x41", "\u07ff", "\u0800", "\uffff", "😀", "/", "=", '"', "\ufdd0"]


def _random_markup(rng: random.Random, pieces: list[str], count: int) -> list[str]:
    return ["".join(rng.choices(pieces, k=rng.randint(0, 14))) for _ in range(count)]


def test_the_wide_spaces_are_the_whitespace_of_the_short_node_range():
    wide = re.compile(f"[{extract._WIDE_SPACES}]")
    assert [c for c in map(chr, range(0x800, 0x10000)) if wide.match(c)] == \
           [c for c in map(chr, range(0x800, 0x10000)) if re.match(r"\s", c)]


def test_short_text_node_padding_matches_the_backtracking_pattern():
    rng = random.Random(7)
    node_pieces = [p for p in PIECES if "<" not in p and ">" not in p]
    texts = ["".join(f"<b>{''.join(rng.choices(node_pieces, k=rng.randint(0, 4)))}</b>" for _ in range(3))
             for _ in range(30_000)]
    texts += _random_markup(rng, PIECES, 30_000)
    texts += [">\u3000<", ">\u3000東<", "> \u3000\u3000 <", ">\u2003&amp;\u3000<", ">\u3000\u3000東\u3000<", "> 東 東<"]
    fast = [extract._SHORT_TEXT_NODE.sub(extract._padded, t) for t in texts]
    assert fast == [SHORT_NODE_SPEC.sub(extract._padded, t) for t in texts]
    assert sum(f != t for f, t in zip(fast, texts, strict=True)) > 8_000  # the padding really happened


def test_short_text_node_padding_of_a_one_byte_page_matches_the_pattern():
    """On a page of characters below U+0100 only character references are padded, found from their `&`."""
    rng = random.Random(13)
    pieces = [p for p in PIECES if max(p) < "\u0100"] + ["hellip", "#12354", "\xe9", "\x1c", "\x0b", "&hellip;",
                                                        "&#x3042;", "&amp;", "&#128512;", "&nosuch;", ">&#12354;<"]
    texts = _random_markup(rng, pieces, 60_000) + ["".join(rng.choices(pieces, k=300)) for _ in range(2_000)]
    texts += [">&hellip;<", "> \xa0&#12354;\x85\t<", ">>&#x3042;<>&#x3042; <", "x&hellip;<", " &hellip;<"]
    assert all(max(t, default="") < "\u0100" for t in texts)
    fast = [extract._pad_short_references(t) for t in texts]
    assert fast == [SHORT_NODE_SPEC.sub(extract._padded, t) for t in texts]
    assert sum(f != t for f, t in zip(fast, texts, strict=True)) > 3_000
    assert [extract._pad_short_nodes(t) for t in texts[-2_005:]] == fast[-2_005:]  # long ones take this path


def test_nesting_and_skippable_tags_match_their_flat_alternations():
    nesting = re.compile(rf"<(/?)(?:{'|'.join(extract.NESTED_TAGS)})[\s>]", re.I)
    noted = re.compile(rf"<({'|'.join(extract._NOTED_NAMES)})(?=[\t\n\f\r />])", re.I | re.A)
    names = [*extract.NESTED_TAGS, *extract._NOTED_NAMES, "abbr", "br", "bdi", "dd", "iframe", "span2", "rb", "nav",
             "ruby", "Div", "SPAN", "RT", "NoEmbed", "ſpan", "rtc-x", "p", "PRE", "Math", "mat", "meta", "pres"]
    rng = random.Random(11)
    starts, ends = ["<", "</", "", "<<"], [" ", ">", "\n", "/", "\t", "x", ""]
    texts = ["".join(rng.choice(starts) + rng.choice(names) + rng.choice(ends) for _ in range(rng.randint(0, 6)))
             for _ in range(40_000)]
    assert [nesting.findall(t) for t in texts] == [extract._NESTING.findall(t) for t in texts]
    assert [noted.findall(t) for t in texts] == [extract._NOTED.findall(t) for t in texts]
    assert sum(bool(extract._NESTING.findall(t)) for t in texts) > 10_000
