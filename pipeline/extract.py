"""HTML -> main-content plain text, with Japanese-specific clean-up.

Two extractors are wired in; `bench/extract_bench.py` compares them on real pages and
`docs/extraction.md` records why DEFAULT_EXTRACTOR is what it is. Whatever the extractor:
- ruby readings (`<rt>`, `<rp>`, `<rtc>`) are removed on the markup, so 漢字 is not followed by かんじ;
- scripts, styles, navigation, headers, footers, forms are not content;
- paragraphs stay on their own lines (blank lines collapsed, spaces trimmed);
- RSS/RDF/Atom feeds become one paragraph per item (title + body), not a run of URLs and dates;
- when main-content extraction returns (almost) nothing, the visible text minus page chrome is used;
- text reads as a browser shows it (`rendering`): no space for a source line break between two Japanese
  characters, `<pre>` indentation kept, a MathML formula as one line;
- nothing here may hang: input is capped at MAX_HTML_CHARS, markup deeper than MAX_DEPTH skips the
  (quadratic) main-content scoring, and our own scanning is linear (no unbounded lazy regexes).
"""
from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from pipeline import rendering

if TYPE_CHECKING:
    from resiliparse.parse.html import HTMLTree

MAX_HTML_CHARS = 4_000_000  # characters of decoded HTML handed to an extractor (document it in meta when cut)
MAX_DEPTH = 1000  # deeper markup skips main-content scoring, which is quadratic in depth (8,000 levels: 4 s)
MAX_TITLE_CHARS = 300  # an unclosed <title> swallows the page; no real title is longer
MIN_MAIN_CHARS = 50  # main content shorter than this -> whole visible text (if that is longer)
MIN_LIST_ITEM_CHARS = 15  # a shallow <ul> whose items average this many characters is content, not navigation
DEFAULT_EXTRACTOR = "resiliparse"
RUBY_SELECTORS = ("rt", "rp", "rtc")  # readings, their fallback parentheses, ruby text containers
# content for browsers without plugins or frames, which browsers hide; resiliparse printed its raw text (markup too)
_FALLBACK_SELECTORS = ("noembed", "noframes")


def _tag_names(names: tuple[str, ...]) -> str:
    """An alternation of tag names grouped by first letter (`d(?:iv|l)`): re tries a flat alternation's names one
    by one at every `<` of a page (a third of the pattern's time)."""
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[0], []).append(re.escape(name[1:]))
    return "(?:" + "|".join(f"{first}(?:{'|'.join(rest)})" for first, rest in by_first.items()) + ")"


def _first_letter(names: tuple[str, ...]) -> str:
    """A lookahead for the names' first letters, to put before `_tag_names(names)`: one class test turns away most
    tags of a page, where the alternation tried its letters one by one (a fifth of a tag scan's time)."""
    return f"(?=[{''.join(sorted({name[0] for name in names}))}])"


# resiliparse tests every element against every skip selector (each one ~5% of its time here): only those present.
# The same scan notes the elements written as a browser shows them (rendering.py), to look for them in the tree
# only when the page has them (a second scan of the page or a tree query for them cost ~2% of extraction each).
_SKIP_NAMES = (*RUBY_SELECTORS, *_FALLBACK_SELECTORS)
_NOTED_NAMES = (*_SKIP_NAMES, "pre", "math")
_NOTED = re.compile(rf"<{_first_letter(_NOTED_NAMES)}({_tag_names(_NOTED_NAMES)})(?=[\t\n\f\r />])", re.I | re.A)
# boilerplate containers removed for the whole-page (fallback) extraction
_CHROME_SELECTORS = ("nav", "header", "footer", "aside", "form", "noscript", "template", "iframe", "svg",
                     "[role=navigation]", "[role=banner]", "[role=contentinfo]", "[aria-hidden=true]")

