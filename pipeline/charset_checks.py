"""Is a strict decoding mojibake? Checks on decoded text for the charset decision (pipeline/charset.py).

A legacy charset decodes many other charsets' bytes without an error: Chinese and Korean as cp932 half-width
katakana, kana-free EUC-JP as Latin-1 accented letters, Western windows-1252 as windows-1250 or -1257. These
checks tell such readings from real text by what the text of each reading looks like. They run only where the
kana test decides nothing (kana-poor decodings, charset-normalizer's guesses), never on Japanese pages.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

import numpy as np

from filters.codepoints import code_points

SCORE_CHARS = 30_000  # characters of decoded text these checks and charset's kana ratio look at
MIN_LETTERS = 4  # hanzi, hangul or kanji a reading needs before these checks trust it
COMMON_SHARE = 0.9  # of a Chinese or Korean reading's letters, from its charset's frequent block
_MISPLACED_MARK = re.compile("(?<![\uff73\uff76-\uff84\uff8a-\uff8e\uff9c\uff66])\uff9e|(?<![\uff8a-\uff8e])\uff9f")
# kana, hangul, hanzi, private use: what a Chinese or Korean reading of other bytes gives
_CJK_LETTER = re.compile("[\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7a3\ue000-\uf8ff\uf900-\ufaff]")
# accented letters of the languages written in Latin code pages: windows-1252's (French, German, Spanish, Portuguese,
# Italian, Catalan, Dutch, Danish/Norwegian, Swedish/Finnish, Icelandic, Estonian) and the others' (Czech, Slovak,
# Polish, Hungarian, Slovene/Croatian, Romanian, Lithuanian, Latvian, Turkish)
_ALPHABETS = ("àâæçéèêëîïôœùûüÿ", "äöüß", "áéíñóúü", "àáâãçéêíóôõú", "àèéìíîòóùú", "àçèéíïòóúü", "áéíóúàèëïöü",
              "åæøéó", "åäöéšž", "áðéíóúýþæö", "äõöüšž", "áčďéěíňóřšťúůýž", "áäčďéíĺľňóôŕšťúýž", "ąćęłńóśźż",
              "áéíóöőúüű", "čćđšž", "ăâîşţșț", "ąčęėįšųūž", "āčēģīķļņšūž", "çğıöşü")
_NOT_IN_WORD = "\\x00-\\x7f\\u2000-\\u206f\\xab\\xbb\\xb7"  # ASCII, ’ “ ” – — …, « » ·
_IN_WORD = re.compile(f"(?<=[A-Za-z])[^{_NOT_IN_WORD}]|[^{_NOT_IN_WORD}](?=[A-Za-z])")
# frequent block of each charset, read with the Python codec that has just that charset: (codec, lead bytes)
_COMMON_BLOCKS = {"gb18030": ("gb2312", range(0xB0, 0xD8)), "big5hkscs": ("big5", range(0xA4, 0xC7)),
                  "cp949": ("euc_kr", range(0xB0, 0xC9))}


def non_ascii_share(text: str, low: int, high: int) -> float:
    """Characters in [low, high] among the non-ASCII characters of the first SCORE_CHARS (counted on code points:
    10x faster than a regex findall); 0 without any."""
    cps = code_points(text[:SCORE_CHARS])
    non_ascii = int(np.count_nonzero(cps >= 0x80))
    return int(np.count_nonzero((cps >= low) & (cps <= high))) / non_ascii if non_ascii else 0.0


def halfwidth_share(text: str) -> float:
    """Half-width katakana among the non-ASCII characters. GB2312, Big5 and EUC-KR bytes often decode as cp932
    without an error, about two half-width katakana per hanzi or hangul (60-90% of the non-ASCII characters)."""
    return non_ascii_share(text, 0xFF61, 0xFF9F)


def voicing_fits(text: str) -> bool:
    """The half-width text has voicing marks and each follows a kana that takes it (ｶﾞ ﾊﾟ, not ｱﾞ ｶﾟ): written in
    half-width katakana, not decoded from other bytes, where a ﾞ or ﾟ follows whatever byte came before."""
    return ("\uff9e" in text or "\uff9f" in text) and not _MISPLACED_MARK.search(text)


def common_letters(text: str, codec: str) -> bool:
    """A Chinese or Korean reading (gb18030, big5hkscs, cp949) with MIN_LETTERS letters, 90% of them from its
    charset's frequent block (GB2312 and Big5 level 1, KS X 1001 hangul). Half-width katakana bytes read so give
    rare hanzi, hanja, kana and private-use characters: ﾘﾙﾚﾛﾝﾞﾟ and ｯｬｭｮ are frequent bytes outside those blocks."""
    letters = _CJK_LETTER.findall(text[:SCORE_CHARS])
    common = _common_block(codec)
    return len(letters) >= MIN_LETTERS and sum(c in common for c in letters) >= COMMON_SHARE * len(letters)


def common_kanji(text: str) -> bool:
    """A Japanese reading made mostly of kanji (MIN_LETTERS at least, half the non-ASCII characters), two thirds of
    them JIS X 0208 level 1, the kanji Japanese is mostly written with. Kana-free EUC-JP read as Latin-1 is accented
    letters in pairs; Western text whose accented letters all come in pairs (Portuguese "ação, educação") decodes as
    EUC-JP too, but as level-2 kanji."""
    sample = text[:SCORE_CHARS]
    kanji = [c for c in sample if "\u4e00" <= c <= "\u9fff"]
    non_ascii = len(sample) - len(sample.encode("ascii", "ignore"))
    common = _jis_level1()
    level1 = sum(c in common for c in kanji)
    return len(kanji) >= MIN_LETTERS and 2 * len(kanji) >= non_ascii and 3 * level1 >= 2 * len(kanji)


def prefer_cp1252(body: bytes, best: Any) -> bool:
    """Whether windows-1252 reads these bytes better than charset-normalizer's `best` (a CharsetMatch) in another
    Latin code page. On Western pages it ties windows-1252 with windows-1250 or -1257 and names those first: é ’ “ ”
    read the same, but è à ï became č ŕ ď (1250) or č ą ļ (1257). windows-1252 is the web's default for an undeclared
    page (WHATWG); it is taken when it gives the same text, or when its letters fit one language's alphabet at least
    as well as those of `best` do (French è à ï against č ŕ ď; Czech ě ř ů against ì ø ù: 1250 stays)."""
    codec = best.encoding
    if not _latin_code_page(codec):
        return False
    try:
        ours = body.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return "cp1252" in best.could_be_from_charset or _alphabet_fit(ours) >= _alphabet_fit(body.decode(codec, "replace"))


def _alphabet_fit(text: str) -> float:
    """The largest share of the non-ASCII characters next to an ASCII letter (inside words, not ’ “ ” – « » ·) that
    one language's alphabet holds; 1.0 without any. A wrong code page gives letters of several alphabets (ì ø ù for
    Czech ě ř ů) or symbols in words (Wis³a)."""
    chars = [m.group().lower() for m in _IN_WORD.finditer(text[:SCORE_CHARS])]
    if not chars:
        return 1.0
    return max(sum(c in alphabet for c in chars) for alphabet in _ALPHABETS) / len(chars)


@functools.cache
def _latin_code_page(codec: str) -> bool:
    """A single-byte code page whose letter rows 0xC0-0xFF are mostly Latin letters (not Cyrillic, Greek, DOS...)."""
    try:
        chars = bytes(range(0xC0, 0x100)).decode(codec)
    except (LookupError, UnicodeDecodeError):
        return False
    return len(chars) == 64 and sum(unicodedata.name(c, "").startswith("LATIN") for c in chars) >= 48


@functools.cache
def _common_block(codec: str) -> frozenset[str]:
    """GB2312 level 1 (3,755 hanzi), Big5 level 1 (5,401 hanzi), KS X 1001 hangul (2,350 syllables)."""
    base, leads = _COMMON_BLOCKS[codec]
    return _letters_of(base, leads, range(0x40, 0xFF))


@functools.cache
def _jis_level1() -> frozenset[str]:
    """The 2,965 JIS X 0208 level-1 kanji (rows 16-47)."""
    return _letters_of("euc_jp", range(0xB0, 0xD0), range(0xA1, 0xFF))


def _letters_of(codec: str, leads: range, trails: range) -> frozenset[str]:
    """Hanzi, kanji and hangul that `codec` decodes from these lead and trail bytes."""
    found = set()
    for pair in (bytes((lead, trail)) for lead in leads for trail in trails):
        try:
            found.add(pair.decode(codec))
        except UnicodeDecodeError:
            pass
    return frozenset(c for c in found if "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7a3")
