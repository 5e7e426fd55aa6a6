"""A source line break between two Japanese characters is no space (CSS Text's segment-break rule): the e-Gov law
pages wrap their lines mid-sentence, and the extractors printed `の 規定`. Spaces that are really there stay."""
from __future__ import annotations

import random
import time
import unicodedata

import pytest

from pipeline import rendering
from pipeline.extract import html_to_text

FILLER = "これは本文として十分な長さがある段落で、主要な内容として抽出されるはずの文章です。"
PAGE = "<html><head><title>法令</title></head><body><article><p>{}</p><p>" + FILLER + "</p></article></body></html>"
EXTRACTORS = ["resiliparse", "trafilatura"]


def body_text(snippet: str, extractor: str) -> str:
    text, _ = html_to_text(PAGE.format(snippet), extractor=extractor)
    return text.replace(FILLER, "").strip()


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize(("snippet", "shown"), [
    ("この法律の\n規定により定める。", "この法律の規定により定める。"),
    ("この法律の\r\n規定により定める。", "この法律の規定により定める。"),  # CRLF
    ("この法律の  \n    規定により定める。", "この法律の規定により定める。"),  # spaces around it go with it
    ("この法律の\t\r\n\t規定により定める。", "この法律の規定により定める。"),
    ("この法律の\n\n規定により定める。", "この法律の規定により定める。"),  # consecutive breaks are one
    ("定める。\n附則は別に定める。", "定める。附則は別に定める。"),  # punctuation is wide too
    ("ｶﾀｶﾅの\nﾃｷｽﾄ", "カタカナのテキスト"),  # halfwidth (normalized later, but joined here)
    ("全角の\nＡＢＣ", "全角のＡＢＣ"),
])
def test_a_line_break_between_wide_characters_is_removed(extractor, snippet, shown):
    text = body_text(snippet, extractor)
    assert text == shown or text.replace("ｶﾀｶﾅ", "カタカナ").replace("ﾃｷｽﾄ", "テキスト") == shown


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize(("snippet", "shown"), [
    ("この法律の 規定により", "この法律の 規定により"),  # a space typed in the source
    ("この法律の\u3000規定により", "この法律の 規定により"),  # an ideographic space is a space
    ("第\n1条の規定", "第 1条の規定"),  # an ASCII character on one side
    ("Tokyo\n東京の駅", "Tokyo 東京の駅"),
    ("한국어\n문장", "한국어 문장"),  # Hangul keeps its spaces
    ("記号○\n東京", "記号○ 東京"),  # ambiguous width (○) is not wide
])
def test_spaces_that_a_line_break_did_not_make_stay(extractor, snippet, shown):
    assert body_text(snippet, extractor) == shown


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("snippet", [
    "東京<b>\n大阪</b>の駅",  # a tag between: two text nodes, maybe two boxes (the rule sees one text node)
    "<span>東京</span>\n<span>大阪</span>",
    "東京<br>\n大阪",
])
def test_a_line_break_next_to_a_tag_is_left_alone(extractor, snippet):
    text = body_text(snippet, extractor)
    assert "東京大阪" not in text and text == body_text(snippet.replace("\n", " "), extractor)


def test_table_cells_and_preformatted_lines_stay_apart():
    cells = "<table><tr><td>東京都</td>\n<td>大阪府</td></tr></table>"
    assert body_text(cells, "resiliparse") == "東京都 大阪府"
    page = PAGE.format("前文").replace("</article>", "<pre>東京の\n大阪の\n  名古屋</pre></article>")
    text, _ = html_to_text(page)
    assert "東京の\n大阪の\n  名古屋" in text


def test_titles_and_feeds_follow_the_rule_too():
    _, meta = html_to_text(PAGE.format(FILLER).replace("<title>法令</title>", "<title>国土交通省の\n法令</title>"))
    assert meta["title"] == "国土交通省の法令"
    rss = ("<rss version=\"2.0\"><channel><title>速報\nニュース</title><item><title>東京の\n天気</title>"
           "<description>&lt;p&gt;今日は\n晴れです。&lt;/p&gt;</description></item></channel></rss>")
    text, meta = html_to_text(rss)
    assert meta["title"] == "速報ニュース" and text == "東京の天気\n今日は晴れです。"
    atom = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>題</title><entry><title>記事</title>'
            '<content type="text">一行目の\n二行目</content></entry></feed>')
    assert html_to_text(atom)[0] == "記事\n一行目の\n二行目"  # plain text keeps its lines


def test_is_wide_follows_east_asian_width_and_leaves_out_hangul():
    for code in range(0x110000):
        char = chr(code)
        wide = unicodedata.east_asian_width(char) in ("W", "F", "H") and unicodedata.category(char) != "Cn"
        hangul = "HANGUL" in unicodedata.name(char, "") or "KOREAN CHARACTER" in unicodedata.name(char, "")
        if wide and hangul:
            assert not rendering.is_wide(char), hex(code)
        elif rendering.is_wide(char):
            assert wide and not hangul and code >= 0x1100, hex(code)  # the candidate pattern's range


def spec_marks(text: str) -> str:
    """The rule spelled out: white space holding a line feed, between two wide characters, with at most
    MAX_TRAILING spaces, tabs or CRs before its first line feed, gets BREAK after the first wide character."""
    out, pos = [], 0
    while pos < len(text):
        end = pos
        while end < len(text) and text[end] in " \t\r\n":
            end += 1
        if end > pos:
            run = text[pos:end]
            if ("\n" in run and pos > 0 and end < len(text) and run.index("\n") <= rendering.MAX_TRAILING
                    and rendering.is_wide(text[pos - 1]) and rendering.is_wide(text[end])):
                out.append(rendering.BREAK)
            out.append(run)
            pos = end
        else:
            out.append(text[pos])
            pos += 1
    return "".join(out)


def test_marking_matches_the_rule_on_random_text():
    rng = random.Random(5)
    pieces = ["\n", "\r\n", " ", "\t", "\r", "東", "の", "ｶ", "。", "한", "○", "a", "1", "<", ">", "😀", "\u3000", "é"]
    texts = ["".join(rng.choices(pieces, k=rng.randint(0, 16))) for _ in range(40_000)]
    marked = [rendering.mark_segment_breaks(t) for t in texts]
    assert marked == [spec_marks(t) for t in texts]
    assert sum(rendering.BREAK in t for t in marked) > 3_000
    assert [m.replace(rendering.BREAK, "") for m in marked] == texts


@pytest.mark.parametrize("text", [
    "東" + " \n" * 400_000 + "京",  # each line feed of one white-space run could rescan the rest of it
    "東\n" * 500_000,
    "東" + " " * 1_000_000 + "\n京",
    "東" + "\t\t\t\n" * 300_000 + "京",
])
def test_marking_stays_linear(text):
    start = time.process_time()
    rendering.mark_segment_breaks(text)
    assert time.process_time() - start < 1.0


def test_a_one_byte_page_is_left_as_it_is():
    page = "<p>caf\xe9\n" * 1000
    assert rendering.mark_segment_breaks(page) is page
