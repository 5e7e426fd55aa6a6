"""JATS article XML reader (as J-STAGE and PMC publish it): one document per outermost `<article>`.

Text = article title, translated titles, abstracts (incl. trans-abstract), then body section titles and
paragraphs (a section's or list item's label starts its line; superscript digits are superscript characters).
Back matter (ref-list, footnotes, acknowledgements), figures, tables and formulas are left out: they are not
running prose and references would repeat across every paper of a field.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.xmlstream import Rendered, element_text, local_name, read_xml_records

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
SKIP = {"ref-list", "fn-group", "fn", "fig", "fig-group", "table-wrap", "table-wrap-group", "array", "disp-formula",
        "supplementary-material", "ack", "back", "sub-article", "response", "label", "graphic", "media",
        "object-id"}
BLOCKS = {"p", "title", "subtitle", "list-item", "def", "term", "disp-quote", "attrib", "verse-line", "statement",
          "preformat", "code", "speaker"}
NESTED = BLOCKS | {"sec", "list", "def-list", "boxed-text", "speech", "verse-group"}  # block-level: lines of their own
_WS = re.compile(r"[^\S\u3000]+")  # U+3000 is text (the normalizer keeps it too), not layout
# a line break between two Japanese characters is layout, not a space (日本語の\n  文章 → 日本語の文章)
_CJK = "\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[ \t]*\n\\s*(?=[{_CJK}])")
# a <label> numbering these (1. はじめに, (1) in a list) starts the title or paragraph after it (it was dropped)
LABELLED = {"sec", "app", "list-item", "statement", "boxed-text", "def-item"}
# a superscript of digits and signs (10<sup>3</sup> read 103, cm<sup>2</sup> cm2) in superscript characters
_SUPERSCRIPT = re.compile(r"[0-9+\-\u2212]+")
_TO_SUPERSCRIPT = str.maketrans("0123456789+-\u2212", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207a\u207b\u207b")
_CC = re.compile(r"creativecommons\.org/(?:licenses/([a-z-]+)/(\d\.\d)|publicdomain/(zero)/1\.0)", re.I)


def clean(text: str) -> str:
    """Collapse pretty-printing whitespace; keep single spaces (English words, mixed text) and ideographic spaces."""
    return _WS.sub(" ", _CJK_BREAK.sub("", text)).strip()


def text_of(el: Any, skip: frozenset[str] | set[str] = SKIP) -> str:
    """All text under el except `skip` subtrees (e.g. a table inside a paragraph)."""
    return clean(element_text(el, skip))


def block_lines(el: Any, lines: list[str]) -> None:
    """Paragraph-level lines of a section-like element, depth first, skipping back matter and floats."""
    for child in el:
        name = local_name(child.tag)
        if name in SKIP:
            continue
        if name in BLOCKS:
            _block(child, lines)
        else:
            block_lines(child, lines)


def _block(el: Any, lines: list[str]) -> None:
    """A paragraph-like element: its own words as lines, cut where a nested block (a list, a quote) sits, so
    the words after a list follow it."""
    run = [el.text or ""]
    for child in el:
        name = local_name(child.tag)
        if name in NESTED:
            _flush(run, lines)
            if name in BLOCKS:
                _block(child, lines)
            else:
                block_lines(child, lines)
            run = []
        elif name not in SKIP:
            run.append(element_text(child, SKIP))
        run.append(child.tail or "")
    _flush(run, lines)


def _flush(run: list[str], lines: list[str]) -> None:
    if text := clean("".join(run)):
        lines.append(text)


def _prepare(article: Any) -> None:
    """Edits the parsed record before its text is read: a `<break/>` is a space (Deep learning<break/>for
    gave "learningfor"); `<alternatives>` keep one form, MathML before TeX (the whole element was skipped,
    and an inline formula given both ways vanished); `LABELLED` labels and `_SUPERSCRIPT` superscripts."""
    for el in list(article.iter()):
        name = local_name(el.tag)
        if name == "break":
            el.tail = " " + (el.tail or "")
        elif name == "alternatives":
            forms = sorted(el, key=lambda c: {"math": 0, "tex-math": 1}.get(local_name(c.tag), 2))
            for extra in forms[1:]:
                el.remove(extra)
        elif name == "sup" and len(el) == 0 and el.text and _SUPERSCRIPT.fullmatch(el.text.strip()):
            el.text = el.text.strip().translate(_TO_SUPERSCRIPT)
        elif name in LABELLED:
            _label_first(el)


def _label_first(el: Any) -> None:
    children = list(el)
    for k, child in enumerate(children[:-1]):
        nxt = children[k + 1]
        if local_name(child.tag) == "label" and local_name(nxt.tag) in ("title", "p") and (label := text_of(child)):
            nxt.text = f"{label} {nxt.text or ''}"


def _find(el: Any, path: str) -> Any | None:
    """First descendant along a '/'-separated path of local names (namespace-agnostic)."""
    nodes = [el]
    for step in path.split("/"):
        nodes = [c for n in nodes for c in n if local_name(c.tag) == step]
        if not nodes:
            return None
    return nodes[0]


def _find_all(el: Any, name: str) -> list[Any]:
    return [d for d in el.iter() if local_name(d.tag) == name]


def license_id(url_or_text: str) -> str:
    """SPDX-style id for Creative Commons URLs ('CC-BY-4.0', 'CC0-1.0'); anything else unchanged."""
    m = _CC.search(url_or_text)
    if not m:
        return url_or_text
    if m.group(3):
        return "CC0-1.0"
    return f"CC-{m.group(1).upper()}-{m.group(2)}"


def _pub_date(meta_el: Any) -> str | None:
    """The fullest publication date (a year-only print date came before the electronic one's day)."""
    best: tuple[bool, int] | None = None
    date = None
    for d in meta_el:
        if local_name(d.tag) != "pub-date":
            continue
        parts = [text_of(p) for name in ("year", "month", "day") if (p := _find(d, name)) is not None]
        if not (parts := [p for p in parts if p.isdigit()]):
            continue
        rank = ((d.get("pub-type") or d.get("date-type") or "") in ("epub", "pub", "ppub"), len(parts))
        if best is None or rank > best:
            best, date = rank, "-".join([parts[0]] + [p.zfill(2) for p in parts[1:]])
    return date


def _license(meta_el: Any) -> tuple[str | None, str | None]:
    lic = _find(meta_el, "permissions/license")
    if lic is None:
        return None, None
    ref = next((text_of(r) for r in lic.iter() if local_name(r.tag) == "license_ref"), "")
    links = [href for r in lic.iter() if (href := r.get(XLINK_HREF)) and _CC.search(href)]  # license-p's ext-link
    url = ref or lic.get(XLINK_HREF) or (links[0] if links else "")
    if url:
        return license_id(url), url
    text = text_of(lic)
    return (license_id(text), None) if text else (None, None)


def render_article(article: Any, context: dict[str, str]) -> Rendered:
    """(text, meta, licence, url) of one <article>; url = its self-uri, else its DOI resolver link."""
    meta: dict[str, Any] = {}
    if article.get(XML_LANG):
        meta["lang"] = article.get(XML_LANG)
    if article.get("article-type"):
        meta["article_type"] = article.get("article-type")
    lines: list[str] = []
    _prepare(article)
    front = _find(article, "front")
    art_meta = _find(front, "article-meta") if front is not None else None
    lic = url = None
    if front is not None:
        journal = _find(front, "journal-meta/journal-title-group/journal-title")
        if journal is None:
            journal = _find(front, "journal-meta/journal-title")
        if journal is not None:
            meta["journal"] = text_of(journal)
    if art_meta is not None:
        title = _find(art_meta, "title-group/article-title")
        if title is not None and (t := text_of(title)):
            meta["title"] = t
            lines.append(t)
        group = _find(art_meta, "title-group")
        subtitle = _find(group, "subtitle") if group is not None else None
        if subtitle is not None and (t := text_of(subtitle)):
            meta["subtitle"] = t
            lines.append(t)
        trans = [text_of(t) for n in ("trans-title", "trans-subtitle") for t in _find_all(group, n)] \
            if group is not None else []
        if trans := [t for t in trans if t]:
            meta["trans_title"] = trans[0]
            lines.extend(trans)
        for id_el in art_meta:
            if local_name(id_el.tag) == "article-id" and id_el.get("pub-id-type") == "doi":
                meta["doi"] = text_of(id_el)
        if date := _pub_date(art_meta):
            meta["pub_date"] = date
        keywords = [text_of(k) for k in _find_all(art_meta, "kwd")]
        if keywords := [k for k in keywords if k]:
            meta["keywords"] = keywords
        lic, lic_url = _license(art_meta)
        if lic_url:
            meta["license_url"] = lic_url
        self_uri = _find(art_meta, "self-uri")
        url = self_uri.get(XLINK_HREF) if self_uri is not None else None
        if not url and meta.get("doi"):
            url = "https://doi.org/" + meta["doi"]
        for abstract in art_meta:
            if local_name(abstract.tag) in ("abstract", "trans-abstract"):
                block_lines(abstract, lines)
    body = _find(article, "body")
    if body is not None:
        block_lines(body, lines)
    return "\n".join(lines), meta, lic, url


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """One RawDoc per outermost <article>, source_id "path#/article[1]" (or its element path in a wrapper)."""
    yield from read_xml_records(path, source, "article", render_article)
