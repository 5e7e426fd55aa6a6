"""HTML -> text: ruby, page chrome, paragraphs, feeds, fallbacks, caps, and the bundled sample WARC."""
from __future__ import annotations

import random
import re
import sys
import threading
import time

import pytest

from pipeline import extract
from pipeline.charset import CharsetError
from pipeline.extract import drop_ruby, html_to_text, page_to_text
from pipeline.sources.base import RawDoc, SourceConfig
from pipeline.sources.warc import read
from tests.conftest import SAMPLES

PARA1 = "梅雨は東アジアの広い範囲でみられる気象現象で、五月から七月にかけて曇りや雨の多い期間のことである。"
PARA2 = "梅雨の時期が始まることを梅雨入りといい、社会通念上は春の終わりであるとともに夏の始まりとされる。"
PAGE = f"""<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>梅雨 - 百科</title>
<style>p {{ color: red; }} .x::after {{ content: "スタイルの文字"; }}</style>
<script>var s = "スクリプトの文字列";</script></head>
<body><header><div>百科サイト</div></header>
<nav><ul><li><a href="/">ホーム</a></li><li><a href="/map">サイトマップ</a></li><li><a href="/c">お問い合わせ</a></li></ul></nav>
<main><article><h1>梅雨</h1>
<p>この<ruby>記事<rp>(</rp><rt>きじ</rt><rp>)</rp></ruby>は<ruby><rb>試験</rb><rt>しけん</rt></ruby>用です。</p>
<p>{PARA1}</p>
<p>{PARA2}</p>
</article></main>
<footer><p>Copyright &copy; 2024 百科サイト All Rights Reserved.</p><p><a href="/p">プライバシーポリシー</a></p></footer>
</body></html>"""


@pytest.mark.parametrize(("html", "expected"), [
    ("<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>を読む", "<ruby>漢字</ruby>を読む"),
    ("<ruby><rb>漢字</rb><rt>かんじ</rt></ruby>を読む", "<ruby>漢字</ruby>を読む"),
    ("<ruby>漢<rt>かん</rt>字<rt>じ</rt></ruby>を読む", "<ruby>漢字</ruby>を読む"),
    ("<ruby>漢<rt>かん<rt>ぜ</ruby>を読む", "<ruby>漢</ruby>を読む"),  # end tags omitted, as HTML allows
    ("<RUBY>東京<RP>（</RP><RT>とうきょう</RT><RP>）</RP></RUBY>へ", "<RUBY>東京</RUBY>へ"),
    ("<ruby><rb>明日</rb><rtc><rt>あした</rt></rtc></ruby>", "<ruby>明日</ruby>"),
])
def test_drop_ruby(html, expected):
    assert drop_ruby(html) == expected


@pytest.mark.parametrize("name", ["resiliparse", "trafilatura"])
def test_main_content_without_chrome_or_ruby(name):
    text, meta = html_to_text(PAGE, "http://example.test/tsuyu", extractor=name)
    assert PARA1 in text and PARA2 in text
    assert "この記事は試験用です。" in text
    for gone in ("きじ", "しけん", "(", "スクリプト", "スタイル", "サイトマップ", "お問い合わせ", "Copyright",
                 "プライバシー"):
        assert gone not in text, gone
    assert meta["extractor"] == name and meta["title"].startswith("梅雨")


@pytest.mark.parametrize("name", ["resiliparse", "trafilatura"])
def test_one_character_text_between_inline_elements_is_kept(name):
    """resiliparse's main-content mode dropped every text node of one CJK character: と between two <b>, 、 between
    two links, a one-kanji <em>, a character reference."""
    inline = ("<p>会場は<b>東京</b>と<b>大阪</b>の二か所です。詳細は<a href=/x>公式サイト</a>、<a href=/y>ブログ</a>"
              "をご覧ください。この<em>本</em>を読みました&#12290;</p>")
    text, meta = html_to_text(PAGE.replace(f"<p>{PARA2}</p>", f"<p>{PARA2}</p>{inline}"), extractor=name)
    assert "会場は東京と大阪の二か所です。詳細は公式サイト、ブログをご覧ください。この本を読みました。" in text
    assert "\ufdd0" not in text + meta["title"] and meta["title"].startswith("梅雨")
    assert extract._SHORT_TEXT_NODE.sub(extract._padded, "<b>&amp;</b><b>&#xD7;</b>") == "<b>&amp;</b><b>&#xD7;</b>"


def test_a_shallow_list_of_sentences_is_kept_and_menus_are_not():
    """resiliparse's main-content mode drops every <ul> less than four levels below <body>: a list of sentences
    right inside <article> was lost. Menus (short items) and link lists stay out."""
    items = "".join(f"<li>項目{i}は長い文章で、五十文字ほどの説明がここに続きます。</li>" for i in range(5))
    menus = ("<ul><li><a href=/a>ホームへ戻るためのリンクです</a></li><li><a href=/b>会社概要を説明するページです</a></li>"
             "</ul><ul><li>メニュー</li><li>設定</li></ul>")
    page = PAGE.replace("<main><article>", f"{menus}<article>").replace("</article></main>", f"<ul>{items}</ul></article>")
    text, _ = html_to_text(page)
    assert all(f"項目{i}は長い文章で" in text for i in range(5)) and PARA1 in text
    for gone in ("ホームへ戻る", "会社概要", "メニュー", "設定"):
        assert gone not in text, gone


