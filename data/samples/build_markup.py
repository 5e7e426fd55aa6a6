"""Markup builders for the XML samples: e-Gov 法令標準XML from a 2013 e-Gov plain-text law, JATS from abstracts.

The plain text layout of the 2013 e-Gov export is regular enough to recover the structure of a short law:
（caption） lines, "第N条" lines, "２" paragraph numbers, "一" item numbers, sentences that start with an
ideographic space (hyperlinks broke some of them over several lines), 附則 blocks and a 別表 whose cells
are blank-line separated. Built with ElementTree (writing only; the readers parse with defusedxml).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

SP = "\u3000"
KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
ARTICLE = re.compile(r"第([一二三四五六七八九十百]+)条")
PARA = re.compile(r"[０-９]+")
ITEM = re.compile(r"[一二三四五六七八九十]+")
SUPPL = re.compile(SP + r"*附" + SP + r"則(?:" + SP + r"（(.+?)）)?(" + SP + r"抄)?")
APPENDIX = re.compile(r"別表(?:第[一二三四五六七八九十]+)?" + SP + r"（.+関係）")
RUBY = ("旗国", "旗", "き")  # (word, base, reading): one ruby annotation added for the reader's Rt test


def kanji_number(text: str) -> int:
    """一..九百九十九 in kanji numerals (enough for article and item numbers)."""
    total, digit = 0, 0
    for ch in text:
        if ch in KANJI_DIGITS:
            digit = KANJI_DIGITS[ch]
        else:
            total += (digit or 1) * {"十": 10, "百": 100}[ch]
            digit = 0
    return total + digit


def tokens(text: str) -> tuple[list[str], list[list[str]]]:
    """(two header lines, [kind, text] tokens) with broken sentence lines joined back."""
    header: list[str] = []
    out: list[list[str]] = []
    blank, appendix = True, False
    for raw in text.split("\n"):
        line = raw.rstrip(" ")
        if not line.strip():
            blank = True
            continue
        if len(header) < 2:
            header.append(line.strip())
            blank = False
            continue
        if appendix:
            kind = "cell"
        elif ARTICLE.fullmatch(line):
            kind = "article"
        elif PARA.fullmatch(line):
            kind = "para"
        elif ITEM.fullmatch(line):
            kind = "item"
        elif SUPPL.fullmatch(line):
            kind = "suppl"
        elif APPENDIX.fullmatch(line):
            kind, appendix = "appendix", True
        elif line.startswith(SP):
            kind = "sentence"
        elif line.startswith("（") and (blank or not out or out[-1][0] == "suppl"):
            kind = "caption"
        else:
            kind = "cont"
        if kind == "cont":
            out[-1][1] += line
        else:
            out.append([kind, line.strip() if kind == "cell" else line])
        blank = False
    return header, out


def add_sentences(parent: ET.Element, text: str) -> None:
    """Sentence elements (本文 / ただし書 split like the official XML), with the sample's one ruby."""
    text = text.lstrip(SP)
    parts = text.split("。ただし、", 1)
    pieces = [parts[0] + "。", "ただし、" + parts[1]] if len(parts) == 2 else [text]
    for num, piece in enumerate(pieces, 1):
        attrs = {"Num": str(num), "WritingMode": "vertical"}
        if len(pieces) == 2:
            attrs["Function"] = "main" if num == 1 else "proviso"
        sentence = ET.SubElement(parent, "Sentence", attrs)
        word, base, reading = RUBY
        if word in piece:
            before, after = piece.split(word, 1)
            sentence.text = before
            ruby = ET.SubElement(sentence, "Ruby")
            ruby.text = base
            ET.SubElement(ruby, "Rt").text = reading
            ruby.tail = word[len(base):] + after
        else:
            sentence.text = piece


def indent(el: ET.Element, level: int = 0) -> None:
    """Pretty-print structure only: text-bearing elements (Sentence, titles) keep their exact content."""
    if el.tag == "Sentence" or not len(el):
        return
    pad = "\n" + "  " * (level + 1)
    el.text = pad
    for child in el:
        indent(child, level + 1)
        child.tail = pad
    el[-1].tail = "\n" + "  " * level