_CDATA_OPEN, _CDATA_CLOSE = "<![CDATA[", "]]>"
# A tag's inside is [^<>]*, not [^>]*: with [^>], a run of unclosed tags (`<rt <rt <rt ...`) made every start
# scan to the end of the page (quadratic: 1M characters took minutes)
_FEED_HEAD = re.compile(r"<(?:channel|feed)\b[^<>]*>", re.I)
_XML_DECL = re.compile(r"^\s*(?>(?:<!--.*?-->\s*)*)<\?xml[^>]*\?>", re.S)  # atomic: no 2^n backtracking over comments
_HAS_RUBY = re.compile(r"<r(?:tc?|p)\b", re.I)
# Readings are removed on the markup, so a `<rt` or `<!--` that is not markup must not be taken for it: a `<rt` in a
# comment, a script or an attribute value would start a "reading" that ends at the next ruby tag (up to 300
# characters of page text gone), a `<!--` there an unclosed comment that deletes the rest of the page. Two paths:
#
# Fast path, for pages whose every `<` is markup (the gate `_TEXT_LIKE_MARKUP` below finds none that is not):
# inert markup (comments, scripts, styles) goes first (`_INERT`), then readings and ruby text containers
# (`_RUBY_TEXT`) and `<rb>` tags (`_RUBY_BASES`). An unclosed comment or script runs to the end, as in a
# browser; `<!-->` and `<!--->` are whole empty comments, `--!>` ends one too; `<style-box>` is not a style; a
# raw-text end tag is `</script` then whitespace, `/` or `>` (`</script foo>` included).
_WS = "\t\n\f\r "  # HTML whitespace (\s also takes U+3000, U+00A0...)
_NAME_END = f"(?=[{_WS}/>])"  # a tag name ends at whitespace, `/` or `>` (`<rt-x>` is no <rt>)
# ASCII case folding (re.A): with Unicode folding `script` matched `ſcript`, which a browser shows as text.
_COMMENT = r"<!--(?:-?>|.*?(?:--!?>|\Z))"
# A script's text as the tokenizer reads it ("script data" states, WHATWG 13.2.5.4 on): `<!--` starts an escaped
# run, which `-->` ends (two or more dashes, then `>`: `<!-->` too); in one, `<script` starts a double-escaped run,
# which `</script` ends without ending the script (back to the escaped run) and `-->` ends with the escaped run
# (both loops stop there; the escaped run's end takes it). So `<!-- document.write('<script></script>') -->` is
# all script, as resiliparse (lexbor) reads it. Every loop takes a run or one `<`, possessively: linear.
_DASHES = r"-++(?!>)|-(?=>)"  # dashes that end no escaped run
_END_SCRIPT = rf"/script{_NAME_END}"
_DOUBLE_ESCAPED = rf"(?:[^<-]++|{_DASHES}|<(?!{_END_SCRIPT}))*+"
_ESCAPED = rf"(?:[^<-]++|{_DASHES}|<(?!/?script{_NAME_END})|<script{_NAME_END}{_DOUBLE_ESCAPED}(?:<{_END_SCRIPT})?+)*+"
_SCRIPT_TEXT = rf"(?:[^<]++|<(?!{_END_SCRIPT}|!--)|<!(?=--){_ESCAPED}(?:-++>)?+)*+"


def _script(attrs: str, end_attrs: str) -> str:
    """A <script> start tag, its text and its end tag (or the end of the page), tags read with these patterns."""
    return rf"<script{_NAME_END}{attrs}{_SCRIPT_TEXT}(?:<{_END_SCRIPT}{end_attrs})?+"


_INERT = re.compile(_COMMENT + "|" + _script("[^<>]*>", "[^<>]*+>?") +
                    rf"|<style{_NAME_END}[^<>]*>.*?(?:</style{_NAME_END}[^<>]*+>?|\Z)",
                    re.I | re.S | re.A)
# A reading (<rt>, <rp>) or a ruby text container (<rtc>: its text and readings are all annotation), and where one
# whose end tag is omitted ends, as in the tree builder: a reading at <rt>, <rp>, <rb>, <rtc> or </ruby>, an <rtc>
# at <rb>, <rtc> or </ruby> (the readings it holds do not end it). A stray </rtc> is left: parsers ignore it.
# Any other end tag may end it too (`<span><ruby>字<rt>注</span>本文`: the tree builder closes the reading at
# </span>), and so may a block start tag (<p>, <div>: `</ruby>` no longer reaches past one), and which ones do
# depends on the elements open around the ruby. So a reading holds only text and phrasing start tags (`_PHRASING`;
# an <rtc> its readings too) and ends at its own end tag or, unended, at a tag that ends it (text only) or at
# </ruby>; any other reading is left for the extractor, which skips it in the tree (RUBY_SELECTORS).
# So `<ruby>` and `</ruby>` are kept (both paths): a reading left alone (over 300 characters, holding a <div> or
# nested phrasing elements) ends at `</ruby>` in the tree; with the wrapper tags gone it ran on over the page text
# after them (`<ruby>字<rt>...<div>x</div></ruby>本文`: 本文 lost). `<rb>` tags go: resiliparse's main-content mode
# drops `<rb>` base text. A kept `<ruby>` is inline and holds the base text only, which resiliparse keeps.
_KEPT_RAW = ("textarea", "title", "xmp", "iframe", "noembed", "noframes")  # raw text and RCDATA, kept whole
_READING = rf"<(?P<rt>r[tp]|(?P<rtc>rtc)){_NAME_END}"
_READING_ENDS = rf"<(?:rb|rtc|(?(rtc)(?!)|r[tp])){_NAME_END}|</ruby{_NAME_END}"
_PHRASING = "b|i|em|strong|span|small|big|sub|sup|u|s|strike|tt|font|br|wbr|img|abbr|cite|code|q|mark|del|ins|kbd|var"


