"""What a browser shows that the extractors do not: CSS segment breaks between Japanese characters, `<pre>`
indentation, MathML, feed titles. Used by `pipeline.extract`; see docs/extraction.md ("Rendering").

- Segment breaks (CSS Text, "segment break transformation"): a source line break inside a text node, collapsed
  as white space, is removed when the characters on both sides are East Asian Wide, Fullwidth or Halfwidth and
  neither is Hangul. e-Gov law pages wrap lines mid-sentence (`...の` newline `規定により`), and the extractors
  printed `の 規定`. `mark_segment_breaks` puts BREAK right after the character before such a line break; an
  extractor collapses the white space after it into one space (or keeps it, in a `<pre>`, whose marks go first),
  and `unmark` removes BREAK with that space.
- `<pre>` lines: `mark_pre_text` starts each line of a `<pre>` element's text with PRE_LINE, so that the whitespace
  clean-up keeps that line's indentation and space runs (code, aligned text).
- MathML: `math_text` is the author's `alttext`, else a TeX annotation, else a linear form (`x^2`, `(a+b)/2`).
"""
from __future__ import annotations

import functools
import html as html_lib
import re
import sys
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resiliparse.parse.html import HTMLTree, Node

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
    markup (after the `<pre>`s lose theirs; the `<pre>` line marks would not come through either). Formulas become
    text in resiliparse's tree, written back as markup. `present`: the tag names the page has (`pre`, `math`)."""
    from resiliparse.parse.html import HTMLTree

    if "pre" in present:
        html = mark_pre_text(html, lines=False)
    if "math" in present:
        tree = HTMLTree.parse(html)
        try:
            formulas_as_text(tree, "")
            html = str(tree)
        finally:
            tree = None
    return join_at_marks(html) if BREAK in html else html


# ------------------------------------------------------------------------------------------------ titles
# In a feed's title read as HTML: tags inside a line of text join the text on their sides; HTML's other tags,
# comments and declarations are a space; anything else in angle brackets is text (`vector<int>`, `Map<K, V>`).
_INLINE_NAMES = ("a", "abbr", "acronym", "b", "bdi", "bdo", "big", "blink", "cite", "code", "data", "del", "dfn", "em",
                 "font", "i", "img", "ins", "kbd", "mark", "nobr", "q", "rb", "ruby", "s", "samp", "small", "span",
                 "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr")
_OTHER_NAMES = ("address", "area", "article", "aside", "audio", "base", "basefont", "blockquote", "body", "br",
                "button", "canvas", "caption", "center", "col", "colgroup", "datalist", "dd", "details", "dialog",
                "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure", "footer", "form", "frame",
                "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "iframe",
                "input", "label", "legend", "li", "link", "main", "map", "marquee", "math", "menu", "meta", "meter",
                "nav", "noembed", "noframes", "noscript", "object", "ol", "optgroup", "option", "output", "p",
                "param", "picture", "pre", "progress", "rp", "rt", "rtc", "script", "search", "section", "select",
                "slot", "source", "style", "summary", "svg", "table", "tbody", "td", "template", "textarea", "tfoot",
                "th", "thead", "title", "tr", "track", "ul", "video", "xmp")
_INLINE_TAG = re.compile(rf"</?(?:{'|'.join(_INLINE_NAMES)})(?=[\t\n\f\r />])[^<>]*>", re.I | re.A)
_HTML_TAG = re.compile(rf"<(?:/?(?:{'|'.join(_OTHER_NAMES)})(?=[\t\n\f\r />])|[!?])[^<>]*>", re.I | re.A)


def title_text(markup: str) -> str:
    """A title read as HTML, as one line: inline tags join their text (東京<b>都</b>庁: 東京都庁), HTML's other tags
    are a space (一行目<br>二行目), `<` and `>` around anything else are text: `vector<int>`, `<速報>`."""
    return " ".join(html_lib.unescape(_HTML_TAG.sub(" ", _INLINE_TAG.sub("", markup))).split())


# ------------------------------------------------------------------------------------------------ MathML
_ANNOTATION_TEX = frozenset({"application/x-tex", "text/x-tex", "tex", "latex", "application/x-latex"})
_NOT_SHOWN = frozenset({"annotation", "annotation-xml", "mphantom", "mspace", "none", "mprescripts",
                        "malignmark", "maligngroup"})
_SCRIPTS = {"msup": ("^",), "msub": ("_",), "msubsup": ("_", "^"), "mover": ("^",), "munder": ("_",),
            "munderover": ("_", "^")}
