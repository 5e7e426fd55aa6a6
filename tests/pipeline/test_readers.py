"""Readers on the bundled samples: counts, stable ids, field mapping and text layout."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline.sources import RawDoc, SourceConfig, Unreadable, read_file, reader_for

JSONL_SAMPLES = {  # file -> (records, kind)
    "government/laws.jsonl": (10, "government"),
    "academic/abstracts.jsonl": (80, "academic"),
    "reference/wikipedia.jsonl": (300, "reference"),
    "reference/aozora.jsonl": (3, "reference"),
    "web/fineweb2.jsonl": (50, "web"),
}


def cfg(fmt: str, **kw) -> SourceConfig:
    return SourceConfig(name="t", kind="reference", format=fmt, paths=(), license="CC-BY-4.0", **kw)


def read_all(fmt: str, path: Path | str, **kw) -> list[RawDoc | Unreadable]:
    return list(reader_for(fmt)(str(path), cfg(fmt, **kw)))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(JSONL_SAMPLES))
def test_jsonl_samples(samples_dir: Path, name: str) -> None:
    path = samples_dir / name
    docs = read_all("jsonl", path)
    assert len(docs) == JSONL_SAMPLES[name][0]
    assert all(isinstance(d, RawDoc) and d.text and d.html is None for d in docs)
    expected = records(path)
    assert [d.source_id for d in docs] == [r["id"] for r in expected]
    assert [d.text for d in docs] == [r["text"] for r in expected]
    assert [d.license for d in docs] == [r["license"] for r in expected]
    assert all("origin" in d.meta and "text" not in d.meta and "id" not in d.meta for d in docs)
    again = read_all("jsonl", path)
    assert [(d.source_id, d.text) for d in again] == [(d.source_id, d.text) for d in docs]


def test_attribution_fields_survive(samples_dir: Path) -> None:
    wiki = read_all("jsonl", samples_dir / "reference/wikipedia.jsonl")
    assert all(d.url and d.url.startswith("https://ja.wikipedia.org/wiki/") for d in wiki)
    assert all(d.license == "CC-BY-SA-4.0" for d in wiki)
    abstracts = read_all("jsonl", samples_dir / "academic/abstracts.jsonl")
    assert all(d.meta["authors"] and isinstance(d.meta["authors"], list) for d in abstracts)
    laws = {d.source_id: d for d in read_all("jsonl", samples_dir / "government/laws.jsonl")}
    edited = laws["egov2013-e387f02344845756-edited"]
    assert edited.meta["near_copy_of"] == "egov2013-e387f02344845756"
    assert edited.text != laws["egov2013-e387f02344845756"].text


def test_compression_detected_by_magic_not_name(samples_dir: Path, tmp_path: Path) -> None:
    raw = (samples_dir / "academic/abstracts.jsonl").read_bytes()
    plain = [(d.source_id, d.text) for d in read_all("jsonl", samples_dir / "academic/abstracts.jsonl")]
    gz_named_plain = tmp_path / "a.jsonl"
    gz_named_plain.write_bytes(gzip.compress(raw))
    zst_named_gz = tmp_path / "b.jsonl.gz"
    zst_named_gz.write_bytes(zstandard.ZstdCompressor().compress(raw))
    plain_named_gz = tmp_path / "c.jsonl.gz"
    plain_named_gz.write_bytes(raw)
    multi_member = tmp_path / "d.jsonl.gz"
    half = raw.index(b"\n", len(raw) // 2) + 1
    multi_member.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    for path in (gz_named_plain, zst_named_gz, plain_named_gz, multi_member):
        assert [(d.source_id, d.text) for d in read_all("jsonl", path)] == plain, path.name


def test_jsonl_custom_fields_and_fallback_ids(tmp_path: Path) -> None:
    path = tmp_path / "custom.jsonl"
    rows = [{"body": "本文一", "doc": 7, "link": "https://example.org/1", "rights": "CC0-1.0", "extra": {"a": 1}},
            {"body": "本文二"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    docs = read_all("jsonl", path, text_field="body", id_field="doc", url_field="link", license_field="rights")
    assert [d.source_id for d in docs] == ["7", f"{path}:line 2"]
    assert docs[0].url == "https://example.org/1" and docs[0].license == "CC0-1.0"
    assert docs[0].meta == {"extra": {"a": 1}} and docs[1].license is None


def test_parquet_matches_jsonl(samples_dir: Path, tmp_path: Path) -> None:
    rows = records(samples_dir / "academic/abstracts.jsonl")
    table = pa.Table.from_pylist(rows)
    path = tmp_path / "abstracts.parquet"
    pq.write_table(table, path, row_group_size=16)  # 5 row groups: exercises the group loop
    assert pq.ParquetFile(path).num_row_groups == 5
    docs = read_all("parquet", path)
    assert [(d.source_id, d.text, d.url, d.license) for d in docs] == \
           [(r["id"], r["text"], r["url"], r["license"]) for r in rows]
    assert docs[3].meta["authors"] == rows[3]["authors"] and docs[3].meta["title"] == rows[3]["title"]
    no_ids = tmp_path / "noid.parquet"
    pq.write_table(table.drop_columns(["id"]), no_ids, row_group_size=50)
    assert [d.source_id for d in read_all("parquet", no_ids)][:2] == [f"{no_ids}:row 1", f"{no_ids}:row 2"]
    assert read_all("parquet", no_ids)[-1].source_id == f"{no_ids}:row 80"


def test_parquet_meta_is_json_serializable(tmp_path: Path) -> None:
    import datetime

    path = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"text": ["本文"], "when": [datetime.datetime(2025, 3, 10, 12, 0)],
                             "blob": [b"\x00\x01"], "score": [float("nan")]}), path)
    (doc,) = read_all("parquet", path)
    assert json.loads(json.dumps(doc.meta)) == {"when": "2025-03-10T12:00:00", "blob": "\x00\x01", "score": None}


def test_text_reader_file_and_blocks(samples_dir: Path, tmp_path: Path) -> None:
    work = records(samples_dir / "reference/aozora.jsonl")[1]["text"]  # 注文の多い料理店
    path = tmp_path / "work.txt"
    path.write_text(work, encoding="utf-8")
    (doc,) = read_all("text", path)
    assert doc.source_id == str(path) and doc.text == work
    sentences = [s + "。" for s in work.split("。") if s.strip()][:6]
    blocks = tmp_path / "blocks.txt.gz"  # gzip, with CRLF and ideographic-space-only separator lines
    body = "\r\n".join([sentences[0], sentences[1], "", sentences[2], "\u3000", "", sentences[3], sentences[4]])
    blocks.write_bytes(gzip.compress(("\ufeff" + body + "\r\n").encode("utf-8")))
    docs = read_all("text", blocks, text_split="blank_line")
    assert [d.source_id for d in docs] == [f"{blocks}#block {i}" for i in (1, 2, 3)]
    assert [d.text for d in docs] == [sentences[0] + "\n" + sentences[1], sentences[2],
                                      sentences[3] + "\n" + sentences[4]]
    assert [d.meta["line"] for d in docs] == [1, 4, 7]


def test_egov_xml_sample(samples_dir: Path) -> None:
    path = samples_dir / "government/law_sample.xml"
    (law,) = read_all("egov_xml", path)
    assert isinstance(law, RawDoc) and law.source_id == f"{path}#/Law[1]"
    lines = law.text.split("\n")
    assert lines[:3] == ["周辺事態に際して実施する船舶検査活動に関する法律", "（平成十二年法律第百四十五号）", "（目的）"]
    assert lines[3].startswith("第一条\u3000この法律は、周辺事態に際して")
    assert sum(line.startswith("第") and "条\u3000" in line[:6] for line in lines) == 8  # 7 articles + 附則第一条
    assert "一\u3000当該船舶検査活動に係る基本的事項" in lines
    assert "２\u3000前項の規定による武器の使用に際しては、" in law.text
    assert "又は旗国（" in law.text and "旗き国" not in law.text  # ruby reading dropped
    assert "附\u3000則\u3000（平成一八年一二月二二日法律第一一八号）\u3000抄" in lines
    assert "一\t航行状況の監視\t船舶の航行状況を監視すること。" in lines
    assert lines[lines.index("別表（第五条関係）") + 1] == "番号\t区分\t実施の態様"
    assert "ただし、附則第三十二条第二項の規定は" in law.text  # proviso sentence joined to its main sentence
    assert law.meta["law_num"] == "平成十二年法律第百四十五号" and law.meta["era"] == "Heisei"
    assert law.meta["title"] == lines[0] and law.meta["law_type"] == "Act" and law.meta["year"] == "12"
    assert read_all("egov_xml", path)[0].text == law.text


def test_egov_api_wrapper_and_many_laws(samples_dir: Path, tmp_path: Path) -> None:
    xml = (samples_dir / "government/law_sample.xml").read_text(encoding="utf-8").split("?>", 1)[1]
    wrapped = tmp_path / "api.xml"
    wrapped.write_text('<?xml version="1.0" encoding="UTF-8"?><DataRoot><Result><Code>0</Code><Message/></Result>'
                       f"<ApplData><LawId>412AC0000000145</LawId><LawFullText>{xml}</LawFullText></ApplData>"
                       "</DataRoot>", encoding="utf-8")
    (law,) = read_all("egov_xml", wrapped)
    assert law.source_id == f"{wrapped}#/DataRoot/ApplData/LawFullText/Law[1]"
    assert law.meta["law_id"] == "412AC0000000145" and law.url == "https://laws.e-gov.go.jp/law/412AC0000000145"
    twice = tmp_path / "two.xml"  # a law without a LawId took the one before it: its id and URL
    twice.write_text(f'<?xml version="1.0" encoding="UTF-8"?><DataRoot><ApplData><LawId>412AC0000000145</LawId>'
                     f"<LawFullText>{xml}</LawFullText></ApplData><ApplData><LawFullText>{xml}</LawFullText>"
                     "</ApplData></DataRoot>", encoding="utf-8")
    assert [(d.meta.get("law_id"), d.url) for d in read_all("egov_xml", twice)] == [
        ("412AC0000000145", "https://laws.e-gov.go.jp/law/412AC0000000145"), (None, None)]
    many = tmp_path / "many.xml.zst"
    many.write_bytes(zstandard.ZstdCompressor().compress(f"<Laws>{xml * 3}</Laws>".encode()))
    docs = read_all("egov_xml", many)
    assert [d.source_id for d in docs] == [f"{many}#/Laws/Law[{i}]" for i in (1, 2, 3)]
    assert len({d.text for d in docs}) == 1 and docs[0].text == law.text


def test_jats_sample(samples_dir: Path) -> None:
    path = samples_dir / "academic/jats_sample.xml"
    (art,) = read_all("jats_xml", path)
    assert isinstance(art, RawDoc) and art.source_id == f"{path}#/article[1]"
    source = {r["id"]: r for r in records(samples_dir.parent.parent / "data/samples/academic/abstracts.jsonl")}
    assert "anlp2025-P7-18" not in source  # kept out of the JSONL so the academic samples do not overlap
    lines = art.text.split("\n")
    assert lines[0] == "Jailbreakにより生成したフェイクニュースの危険度評価"
    assert lines[1] == "Risk assessment of fake news generated by jailbreaking LLMs"
    assert lines[2].startswith("悪意を持つユーザーにより大規模言語モデル") and "はじめに" in lines
    assert lines[-1].endswith("精査する必要があることが明らかになった．")
    assert "参考文献" not in art.text and "llm-jp-eval-mm" not in art.text  # ref-list dropped
    assert "Creative Commons" not in art.text and "島田" not in art.text  # no licence text, no author list
    assert art.license == "CC-BY-4.0" and art.meta["license_url"] == "https://creativecommons.org/licenses/by/4.0/"
    assert art.meta["doi"].startswith("10.5555/") and art.meta["pub_date"] == "2025-03"
    assert art.meta["journal"].startswith("言語処理学会第31回年次大会")
    assert art.url == "https://www.anlp.jp/proceedings/annual_meeting/2025/pdf_dir/P7-18.pdf"


def test_reader_for_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown source format"):
        reader_for("docx")


def test_non_local_filesystem(samples_dir: Path, tmp_path: Path) -> None:
    """Paths go through Beam FileSystems: the in-memory `memfs://` scheme stands in for gs:// / s3://."""
    from tests.pipeline.memfs import STORE

    laws = samples_dir / "government/laws.jsonl"
    local_parquet = tmp_path / "laws.parquet"
    pq.write_table(pa.Table.from_pylist(records(laws)), local_parquet, row_group_size=4)
    cases = {"jsonl": (laws, gzip.compress(laws.read_bytes())),
             "parquet": (local_parquet, local_parquet.read_bytes()),
             "egov_xml": (samples_dir / "government/law_sample.xml", None),
             "jats_xml": (samples_dir / "academic/jats_sample.xml", None),
             "text": (samples_dir / "government/law_sample.xml", None)}
    for fmt, (local, stored) in cases.items():
        remote = f"memfs://readers-test/{fmt}/{local.name}"
        STORE[remote] = stored if stored is not None else local.read_bytes()
        try:
            got = [(d.source_id.replace(remote, "PATH"), d.text) for d in read_all(fmt, remote)]
            want = [(d.source_id.replace(str(local), "PATH"), d.text) for d in read_all(fmt, local)]
            assert got == want and got and all(isinstance(t, str) for _, t in got), fmt
        finally:
            STORE.pop(remote, None)