def _ruby_text(attrs: str) -> str:
    """A reading or an <rtc> up to its end tag or to where the tree builder ends it, tags read with `attrs` (both
    paths' patterns come from here). Possessive and bounded (300 characters or tags): linear."""
    in_rtc = rf"(?(rtc)</?r[tp]{_NAME_END}{attrs}|(?!))"  # in an <rtc>: its readings' tags
    text = rf"(?:[^<]|{in_rtc})"

    def held(n: int) -> str:  # text, a phrasing element holding text, a phrasing start tag
        return (rf"(?:[^<]|<(?P<ph{n}>{_PHRASING}){_NAME_END}{attrs}(?:[^<]{{0,300}}+</(?P=ph{n}){_NAME_END}{attrs})?+"
                rf"|{in_rtc})")
    return (_READING + attrs + rf"(?:{held(1)}{{0,300}}+</(?P=rt){_NAME_END}{attrs}"  # ended
            rf"|{text}{{0,300}}+(?={_READING_ENDS})|{held(2)}{{0,300}}+(?=</ruby{_NAME_END}))")  # unended


_RUBY_TEXT = re.compile(_ruby_text("[^<>]*+>"), re.I | re.S | re.A)
_RUBY_BASES = re.compile(rf"</?rb{_NAME_END}[^<>]*>", re.I | re.A)
_RUBY_TAGS = re.compile(rf"</?ruby{_NAME_END}[^<>]*>", re.I | re.A)  # only for a title's text
# Tag-aware path, for the rest: one pass reads the page as the WHATWG tokenizer does, token by token, and drops
# comments, scripts, styles, readings, ruby text containers and <rb> tags (<ruby> tags are kept); a `<` inside
# anything else is not looked at:
# - `_TAG_MARKUP` reads a tag (start or end) whole (states "tag name" to "after attribute value (quoted)"): an
#   attribute name runs to HTML whitespace, `/`, `>` or `=` and may hold `<` and quotes (its first character may be
#   `=`); only after that `=` can a value be quoted: "..." runs to the next `"`, '...' to the next `'`, else the
#   value is unquoted up to whitespace or `>` (`<`, `=` and quotes included: `<a title=<!--x>` is one tag). A
#   character right after a closing quote, a stray `"` too, starts the next attribute's name (parse error
#   missing-whitespace-between-attributes, reconsumed in "before attribute name"; in "attribute name" a quote or
#   `<` is a name character): `<a href="x"" title="<!--">` is one tag. A `/` not before `>` is skipped. Every part
#   is possessive and cannot fail, and a tag ends at `>` or, unclosed, at the end of the page (EOF in a tag): one
#   reading, one pass, and an unclosed tag does not make every later `<` rescan the page. The start and end tags of
#   the elements below are read the same way (`<script data-x="<">`, `</script x="<!--">`).
# - a reading starts only at a real <rt>/<rp>/<rtc> tag (not in an attribute value, a comment or a <textarea>);
# - raw text and RCDATA are kept as they are, up to their end tag (`</xmp` then whitespace, `/` or `>`) or the end
#   of the page: <textarea>, <title> (RCDATA), <xmp>, <iframe>, <noembed>, <noframes> (raw text), and <plaintext>,
#   which has no end tag. Not <noscript>: resiliparse parses with scripting off, so its content is markup, and a
#   comment there is a comment (one left open runs to the end of the page there too);
# - bogus comments are kept whole up to the first `>` (or the end of the page), as a browser reads them, so a
#   `<!--` in one starts nothing: `<?...>`, `<!x...>` (a doctype too), `</` then neither a letter nor `>`.
# - an <svg> or <math> element is kept whole (foreign content: `<style/>` and `<script/>` are whole elements there,
#   <title> and <style> no RCDATA/raw text); outside it the slash of `<script src=x/>` is ignored, as in HTML: the
#   script runs to its end tag. The gate sends pages with <svg> or <math> here.
# Kept markup stays for resiliparse, which reads it the same way.
# About 2.5 times slower than the fast path (drop_ruby on a 1 MB ruby page: 140 ms against 55), so only when the
# gate fires.
_ATTRS = (f"(?:[{_WS}/]++"  # between attributes
          f"|[^{_WS}/>][^{_WS}/>=]*+"  # an attribute name, then maybe its value:
          f"(?:[{_WS}]*+=[{_WS}]*+(?:\"[^\"]*+\"?|'[^']*+'?|[^{_WS}>\"'][^{_WS}>]*+)?)?+"
          ")*+>?")