def test_no_resiliparse_object_outlives_extraction_in_a_held_frame(monkeypatch):
    """resiliparse's trees and nodes are PyO3 `unsendable`: dropped on a thread other than the one that made them,
    they print a RuntimeError traceback ("... is unsendable, but is being dropped on another thread"). A Dask
    worker's profiler takes the task thread's frames (sys._current_frames) from its IO-loop thread every 10 ms;
    a frame it still holds when its function returns keeps that function's locals, which then died there (6 of
    20 DaskRunner runs on the shared WARC). Every frame of an extraction (a kept list, a skipped menu, the
    visible-text fallback), held past its return and released on another thread, must hold none of them.
    (Only our frames: resiliparse's Rust code calls weakref.py for its node cache, whose frames we cannot clear.)"""
    frames = []

    def hold(frame, event, _arg):  # what the profiler does: keep a reference to a running frame
        if event == "call" and frame.f_code.co_filename == extract.__file__:
            frames.append(frame)

    items = "".join(f"<li>項目{i}は長い文章で、五十文字ほどの説明がここに続きます。</li>" for i in range(5))
    page = PAGE.replace("</article></main>", f"<ul>{items}</ul><ul><li>メニュー</li></ul></article></main>")
    results = []

    def extract_on_a_worker_thread():
        sys.setprofile(hold)
        try:
            results.append(html_to_text(page))
            results.append(html_to_text("<html><body><ul><li>短い</li></ul><p>少し</p></body></html>"))
        finally:
            sys.setprofile(None)

    worker = threading.Thread(target=extract_on_a_worker_thread)
    worker.start()
    worker.join()
    assert "項目4は長い文章で" in results[0][0] and results[1][1]["fallback"] == "main_content_empty"
    held = [f"{frame.f_code.co_name}: {name}" for frame in frames for name, value in frame.f_locals.items()
            if type(value).__module__.startswith("resiliparse")]
    dropped_elsewhere = []
    monkeypatch.setattr(sys, "unraisablehook", lambda err: dropped_elsewhere.append(str(err.exc_value)))
    frames.clear()  # released on this thread, as Dask's IO loop releases the profiler's frames
    assert not held and not dropped_elsewhere, (held, dropped_elsewhere)


def test_a_ruby_tag_inside_a_comment_or_script_deletes_nothing():
    """A literal <rt> in a comment or a script started a reading that ran to the next ruby tag, deleting the
    paragraphs between."""
    extra = ("<!-- 読み仮名は <rt> 要素で表す --><p>段落A。</p><script>s.replace(/<rt>.*?<\\/rt>/g, '')</script>"
             "<p>段落B。</p>")
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{extra}<p>{PARA1}</p>"))
    assert "段落A。" in text and "段落B。" in text and PARA1 in text and "この記事は試験用です。" in text
    for empty in ("<!-->", "<!--->"):  # whole empty comments, and a custom element that is no <style>
        extra = f"{empty}<p>段落A。</p><style-box><p>段落B。</p></style-box>"
        text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{extra}<p>{PARA1}</p>"))
        assert "段落A。" in text and "段落B。" in text and PARA1 in text, empty
    # a <script> in an attribute value and a <!-- in a textarea are text: they deleted the rest of the page
    for extra in ('<p title="<script>">段落A。</p><p>段落B。</p>', "<textarea><!-- 段落A。</textarea><p>段落B。</p>",
                  "<p data-x='<!--'>段落A。</p><p>段落B。</p>", '<p title="a > b <!-- x">段落A。</p><p>段落B。</p>',
                  f'<p data-x="{"x" * 5000}<!--">段落A。</p><p>段落B。</p>',
                  "<textarea></b><!-- x</textarea><p>段落B。</p>"):
        text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{extra}<p>{PARA1}</p>"))
        assert "段落B。" in text and PARA1 in text and "この記事は試験用です。" in text, extra


