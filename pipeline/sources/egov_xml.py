"""e-Gov 法令標準XML reader: one document per `<Law>`, laid out as the official text is printed.

Accepts bare `<Law>` files and the 法令API wrapper (`DataRoot/ApplData/LawFullText/Law`). Lines follow
the printed statute: title, （law number）, enact statement, chapter titles, （caption）, "第一条　…",
"２　…" for later paragraphs, "一　…" for items; ruby readings (`Rt`) are dropped so the text reads as
written; table rows become tab-separated cells. Parsing is only through defusedxml (see io.py).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from pipeline.sources.base import RawDoc, SourceConfig, Unreadable
from pipeline.sources.xmlstream import Rendered, element_text, local_name, read_xml_records

IDEOGRAPHIC_SPACE = "\u3000"
E_GOV_LAW_URL = "https://laws.e-gov.go.jp/law/"  # + LawId, when the 法令API wrapper gives one
# element -> (its title/number child, its sentence child); the title prefixes the sentence on one line
NUMBERED: dict[str, tuple[str, str]] = {
    "Paragraph": ("ParagraphNum", "ParagraphSentence"),
    "Item": ("ItemTitle", "ItemSentence"),
    "Class": ("ClassTitle", "ClassSentence"),
    **{f"Subitem{i}": (f"Subitem{i}Title", f"Subitem{i}Sentence") for i in range(1, 11)},
}
CAPTIONS = {"ParagraphCaption", "ArticleCaption"}
APPEND_TO_PREVIOUS = {"ArticleRange", "RelatedArticleNum"}  # "（第一条―第三条）" after a title
# elements read as part of a sentence's line; Fig is an empty image reference (ArithFormula Ｓ＝Ａ×<Fig/>（円）)
INLINE = {"Ruby", "Rt", "Sup", "Sub", "Line", "QuoteStruct", "ArithFormula", "Fig"}
# inline elements that may hold blocks: QuoteStruct and ArithFormula are `any` in the schema, a Line holds either
CONTAINERS = {"QuoteStruct", "ArithFormula", "Line"}
LEAF = INLINE - {"ArithFormula"}  # an element holding only these is one line; formulas side by side get a line each
LAW_ATTRS = {"Era": "era", "Year": "year", "Num": "num", "LawType": "law_type", "Lang": "lang",
             "PromulgateMonth": "promulgate_month", "PromulgateDay": "promulgate_day"}
_FORMATTING_WS = re.compile(r"(?<!\s)\s*\n\s*")  # from a run's start only: a long run without \n was quadratic
_HOLDS: ContextVar[dict[int, bool] | None] = ContextVar("_HOLDS", default=None)  # _holds_blocks by id(element)


def inline_text(el: Any) -> str:
    """Text as printed: ruby readings (Rt) dropped, pretty-printing newlines removed. A QuoteStruct, ArithFormula or
    Line that holds blocks (an amended article, a table) gives their lines, each text around them a line of its own:
    flattened, they ran together with each other and the sentence (改める。（定義）第二条引用条文。)."""
    if not any(_holds_blocks(c) for c in el):
        return _flat(element_text(el, {"Rt"}))
    lines: list[str] = []
    _mixed(el, lines)
    return "\n".join(lines)


def _holds_blocks(el: Any) -> bool:
    """Memoized per law (render_law): each level of nested Lines asked again for its whole subtree (90 levels over
    300k inline elements took 40 s)."""
    if local_name(el.tag) not in CONTAINERS:
        return False
    memo = _HOLDS.get()
    if memo is not None and id(el) in memo:
        return memo[id(el)]
    found = any(local_name(c.tag) not in INLINE or _holds_blocks(c) for c in el)
    if memo is not None:
        memo[id(el)] = found
    return found


def _mixed(el: Any, lines: list[str]) -> None:
    """Lines of content mixing text and blocks (the schema's `any`: QuoteStruct, ArithFormula, Note, Style, Format):
    each run of text and inline elements is a line, each block gives its own lines, in document order."""
    run = [el.text or ""]
    for child in el:
        name = local_name(child.tag)
        if name in INLINE and not _holds_blocks(child):
            run.append("" if name == "Rt" else element_text(child, {"Rt"}))
        else:
            _emit(lines, _flat("".join(run)))
            run = []
            if name in INLINE:
                _mixed(child, lines)
            else:
                render_block(child, lines)
        run.append(child.tail or "")
    _emit(lines, _flat("".join(run)))


def _flat(text: str) -> str:
    """Printed text: pretty-printing newlines and the indentation around them removed."""
    return _FORMATTING_WS.sub("", text).strip()


def _block_edges(el: Any) -> tuple[bool, bool]:
    """Whether el's content starts / ends with a block-holding element (nothing but blanks before / after it)."""
    children = list(el)
    if not children:
        return False, False
    return (not (el.text or "").strip() and _holds_blocks(children[0]),
            not (children[-1].tail or "").strip() and _holds_blocks(children[-1]))


def sentence_text(el: Any) -> str:
    """A *Sentence container: Sentences run on (a line break where one ends or starts with quoted blocks); Columns
    (term / definition) are split by a full-width space."""
    children = [c for c in el if local_name(c.tag) in ("Sentence", "Column")]
    if not children:
        return inline_text(el)
    if any(local_name(c.tag) == "Column" for c in children):
        return IDEOGRAPHIC_SPACE.join(sentence_text(c) for c in children if local_name(c.tag) == "Column")
    parts: list[str] = []
    block_before = False
    for child in children:
        if text := inline_text(child):
            starts, ends = _block_edges(child)
            if parts and (block_before or starts):
                parts.append("\n")
            parts.append(text)
            block_before = ends
    return "".join(parts)


def _child(el: Any, name: str) -> Any | None:
    return next((c for c in el if local_name(c.tag) == name), None)


def _emit(lines: list[str], text: str) -> None:
    if text:
        lines.append(text)


def _cell_text(cell: Any) -> str:
    if all(local_name(c.tag) in ("Sentence", "Column") for c in cell):
        return sentence_text(cell)
    sub: list[str] = []
    render_block(cell, sub)
    return " ".join(sub)


def render_block(el: Any, lines: list[str], prefix: str = "") -> None:
    """Append the printed lines of one structural element (and its descendants) to `lines`."""
    name = local_name(el.tag)
    if name == "Rt":
        return
    if name == "Article":
        title = inline_text(t) if (t := _child(el, "ArticleTitle")) is not None else ""
        for child in el:
            cname = local_name(child.tag)
            if cname == "ArticleTitle":
                continue
            if cname == "Paragraph" and title:
                render_block(child, lines, prefix=title)
                title = ""
            else:
                render_block(child, lines)
        _emit(lines, title)  # an article without paragraphs (e.g. "第五条　削除" is a Paragraph; this is rare)
        return
    if name in NUMBERED:
        title_tag, sentence_tag = NUMBERED[name]
        label, sentence = prefix, ""
        rest = []
        for child in el:
            cname = local_name(child.tag)
            if cname == title_tag:
                label = label or inline_text(child)
            elif cname == sentence_tag:  # a table (or other block) instead of sentences: lines of its own
                blocks = [c for c in child if local_name(c.tag) not in ("Sentence", "Column", *INLINE)]
                sentence = "" if blocks else sentence_text(child)
                rest.extend(blocks)
            elif cname in CAPTIONS:
                _emit(lines, inline_text(child))
            else:
                rest.append(child)
        _emit(lines, f"{label}{IDEOGRAPHIC_SPACE}{sentence}" if label and sentence else label or sentence)
        for child in rest:
            render_block(child, lines)
        return
    if name == "SupplProvision":
        label = inline_text(lab) if (lab := _child(el, "SupplProvisionLabel")) is not None else "附　則"
        if amend := el.get("AmendLawNum"):
            label += f"{IDEOGRAPHIC_SPACE}（{amend}）"
        if el.get("Extract") == "true":
            label += f"{IDEOGRAPHIC_SPACE}抄"
        _emit(lines, label)
        for child in el:
            if local_name(child.tag) != "SupplProvisionLabel":
                render_block(child, lines)
        return
    if name == "Table":
        for row in el:
            if local_name(row.tag) in ("TableRow", "TableHeaderRow"):
                _emit(lines, "\t".join(_cell_text(cell) for cell in row).rstrip("\t"))
        return
    if all(local_name(c.tag) in LEAF for c in el):  # a leaf such as EnactStatement or a Title
        _emit(lines, inline_text(el))
        return
    if name.endswith("Sentence"):
        _emit(lines, sentence_text(el))
        return
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):  # text between blocks: `any` content
        _mixed(el, lines)
        return
    appended: list[str] = []  # joined once: `lines[-1] +=` per sibling was quadratic in their number
    emitted = False  # whether the sibling before gave a line (after an empty title, a line of another element)
    for child in el:
        if local_name(child.tag) in APPEND_TO_PREVIOUS and emitted:
            appended.append(inline_text(child))
            continue
        if appended:
            lines[-1] += "".join(appended)
            appended.clear()
        before = len(lines)
        render_block(child, lines)
        emitted = len(lines) > before
    if appended:
        lines[-1] += "".join(appended)