_TAG_MARKUP = f"</?[a-z][^{_WS}/>]*+" + _ATTRS  # a tag name, then its attributes


def _raw_element(group: str, names: str) -> str:
    """Start tag of one of `names`, its text, and its end tag (or the end of the page)."""
    return rf"<(?P<{group}>{names}){_NAME_END}{_ATTRS}.*?(?:</(?P={group}){_NAME_END}{_ATTRS}|\Z)"


_RUBY_IN_MARKUP = re.compile(
    _COMMENT +  # dropped
    "|" + _script(_ATTRS, _ATTRS) + "|" + _raw_element("raw", "style") +  # dropped
    "|" + _ruby_text(_ATTRS) +  # a reading or <rtc>: dropped
    rf"|</?rb{_NAME_END}{_ATTRS}"  # an <rb> tag: dropped (<ruby> tags are kept)
    "|(?P<keep>" + _raw_element("text", "|".join(_KEPT_RAW)) + "|" + _raw_element("foreign", "svg|math") +  # kept whole:
    rf"|<plaintext{_NAME_END}.*"  # to the end of the page
    r"|<(?:[!?]|/(?![a-z>]))[^>]*+>?"  # a bogus comment or a doctype
    "|" + _TAG_MARKUP + ")",  # any other tag
    re.I | re.S | re.A)
# The gate: a `<` that may not be markup. A quoted value holding a `<`; a `<` in a <textarea>, <title> or raw-text
# element but its end tag; <plaintext>; a `<!--`, `<script`, `<style` or ruby tag with no `>` since the last `<`
# (in a tag: an unquoted value or a name, as after a stray quote; in a bogus comment: `<? <!-- >`; missed when a
# quoted `>` comes between, as in `<a title="a>b" alt=<!--x>`). Each alternative scans from its `=` or `<` to the
# next quote, `<` or `>` at most: linear.
_MARKUP_START = "<(?:!--|/?script|/?style|/?r[tpbu])"  # what must not start inside a tag
_TEXT_LIKE_MARKUP = re.compile(r"=\s*(?:\"[^\"<]*<|'[^'<]*<)"
                               # a first-letter check: the names below cost 1 ms a 1 MB page, not 6
                               rf"|<(?=[{''.join(sorted({n[0] for n in (*_KEPT_RAW, 'plaintext')}))}])"
                               rf"(?:({_tag_names(_KEPT_RAW)})(?=[\s/>])"
                               r"[^<>]*>[^<]*<(?!/\1[\s/>])"
                               r"|plaintext(?=[\s/>]))"
                               rf"|<[^<>]*+{_MARKUP_START}"
                               rf"|=\s*+[^\s>\"'=<]*+{_MARKUP_START}"  # unquoted, after a quoted >
                               r"|<(?:svg|math)(?=[\s/>])",  # foreign content: <style/> and <script/> close there
                               re.I | re.A)
# resiliparse 2.0's main-content mode drops every text node of exactly 3 UTF-8 bytes as an "unprintable private-use
# icon" (its test reads the bytes as one little-endian number, which every 3-byte character passes): in Japanese
# the particles and punctuation between inline elements (<b>東京</b>と<b>大阪</b>) and one-kanji <em>. Such a node
# gets a noncharacter appended, removed again from the output (a character reference only if it stands for
# such a character).
# Its whitespace runs are possessive except where a space is itself such a character (U+3000 and the other
# `_WIDE_SPACES`: `>\u3000<` is one): a backtracking `\s*` after every `>` of the page took half of its time.
_WIDE_SPACES = "\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # \s in U+0800..U+FFFF (tested)
_SHORT_NODE_CHAR = r"(?:[\u0800-\uffff]|&#?\w{1,12};)"
_SHORT_TEXT_NODE = re.compile(rf">([^\S\u0800-\uffff]*+(?:{_SHORT_NODE_CHAR}|(?=[{_WIDE_SPACES}])\s*{_SHORT_NODE_CHAR})"
                              r"\s*+)<")