JATS_NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<records xmlns:xlink="http://www.w3.org/1999/xlink">
<article xml:lang="en"><front><article-meta>
  <article-id pub-id-type="doi">10.5555/x.1</article-id>
  <title-group><article-title>Main <italic>title</italic></article-title><trans-title>主題</trans-title></title-group>
  <permissions><license xlink:href="http://creativecommons.org/licenses/by-nc-sa/4.0/"><license-p>CC BY-NC-SA</license-p></license></permissions>
  <abstract><title>Abstract</title><p>First abstract paragraph.</p></abstract>
  <trans-abstract xml:lang="ja"><p>日本語の要旨。</p></trans-abstract>
</article-meta></front>
<body>
  <p>Lead paragraph with a list:<list><list-item><p>item one</p></list-item><list-item><p>item two</p></list-item></list> and a tail.</p>
  <sec><label>2.</label><title>Method</title><p>See <xref ref-type="bibr" rid="r1">[1]</xref> and Table 1.</p>
    <table-wrap><caption><p>Table caption</p></caption><table><tr><td>cell</td></tr></table></table-wrap>
    <sec><title>Sub</title><p>Nested <inline-formula><tex-math>x^2</tex-math></inline-formula> formula.</p></sec>
  </sec>
</body>
<back><ack><p>Thanks to funders.</p></ack><ref-list><ref id="r1"><mixed-citation>Cited work.</mixed-citation></ref></ref-list></back>
<sub-article><front-stub><title-group><article-title>Reply</article-title></title-group></front-stub></sub-article>
</article>
<article><front><article-meta><title-group><article-title>Second</article-title></title-group></article-meta></front></article>
</records>"""


def test_jats_inline_footnotes_formulas_code_subtitles_and_line_breaks(tmp_path: Path) -> None:
    """A footnote spliced into its sentence, an inline formula given as <alternatives> vanished, preformat and
    speaker text and subtitles were lost, an attribution came before its quotation, <break/> glued words, a
    Japanese line break became a space, and a licence given as an ext-link made its sentence the licence."""
    path = tmp_path / "a.xml"
    path.write_text(
        '<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML">'
        "<front><article-meta><title-group><article-title>Deep learning<break/>for text</article-title>"
        "<subtitle>副題</subtitle></title-group><permissions><license><license-p>本論文は<ext-link "
        'xlink:href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</ext-link>で提供する。</license-p>'
        "</license></permissions></article-meta></front><body>"
        "<p>本文<fn><p>脚注</p></fn>が続く。式<inline-formula><alternatives><tex-math>\\alpha</tex-math>"
        "<mml:math><mml:mi>α</mml:mi></mml:math></alternatives></inline-formula>は定数。</p>"
        "<preformat>x = 1</preformat><speech><speaker>話者</speaker><p>発言。</p></speech>"
        "<disp-quote><p>引用文。</p><attrib>引用元</attrib></disp-quote><p>日本語の\n    文章。</p></body></article>",
        encoding="utf-8")
    (art,) = read_all("jats_xml", path)
    assert art.text.split("\n") == ["Deep learning for text", "副題", "本文が続く。式αは定数。", "x = 1", "話者",
                                    "発言。", "引用文。", "引用元", "日本語の文章。"]
    assert art.license == "CC-BY-4.0" and art.meta["subtitle"] == "副題"


def test_jats_labels_superscripts_and_the_fullest_pub_date(tmp_path: Path) -> None:
    """Section and list labels were dropped (はじめに without its 1.), 10<sup>3</sup> read 103, and a year-only
    print date was taken over the electronic date with its day."""
    path = tmp_path / "a.xml"
    path.write_text(
        "<article><front><article-meta><title-group><article-title>題</article-title></title-group>"
        '<pub-date pub-type="ppub"><year>2024</year></pub-date>'
        '<pub-date pub-type="epub"><day>5</day><month>3</month><year>2024</year></pub-date></article-meta></front>'
        "<body><sec><label>1.</label><title>はじめに</title><p>約10<sup>3</sup>件、面積は5 cm<sup>2</sup>、"
        "濃度10<sup>\u22123</sup>、第1<sup>st</sup>、先行研究<sup><xref>1</xref></sup>。</p>"
        "<list><list-item><label>(1)</label><p>項目</p></list-item></list></sec>"
        "<fig><label>図1</label><caption><p>図の説明</p></caption></fig></body></article>", encoding="utf-8")
    (art,) = read_all("jats_xml", path)
    assert art.text.split("\n") == ["題", "1. はじめに", "約10\u00b3件、面積は5 cm\u00b2、濃度10\u207b\u00b3、第1st、先行研究1。",
                                    "(1) 項目"]
    assert art.meta["pub_date"] == "2024-03-05"


def test_jats_named_entities_under_an_external_dtd_are_read(tmp_path: Path) -> None:
    """&nbsp; under the JATS DOCTYPE quarantined the file ("undefined entity"); with no DTD named it is still
    malformed XML, and an entity declared in the file is still refused."""
    body = '<article xml:lang="ja"><front><article-meta><title-group><article-title>実体</article-title></title-group>' \
           "</article-meta></front><body><p>本文&nbsp;です&mdash;以上。</p></body></article>"
    dtd = '<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.2 20190208//EN" ' \
          '"JATS-journalpublishing1.dtd">'
    path = tmp_path / "a.xml"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>{dtd}{body}', encoding="utf-8")
    (art,) = read_all("jats_xml", path)
    assert isinstance(art, RawDoc) and art.text.split("\n")[1] == "本文 です\u2014以上。"
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>{body}', encoding="utf-8")
    (bad,) = read_all("jats_xml", path)
    assert isinstance(bad, Unreadable) and "undefined entity" in bad.error
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY nbsp "x">]>{body}', encoding="utf-8")
    (bad,) = read_all("jats_xml", path)
    assert isinstance(bad, Unreadable) and bad.error.startswith("refused by defusedxml")


def test_jats_structure_and_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "two.xml"
    path.write_text(JATS_NESTED, encoding="utf-8")
    first, second = read_all("jats_xml", path)
    assert first.source_id == f"{path}#/records/article[1]" and second.source_id == f"{path}#/records/article[2]"
    assert first.text.split("\n") == [
        "Main title", "主題", "Abstract", "First abstract paragraph.", "日本語の要旨。",
        "Lead paragraph with a list:", "item one", "item two", "and a tail.",  # the tail came before the list
        "2. Method", "See [1] and Table 1.", "Sub", "Nested x^2 formula."]
    assert first.license == "CC-BY-NC-SA-4.0" and first.url == "https://doi.org/10.5555/x.1"
    assert first.meta["lang"] == "en" and "license_url" in first.meta
    assert second.text == "Second" and second.license is None and second.url is None


EGOV_STRUCTURES = """<Law Era="Reiwa" Year="5" Num="1" LawType="CabinetOrder" Lang="ja"><LawNum>令和五年政令第一号</LawNum>
<LawBody><LawTitle>構造試験令</LawTitle><EnactStatement>内閣は、この政令を制定する。</EnactStatement>
<TOC><TOCLabel>目次</TOCLabel><TOCChapter Num="1"><ChapterTitle>第一章　総則</ChapterTitle><ArticleRange>（第一条）</ArticleRange></TOCChapter></TOC>
<MainProvision><Chapter Num="1"><ChapterTitle>第一章　総則</ChapterTitle><Section Num="1"><SectionTitle>第一節　定義</SectionTitle>
<Article Num="1"><ArticleTitle>第一条</ArticleTitle><Paragraph Num="1"><ParagraphNum/>
<ParagraphSentence><Sentence Num="1">次の用語の意義は、<Ruby>当<Rt>とう</Rt></Ruby>該各号に定める。</Sentence></ParagraphSentence>
<Item Num="1"><ItemTitle>一</ItemTitle><ItemSentence><Column Num="1"><Sentence>試験</Sentence></Column><Column Num="2"><Sentence>検査をいう。</Sentence></Column></ItemSentence>
<Subitem1 Num="1"><Subitem1Title>イ</Subitem1Title><Subitem1Sentence><Sentence>細目</Sentence></Subitem1Sentence>
<Subitem2 Num="1"><Subitem2Title>（１）</Subitem2Title><Subitem2Sentence><Sentence>更に細目</Sentence></Subitem2Sentence></Subitem2></Subitem1></Item>
</Paragraph><Paragraph Num="2"><ParagraphNum>２</ParagraphNum><ParagraphSentence><Sentence>表のとおり。</Sentence></ParagraphSentence>
<TableStruct><Table><TableRow><TableColumn><Sentence>甲</Sentence></TableColumn><TableColumn><Sentence>乙</Sentence></TableColumn></TableRow></Table>
<Remarks><RemarksLabel>備考</RemarksLabel><Sentence>単位は円とする。</Sentence></Remarks></TableStruct></Paragraph></Article>
</Section></Chapter></MainProvision></LawBody></Law>"""


def test_egov_structures(tmp_path: Path) -> None:
    path = tmp_path / "structures.xml"
    path.write_text(EGOV_STRUCTURES, encoding="utf-8")
    (law,) = read_all("egov_xml", path)
    assert law.text.split("\n") == [
        "構造試験令", "（令和五年政令第一号）", "内閣は、この政令を制定する。", "目次", "第一章　総則（第一条）",
        "第一章　総則", "第一節　定義", "第一条　次の用語の意義は、当該各号に定める。", "一　試験　検査をいう。",
        "イ　細目", "（１）　更に細目", "２　表のとおり。", "甲\t乙", "備考", "単位は円とする。"]
    assert law.meta["law_type"] == "CabinetOrder" and law.meta["era"] == "Reiwa"


def _law(body: str) -> str:
    return (f"<Law><LawNum>第一号</LawNum><LawBody><LawTitle>試験法</LawTitle><MainProvision><Article><ArticleTitle>"
            f"第一条</ArticleTitle><Paragraph><ParagraphNum/>{body}</Paragraph></Article></MainProvision></LawBody></Law>")


def test_egov_tables_and_quoted_blocks_keep_their_lines(tmp_path: Path) -> None:
    """A table as an item's sentence ran into one string (一　甲地区百円乙地区二百円), a quoted article ran into
    its sentence (改める。（定義）第二条引用条文。), and a RelatedArticleNum after an empty title joined the line of
    another element."""
    cells = "".join(f"<TableRow><TableColumn><Sentence>{a}</Sentence></TableColumn><TableColumn><Sentence>{b}"
                    "</Sentence></TableColumn></TableRow>" for a, b in (("甲地区", "百円"), ("乙地区", "二百円")))
    path = tmp_path / "law.xml"
    path.write_text(_law("<ParagraphSentence><Sentence>次のとおり。</Sentence></ParagraphSentence><Item><ItemTitle>一"
                         f"</ItemTitle><ItemSentence><Table>{cells}</Table></ItemSentence></Item>"), encoding="utf-8")
    assert read_all("egov_xml", path)[0].text.split("\n")[2:] == ["第一条　次のとおり。", "一", "甲地区\t百円",
                                                                  "乙地区\t二百円"]
    path.write_text(_law("<ParagraphSentence><Sentence>第二条を次のように改める。<QuoteStruct><Article><ArticleCaption>"
                         "（定義）</ArticleCaption><ArticleTitle>第二条</ArticleTitle><Paragraph><ParagraphNum/>"
                         "<ParagraphSentence><Sentence>引用条文。</Sentence></ParagraphSentence></Paragraph></Article>"
                         "</QuoteStruct></Sentence></ParagraphSentence>"), encoding="utf-8")
    assert read_all("egov_xml", path)[0].text.split("\n")[2:] == ["第一条　第二条を次のように改める。", "（定義）",
                                                                  "第二条　引用条文。"]
    path.write_text(_law("<ParagraphSentence><Sentence>施行する。</Sentence></ParagraphSentence>").replace(
        "</MainProvision>", "</MainProvision><AppdxStyle><AppdxStyleTitle/><RelatedArticleNum>（第一条関係）"
        "</RelatedArticleNum></AppdxStyle>"), encoding="utf-8")
    assert read_all("egov_xml", path)[0].text.split("\n")[2:] == ["第一条　施行する。", "（第一条関係）"]


def test_egov_rendering_stays_linear(tmp_path: Path) -> None:
    """A long run of ideographic spaces (whitespace without a newline) and thousands of ArticleRange siblings
    were quadratic: 80k spaces took 9 s, 200k ranges 6 s."""
    import time

    spaces = "\u3000" * 300_000
    ranges = "<ArticleRange>（第一条―第三条）</ArticleRange>" * 100_000
    path = tmp_path / "long.xml"
    path.write_text(f"<Law><LawBody><LawTitle>試験法</LawTitle><MainProvision><Chapter><ChapterTitle>第一章</ChapterTitle>"
                    f"{ranges}<Article><Paragraph><ParagraphSentence><Sentence>この法律は{spaces}試験とする。</Sentence>"
                    "</ParagraphSentence></Paragraph></Article></Chapter></MainProvision></LawBody></Law>", encoding="utf-8")
    start = time.process_time()
    (law,) = read_all("egov_xml", path)
    assert time.process_time() - start < 5
    lines = law.text.split("\n")
    assert lines[1] == "第一章" + "（第一条―第三条）" * 100_000 and lines[2] == f"この法律は{spaces}試験とする。"


def test_samples_are_unmodified_corpus_records(samples_dir: Path, shared_corpora: Path) -> None:
    """Provenance check (developers only): bundled texts are the corpus texts, except the documented edits."""
    corpus_files = {"government/laws.jsonl": "government/egov_laws_2013.jsonl",
                    "academic/abstracts.jsonl": "academic/anlp2025_abstracts.jsonl",
                    "reference/wikipedia.jsonl": "reference/jawiki_jsquad_paragraphs.jsonl",
                    "reference/aozora.jsonl": "reference/aozora_bunko.jsonl",
                    "web/fineweb2.jsonl": "web/fineweb2_ja_text.jsonl"}
    for sample, corpus in corpus_files.items():
        originals = {r["id"]: r for r in records(shared_corpora / corpus)}
        for row in records(samples_dir / sample):
            if "near_copy_of" in row:
                assert row["text"] != originals[row["near_copy_of"]]["text"]
                continue
            original = originals[row["id"]]
            assert row["license"] == original["license"] and row["url"] == original["url"]
            if "excerpt" in row:
                assert original["text"].startswith(row["text"]) and len(row["text"]) <= 30_000
            else:
                assert row["text"] == original["text"], row["id"]


def test_a_file_repeating_an_id_gives_each_record_its_own(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": "本文"}) + "\n" for i in ["a", "a", "a#2", "a", "b"]))
    src = SourceConfig(name="s", kind="web", format="jsonl", paths=(str(path),), license="x")
    assert [r.source_id for r in read_file(str(path), src)] == ["a", "a#2", "a#2#2", "a#3", "b"]


@pytest.mark.parametrize(("codec", "label"), [("cp932", "Shift_JIS"), ("euc_jp", "EUC-JP"),
                                              ("iso2022_jp", "ISO-2022-JP")])
def test_xml_in_a_japanese_legacy_encoding_reads_like_utf8(samples_dir: Path, tmp_path: Path, codec: str,
                                                           label: str) -> None:
    """expat decodes only UTF-8/16, ASCII and Latin-1: a law declared Shift_JIS was a reader failure."""
    xml = (samples_dir / "government/law_sample.xml").read_text(encoding="utf-8")
    path = tmp_path / "law.xml"
    path.write_bytes(xml.replace('encoding="UTF-8"', f'encoding="{label}"', 1).encode(codec))
    (law,) = read_all("egov_xml", path)
    assert isinstance(law, RawDoc) and law.text == read_all("egov_xml", samples_dir / "government/law_sample.xml")[0].text


@pytest.mark.parametrize(("codec", "label", "sentence"), [
    ("cp932", "Shift_JIS", "①㈱Ⅳの文〜。"), ("iso2022_jp_ext", "ISO-2022-JP", "ﾃｽﾄの文。"), ("utf-8", "utf8", "日本語の文。"),
    ("euc_jis_2004", "EUC-JP", "①の文。")])
def test_xml_labels_read_as_the_web_reads_them(tmp_path: Path, codec: str, label: str, sentence: str) -> None:
    """Python's shift_jis and iso2022_jp refuse the NEC/IBM rows and half-width katakana real files use, and
    expat does not know the spelling utf8: each file was quarantined whole. Shift_JIS decodes as cp932 folded
    to the JIS X 0208 mapping, as in HTML (〜 stays U+301C)."""
    path = tmp_path / "law.xml"
    path.write_bytes(f'<?xml version="1.0" encoding="{label}"?><Law><LawNum>第一号</LawNum><LawBody><LawTitle>法'
                     f"</LawTitle><MainProvision><Paragraph><ParagraphNum/><ParagraphSentence><Sentence>{sentence}"
                     "</Sentence></ParagraphSentence></Paragraph></MainProvision></LawBody></Law>".encode(codec))
    (law,) = read_all("egov_xml", path)
    assert isinstance(law, RawDoc) and law.text.endswith(sentence), law


def test_xml_in_latin1_keeps_latin1(tmp_path: Path) -> None:
    """XML's ISO-8859-1 is Latin-1 (expat reads it), not the web's cp1252: 0x81 0x8D 0x90 quarantined the file."""
    path = tmp_path / "law.xml"
    path.write_bytes('<?xml version="1.0" encoding="ISO-8859-1"?><Law><LawBody><LawTitle>Act</LawTitle><MainProvision>'
                     "<Paragraph><ParagraphSentence><Sentence>Text \x81\x8d\x90 é.</Sentence></ParagraphSentence>"
                     "</Paragraph></MainProvision></LawBody></Law>".encode("latin-1"))
    (law,) = read_all("egov_xml", path)
    assert isinstance(law, RawDoc) and law.text.endswith("Text \x81\x8d\x90 é."), law


def test_xml_with_bad_bytes_for_its_encoding_or_without_records_is_quarantined(samples_dir: Path,
                                                                                tmp_path: Path) -> None:
    xml = (samples_dir / "government/law_sample.xml").read_text(encoding="utf-8")
    data = xml.replace('encoding="UTF-8"', 'encoding="Shift_JIS"', 1).encode("cp932")
    broken = tmp_path / "broken.xml"
    broken.write_bytes(data[:3000] + b"\x81\x20" + data[3000:])
    (bad,) = read_all("egov_xml", broken)
    assert isinstance(bad, Unreadable) and bad.error.startswith("invalid Shift_JIS (illegal multibyte sequence)")
    other = tmp_path / "page.xml"
    other.write_text('<?xml version="1.0" encoding="UTF-8"?><html><body>日本語</body></html>', encoding="utf-8")
    (bad,) = read_all("egov_xml", other)
    assert isinstance(bad, Unreadable) and bad.error.startswith("no <Law> element in this XML")
    utf7 = tmp_path / "utf7.xml"  # `+2AA-` decoded to a lone surrogate; curate then said "reader failed: UnicodeEncodeError"
    utf7.write_bytes(xml.replace('encoding="UTF-8"', 'encoding="utf-7"', 1).encode("utf-7")
                     .replace(b"<LawTitle>", b"<LawTitle>+2AA-", 1))
    (bad,) = read_all("egov_xml", utf7)
    assert isinstance(bad, Unreadable) and bad.error == "XML declared in utf-7, which is no text encoding"


def test_text_reader_in_a_named_encoding(samples_dir: Path, tmp_path: Path) -> None:
    """Aozora Bunko distributes its texts in Shift_JIS: `encoding: cp932` reads them as written."""
    work = records(samples_dir / "reference/aozora.jsonl")[1]["text"]
    sentences = [s + "。" for s in work.split("。") if s.strip()][:3]
    path = tmp_path / "work.txt"
    path.write_bytes("\r\n".join([sentences[0], "\u3000", sentences[1], sentences[2]]).encode("cp932"))
    (doc,) = read_all("text", path, encoding="cp932")
    assert doc.text == "\r\n".join([sentences[0], "\u3000", sentences[1], sentences[2]])
    docs = read_all("text", path, encoding="cp932", text_split="blank_line")  # the U+3000 line separates
    assert [d.text for d in docs] == [sentences[0], sentences[1] + "\n" + sentences[2]]
    (bad,) = read_all("text", path)  # as UTF-8
    assert isinstance(bad, Unreadable) and bad.error.startswith("invalid UTF-8 at byte 0")
    path.write_bytes(sentences[0].encode("cp932") + b"\x81\x20")
    (bad,) = read_all("text", path, encoding="cp932")
    assert isinstance(bad, Unreadable) and bad.error.startswith(f"invalid cp932 at byte {len(sentences[0].encode('cp932'))}")
