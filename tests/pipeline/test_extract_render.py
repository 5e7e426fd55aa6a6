"""Text as a browser shows it where the extractors did not: `<pre>` indentation, MathML formulas, and feed titles
whose inline tags split words (東京<b>都</b>庁) or whose `<...>` was text (vector<int>)."""
from __future__ import annotations

import sys
import threading
import time

import pytest

from pipeline import extract, rendering
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


# ------------------------------------------------------------------------------------------------ MathML
@pytest.mark.parametrize(("math", "text"), [
    ("<math><mi>x</mi><msup><mi>y</mi><mn>2</mn></msup></math>", "xy^2"),  # was xy2
    ('<math alttext="x^{2}+1"><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mn>1</mn></math>', "x^{2}+1"),
    ('<math><semantics><mrow><msqrt><mi>a</mi></msqrt></mrow>'
     '<annotation encoding="application/x-tex">\\sqrt{a}</annotation></semantics></math>', "\\sqrt{a}"),
    ("<math><msub><mi>a</mi><mrow><mi>i</mi><mo>+</mo><mn>1</mn></mrow></msub></math>", "a_(i+1)"),
    ("<math><mfrac><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><mn>2</mn></mfrac></math>", "(a+b)/2"),
    ("<math><msqrt><mi>x</mi><mo>+</mo><mn>1</mn></msqrt></math>", "√(x+1)"),
    ("<math><mroot><mi>x</mi><mn>3</mn></mroot></math>", "√[3]x"),
    ("<math><msubsup><mo>∫</mo><mn>0</mn><mi>π</mi></msubsup><mi>f</mi></math>", "∫_0^πf"),
    ("<math><msup><mrow><mo>(</mo><mi>a</mi><mo>+</mo><mi>b</mi><mo>)</mo></mrow><mn>2</mn></msup></math>",
     "(a+b)^2"),
    ("<math><mfenced><mi>x</mi><mi>y</mi></mfenced></math>", "(x,y)"),
    ("<math><mi>x</mi><mtext> if </mtext><mi>y</mi></math>", "x if y"),
    ("<math><semantics><mi>z</mi><annotation-xml encoding='MathML-Content'><ci>z</ci></annotation-xml>"
     "</semantics></math>", "z"),
])
@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_a_formula_reads_as_one_line(extractor, math, text):
    assert shown(f"<p>面積は{math}で求められる。</p>", extractor) == f"面積は{text}で求められる。"


def test_a_one_character_formula_and_a_block_formula():
    assert shown("<p>極限は<math><mo>∞</mo></math>になる。</p>") == "極限は∞になる。"  # a 3-byte node, padded
    assert shown('<p>次の式<math display="block"><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup>'
                 "</math>が成り立つ。</p>") == "次の式\nE=mc^2\nが成り立つ。"


def test_deep_mathml_is_read_without_deep_recursion():
    deep = "<mrow>" * 5000 + "<mi>x</mi>" + "</mrow>" * 5000
    assert shown(f"<p>式<math>{deep}</math>おわり</p>") == "式xおわり"


def test_no_resiliparse_node_outlives_a_formula_in_a_held_frame():
    """As `test_no_resiliparse_object_outlives_extraction_in_a_held_frame` (test_extract.py), for the formula code
    in extract.py and rendering.py: a frame a profiler holds past its return must hold no tree or node."""
    frames = []
    ours = (extract.__file__, rendering.__file__)

    def hold(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename in ours:
            frames.append(frame)

    results = []

    def run():
        sys.setprofile(hold)
        try:
            results.append(html_to_text(PAGE.format('<p>式<math><mfrac><mi>a</mi><mn>2</mn></mfrac></math></p>'
                                                    '<p><math alttext="y"><mi>y</mi></math></p>')))
            results.append(html_to_text(PAGE.format("<p>式<math><mi>b</mi></math></p>"), extractor="trafilatura"))
        finally:
            sys.setprofile(None)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert "式a/2" in results[0][0] and "式b" in results[1][0]
    held = [f"{frame.f_code.co_name}: {name}" for frame in frames for name, value in frame.f_locals.items()
            if type(value).__module__.startswith("resiliparse")]
    frames.clear()
    assert not held, held


# ------------------------------------------------------------------------------------------------ feed titles
ATOM = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>ブログ</title><entry>{}<content type="html">本文</content>'
        "</entry></feed>")
RSS = '<rss version="2.0"><channel><title>通信</title><item>{}<description>本文</description></item></channel></rss>'


@pytest.mark.parametrize(("feed", "title", "text"), [
    (RSS, "<title>&lt;b&gt;東京&lt;/b&gt;都庁の&lt;a href='x'&gt;話&lt;/a&gt;</title>", "東京都庁の話"),
    (ATOM, '<title type="html">東京&lt;b&gt;都&lt;/b&gt;庁</title>', "東京都庁"),
    (ATOM, '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">東京<em>都</em>庁</div></title>', "東京都庁"),
    (RSS, "<title>一行目&lt;br&gt;二行目</title>", "一行目 二行目"),  # a line break is a space in a title
    (ATOM, "<title>vector&lt;int&gt; の使い方</title>", "vector<int> の使い方"),  # no type: text (RFC 4287)
    (ATOM, "<title>Map&lt;K, V&gt; と List&lt;String&gt;</title>", "Map<K, V> と List<String>"),
    (RSS, "<title>Optional&lt;T&gt; の話</title>", "Optional<T> の話"),
    (ATOM, "<title>株価&amp;nbsp;速報 &amp;lt;DVD版&amp;gt;</title>", "株価 速報 <DVD版>"),  # double escaped
])
def test_a_feed_title_reads_as_a_browser_shows_it(feed, title, text):
    assert html_to_text(feed.format(title))[0] == f"{text}\n本文"