# On a page of one-byte characters (all below U+0100) only a character reference can be such a node: the scan looks
# for `&` (a few per page) rather than trying the pattern at every `>`, a third of the shared WARC's markup
# (`_padded_reference` checks that `>` and white space alone are before it, as the pattern above has it).
_SHORT_REFERENCE = re.compile(r"&(?<=[>\s]&)#?\w{1,12};\s*+<")
_PAD = "\ufdd0"
_LINK_START = re.compile(r"<a[\s>]", re.I)
# a tag as HTML reads one: `<` then a letter, `/` and a letter, `!` or `?`; `<速報>` and `< 5 >` are text
_ANY_TAG = re.compile(r"<(?:/?[A-Za-z]|[!?])[^<>]*>")
# an Atom text construct's or content's kind (RFC 4287 3.1: type text|html|xhtml; Atom 0.3: a MIME type and
# mode="xml" for inline markup)
_FEED_TYPE = re.compile(r"""\s(type|mode)\s*=\s*["']\s*([^"'<>]*)""", re.I)
_PLAIN_TYPES = frozenset({"text", "text/plain"})
_INLINE_TYPES = frozenset({"xhtml", "application/xhtml+xml"})
_FEED_ROOT = re.compile(r"<(?:rss|rdf:RDF|feed)\b", re.I)
_FEED_ITEM = re.compile(r"<(item|entry)\b[^<>]*>", re.I)
_FEED_BODY = ("content:encoded", "content", "description", "summary")
_LOOKS_HTML = re.compile(r"<(?:!doctype|html|head|body|p|div|br)\b", re.I)
# elements whose end tag is required: their nesting is the tree depth (p, li, td... close implicitly)
NESTED_TAGS = ("div", "span", "section", "article", "table", "ul", "ol", "dl", "blockquote", "font", "b", "i", "em",
               "strong", "a", "center", "form")
_NESTING = re.compile(rf"<(/?){_first_letter(NESTED_TAGS)}{_tag_names(NESTED_TAGS)}[\s>]", re.I)
_SPACE_RUN = re.compile(" {2,}")
_PRE_LINES = re.compile(f"({rendering.PRE_LINE}[^\n]*)")  # a <pre> line (rendering.mark_pre_text marks its start)
_BLANK_RUN = re.compile("\n{3,}")
_BLANKS = re.compile(r"\n{2,}")


def page_to_text(body: bytes, http_content_type: str | None, url: str | None = None) -> tuple[str, dict]:
    """Raw payload -> text and meta (charset decision + extraction meta). Raises `CharsetError`.

    `text/plain` payloads that do not look like HTML are kept as they are (line structure intact).
    """
    from pipeline.charset import decode_html

    decoded, decision = decode_html(body, http_content_type)
    mime = (http_content_type or "").split(";", 1)[0].strip().lower()
    if mime == "text/plain" and not _LOOKS_HTML.search(decoded[:2048]):
        return _tidy(decoded), {**decision, "title": None, "extractor": "plain_text"}
    text, meta = html_to_text(decoded, url)
    return text, {**decision, **meta}


def html_to_text(html: str, url: str | None = None, extractor: str | None = None) -> tuple[str, dict]:
    """Main text of a page and meta (`title`, `extractor`, and `html_truncated` / `fallback` when they apply)."""
    name = extractor or DEFAULT_EXTRACTOR
    meta: dict = {}
    if len(html) > MAX_HTML_CHARS:
        cut = html.rfind(">", 0, MAX_HTML_CHARS)
        html = html[: cut + 1 if cut > 0 else MAX_HTML_CHARS]
        meta["html_truncated"] = True
    html = rendering.mark_segment_breaks(html)  # CSS: no space for a source line break between Japanese characters
    feed = _feed_text(html) if _FEED_ROOT.search(html[:4096]) else None
    if feed is not None and feed[1].strip():
        meta.update(title=feed[0], extractor="feed")
        return _tidy(feed[1]), meta
    html = drop_ruby(_prepare(html))
    if _too_deep(html):
        title, text = _title_of(html), ""
        meta["fallback"] = "markup_too_deep"
    else:
        title, text = EXTRACTORS[name](html, url)
    meta["title"] = title
    meta["extractor"] = name
    if _too_little(text):
        whole = _visible_text(html)
        if len(whole) > len(text):
            text = whole
            meta["extractor"] = f"{name}+visible_text"
            meta.setdefault("fallback", "main_content_empty")
    return _tidy(text), meta


def _prepare(html: str) -> str:
    """Feeds and XHTML served as XML: drop the XML declaration and unwrap CDATA so HTML parsers see text."""
    if html.lstrip().startswith(("<?xml", "<!--")):
        html = _XML_DECL.sub("", html, count=1)
    return _unwrap_cdata(html) if _CDATA_OPEN in html else html


def _unwrap_cdata(text: str) -> str:
    """`<![CDATA[x]]>` -> `x` with str.find (a lazy regex is quadratic on unclosed sections)."""
    out, pos = [], 0
    while (start := text.find(_CDATA_OPEN, pos)) >= 0:
        end = text.find(_CDATA_CLOSE, start + len(_CDATA_OPEN))
        out.append(text[pos:start])
        if end < 0:
            out.append(text[start + len(_CDATA_OPEN):])
            return "".join(out)
        out.append(text[start + len(_CDATA_OPEN):end])
        pos = end + len(_CDATA_CLOSE)
    out.append(text[pos:])
    return "".join(out)


