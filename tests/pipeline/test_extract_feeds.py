"""Feeds: what an Atom entry's type says about its text; `<` that is not a tag in titles; no U+FDD0 in any output."""
from __future__ import annotations

import pytest

from pipeline.extract import html_to_text

ATOM = '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>技術ブログ</title>{}</feed>'
XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">{}</div>'


@pytest.mark.parametrize(("content", "shown"), [
    # type="xhtml": markup as it stands; unescaping it first made `&lt;script&gt;` a script hiding the entry
    (f'<content type="xhtml">{XHTML.format("<p>&lt;script&gt;タグの中に書きます。</p><p>次の段落です。</p>")}</content>',
     "<script>タグの中に書きます。\n次の段落です。"),
    (f'<content type="xhtml">{XHTML.format("<p>a&lt;b の場合は真です。</p>")}</content>', "a<b の場合は真です。"),
    ('<content type="application/xhtml+xml" mode="xml"><div>x&lt;y なら<b>真</b>です。</div></content>',  # Atom 0.3
     "x<y なら真です。"),
    ('<content type="application/xhtml+xml" mode="escaped">&lt;p&gt;x&amp;lt;y なら真&lt;/p&gt;</content>',
     "x<y なら真"),
    # type="text": plain text, not HTML (`<y` was read as a tag that took the sentence)
    ('<content type="text">x&lt;y のときに成り立つ。次の文。</content>', "x<y のときに成り立つ。次の文。"),
    ('<summary type="text/plain">要約 &lt;b&gt; は文字どおり</summary>', "要約 <b> は文字どおり"),
    # type="html" (and no type) as before: escaped HTML
    ('<content type="html">&lt;p&gt;HTMLの&amp;amp;本文&lt;/p&gt;</content>', "HTMLの&本文"),
    ("<content>&lt;p&gt;型のない本文&lt;/p&gt;</content>", "型のない本文"),
])
def test_an_atom_entry_is_read_as_its_type_says(content, shown):
    text, meta = html_to_text(ATOM.format(f"<entry><title>題</title>{content}</entry>"))
    assert meta["extractor"] == "feed" and text == f"題\n{shown}"


def test_a_less_than_sign_that_starts_no_tag_stays_in_a_title():
    """Titles lost `<速報>` (escaped in the XML, or in CDATA) to a tag pattern taking anything in angle brackets."""
    rss = ("<rss version=\"2.0\"><channel><title>&lt;公式&gt;ニュース</title>"
           "<item><title>&lt;速報&gt;地震情報</title><description>本文です。</description></item>"
           "<item><title><![CDATA[<お知らせ>休業日 < 5 日]]></title><description>本文二</description></item>"
           "</channel></rss>")
    text, meta = html_to_text(rss)
    assert meta["title"] == "<公式>ニュース"
    assert text == "<速報>地震情報\n本文です。\n\n<お知らせ>休業日 < 5 日\n本文二"
    atom = ATOM.format('<entry><title type="text">vector&lt;int&gt; の使い方</title><content type="html">'
                       "&lt;p&gt;本文&lt;/p&gt;</content></entry>")
    assert html_to_text(atom)[0] == "vector<int> の使い方\n本文"  # a text title is not HTML either
    assert html_to_text(ATOM.format('<entry><title type="html">&lt;b&gt;太字&lt;/b&gt;</title></entry>'))[0] == "太字"


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
@pytest.mark.parametrize("mark", ["FDD0", "FDD1", "FDD2"])
def test_the_pad_character_is_never_output(extractor, mark):
    """U+FDD0 pads short text nodes for resiliparse and is removed from its output; a page's own (here as a character
    reference) made resiliparse drop the paragraph, and the visible-text fallback, or a title read by hand, kept it.
    U+FDD1 and U+FDD2 mark segment breaks and `<pre>` lines (rendering.py): a page's own stayed in its title."""
    page = f"<html><head><title>題&#x{mark};</title></head><body><p>前&#x{mark};後の文章です。</p></body></html>"
    text, meta = html_to_text(page, extractor=extractor)
    assert text == "前後の文章です。" and meta["title"] == "題"