def test_the_tag_aware_ruby_pattern_stays_linear():
    """A tag name and its attributes could split a long run of text two ways: an unclosed <p before 20k
    characters of Japanese took 25 s."""
    start = time.perf_counter()
    for n in (20_000, 200_000):
        assert drop_ruby('<rt>x</rt><a title="<">' + "<p" + "日" * n).endswith("日")
        assert drop_ruby('<rt>x</rt><a title="<">' + '<a "' * n + "x")
        assert drop_ruby('<rt>x</rt><a title="<">' + "<a " * n + '"' + "x" * n)
        assert drop_ruby('<rt>x</rt><a title="<">' + '"<a" ' * (n // 5))  # a quote in a tag name swapped the pairs
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("tag", [
    '<a href="x"" title="<!--">',  # stray double quote: it starts an attribute name, the next value is quoted
    "<a href='x'' title='<!--'>",  # stray single quote
    '<a href="x"" title=<!--y>',  # ... and an unquoted value after it
    '<a title=""<!--x">',  # `<!--` right after an empty quoted value: an attribute name
    "<a title=<!--x>",  # unquoted values run to whitespace or `>`, `<` included
    "<img alt=a<!--b>",
    "<img alt=<script>>",
    "<p class=<style>x>",
    "<input value= title=<!--x>",  # an `=` with no value before a space: the value is what follows the space
    '<a href="x" =<!--y>',  # an `=` where a name should be starts the name
    "<a \"<!--\" title=x>",  # a quote in an attribute name is a name character
    "</a title=<!--x>",  # an end tag's attributes are read the same way
])
def test_a_comment_or_script_start_inside_a_tag_deletes_nothing(tag):
    """A `<!--` or `<script>` in an unquoted value, in an attribute name, or after a stray quote was taken for
    markup, deleting the rest of a ruby page; in a browser it is inside the tag."""
    page = PAGE.replace(f"<p>{PARA1}</p>", f"{tag}<p>{PARA1}</p>")
    text, _ = html_to_text(page)
    assert PARA1 in text and PARA2 in text and "この記事は試験用です。" in text and "きじ" not in text, tag
    small = f"<p><ruby>漢字<rt>かんじ</rt></ruby>を読む。</p>{tag}<p>段落B。<ruby>字<rt>じ</rt></ruby></p>"
    assert drop_ruby(small) == f"<p><ruby>漢字</ruby>を読む。</p>{tag}<p>段落B。<ruby>字</ruby></p>", tag
    # a real comment after such a tag is still markup (its <rt> started a reading up to the next ruby tag)...
    after = f"{tag}<!-- 読みは <rt> で --><p>段落C。</p><ruby>字<rt>じ</rt></ruby>"
    assert drop_ruby(after) == f"{tag}<p>段落C。</p><ruby>字</ruby>", tag
    # ... and an unclosed one still runs to the end of the page, as in a browser
    assert drop_ruby(f"<ruby>字<rt>じ</rt></ruby>{tag}<!-- 閉じない<p>段落D。</p>") == f"<ruby>字</ruby>{tag}", tag


@pytest.mark.parametrize("markup, kept", [
    # a ruby tag in an attribute value, a <textarea>, a <title>, a doctype or a bogus comment is no reading
    ('<a title="<rt>">リンク</a>', None), ("<a title='<rp>'>リンク</a>", None), ("<a title=<rt>>リンク</a>", None),
    ('<img alt="<ruby><rt>">', None), ("<textarea><rt>入力</textarea>", None), ("<title><rt>題</title>", None),
    ('<!DOCTYPE html SYSTEM "<rt>">', None), ('<?php echo "<rt>"; ?>', None),
    # the start and end tags of <script>, <style>, <textarea>, <title> are read whole, `<` and all
    ('<script data-x="<">var s = "<!--";</script>', ""), ('<style data-x="<">p { color: red; } /* <!-- */</style>', ""),
    ('<script>var s = "<!--";</script x="<!--">', ""), ("<script>var s = 1;</script foo>", ""),
    ('<textarea title="<"><!-- 入力</textarea>', None), ('<title lang="<"><!-- 題</title>', None),
    # raw text elements, as the WHATWG tokenizer and resiliparse read them: their text is not markup
    ("<xmp><!-- <rt>例</rt> <script></xmp>", None), ("<XMP><rt></XMP>", None), ('<xmp title="<"><!--</xmp x="<!--">', None),
    ('<iframe src="x.html"><!-- </iframe>', None), ("<noembed><!-- <rt></noembed>", None),
    ("<noframes><script><rt></noframes>", None),
    # bogus comments end at the first `>`: a `<!--` in one starts no comment
    ("</ <!-- >", None), ("<? <!-- <rt> ?>", None), ("<!x <!-- >", None), ("</3<!-- >", None),
    # `--!>` ends a comment
    ("<!-- コメント --!>", ""),
])
def test_markup_a_browser_does_not_read_as_markup_deletes_nothing(markup, kept):
    """A `<rt>` in an attribute value started a reading (up to 300 characters of page text gone); a `<!--` or
    `<script>` in a raw-text element (<xmp>, <iframe>, <noembed>, <noframes>), in a bogus comment, or after a `<`
    in a script's or a textarea's own tags started an unclosed comment or script that deleted the rest of the
    page. `kept`: what drop_ruby leaves of the markup (None: all of it)."""
    kept = markup if kept is None else kept
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{markup}<p>{PARA1}</p>"))
    assert PARA1 in text and PARA2 in text and "この記事は試験用です。" in text and "きじ" not in text, markup
    for forced in ("", '<a title="<">'):  # as it comes (either path), and on the tag-aware path
        small = f"{forced}<p><ruby>漢字<rt>かんじ</rt></ruby>を読む。</p>{markup}<p>段落B。<ruby>字<rt>じ</rt></ruby></p>"
        assert drop_ruby(small) == f"{forced}<p><ruby>漢字</ruby>を読む。</p>{kept}<p>段落B。<ruby>字</ruby></p>", (forced, markup)
        # a real comment after it is still markup, and an unclosed one still runs to the end of the page
        after = f"{forced}<ruby>字<rt>じ</rt></ruby>{markup}<!-- 読みは <rt> で --><p>段落C。</p>"
        assert drop_ruby(after) == f"{forced}<ruby>字</ruby>{kept}<p>段落C。</p>", (forced, markup)
        assert drop_ruby(f"{forced}<ruby>字<rt>じ</rt></ruby>{markup}<!-- 閉じない<p>段落D。</p>") == f"{forced}<ruby>字</ruby>{kept}"


def test_plaintext_runs_to_the_end_and_noscript_is_markup():
    """After <plaintext> everything is text (it has no end tag): a `<!--` there deleted the rest of the page.
    resiliparse parses with scripting off, so a <noscript>'s content is markup, a comment there a comment: drop_ruby
    reads it so too."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    for forced in ("", '<a title="<">'):
        rest = "<plaintext><!-- <p>段落A。</p><ruby>字<rt>じ</rt></ruby>"
        assert drop_ruby(f"{forced}<ruby>漢字<rt>かんじ</rt></ruby>{rest}") == f"{forced}<ruby>漢字</ruby>{rest}"
        noscript = "<noscript><!-- <rt>x --><p>段落B。</p></noscript>"
        assert drop_ruby(f"{forced}<ruby>字<rt>じ</rt></ruby>{noscript}") == f"{forced}<ruby>字</ruby><noscript><p>段落B。</p></noscript>"
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"<plaintext><!-- <p>{PARA1}</p>"))
    assert PARA1 in text and "この記事は試験用です。" in text
    assert "段落B" not in extract_plain_text(HTMLTree.parse("<p>段落A。</p><noscript><!-- </noscript><p>段落B。</p>"))


def test_the_whatwg_tag_pattern_stays_linear():
    """The tag pattern's weak spots: tags that never close (had each one failed at the end of the page, every
    later `<` would rescan it), runs of spaces before an `=` or not, unquoted values holding `<` and `=`."""
    start = time.process_time()
    tags = ("<a title=" * 200_000, '<a x="' * 200_000, "<a =" * 200_000, "<a " + "=" * 1_000_000,
            "<a x" + " " * 1_000_000 + "y", "<a x=y" * 200_000)
    for prefix in ("<rt>x</rt>", '<rt>x</rt><a title="<">'):  # the gate alone, and the tag-aware pattern
        for tag in tags:  # one tag to the end of the page: kept
            assert drop_ruby(prefix + tag) == prefix[10:] + tag, tag[:9]
        assert drop_ruby(prefix + "<<!--" * 200_000) == prefix[10:] + "<"  # a comment to the end: gone
    assert time.process_time() - start < 3


def test_raw_text_bogus_comment_and_reading_patterns_stay_linear():
    """Raw-text elements and scripts whose end tag never comes (or comes with attributes that never close), scripts'
    escaped runs (dashes, `<script`, `</script`), bogus comments to the end of the page, readings that never end
    within 300 characters, and runs of `<`: about 1M characters each, on both paths."""
    def rep(piece: str) -> str:
        return piece * (1_000_000 // len(piece))

    pages = ("<xmp>" + rep("</xmp"), rep("<xmp>a</xmp>"), rep("<title>" + "題" * 50 + "</title>"), rep("<plaintext"),
             "<script>" + rep("</script x="), "<style>" + rep("</style/"), "<script><!--" + rep("-"),
             "<script><!--" + rep("--<"), "<script>" + rep("<!-"), rep("<script><!--<script></script"),
             "<!--" + rep("--!"), rep("<!-- x --!>"),
             rep("</3<"), rep("<? "), rep("<!x"), "<!DOCTYPE" + " " * 1_000_000,
             rep("<rt>" + "<b>" * 120), rep("<rt>x</rt x='"), "<rt" + rep(" x="), rep("<rt>"), "<" * 1_000_000,
             rep("<<r"), rep('<a x="<"><xmp></xmp><rt>か</rt>'), rep("<ruby>字<rtc>" + "<rt>あ" * 70),
             rep("<rt>" + "<b>" * 100 + "</rt"), "<rt" + "x" * 1_000_000, rep("<rtc><b>x</b>" * 40 + "<p>"))
    for prefix in ("<rt>x</rt>", '<rt>x</rt><a title="<">'):  # the gate and the fast path, the tag-aware pattern
        for page in pages:
            start = time.process_time()
            assert drop_ruby(prefix + page).startswith(prefix[10:]), page[:12]
            assert time.process_time() - start < 2, (prefix, page[:12])  # 0.8 s at most here; quadratic: minutes


def test_paragraphs_stay_on_their_own_lines():
    text, _ = html_to_text(PAGE)
    lines = [line for line in text.split("\n") if line]
    assert PARA1 in lines and PARA2 in lines
    assert "\n\n\n" not in text and text == text.strip()


def test_tidy_spaces_and_blank_lines():
    """The layout rule, spelled as the regexes it was (str.replace and `in` now do it faster)."""
    def spec(text: str) -> str:
        text = re.sub(r"[ \t\u3000\xa0]+", " ", text.replace("\r", "\n"))
        return re.sub(r"\n{2,}", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()

    rng = random.Random(3)
    pool = list(" \t\u3000\xa0\r\n\u2003\x0b\x85\u2028") + ["\n\n\n", "本文", "a"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(40))) for _ in range(5000)]
    assert [extract._tidy(t) for t in texts] == [spec(t) for t in texts]
    assert extract._tidy(" 段落\u3000一\t \xa0です \r\r\r\n 二 ") == "段落 一 です\n\n二"

def test_rss_feed_items_become_paragraphs():
    feed = f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>日記</title>
<link>http://example.test/</link><description>説明</description>
<item><title>一日目</title><link>http://example.test/1</link><pubDate>Mon, 01 Apr 2013 09:00:00 +0900</pubDate>
<description><![CDATA[<p>{PARA1}</p><p><ruby>漢字<rt>かんじ</rt></ruby>の話。</p>]]></description></item>
<item><title>二日目</title><link>http://example.test/2</link>
<description>&lt;p&gt;{PARA2}&lt;/p&gt;</description></item></channel></rss>"""
    text, meta = html_to_text(feed)
    assert meta == {"title": "日記", "extractor": "feed"}
    assert text.split("\n\n") == [f"一日目\n{PARA1}\n漢字の話。", f"二日目\n{PARA2}"]
    assert "http://" not in text and "2013" not in text


def test_atom_feed():
    atom = f"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>ブログ</title>
<entry><title>記事</title><id>urn:x</id><updated>2005-12-28T01:32:13+09:00</updated>
<content type="html">&lt;p&gt;{PARA1}&lt;/p&gt;</content></entry></feed>"""
    text, meta = html_to_text(atom)
    assert text == f"記事\n{PARA1}" and meta["title"] == "ブログ"


def test_fallback_to_visible_text_when_main_content_is_empty(monkeypatch):
    monkeypatch.setitem(extract.EXTRACTORS, "nothing", lambda html, url: (None, ""))
    text, meta = html_to_text(PAGE, extractor="nothing")
    assert PARA1 in text and "サイトマップ" not in text and "Copyright" not in text and "きじ" not in text
    assert meta["fallback"] == "main_content_empty" and meta["extractor"] == "nothing+visible_text"


@pytest.mark.parametrize("chrome", [*(f"<{t}>広告{t}</{t}>" for t in extract._CHROME_SELECTORS if t.isalpha()),
                                    '<NAV class="x">広告NAV</NAV>', "<Footer\n>広告Footer</Footer>",
                                    '<div role="navigation">広告role</div>', "<div ROLE=banner>広告banner</div>",
                                    '<p role="contentinfo">広告info</p>', '<span aria-hidden="true">広告hidden</span>'])
def test_visible_text_drops_every_kind_of_chrome(chrome):
    """The whole-page fallback drops every chrome container, whatever the case of its tag or attribute."""
    text = extract._visible_text(f"<html><body><p>{PARA1}</p>{chrome}<p>本文の続き。</p></body></html>")
    assert PARA1 in text and "本文の続き。" in text and "広告" not in text


def test_giant_input_is_cut(monkeypatch):
    monkeypatch.setattr(extract, "MAX_HTML_CHARS", 5_000)
    html = "<html><body>" + f"<p>{PARA1}</p>" * 2_000 + "</body></html>"
    text, meta = html_to_text(html)
    assert meta["html_truncated"] is True and PARA1 in text and len(text) < 5_000


def test_pathological_nesting_does_not_hang():
    html = "<html><body>" + "<div><span>" * 20_000 + PARA1 + "</span></div>" * 20_000 + "</body></html>"
    start = time.perf_counter()
    text, meta = html_to_text(html)
    assert time.perf_counter() - start < 5 and PARA1 in text and meta["fallback"] == "markup_too_deep"
    text, _ = html_to_text("<p>" + "<b>" * 50_000 + "x")  # never closed
    assert isinstance(text, str)


def test_nesting_depth_at_the_limit():
    deep, limit = extract._too_deep, extract.MAX_DEPTH
    assert deep("<div>" * (limit + 1)) and not deep("<div>" * limit + "<br><p>" * 5000)
    assert deep("</p>" * 5000 + "<div>" * (limit + 1))  # closing tags elsewhere do not hide the depth
    assert not deep(("<div>" * 600 + "</div>" * 600) * 3)  # 1,800 opening tags, depth 600


def test_plain_text_payload_keeps_its_lines():
    body = f"{PARA1}\n{PARA2}\n".encode("cp932")
    text, meta = page_to_text(body, "text/plain", None)
    assert text == f"{PARA1}\n{PARA2}" and meta["extractor"] == "plain_text" and meta["charset"] == "cp932"
    with pytest.raises(CharsetError):
        page_to_text(bytes(range(256)) * 8, "text/html", None)


def test_sample_warc_end_to_end():
    source = SourceConfig(name="web", kind="web", format="warc", paths=(), license="mixed")
    pages = {}
    for doc in read(str(SAMPLES / "web" / "pages.warc.gz"), source):
        assert isinstance(doc, RawDoc)
        if doc.skip_reason:  # the redirect and the image
            continue
        text, meta = page_to_text(doc.html, doc.meta["http_content_type"], doc.url)
        pages[doc.url] = (text, meta)
    assert len(pages) == 18
    for url, (text, _) in pages.items():
        assert "\ufffd" not in text and len(text) > 100, url
        for gone in ("スクリプトの中の文字列", "広告スタイル", "人気記事", "Copyright", "プライバシーポリシー"):
            assert gone not in text, (url, gone)
        if "zh." not in url and "en." not in url:
            assert "この記事は試験用の抜粋です。" in text, url  # ruby bases kept, readings gone
    charsets = {url: meta["charset"] for url, (_, meta) in pages.items()}
    assert charsets["http://law.example.test/keihanzai.html"] == "cp932"
    assert charsets["http://wiki.example.test/mahler.html"] == "euc_jp"
    assert charsets["http://wiki.example.test/origin-of-life.html"] == "iso2022_jp_ext"
    assert charsets["http://pref.example.test/food-safety.html"] == "cp932"
    assert pages["http://blog.example.test/cosmetics.html"][1]["overridden"] is True
    assert pages["http://wiki.example.test/oil.html"][1]["charset_source"] == "http"
    assert pages["http://feed.example.test/rss.xml"][1]["extractor"] == "feed"
    assert "〜" in pages["http://law.example.test/keihanzai.html"][0]
    tsuyu, mirror, near = (pages[u][0] for u in ("http://wiki.example.test/梅雨", "http://mirror.example.test/tsuyu.html",
                                                 "http://wiki2.example.test/梅雨"))
    assert tsuyu == mirror and near != tsuyu and "期間をいう" in near
    assert "学而时习之" in pages["http://zh.example.test/index.html"][0]
    assert pages["http://law.example.test/kyotaku.html"][0] == pages["http://law.example.test/kyotaku-gz.html"][0]


def test_random_markup_never_raises():
    rnd = random.Random(7)
    pieces = ["<", ">", "/", "div", "p", "ruby", "rt", "rp", "rb", "<![CDATA[", "]]>", "<?xml ", "<rss>", "<item>",
              "</item>", "<title>", "</title>", "\x00", "あ", "漢", "&amp;", "&#x3042;", "<script>", "</script>",
              '"', "=", " ", "\n", "<description>", "</description>", "<feed ", "<entry>"]
    for _ in range(300):
        html = "".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 300)))
        text, meta = html_to_text(html)
        assert isinstance(text, str) and "extractor" in meta


def test_shared_corpus_japanese_pages_have_kana(shared_corpora):
    import json
    import re

    web = shared_corpora / "web"
    with open(web / "web_pages.manifest.jsonl", encoding="utf-8") as f:
        langs = {row["warc_record_id"]: row["lang"] for row in map(json.loads, f)}
    source = SourceConfig(name="web", kind="web", format="warc", paths=(), license="n/a")
    japanese = 0
    for doc in read(str(web / "web_pages.warc.gz"), source):
        assert isinstance(doc, RawDoc) and not doc.skip_reason
        text, meta = page_to_text(doc.html, doc.meta["http_content_type"], doc.url)
        assert "\ufffd" not in text
        if langs[doc.source_id] == "ja":
            japanese += 1
            assert re.search(r"[\u3041-\u30ff]", text), (doc.url, meta)
    assert japanese == 78


@pytest.mark.parametrize("html", [
    "<html><body><p>x</p>" + "<![CDATA[" * 200_000,
    "<rss>" + "<item><title>a" * 100_000,
    "<html><head>" + "<title>" * 200_000,
    "<rss><item>" + "<description>" * 200_000,
    "<!--" * 100_000,
    "<!---->" * 100_000 + "<html><p>x</p>",  # the XML-declaration pattern backtracked 2^n over closed comments
    "<p>本文</p>" + "<rt " * 250_000,  # tag patterns with [^>]* were quadratic on unclosed tags
    "<rt>x</rt>" + "<rb " * 250_000,
    "<rss><channel>" + "<item " * 170_000,
    "<rss><channel><item><title><![CDATA[" + "<" * 1_000_000 + "]]></title><description>本文です。</description></item>",
    "<html><body><p>本文</p><svg><title>" + "<" * 190_000 + "</title></svg></body></html>",
    "<ruby>" + "<rt>" * 200_000,
    "<meta " * 300_000,
])
def test_unclosed_constructs_stay_linear(html):
    start = time.process_time()
    text, meta = html_to_text(html)
    assert time.process_time() - start < 3
    assert meta["title"] is None or len(meta["title"]) <= extract.MAX_TITLE_CHARS


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
def test_an_unended_reading_stops_before_a_script_or_a_comment(forced):
    """On the tag-aware path a reading with neither `</rt>` nor `</ruby>` ran on into a script or comment and
    ended at a `<rt` or `</ruby>` inside it: the script's start tag went, its text became page text, and the
    stray `<rt>` made resiliparse skip the rest of the page."""
    markup = f'{forced}<h2><ruby>漢字<rt>かんじ</h2><script>var t = "<rt>" + r;</script><p>{PARA1}</p>'
    assert drop_ruby(markup) == f"{forced}<h2><ruby>漢字<rt>かんじ</h2><p>{PARA1}</p>"  # </h2> ends it: left to the tree
    # a comment inside a reading: dropped with it (fast path) or left to the tree (tag-aware path)
    page = f"{forced}<ruby>漢字<rt>かん<!-- </rt> -->じ</rt></ruby>を読む"
    assert _shown(drop_ruby(page)) == _shown(page) == "漢字を読む"
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", markup))
    assert PARA1 in text and PARA2 in text and "var t" not in text and "かんじ" not in text


def test_fallback_content_and_ruby_in_a_title_are_not_text():
    """<noembed> and <noframes>, which browsers hide, came out as raw markup (a reading included); a <title> kept
    whole on the tag-aware path gave its ruby markup and reading as the title."""
    for forced in ("", '<a title="<">'):
        page = PAGE.replace("<title>", f"<title>{forced and '<'}").replace(
            f"<p>{PARA1}</p>", f"{forced}<noembed><p>代替<ruby>表示<rt>ひょうじ</rt></ruby></p></noembed>"
            f"<noframes>フレーム版</noframes><p>{PARA1}</p>")
        text, meta = html_to_text(page.replace("</title>", "<ruby>梅雨<rt>つゆ</rt></ruby></title>"))
        assert PARA1 in text and "代替" not in text and "フレーム版" not in text and "<p>" not in text, forced
        assert "梅雨" in meta["title"] and "つゆ" not in meta["title"] and "<" not in meta["title"].lstrip("<")


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
def test_old_ruby_edge_cases_keep_the_page(forced):
    """A self-closing <style/> (SVG) started raw text to the end of the page; `</rt class=x>` ended no reading on
    the fast path; `\\xa0` is no HTML whitespace (`<script\\xa0>` is text to a browser); `ſcript` is no
    `script`; an unquoted `<rt>` after a quoted `>` in one tag was missed by the gate."""
    ruby = "<ruby>字<rt>じ</rt></ruby>"
    assert drop_ruby(f"{forced}{ruby}<svg><style/></svg><p>本文。</p>") == f"{forced}<ruby>字</ruby><svg><style/></svg><p>本文。</p>"
    assert drop_ruby(f'{forced}<ruby>漢<rt>かん</rt class="x">字を読む。<p>本文。</p>') == f"{forced}<ruby>漢字を読む。<p>本文。</p>"
    assert drop_ruby(f"{forced}{ruby}<script\xa0>本文A</script\xa0>") == f"{forced}<ruby>字</ruby><script\xa0>本文A</script\xa0>"
    assert drop_ruby(f"{forced}{ruby}<ſcript>本文B</ſcript>") == f"{forced}<ruby>字</ruby><ſcript>本文B</ſcript>"
    tag = '<a title="a>b" data-x=<rt>>リンク</a>'
    assert drop_ruby(f"{ruby}{tag}<p>本文。</p>{ruby}") == f"<ruby>字</ruby>{tag}<p>本文。</p><ruby>字</ruby>"


def _shown(html: str) -> str:
    """resiliparse's text of a page, readings and ruby text containers skipped."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    return extract_plain_text(HTMLTree.parse(html), main_content=False, skip_elements=["rt", "rp", "rtc"])


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
def test_text_in_a_ruby_text_container_is_annotation(forced):
    """Text directly inside <rtc> (a ruby text container) came out as base text: 漢字かんじ, 東京Tokyo. An <rtc> ends at
    </rtc>, </ruby>, <rb> or the next <rtc>, not at the readings it holds; one left alone (over 300 characters) is
    skipped by the extractor."""
    for markup, base in (("<ruby>漢字<rtc>かんじ</rtc></ruby>", "漢字"),
                         ("<ruby><rb>東</rb><rb>京</rb><rtc><rt>とう</rt><rt>きょう</rt></rtc><rtc>Tokyo</rtc></ruby>", "東京"),
                         ("<ruby>漢<rtc>かん<rb>字</rb><rtc class=x>じ</ruby>", "漢字"),
                         ("<ruby>漢<rtc>かん<rp>(</rp>ぜ<rt>じ</ruby>", "漢"), ("<RUBY>明日<RTC>あした</RTC ></RUBY>", "明日")):
        kept = f"{markup[:6]}{base}{markup[-7:]}"  # its <ruby> tags are kept
        assert drop_ruby(f"{forced}<p>{markup}を読む。</p>") == f"{forced}<p>{kept}を読む。</p>", markup
        assert _shown(drop_ruby(f"{forced}<p>{markup}</p>")) == _shown(f"{forced}<p>{markup}</p>") == base
    note = f"<p><ruby>字<rtc>{'注' * 400}</rtc></ruby>を読む。</p>"
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{forced}<p>{PARA1}</p>{note}"))
    assert PARA1 in text and "字を読む。" in text and "注" not in text


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
@pytest.mark.parametrize("script, rest", [
    ("<script><!-- document.write('<script src=\"a.js\"></script>'); t = '<rt>' --></script>", True),
    ("<script><!--<script></script>x = '<rt>';</script>", True),  # back to escaped: the next </script> ends it
    ("<script><!--<script>--></script>", True),  # `-->` ends the double-escaped run too
    ("<SCRIPT><!-- <Script/> </SCRIPT\t> x = '<rt>' --></SCRIPT>", True),  # any case, `/` or whitespace after the name
    ("<script><!--></script>", True),  # `<!-->` is a whole escaped run
    ("<script><!-- <scripts> </script>", True),  # no <script>: no double escape
    ("<script><!--<script>x</script>", False),  # back in the escaped run, which nothing ends: to the end of the page
])
def test_a_script_ends_where_the_tokenizer_ends_it(forced, script, rest):
    """In `<script><!-- document.write('<script></script>') --></script>` the inner </script> does not end the
    script (a `<script` in an escaped run starts a double-escaped one): the JS after it came out as page text, and a
    '<rt>' there started a reading that took the rest of the page. resiliparse (lexbor) reads scripts so too."""
    page = f"{forced}<ruby>字<rt>じ</rt></ruby>{script}<p>本文。</p><ruby>語<rt>ご</rt></ruby>"
    assert drop_ruby(page) == forced + "<ruby>字</ruby>" + ("<p>本文。</p><ruby>語</ruby>" if rest else "")
    assert _shown(drop_ruby(page)) == _shown(page)


def test_drop_ruby_keeps_the_text_resiliparse_shows_without_readings():
    """Random pages of ruby markup (omitted end tags, <rb>, <rtc>) and of markup holding ruby tags or comment starts
    that are not markup (comments, scripts and their escaped runs, raw text, attribute values), on both paths:
    resiliparse's text after drop_ruby is its text with readings skipped (no page text lost, no reading left)."""
    ruby = ("<ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby>", "<ruby><rb>漢</rb><rt>かん</rt></ruby>",
            "<ruby>漢<rt>かん<rt>じ</ruby>", "<RUBY>東京<RT CLASS=x>とうきょう</RT></RUBY>", "<ruby>東<rp>(<rt>ひがし<rp>)</ruby>",
            "<ruby>字<rt>じ</rt class=x></ruby>", "<ruby>字<rt>じ<!-- c --></rt></ruby>", "<ruby>漢字<rtc>かんじ</rtc></ruby>",
            "<ruby>漢<rtc>かん<rb>字</rb><rtc>じ</ruby>", "<ruby>漢<rtc>かん<rp>(</rp>ぜ</ruby>",
            "<ruby><rb>東</rb><rb>京</rb><rtc><rt>とう</rt><rt>きょう</rt></rtc><rtc class=x>Tokyo</rtc></ruby>")
    other = ("漢字", "かな", " ", "<p>", "</p>", "<a href='x'>", "</a>", "<span title='a>b'>", "&lt;", "<br/>",
             "<!DOCTYPE html>", "<!-- <rt> -->", "<!-- </ruby> -->", "<!--->", "<!-- x --!>", "<?php '<rt>' ?>",
             "<style>p{}</style>", "<title>t<rt></title>", "<textarea>t<rt></textarea>", "<xmp><!--</xmp>",
             "<noscript>n</noscript>", "<script>x('<rt>')</script>", "<script type=a>x('</ruby>')</script foo>",
             "<script>a<!--></script>", "<script><!-- document.write('<script></script>'); x('<rt>') --></script>",
             "<script><!--<script>x('<rt>')</script>y--></script>", "<SCRIPT><!-- <Script/> --></SCRIPT>",
             "<script><!--<script></script></script>", "<script><!-- <scripts> </script>",
             "<span>", "</span>", "<div>", "</div>", "<b>", "</b>", "<script src=x/>js('<rt>')</script>",
             "<svg><style/></svg>", "<svg><script/></svg>", "<math><style/></math>")
    # unended readings and ruby text containers (one over 300 characters: left to the tree), then a tag that the
    # tree builder may end them at, or </ruby> after markup that a reading left to the tree holds
    ruby += tuple(f"<ruby>{base}<{tag}>{note}{end}"
                  for base, tag, note in (("字", "rt", "じ"), ("東京", "rtc", "Tokyo"), ("字", "rt", "x" * 301))
                  for end in ("</p>", "</span>", "</div>", "<div>", "<p>", "<b>x</b></ruby>", "<div>x</div></ruby>",
                              "<b><i>y</i></b></ruby>"))
    ruby += ("<h2><ruby>漢字<rt>かんじ</h2>",)
    rnd = random.Random(19)
    for _ in range(800):
        page = "".join(rnd.choice(ruby if rnd.random() < 0.4 else other) for _ in range(rnd.randint(1, 10)))
        for forced in ("", '<a title="<">'):
            assert _shown(drop_ruby(forced + page)) == _shown(forced + page), forced + page


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
@pytest.mark.parametrize("page", [
    "<p><ruby>東京<rtc>Tokyo</p><p>本文です。</p><ruby>語<rt>ご</rt></ruby>",
    "<span><ruby>字<rtc>注</span>本文です。</ruby>",
    "<p><ruby>東京<rt>とうきょう</p><p>本文です。</p><ruby>語<rt>ご</rt></ruby>",
    "<span><ruby>字<rt>じ</span>本文です。</ruby>",
    "<div><ruby>字<rt>じ</div>本文です。<rt>x</rt>",
    "<ruby>a<rtc>b<ruby>x<rt>y</rt></ruby>z</rtc>w</ruby>",
    "<ruby>字<rt>じ<b>x</b></ruby>本文です。",
])
def test_an_unended_reading_ends_where_the_tree_builder_ends_it(forced, page):
    """An unended reading or <rtc> ran (lazily, up to 300 characters) to the next ruby tag or </ruby> across any
    tag, but the tree builder closes it at </p>, at the end tag of an element around the ruby, ...: the text between
    was deleted."""
    assert _shown(drop_ruby(forced + page)) == _shown(forced + page)


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
@pytest.mark.parametrize("page, shown", [
    (f"<ruby>字<rt>{'x' * 400}</ruby>本文", "字本文"),  # over 300 characters
    (f"<ruby>字<rtc>{'x' * 400}</ruby>本文", "字本文"),
    ("<ruby>字<rt>じ<div>x</div></ruby>本文です。", "字本文です。"),  # a block: no reading drop_ruby takes
    ("<ruby>字<rt>じ<b><i>y</i></b></ruby>本文です。", "字本文です。"),  # nested phrasing elements: neither
])
def test_a_reading_left_to_the_tree_ends_at_the_ruby_end_tag(forced, page, shown):
    """A reading drop_ruby does not take is skipped by the extractor in the tree, where </ruby> ends it; drop_ruby
    removed the <ruby> tags too, so the reading ran on over the page text after </ruby>, which was lost."""
    assert _shown(drop_ruby(forced + page)) == _shown(forced + page) == shown
    text, _ = html_to_text(PAGE.replace(f"<p>{PARA1}</p>", f"{forced}<p>{PARA1}</p><div>{page}</div>"))
    assert PARA1 in text and shown in text and "x" not in text


@pytest.mark.parametrize("forced", ["", '<a title="<">'])
@pytest.mark.parametrize("page", [
    '<p>前</p><script src="a.js"/>if (a <!--b) x();</script><p>本文です。</p><ruby>字<rt>じ</rt></ruby>',
    "<script src=x/>js('<rt>')</script>本文<ruby>字<rt>じ</rt></ruby>",
    "<style/>css</style>本文<ruby>字<rt>じ</rt></ruby>",
    "<svg><style/></svg>本文<ruby>字<rt>じ</rt></ruby>", "<svg><script/></svg>本文<ruby>字<rt>じ</rt></ruby>",
    "<svg><script/><ruby>字<rt>じ</rt></ruby></svg>本文", "<math><style/></math>本文<ruby>字<rt>じ</rt></ruby>",
])
def test_a_self_closing_script_or_style_is_one_only_in_foreign_content(forced, page):
    """In HTML the slash of `<script src="a.js"/>` is ignored: the script runs to </script>, and its text (a `<!--`
    there) was page text that took the rest of the page; inside <svg> and <math> `<style/>` is a whole element."""
    assert _shown(drop_ruby(forced + page)) == _shown(forced + page)