def _element(text: str, tag: str, pos: int = 0, end: int | None = None) -> str | None:
    """Inner markup of the first `<tag ...>...</tag>` in text[pos:end] (one open, one close search)."""
    found = _element_and_start_tag(text, tag, pos, end)
    return found[1] if found else None


def _element_and_start_tag(text: str, tag: str, pos: int = 0, end: int | None = None) -> tuple[str, str] | None:
    """(start tag, inner markup) of the first `<tag ...>...</tag>` in text[pos:end]."""
    start_tag, end_tag = _tag_patterns(tag)
    opened = start_tag.search(text, pos, len(text) if end is None else end)
    if not opened:
        return None
    closed = end_tag.search(text, opened.end(), len(text) if end is None else end)
    return (opened.group(), text[opened.end():closed.start()]) if closed else None


@functools.cache
def _tag_patterns(tag: str) -> tuple[re.Pattern, re.Pattern]:
    """Start and end tag patterns of `tag`, compiled once (a feed asks for up to five tags an item)."""
    return re.compile(rf"<{re.escape(tag)}\b[^<>]*>", re.I), re.compile(rf"</{re.escape(tag)}\s*>", re.I)


def drop_ruby(html: str) -> str:
    """Keep ruby base text, drop readings: `<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>` ->
    `<ruby>漢字</ruby>`, and ruby text containers: `<ruby>東京<rtc>Tokyo</rtc></ruby>` -> `<ruby>東京</ruby>`.

    Done on the markup (not by the extractors' skip lists) because resiliparse's main-content mode
    also drops `<rb>` bases (`<rb>` tags are removed), and because `</rt>` may be omitted in HTML (a reading
    then ends at the next `<rt>`/`<rp>`/`<rb>` or at `</ruby>`; readings longer than 300 characters are left
    alone). `<ruby>` tags are kept: a reading left alone is skipped in the tree, where `</ruby>` ends it.
    """
    if not _HAS_RUBY.search(html):
        return html
    if _TEXT_LIKE_MARKUP.search(html):
        return _RUBY_IN_MARKUP.sub(r"\g<keep>", html)
    return _RUBY_BASES.sub("", _RUBY_TEXT.sub("", _INERT.sub("", html)))


def _feed_text(xml: str) -> tuple[str | None, str] | None:
    """RSS / RDF / Atom: each item's title and body (CDATA or entity-escaped HTML) as paragraphs."""
    starts = list(_FEED_ITEM.finditer(xml))
    if not starts:
        return None
    items = []
    for k, start in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(xml)
        item = xml[start.end():end]
        parts = [_feed_field(item, "title", markup=False)]
        parts += [next((body for tag in _FEED_BODY if (body := _feed_field(item, tag, markup=True))), "")]
        items.append(_BLANKS.sub("\n", "\n".join(part for part in parts if part)))
    head = xml[: starts[0].start()]
    return _clean_title(_feed_field(head, "title", markup=False)), "\n\n".join(items)


def _feed_field(item: str, tag: str, markup: bool) -> str:
    """A field's text. Escaped HTML (RSS, Atom type="html") is unescaped, then read as HTML; Atom's type="text"
    is plain text (`x&lt;y の場合` is `x<y の場合`, not a `<y` tag that ate the sentence) and type="xhtml" is
    markup as it stands (unescaped, `&lt;script&gt;` became a script that hid the rest of the entry). In a title
    read as HTML only HTML's own tags are markup, the inline ones joining the text on their sides (東京<b>都</b>庁:
    東京都庁), so `vector&lt;int&gt;` keeps its `<int>` (an untyped Atom title is text by RFC 4287, but feeds
    double-escape HTML in theirs: `&amp;lt;DVD版&gt;`, `&amp;nbsp;` on the shared WARC)."""
    found = _element_and_start_tag(item, tag)
    if not found or not found[1]:
        return ""
    start, value = found
    kind = _feed_kind(start)
    if _CDATA_OPEN in value:
        inner = _unwrap_cdata(value)
    else:
        inner = value if kind == "xhtml" else html_lib.unescape(value)  # escaped HTML -> HTML
    if kind == "text":
        return " ".join(inner.split()) if not markup else inner
    if not markup:
        return rendering.title_text(inner)
    return _visible_text(drop_ruby(inner))


def _feed_kind(start_tag: str) -> str:
    """text, html or xhtml, from a field's `type` (RFC 4287) and Atom 0.3's `mode`; RSS fields have neither: html."""
    kinds = {name.lower(): kind.strip().lower() for name, kind in _FEED_TYPE.findall(start_tag)}
    if kinds.get("type") in _PLAIN_TYPES:
        return "text"
    if kinds.get("mode") == "escaped":
        return "html"
    return "xhtml" if kinds.get("type") in _INLINE_TYPES or kinds.get("mode") == "xml" else "html"


