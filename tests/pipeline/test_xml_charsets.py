"""e-Gov and JATS files in Japanese legacy encodings: read as the HTML path reads them (ISO-2022-JP's NEC and IBM
rows, Shift_JIS-2004's ASCII), and JIS X 0213 characters under a label that lacks them quarantined with a reason
that names them."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sources import RawDoc, SourceConfig, Unreadable, reader_for

SENTENCE = "吾輩は猫である。名前はまだ無い。"


def law(label: str, sentence: bytes) -> bytes:
    head = (f'<?xml version="1.0" encoding="{label}"?><Law><LawNum>第一号</LawNum><LawBody><LawTitle>法</LawTitle>'
            "<MainProvision><Paragraph><ParagraphNum/><ParagraphSentence><Sentence>")
    tail = "</Sentence></ParagraphSentence></Paragraph></MainProvision></LawBody></Law>"
    return head.encode("ascii", "xmlcharrefreplace") + sentence + tail.encode()


def article(label: str, sentence: bytes) -> bytes:
    head = (f'<?xml version="1.0" encoding="{label}"?><article><front><article-meta><title-group>'
            "<article-title>T</article-title></title-group></article-meta></front><body><p>")
    return head.encode() + sentence + b"</p></body></article>"


def read_one(fmt: str, path: Path, data: bytes) -> RawDoc | Unreadable:
    path.write_bytes(data)
    source = SourceConfig(name="t", kind="government", format=fmt, paths=(), license="x")
    (doc,) = list(reader_for(fmt)(str(path), source))
    return doc


def sjis_2004(text: str) -> bytes:
    """Shift_JIS-2004 as files have it: ASCII as ASCII (Python's encoder writes ~ and \\ as JIS X 0213 cells)."""
    return b"".join(c.encode("ascii") if c.isascii() else c.encode("shift_jis_2004") for c in text)


@pytest.mark.parametrize(("fmt", "build"), [("egov_xml", law), ("jats_xml", article)])
def test_iso2022_jp_reads_the_nec_and_ibm_rows(tmp_path: Path, fmt, build) -> None:
    """Python's ISO-2022-JP codecs refuse ① ㈱ (NEC row 13) and 髙 﨑 (IBM rows), which the HTML path and the XML
    readers' EUC-JP and Shift_JIS read: such a file was quarantined whole."""
    jis = b"\x1b$B" + bytes.fromhex("2d21 2d6a 7c62") + b"\x1b(B"  # ① ㈱ 髙 in JIS X 0208 rows 13 and 92
    doc = read_one(fmt, tmp_path / "a.xml", build("ISO-2022-JP", SENTENCE.encode("iso2022_jp") + jis))
    assert isinstance(doc, RawDoc) and doc.text.endswith(f"{SENTENCE}①㈱髙"), doc


@pytest.mark.parametrize(("fmt", "build"), [("egov_xml", law), ("jats_xml", article)])
@pytest.mark.parametrize(("label", "data", "named"), [
    ("Shift_JIS", sjis_2004("㋐の文。"), "86d9 (㋐) is JIS X 0213, which Shift_JIS lacks (declare Shift_JIS-2004)"),
    ("EUC-JP", "𠀋の文。".encode("euc_jis_2004"), "aea2 (𠀋) is JIS X 0213, which EUC-JP lacks (declare EUC-JIS-2004)"),
    ("ISO-2022-JP", "ㇰの文。".encode("iso2022_jp_2004"),
     "ESC $ ( Q is JIS X 0213, which ISO-2022-JP lacks (declare ISO-2022-JP-2004)"),
], ids=["shift_jis", "euc-jp", "iso-2022-jp"])
def test_jis_x0213_under_a_jis_x0208_label_is_quarantined_naming_it(tmp_path: Path, fmt, build, label, data, named):
    """The readers decode strictly, as for every charset: bytes the declared encoding lacks quarantine the file. The
    reason said only "illegal multibyte sequence"; it now names the character and the label that reads it."""
    doc = read_one(fmt, tmp_path / "a.xml", build(label, data))
    assert isinstance(doc, Unreadable)
    assert doc.error == f"invalid {label} (illegal multibyte sequence) in the declared encoding of this XML; {named}"


@pytest.mark.parametrize(("fmt", "build"), [("egov_xml", law), ("jats_xml", article)])
@pytest.mark.parametrize(("label", "encode"), [
    ("Shift_JIS-2004", sjis_2004), ("EUC-JIS-2004", lambda t: t.encode("euc_jis_2004")),
    ("ISO-2022-JP-2004", lambda t: t.encode("iso2022_jp_2004"))])
def test_jis_x0213_labels_read_the_file_as_the_html_path_does(tmp_path: Path, fmt, build, label, encode) -> None:
    """Python's Shift_JIS-2004 decoder reads 0x5C and 0x7E as ¥ and ‾ (C:¥Windows, 10:00‾18:00): the HTML path maps
    them back to ASCII, the XML readers did not."""
    line = "㋐ゕㇰ𠀋の文 C:\\Windows 10:00~18:00。"
    doc = read_one(fmt, tmp_path / "a.xml", build(label, encode(line)))
    assert isinstance(doc, RawDoc) and doc.text.endswith(line), doc