_ATOM = re.compile(r"[\w.′″'!]*")  # needs no parentheses as an exponent, index or a fraction's part
MAX_MATH_DEPTH = 100  # deeper MathML (no formula nests this deep) is read as its plain text: no deep recursion


def formulas_as_text(tree: HTMLTree, pad: str) -> None:
    """Each `<math>` in the tree as its text (`write_math`). No node outlives the call in this frame (see the note
    above extract._resiliparse)."""
    body = math = None
    try:
        body = tree.body
        for math in body.query_selector_all("math") if body is not None else ():
            write_math(tree, math, pad)
    finally:
        tree = body = math = None


def write_math(tree: HTMLTree, math: Node, pad: str) -> None:
    """`<math>` -> its text (`math_text`): resiliparse printed its tokens run together (x<msup>y 2</msup>
    as `xy2`), trafilatura one token a line. A `display="block"` formula stays a block of its own. The text gets
    `pad` (extract's short-node pad, in the tree's one-character tokens already): a one-character formula (∞) is
    a 3-byte node, which resiliparse drops."""
    block = text = None
    try:
        text = tree.create_text_node(math_text(math, pad) + pad)
        if (math.getattr("display") or "").strip().lower() == "block":
            block = tree.create_element("div")
            block.append_child(text)
            math.replace_with(block)
        else:
            math.replace_with(text)
    finally:
        tree = math = block = text = None


def math_text(math: Node, pad: str = "") -> str:
    """How a `<math>` element reads as text: its `alttext` (the author's linear form), else a TeX annotation,
    else a linear rendering of its presentation markup (`x^2`, `x_(i+1)`, `(a+b)/2`, `√(x)`). `pad` is left out of
    the text."""
    tex = None
    try:
        alt = " ".join((math.getattr("alttext") or "").split())
        if alt:
            return alt
        for tex in math.query_selector_all("annotation"):
            if (tex.getattr("encoding") or "").strip().lower() in _ANNOTATION_TEX and tex.text.strip():
                return " ".join(_unpadded(tex.text, pad).split())
        return _linear(math, 0, pad).strip()
    finally:
        tex = math = None


def _unpadded(text: str | None, pad: str) -> str:
    return (text or "").replace(pad, "") if pad else text or ""


def _linear(node: Node, depth: int, pad: str) -> str:
    """Presentation MathML as one line of text (tokens as written, scripts as `^` and `_`, fractions with `/`)."""
    from resiliparse.parse.html import NodeType

    parts: list[str] = []
    kid = None
    try:
        if node.type == NodeType.TEXT:
            return " ".join(_unpadded(node.value, pad).split())
        tag = (node.tag or "").lower()
        if tag in _NOT_SHOWN or node.type != NodeType.ELEMENT:
            return ""
        if tag == "mtext" or depth >= MAX_MATH_DEPTH:  # text as written, with its edge spaces (`x <mtext> if`)
            return re.sub(r"\s+", " ", _unpadded(node.text, pad))
        for kid in node.child_nodes:
            if kid.type == NodeType.ELEMENT or (kid.type == NodeType.TEXT and _unpadded(kid.value, pad).strip()):
                parts.append(_linear(kid, depth + 1, pad))
                if tag == "semantics":  # the presentation markup; annotations follow it
                    break
        fence = (node.getattr("open", "("), node.getattr("separators", ","), node.getattr("close", ")"))
    finally:
        kid = node = None
    return _layout(tag, parts, fence)


def _layout(tag: str, parts: list[str], fence: tuple[str, str, str]) -> str:
    """One element's text from its children's."""
    if tag in _SCRIPTS and len(parts) == len(_SCRIPTS[tag]) + 1:
        scripts = zip(_SCRIPTS[tag], parts[1:], strict=True)
        return _group(parts[0]) + "".join(op + _group(part) for op, part in scripts)
    if tag == "mfrac" and len(parts) == 2:
        return f"{_group(parts[0])}/{_group(parts[1])}"
    if tag == "msqrt":
        return f"√{_group(''.join(parts))}"
    if tag == "mroot" and len(parts) == 2:
        return f"√[{parts[1]}]{_group(parts[0])}"
    if tag == "mfenced":
        return fence[0] + fence[1].strip()[:1].join(parts) + fence[2]
    if tag == "mtr":
        return ", ".join(parts)
    if tag == "mtable":
        return "[" + "; ".join(parts) + "]"
    return "".join(parts)


def _group(part: str) -> str:
    """`part` as an exponent, an index or a fraction's part: parenthesized unless it is one character, name or
    number, or already bracketed."""
    if len(part) < 2 or _ATOM.fullmatch(part) or part[0] + part[-1] in ("()", "[]", "{}", "||"):
        return part
    return f"({part})"