def _too_deep(html: str) -> bool:
    """Nesting deeper than MAX_DEPTH; the exact scan runs only when there are enough opening tags to get there.
    The depth walk is numpy's (a Python loop over the tags was an eighth of extraction on the shared WARC): a
    closing tag with nothing open does not lower the depth, d = max(d - 1, 0), which is the running sum minus
    its running minimum below zero."""
    if html.count("<") - html.count("</") <= MAX_DEPTH:  # counting passes
        return False
    closing = np.array(_NESTING.findall(html), dtype="U1") == "/"
    if closing.size - np.count_nonzero(closing) <= MAX_DEPTH:
        return False
    level = np.cumsum(1 - 2 * closing.astype(np.int64))
    return bool((level - np.minimum.accumulate(np.minimum(level, 0))).max() > MAX_DEPTH)


def _too_little(text: str) -> bool:
    return len(text.strip()) < MIN_MAIN_CHARS


def _tidy(text: str) -> str:
    """Runs of spaces, tabs, U+3000 and U+00A0 -> one space; lines stripped; at most one blank line in a row.
    str.replace and `in` before any regex: a character-class scan of every page's text was 10% of extraction.
    U+FDD0, the short-text-node pad, is never output, a page's own either (the visible-text fallback kept it).
    The segment-break marks go with the spaces the extractor made of their line breaks (`rendering.unmark`); a
    `<pre>` line (it starts with PRE_LINE) keeps its indentation and space runs, only trailing space goes."""
    text = rendering.unmark(text.replace("\r", "\n"))
    if _PAD in text:
        text = text.replace(_PAD, "")
    if rendering.PRE_LINE not in text:
        text = _tidy_lines(text).strip()
    else:  # the other lines as always; a <pre> line loses its trailing white space only (NBSP is a space)
        runs = _PRE_LINES.split(text)
        text = "".join([_pre_line(run) if k % 2 else _tidy_lines(run) for k, run in enumerate(runs)]).strip("\n")
    return _BLANK_RUN.sub("\n\n", text) if "\n\n\n" in text else text


def _pre_line(line: str) -> str:
    return line.replace(rendering.PRE_LINE, "").replace("\xa0", " ").rstrip()  # NBSP as the other lines have it


def _tidy_lines(text: str) -> str:
    """_tidy's spaces rule: each line stripped, inner runs of white space one space; as many lines as given."""
    for space in "\t\u3000\xa0":
        if space in text:
            text = text.replace(space, " ")
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    return "\n".join([line.strip() for line in text.split("\n")])


def _title_of(html: str) -> str | None:
    head = _FEED_HEAD.search(html, 0, 200_000)
    raw = _element(html, "title", head.end() if head else 0, 200_000)
    if raw is None and head:
        raw = _element(html, "title", 0, 200_000)
    if not raw:
        return None
    return _clean_title(html_lib.unescape(_ANY_TAG.sub("", _unwrap_cdata(raw))))


def _clean_title(title: str | None) -> str | None:
    if title:  # our marks never reach the output, nor a page's own (noncharacters)
        title = rendering.unmark(title)
        for mark in (_PAD, rendering.PRE_LINE):
            title = title.replace(mark, "") if mark in title else title
    if title and _HAS_RUBY.search(title):  # a <title> kept whole holds its ruby markup as text: <ruby> tags too
        title = _RUBY_TAGS.sub("", drop_ruby(title))
    return " ".join(title[: MAX_TITLE_CHARS * 4].split())[:MAX_TITLE_CHARS] or None if title else None


# --------------------------------------------------------------------------------------- resiliparse
# resiliparse's trees, nodes and node lists are PyO3 `unsendable`: freed on a thread other than the one that made
# them, they print "... is unsendable, but is being dropped on another thread" on stderr (and leak). A frame that
# something else holds when its function returns keeps that function's locals alive, and a Dask worker's profiler
# holds the task thread's frames (sys._current_frames, every 10 ms) from its IO-loop thread: a tree or a node in
# a local then died on that thread (6 of 20 DaskRunner runs on the shared WARC). So a function here that has one
# in a local unbinds it before it returns or raises (`finally`), and none is held by a comprehension's own frame.
def _resiliparse(html: str, url: str | None) -> tuple[str | None, str]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    present = _present(html)
    tree = HTMLTree.parse(_pad_short_nodes(rendering.mark_pre_text(html) if "pre" in present else html))
    try:
        _keep_content_lists(tree)
        if "math" in present:
            rendering.formulas_as_text(tree, _PAD)
        text = extract_plain_text(tree, preserve_formatting=True, main_content=True, list_bullets=False,
                                  alt_texts=False, links=False, form_fields=False, noscript=False, comments=False,
                                  skip_elements=_skipped(present))
        title = tree.title
    finally:
        tree = None  # freed here, on this thread (see above)
    return _clean_title(title) or _title_of(html), text.replace(_PAD, "")  # before _too_little counts the text