def build_law_xml(text: str) -> str:
    header, toks = tokens(text)
    law = ET.Element("Law", {"Era": "Heisei", "Year": "12", "Num": "145", "LawType": "Act", "Lang": "ja",
                             "PromulgateMonth": "12", "PromulgateDay": "06"})
    ET.SubElement(law, "LawNum").text = "平成十二年法律第百四十五号"
    body = ET.SubElement(law, "LawBody")
    ET.SubElement(body, "LawTitle", {"Kana": "しゅうへんじたいにさいしてじっしするせんぱくけんさかつどうにかんするほうりつ"}).text = header[0]
    container = ET.SubElement(body, "MainProvision")
    article = paragraph = item = None
    caption: str | None = None
    last = ""
    cells: list[str] = []
    for kind, value in toks:
        if kind == "caption":
            caption = value
        elif kind == "article":
            article = ET.SubElement(container, "Article", {"Num": str(kanji_number(ARTICLE.fullmatch(value).group(1)))})
            if caption:
                ET.SubElement(article, "ArticleCaption").text = caption
            ET.SubElement(article, "ArticleTitle").text = value
            paragraph, item, caption = None, None, None
        elif kind == "para":
            parent = article if article is not None else container
            paragraph = ET.SubElement(parent, "Paragraph", {"Num": str(int(value.translate(str.maketrans("０１２３４５６７８９", "0123456789"))))})
            if caption:
                ET.SubElement(paragraph, "ParagraphCaption").text = caption
                caption = None
            ET.SubElement(paragraph, "ParagraphNum").text = value
            item = None
        elif kind == "item":
            item = ET.SubElement(paragraph, "Item", {"Num": str(kanji_number(value))})
            ET.SubElement(item, "ItemTitle").text = value
        elif kind == "sentence":
            if last == "item":
                add_sentences(ET.SubElement(item, "ItemSentence"), value)
            else:
                if paragraph is None or last == "article":
                    parent = article if article is not None else container
                    paragraph = ET.SubElement(parent, "Paragraph", {"Num": "1"})
                    ET.SubElement(paragraph, "ParagraphNum")
                add_sentences(ET.SubElement(paragraph, "ParagraphSentence"), value)
        elif kind == "suppl":
            m = SUPPL.fullmatch(value)
            attrs = {"AmendLawNum": m.group(1)} if m.group(1) else {}
            if m.group(2):
                attrs["Extract"] = "true"
            container = ET.SubElement(body, "SupplProvision", attrs)
            ET.SubElement(container, "SupplProvisionLabel").text = f"附{SP}則"
            article = paragraph = item = None
        elif kind == "appendix":
            title, _, related = value.partition(SP)
            appdx = ET.SubElement(body, "AppdxTable", {"Num": "1"})
            ET.SubElement(appdx, "AppdxTableTitle").text = title
            ET.SubElement(appdx, "RelatedArticleNum").text = related.strip(SP)
            table = ET.SubElement(ET.SubElement(appdx, "TableStruct"), "Table")
        elif kind == "cell":
            cells.append(value)
        last = kind
    for start in range(0, len(cells), 3):
        row = ET.SubElement(table, "TableRow")
        for cell in cells[start:start + 3]:
            ET.SubElement(ET.SubElement(row, "TableColumn", {"BorderTop": "solid", "BorderBottom": "solid"}),
                          "Sentence", {"Num": "1", "WritingMode": "horizontal"}).text = cell
    indent(law)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(law, encoding="unicode") + "\n"


def _sentences(text: str) -> list[str]:
    return [s + "．" for s in text.split("．") if s.strip()]


def build_jats_xml(paper: dict, cited: dict) -> str:
    """A J-STAGE-style JATS 1.1 article: the abstract's first half as <abstract>, the rest as a body section."""
    sents = _sentences(paper["text"])
    half = (len(sents) + 1) // 2
    authors = "\n".join(f'        <contrib contrib-type="author"><string-name>{escape(a)}</string-name></contrib>'
                        for a in paper["authors"])
    body = "\n".join(f"        <p>{escape(s)}</p>" for s in sents[half:])
    cited_authors = "，".join(cited["authors"])
    session = paper["id"].removeprefix("anlp2025-")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.1 20151215//EN" "JATS-journalpublishing1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:ali="http://www.niso.org/schemas/ali/1.0/" xmlns:mml="http://www.w3.org/1998/Math/MathML" article-type="research-article" dtd-version="1.1" xml:lang="ja">
  <front>
    <journal-meta>
      <journal-id journal-id-type="publisher-id">nlp2025</journal-id>
      <journal-title-group>
        <journal-title>言語処理学会第31回年次大会 発表論文集</journal-title>
      </journal-title-group>
      <publisher><publisher-name>言語処理学会</publisher-name></publisher>
    </journal-meta>
    <article-meta>
      <article-id pub-id-type="publisher-id">{escape(session)}</article-id>
      <article-id pub-id-type="doi">10.5555/jcorpus-sample.nlp2025.{escape(session)}</article-id>
      <title-group>
        <article-title>{escape(paper["title"])}</article-title>
        <trans-title-group xml:lang="en">
          <trans-title>Risk assessment of fake news generated by jailbreaking LLMs</trans-title>
        </trans-title-group>
      </title-group>
      <contrib-group>
{authors}
      </contrib-group>
      <pub-date date-type="pub" publication-format="electronic"><year>2025</year><month>03</month></pub-date>
      <self-uri xlink:href="{escape(paper["url"])}"/>
      <permissions>
        <copyright-statement>© 2025 the authors</copyright-statement>
        <license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by/4.0/">
          <ali:license_ref>https://creativecommons.org/licenses/by/4.0/</ali:license_ref>
          <license-p>This article is licensed under a Creative Commons Attribution 4.0 International License.</license-p>
        </license>
      </permissions>
      <abstract>
        <p>{escape("".join(sents[:half]))}</p>
      </abstract>
      <kwd-group xml:lang="ja"><kwd>大規模言語モデル</kwd><kwd>Jailbreak</kwd><kwd>フェイクニュース</kwd></kwd-group>
    </article-meta>
  </front>
  <body>
    <sec id="sec1">
      <title>はじめに</title>
{body}
    </sec>
  </body>
  <back>
    <ref-list>
      <title>参考文献</title>
      <ref id="ref1">
        <mixed-citation publication-type="confproc">{escape(cited_authors)}．{escape(cited["title"])}．言語処理学会第31回年次大会 発表論文集，2025．</mixed-citation>
      </ref>
    </ref-list>
  </back>
</article>
"""
