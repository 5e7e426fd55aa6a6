"""Labels that strict decoding does not contradict but that still misread the page: Chinese or Korean sent as
Shift_JIS (cp932 half-width katakana soup), kana-free EUC-JP sent as ISO-8859-1, and undeclared Western pages that
charset-normalizer names windows-1250 or -1257. Pages are built here from our own sentences or from the bundled
public-domain Aozora Bunko sample."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from pipeline import charset_checks
from pipeline.charset import decode_html

CHINESE = "本站提供最新的新闻资讯和娱乐信息，欢迎大家访问。这本书介绍了中国古代历史和文化的发展过程。"
TAIWANESE = "請輸入使用者名稱和密碼登入。今年的經濟成長速度比去年略有提高。"
KOREAN = "홈페이지에 오신 것을 환영합니다. 오늘은 날씨가 좋습니다. 이 책은 한국의 역사와 문화를 소개합니다."
SOSEKI = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"


def page(text: str, codec: str, decl: str = "") -> bytes:
    return f"<html><head>{decl}<title>{text[:6]}</title></head><body><p>{text}</p></body></html>".encode(codec)


def halfwidth(text: str) -> str:
    """Hiragana and katakana as half-width katakana (ガ -> ｶﾞ), as old mobile pages wrote Japanese."""
    table = {unicodedata.normalize("NFKC", chr(cp)): chr(cp) for cp in range(0xFF61, 0xFFA0)}
    for mark, combining in (("\uff9e", "\u3099"), ("\uff9f", "\u309a")):
        for base in "ウカキクケコサシスセソタチツテトハヒフヘホ" if mark == "\uff9e" else "ハヒフヘホ":
            table[unicodedata.normalize("NFC", base + combining)] = table[base] + mark
    katakana = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)
    return "".join(table.get(c, c) for c in katakana)


@pytest.mark.parametrize(("text", "codec", "expected"), [
    (CHINESE, "gb2312", "gb18030"), (TAIWANESE, "big5", "big5hkscs"), (KOREAN, "euc_kr", "cp949")],
    ids=["gb2312", "big5", "euc-kr"])
@pytest.mark.parametrize("where", ["http", "meta"])
def test_chinese_or_korean_labelled_shift_jis_is_not_read_as_half_width_katakana(text, codec, expected, where):
    """These bytes decode as cp932 without an error, two half-width katakana per hanzi or hangul, which the language
    gate took for kana (0.89 kana): the page was curated as Japanese."""
    body = page(text, codec, '<meta charset="Shift_JIS">' if where == "meta" else "")
    soup = body.decode("cp932")
    assert charset_checks.halfwidth_share(soup) > 0.6 and not charset_checks.voicing_fits(soup)
    decoded, decision = decode_html(body, "text/html; charset=Shift_JIS" if where == "http" else None)
    assert text in decoded
    assert decision == {"charset": expected, "charset_source": "detected", "declared": "shift_jis", "overridden": True}


def test_shift_jis_with_half_width_katakana_names_stays_shift_jis():
    """ｶﾀｶﾅ product names in ordinary Japanese: kana-rich, never in question."""
    text = "新製品のﾃﾞｼﾞﾀﾙｶﾒﾗとﾉｰﾄﾊﾟｿｺﾝを発売しました。ｵﾝﾗｲﾝｼｮｯﾌﾟでもご購入いただけます。"
    decoded, decision = decode_html(page(text, "cp932"), "text/html; charset=Shift_JIS")
    assert text in decoded and decision["charset"] == "cp932" and not decision["overridden"]


def test_a_product_list_in_half_width_katakana_and_kanji_stays_shift_jis():
    rows = [("ｿﾆｰ", "液晶ﾃﾚﾋﾞ 40型", "49,800円"), ("ｼｬｰﾌﾟ", "冷蔵庫 大容量", "98,000円"), ("ｷﾔﾉﾝ", "複合機", "12,800円")]
    table = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)
    body = f"<table>{table}</table>".encode("cp932")
    assert charset_checks.halfwidth_share(body.decode("cp932")) >= 0.5  # the Chinese-or-Korean question is asked
    decoded, decision = decode_html(body, "text/html; charset=Shift_JIS")
    assert "液晶ﾃﾚﾋﾞ 40型" in decoded and decision["charset"] == "cp932" and not decision["overridden"]


def test_japanese_written_in_half_width_katakana_stays_shift_jis(samples_dir: Path):
    """Old-style pages in half-width katakana and kanji (吾輩ﾊ猫ﾃﾞｱﾙ｡): their ﾞ ﾟ follow kana that take them, and
    without any, their Chinese or Korean readings are rare hanzi (痄降 腔衙)."""
    with open(samples_dir / "reference/aozora.jsonl", encoding="utf-8") as f:
        aozora = [json.loads(line)["text"] for line in f]
    texts = [halfwidth(SOSEKI)] + [halfwidth(t[start:start + size]) for t in aozora
                                   for start in range(0, 6000, 1500) for size in (30, 200)]
    for text in texts:
        body = page(text, "cp932")
        decoded, decision = decode_html(body, "text/html; charset=Shift_JIS")
        assert text in decoded and decision["charset"] == "cp932", text
    no_marks = "<p>ﾒﾆｭｰ ｵﾄｸﾅ</p>"
    assert no_marks.encode("cp932").decode("big5hkscs") == "<p>痄降 腔衙</p>"  # strict, but rare hanzi
    assert decode_html(no_marks.encode("cp932"), "text/html; charset=Shift_JIS")[1]["charset"] == "cp932"
    marks = "<p>ﾗﾝｷﾝｸﾞ ﾍﾙﾌﾟ</p>"
    assert charset_checks.common_letters(marks.encode("cp932").decode("gb18030"), "gb18030")  # 纵份皋 唾踢: common hanzi
    assert decode_html(marks.encode("cp932"), "text/html; charset=Shift_JIS")[1]["charset"] == "cp932"  # ｸﾞ ﾌﾟ fit


PREFECTURES = "北海道 青森県 岩手県 宮城県 秋田県 山形県 福島県 茨城県 栃木県 群馬県 埼玉県 千葉県 東京都 神奈川県"


@pytest.mark.parametrize("header", ["text/html; charset=ISO-8859-1", None])
def test_a_kana_free_euc_jp_page_labelled_latin1_is_read_as_euc_jp(header):
    """Kanji-only headings and lists have no kana, which the Latin-label override needed: the page came out as
    accented-letter soup (ËÌ³¤Æ» for 北海道)."""
    body = f'<meta charset="iso-8859-1"><h1>都道府県一覧</h1><ul><li>{PREFECTURES}</li></ul>'.encode("euc_jp")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # not the UTF-8 override
    decoded, decision = decode_html(body, header)
    assert "<h1>都道府県一覧</h1>" in decoded and PREFECTURES in decoded
    assert decision["charset"] == "euc_jp" and decision["overridden"] and decision["declared"] == "iso-8859-1"


@pytest.mark.parametrize("text", [
    "Informação: ação, educação, população, nação e tradição.",  # only ç ã side by side: a pair, but level-2 kanji
    "Les élèves ont étudié à l'école, déjà vu.",  # lone accented letters
    "Ærø Ørsted",  # lone accented letters
], ids=["pt-pairs", "fr", "da"])
def test_western_pages_labelled_latin1_stay_western(text):
    body = f"<p>{text}</p>".encode("cp1252")
    decoded, decision = decode_html(body, "text/html; charset=ISO-8859-1")
    assert decoded == f"<p>{text}</p>" and decision["charset"] == "cp1252" and not decision["overridden"]


@pytest.mark.parametrize("text", [
    "L’élève a étudié à l’école. « Déjà vu », dit-il — c’est “naïf”. Ça coûte 5 €.",
    "Le château se trouve près de la rivière. Les enfants jouent dans le jardin où fleurissent les pêchers.",
    "La città è famosa per la sua università. Però il caffè costa più di un euro.",
    "It’s the “best” café in town — really.",
    "Die Größe des Gebäudes überrascht – „schön“, sagte er.",
    "Stockholm är Sveriges huvudstad. Där finns många öar och vackra hus på ön.",
    "Reykjavík er höfuðborg Íslands. Þar búa flestir Íslendingar.",
], ids=["fr-quotes", "fr", "it", "en", "de", "sv", "is"])
def test_undeclared_western_pages_are_windows_1252(text):
    """charset-normalizer ties windows-1252 with windows-1250 / -1257 / ISO-8859-16 on such pages and named those: è à
    ï came out as č ą ļ, å as ć (and meta said cp1250 even where the text agreed)."""
    decoded, decision = decode_html(f"<p>{text}</p>".encode("cp1252"), None)
    assert decoded == f"<p>{text}</p>"
    assert decision == {"charset": "cp1252", "charset_source": "detected", "declared": None, "overridden": False}


@pytest.mark.parametrize(("text", "codec"), [
    ("Warszawa jest stolicą Polski. Wisła płynie przez miasto, a w parku rosną drzewa.", "cp1250"),
    ("Lietuvos sostinė yra Vilnius. Čia gyvena daug žmonių, o senamiestis įtrauktas į paveldo sąrašą.", "cp1257"),
    ("Česká republika je stát ve střední Evropě. Hlavním městem je Praha, která leží na řece Vltavě.", "cp1250"),
    ("Magyarország fővárosa Budapest. A Duna kettészeli a várost, és sok híd köti össze a két partot.", "cp1250"),
    ("Bucureşti este capitala României. Oraşul are multe parcuri şi clădiri vechi.", "cp1250"),
], ids=["pl", "lt", "cs", "hu", "ro"])
def test_undeclared_central_european_pages_keep_their_code_page(text, codec):
    """windows-1252 reads these bytes too (ì ø ù for Czech ě ř ů, õ û for Hungarian ő ű), but its letters fit no one
    language's alphabet, or are symbols inside words (Wis³a)."""
    decoded, decision = decode_html(f"<p>{text}</p>".encode(codec), None)
    assert decoded == f"<p>{text}</p>" and decision["charset"] == codec