def render_law(law: Any, context: dict[str, str]) -> Rendered:
    """(text, meta, licence, url) of one <Law>; statutes carry no per-record licence."""
    token = _HOLDS.set({})  # the law's elements stay alive while it is rendered, so their ids are theirs
    try:
        return _render_law(law, context)
    finally:
        _HOLDS.reset(token)


def _render_law(law: Any, context: dict[str, str]) -> Rendered:
    meta: dict[str, Any] = {key: law.get(attr) for attr, key in LAW_ATTRS.items() if law.get(attr)}
    lines: list[str] = []
    body = _child(law, "LawBody")
    title_el = _child(body, "LawTitle") if body is not None else None
    law_num_el = _child(law, "LawNum")
    if title_el is not None:
        meta["title"] = inline_text(title_el)
        if title_el.get("Kana"):
            meta["title_kana"] = title_el.get("Kana")
        _emit(lines, meta["title"])
    if law_num_el is not None and (law_num := inline_text(law_num_el)):
        meta["law_num"] = law_num
        lines.append(f"（{law_num}）")
    url = None
    if context.get("LawId"):
        meta["law_id"] = context["LawId"]
        url = E_GOV_LAW_URL + context["LawId"]
    for child in (body if body is not None else law):
        if local_name(child.tag) not in ("LawTitle", "LawNum"):
            render_block(child, lines)
    return "\n".join(lines), meta, None, url


def read(path: str, source: SourceConfig) -> Iterator[RawDoc | Unreadable]:
    """One RawDoc per outermost <Law>, source_id "path#/Law[1]" (or the wrapper's element path)."""
    yield from read_xml_records(path, source, "Law", render_law, context_tags=frozenset({"LawId"}))