def _present(html: str) -> frozenset[str]:
    """Which of _NOTED_NAMES the page has (as start tags)."""
    return frozenset(map(str.lower, _NOTED.findall(html)))


def _skipped(present: frozenset[str]) -> list[str]:
    return [s for s in _SKIP_NAMES if s in present]


def _pad_short_nodes(html: str) -> str:
    """`_SHORT_TEXT_NODE.sub(_padded, html)`, faster on a page of one-byte characters (see `_SHORT_REFERENCE`)."""
    if not rendering.one_byte_characters(html):
        return _SHORT_TEXT_NODE.sub(_padded, html)
    return _pad_short_references(html) if "&" in html else html


def _pad_short_references(html: str) -> str:
    """`_SHORT_TEXT_NODE.sub(_padded, html)` for markup whose characters are all below U+0100."""
    return _SHORT_REFERENCE.sub(_padded_reference, html)


def _padded_reference(m: re.Match) -> str:
    text, start = m.string, m.start()
    while start and text[start - 1].isspace():  # linear: each run of white space ends at one `&`
        start -= 1
    node = m.group(0)[:-1]  # the reference and the white space after it
    if not start or text[start - 1] != ">" or not "\u0800" <= html_lib.unescape(node.strip()) <= "\uffff":
        return m.group(0)
    return f"{node}{_PAD}<"


def _padded(m: re.Match) -> str:
    node = m.group(1)
    if "&" in node and not "\u0800" <= html_lib.unescape(node.strip()) <= "\uffff":
        return m.group(0)
    return f">{node}{_PAD}<"


_TAG_NAME = attrgetter("tag")


def _keep_content_lists(tree: HTMLTree) -> None:
    """resiliparse's main-content mode drops every `<ul>` less than four levels below `<body>` as global
    navigation, whatever it holds. One that reads as content (links in fewer than half its items, items of at
    least MIN_LIST_ITEM_CHARS on average) becomes an `<ol>`, which that rule leaves alone. No node outlives the
    call in this frame (see the note above `_resiliparse`)."""
    body = ul = ol = child = None
    try:
        body = tree.body
        if body is None:
            return
        for ul in body.query_selector_all("body > ul, body > * > ul, body > * > * > ul"):
            items = list(map(_TAG_NAME, ul.children)).count("li")  # map: no generator frame holding a child
            text = len("".join(ul.text.split()))
            if not items or text < MIN_LIST_ITEM_CHARS * items:
                continue
            if len(_LINK_START.findall(ul.html)) * 2 >= items:  # a link in every other item: a menu or a link list
                continue
            ol = tree.create_element("ol")
            for child in list(ul.child_nodes):
                ol.append_child(child)
            ul.replace_with(ol)
    finally:
        tree = body = ul = ol = child = None


def _visible_text(html: str) -> str:
    """All visible text minus page chrome: the fallback when main-content extraction finds nothing."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    present = _present(html)
    tree = HTMLTree.parse(rendering.mark_pre_text(html) if "pre" in present else html)
    try:
        if "math" in present:
            rendering.formulas_as_text(tree, _PAD)
        text = extract_plain_text(tree, preserve_formatting=True, main_content=False, list_bullets=False,
                                  alt_texts=False, links=False, form_fields=False, noscript=False,
                                  skip_elements=[*_skipped(present), *_CHROME_SELECTORS])
    finally:
        tree = None
    return text.replace(_PAD, "") if "math" in present else text  # a formula's pad (it makes no text longer)


# --------------------------------------------------------------------------------------- trafilatura
def _trafilatura(html: str, url: str | None, fast: bool = False) -> tuple[str | None, str]:
    import logging

    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # it logs every page it cannot parse
    markup = rendering.for_trafilatura(html, _present(html))
    doc = trafilatura.bare_extraction(markup, url=url, fast=fast, include_comments=False, include_tables=True,
                                      include_images=False, include_links=False, with_metadata=True,
                                      deduplicate=False,
                                      prune_xpath=[f"//{tag}" for tag in _SKIP_NAMES])
    if doc is None:
        return _title_of(html), ""
    return _clean_title(doc.title) or _title_of(html), (doc.text or "")


EXTRACTORS: dict[str, Callable[[str, str | None], tuple[str | None, str]]] = {
    "resiliparse": _resiliparse,
    "trafilatura": _trafilatura,
    "trafilatura_fast": lambda html, url: _trafilatura(html, url, fast=True),
}
