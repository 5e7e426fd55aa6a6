"""Readers keep every character of the text in order and do not glue separate lines together: mixed content in
e-Gov's `any` elements, JATS definition lists and ideographic spaces, a UTF-8 BOM on a blank first line."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sources import RawDoc, SourceConfig, Unreadable, reader_for


def read_all(fmt: str, path: Path, **kw) -> list[RawDoc | Unreadable]:
    source = SourceConfig(name="t", kind="reference", format=fmt, paths=(), license="x", **kw)
    return list(reader_for(fmt)(str(path), source))


def _law(path: Path, sentences: str, after: str = "") -> list[str]:
    path.write_text(f"<Law><LawNum>第一号</LawNum><LawBody><LawTitle>試験法</LawTitle><MainProvision><Article>"
                    f"<ArticleTitle>第一条</ArticleTitle><Paragraph><ParagraphNum/><ParagraphSentence>{sentences}"
                    f"</ParagraphSentence></Paragraph></Article></MainProvision>{after}</LawBody></Law>",
                    encoding="utf-8")
    (law,) = read_all("egov_xml", path)
    return law.text.split("\n")[2:]


ITEM = "<Item><ItemTitle>一</ItemTitle><ItemSentence><Sentence>引用号</Sentence></ItemSentence></Item>"
CELLS = ("<Table><TableRow><TableColumn><Sentence>Ａ</Sentence></TableColumn><TableColumn><Sentence>Ｂ</Sentence>"
         "</TableColumn></TableRow></Table>")


@pytest.mark.parametrize(("sentences", "after", "expected"), [
    # text inside a QuoteStruct (its content is `any` in the schema) around the quoted blocks was dropped
    (f"<Sentence>改める。<QuoteStruct>別表第一<TableStruct>{CELLS}</TableStruct>備考略</QuoteStruct>以上</Sentence>", "",
     ["第一条　改める。", "別表第一", "Ａ\tＢ", "備考略", "以上"]),
    # a quoted figure left a blank line and lost the quote's own text
    ('<Sentence>次の図<QuoteStruct>図甲<Fig src="a.jpg"/>図乙</QuoteStruct>を加える。</Sentence>', "",
     ["第一条　次の図図甲図乙を加える。"]),
    # the sentence after a quoted block ran on from the block's last line (一　引用号ただし書。)
    (f"<Sentence>次の一号を加える。<QuoteStruct>{ITEM}</QuoteStruct></Sentence><Sentence>ただし書。</Sentence>", "",
     ["第一条　次の一号を加える。", "一　引用号", "ただし書。"]),
    # blocks quoted inside a Line (傍線) ran together with the sentence (改める。一引用号とする。)
    (f"<Sentence>改める。<Line><QuoteStruct>{ITEM}</QuoteStruct></Line>とする。</Sentence>", "",
     ["第一条　改める。", "一　引用号", "とする。"]),
    # a table inside a formula ran its cells together (次の算式による。ＡＢとする。)
    (f"<Sentence>次の算式による。<ArithFormula>{CELLS}</ArithFormula>とする。</Sentence>", "",
     ["第一条　次の算式による。", "Ａ\tＢ", "とする。"]),
    # an appendix formula's text around a figure was dropped (only 付録第一 was left)
    ("<Sentence>本文。</Sentence>",
     '<Appdx><ArithFormulaNum>付録第一</ArithFormulaNum><ArithFormula>Ｓ＝Ａ×<Fig src="x.jpg"/>（円）</ArithFormula></Appdx>',
     ["第一条　本文。", "付録第一", "Ｓ＝Ａ×（円）"]),
    # so was a note's text around its blocks
    ("<Sentence>本文。</Sentence>",
     "<AppdxNote><AppdxNoteTitle>別記</AppdxNoteTitle><NoteStruct><Note>記の本文<Sentence>記の文</Sentence>記の末尾"
     "</Note></NoteStruct></AppdxNote>",
     ["第一条　本文。", "別記", "記の本文", "記の文", "記の末尾"]),
])
def test_egov_mixed_content_keeps_its_text_and_lines(tmp_path: Path, sentences: str, after: str,
                                                     expected: list[str]) -> None:
    assert _law(tmp_path / "law.xml", sentences, after) == expected


def test_egov_ruby_readings_stay_out_of_mixed_content(tmp_path: Path) -> None:
    assert _law(tmp_path / "law.xml", f"<Sentence>改める。<QuoteStruct><Ruby>旗<Rt>き</Rt></Ruby>国{ITEM}</QuoteStruct>"
                                      "</Sentence>") == ["第一条　改める。", "旗国", "一　引用号"]


def test_egov_blocks_quoted_in_nested_lines_stay_linear(tmp_path: Path) -> None:
    """Whether a Line holds quoted blocks was asked again at every level of nesting, for the whole subtree."""
    import time

    inner = "<Sup>x</Sup>" * 100_000 + f"<QuoteStruct>{ITEM}</QuoteStruct>"
    start = time.process_time()
    lines = _law(tmp_path / "law.xml", f"<Sentence>{'<Line>' * 80}{inner}{'</Line>' * 80}</Sentence>")
    assert time.process_time() - start < 4
    assert lines == ["第一条　" + "x" * 100_000, "一　引用号"]


def _jats(path: Path, body: str) -> list[str]:
    path.write_text("<article><front><article-meta><title-group><article-title>題\u3000副題</article-title>"
                    f"</title-group></article-meta></front><body>{body}</body></article>", encoding="utf-8")
    (art,) = read_all("jats_xml", path)
    return art.text.split("\n")


def test_jats_keeps_ideographic_spaces(tmp_path: Path) -> None:
    """U+3000 became an ASCII space (the normalizer and the other readers keep it); layout whitespace still goes."""
    assert _jats(tmp_path / "a.xml", "<p>全角\u3000スペース\n   を含む\u00a0文。</p>") == [
        "題\u3000副題", "全角\u3000スペースを含む 文。"]


def test_jats_definition_list_in_a_paragraph_gets_its_lines(tmp_path: Path) -> None:
    """A def-list inside a <p> ran its terms and definitions together (用語:甲定義A乙定義B以上。), where one in a
    section gives a line each; an <array> (a table without caption) ran its cells together, where tables are
    left out."""
    lines = _jats(tmp_path / "a.xml", "<p>用語:<def-list><def-item><term>甲</term><def><p>定義A</p></def></def-item>"
                                     "<def-item><term>乙</term><def><p>定義B</p></def></def-item></def-list>以上。</p>"
                                     "<p>配列<array><tbody><tr><td>セル1</td><td>セル2</td></tr></tbody></array>の後。</p>")
    assert lines[1:] == ["用語:", "甲", "定義A", "乙", "定義B", "以上。", "配列の後。"]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_bom_on_a_blank_first_line_is_not_a_record(tmp_path: Path, newline: str) -> None:
    """A UTF-8 BOM alone on the first line was a record: an invalid-JSON quarantine row, or an empty text block
    that shifted the numbers (and ids) of the blocks after it."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + f'{newline}{{"id": "a", "text": "本文"}}{newline}'.encode())
    assert [(d.source_id, d.text) for d in read_all("jsonl", path)] == [("a", "本文")]
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbf" + f"{newline}{newline}一つ目。{newline}{newline}二つ目。{newline}".encode())
    docs = read_all("text", path, text_split="blank_line")
    assert [(d.source_id, d.text) for d in docs] == [(f"{path}#block 1", "一つ目。"), (f"{path}#block 2", "二つ目。")]


@pytest.mark.parametrize("fmt", ["egov_xml", "jats_xml"])
@pytest.mark.parametrize("label", ["Shift_JIS", "EUC-JP", "Big5"])
def test_utf16_xml_declaring_a_multibyte_encoding_is_quarantined(tmp_path: Path, fmt: str, label: str) -> None:
    """pyexpat raised ValueError (multi-byte encodings are not supported) out of the reader: `jcorpus quality
    train` died with a traceback, curate quarantined the file only through its reader-crash net."""
    path = tmp_path / "a.xml"
    path.write_bytes(f'<?xml version="1.0" encoding="{label}"?><Law><article>本文</article></Law>'.encode("utf-16"))
    (bad,) = read_all(fmt, path)
    assert isinstance(bad, Unreadable) and bad.source_id == str(path)
    assert bad.error.startswith("XML declared in an encoding the parser cannot switch to")
