"""Text as a browser shows it where the extractors did not: `<pre>` indentation."""
from __future__ import annotations

import time

import pytest

from pipeline import rendering
from pipeline.extract import html_to_text

FILLER = "これは本文として十分な長さがある段落で、主要な内容として抽出されるはずの文章です。"
PAGE = "<html><head><title>題</title></head><body><article><p>" + FILLER + "</p>{}</article></body></html>"
CODE = "def area(r):\n    if r < 0:\n        return 0\n    return 3.14 * r * r"


def shown(snippet: str, extractor: str = "resiliparse") -> str:
    text, _ = html_to_text(PAGE.format(snippet), extractor=extractor)
    return text.replace(FILLER, "").strip("\n")


# ------------------------------------------------------------------------------------------------ <pre>
@pytest.mark.parametrize(("snippet", "lines"), [
    (f"<pre>{CODE.replace('<', '&lt;')}</pre>", CODE),
    (f"<pre>\n{CODE.replace('<', '&lt;')}\n</pre>", CODE),  # the parser drops the line feed after <pre>
    ("<PRE><code class='py'>  a = 1\n      b  =  2</code></PRE>", "  a = 1\n      b  =  2"),  # runs kept
    ("<pre>  一行目<br>    二行目<BR/>\t三行目</pre>", "  一行目\n    二行目\n\t三行目"),  # <br> starts a line
    ("<pre>&nbsp;&nbsp;字下げ\n&nbsp;&nbsp;&nbsp;&nbsp;二段</pre>", "  字下げ\n    二段"),  # NBSP is a space
    ("<pre>  東京の\n  大阪の</pre>", "  東京の\n  大阪の"),  # the line break stays a line break
])
def test_preformatted_text_keeps_its_indentation(snippet, lines):
    assert shown(snippet) == lines


def test_indentation_outside_pre_still_goes():
    assert shown("<p>   字下げした\u3000段落  です</p><p>\u3000二段落目</p>") == "字下げした 段落 です\n\n二段落目"


def test_a_feed_item_keeps_its_code_indentation():
    rss = ("<rss version=\"2.0\"><channel><title>技術</title><item><title>例</title><description>"
           "&lt;p&gt;次のように書きます。&lt;/p&gt;&lt;pre&gt;if x:\n    y()&lt;/pre&gt;</description></item>"
           "</channel></rss>")
    assert html_to_text(rss)[0] == "例\n次のように書きます。\nif x:\n    y()"


def test_an_unclosed_pre_runs_to_the_end_and_stays_linear():
    assert shown("<pre>  一\n  二") == "  一\n  二"
    page = "<pre>" + "  行\n" * 200_000
    start = time.process_time()
    assert rendering.mark_pre_text(page).count(rendering.PRE_LINE) == 200_001
    assert time.process_time() - start < 1.0
