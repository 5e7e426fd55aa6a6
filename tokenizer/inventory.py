"""The guaranteed character inventory: characters that must exist as single pieces whatever the sample.

Without this, a kanji that happens to be rare in the training sample becomes 3 byte tokens forever.
"""
from __future__ import annotations

import functools
import unicodedata

import kanji_lists

# The 2010 常用漢字表 gives four kanji in forms outside JIS X 0208 (𠮟 U+20B9F, 塡, 剝, 頰) and allows their JIS forms
# beside them (許容字体), which most text uses. kanji-lists has 塡 剝 in the official form but 叱 頬 in the allowed one,
# so 𠮟 頰 were never guaranteed, nor 剥 填 below `jis0208`: every form of the four is in every inventory now.
JOYO_ALLOWED = {"𠮟": "叱", "塡": "填", "剝": "剥", "頰": "頬"}  # official form -> allowed form
JOYO: frozenset[str] = frozenset(kanji_lists.JOYO) - set(JOYO_ALLOWED.values()) | set(JOYO_ALLOWED)  # 2,136, official
JOYO_FORMS: frozenset[str] = JOYO | set(JOYO_ALLOWED.values())  # 2,140: the 常用漢字 every inventory guarantees
JINMEIYO: frozenset[str] = frozenset(kanji_lists.JINMEIYO)  # 人名用漢字 outside 常用 (current list)

HIRAGANA = "".join(chr(c) for c in range(0x3041, 0x3097)) + "ゝゞゟ"  # ぁ..ゖ incl. small kana
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30FB)) + "ーヽヾヿㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"  # ァ..ヺ (incl. ヴ, small ヵヶ)
PUNCTUATION = (
    "、。，．・：；？！゛゜´｀¨＾￣＿〃仝々〆〇―‐／＼～∥｜…‥‘’“”（）〔〕［］｛｝〈〉《》「」『』【】"
    "＋－±×÷＝≠＜＞≦≧∞∴♂♀°′″℃￥＄％＃＆＊＠§☆★○●◎◇◆□■△▲▽▼※〒→←↑↓〓〜"
)
# The ideographic space is Japanese layout (Aozora indents, laws) that normalization keeps; a sample without
# one left it to byte fallback (3 tokens each). Other spaces become ASCII spaces in curated text.
IDEOGRAPHIC_SPACE = "\u3000"
FULLWIDTH_ALNUM = "".join(chr(c) for c in range(0xFF10, 0xFF1A)) + "".join(
    chr(c) for c in list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B))
)

ASCII_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))  # keeps English/code/markup out of byte fallback


def _double_byte(codec: str) -> set[str]:
    """BMP characters that `codec` encodes in two bytes (private-use mappings excluded)."""
    out = set()
    for code in range(0x80, 0x10000):
        ch = chr(code)
        if unicodedata.category(ch) == "Co":
            continue
        try:
            encoded = ch.encode(codec)
        except UnicodeEncodeError:
            continue
        if len(encoded) == 2:  # one-byte codes are ASCII / half-width katakana (JIS X 0201)
            out.add(ch)
    return out


def jis_x_0208() -> frozenset[str]:
    """All 6,879 characters of JIS X 0208: 6,355 kanji (levels 1 and 2) plus kana, Greek, Cyrillic,
    symbols and box drawing. Python's shift_jis codec encodes exactly JIS X 0208 (+ ASCII/JIS X 0201)."""
    return frozenset(_double_byte("shift_jis"))


def cp932_extensions() -> frozenset[str]:
    """Windows-31J additions to JIS X 0208 that Japanese web text uses: NEC specials (①, Ⅰ, ㈱, ㍉, ∮)
    and the NEC/IBM extension kanji (髙, 﨑, 德)."""
    return frozenset(_double_byte("cp932")) - jis_x_0208()


def _visible(first: int, last: int) -> set[str]:
    skip = ("Cn", "Cc", "Cf", "Co", "Zs", "Zl", "Zp")
    return {chr(c) for c in range(first, last + 1) if unicodedata.category(chr(c)) not in skip}


# Non-CJK blocks that Japanese web and academic text quotes: accented Latin (names, loanwords), Greek and
# Cyrillic, typographic punctuation, super/subscripts, letterlike symbols and Roman numerals, arrows,
# mathematical operators, circled numbers, geometric shapes, CJK punctuation, half/full-width forms and
# what PDF extraction produces (math italic 𝑥 𝑖, ligatures ﬁ ﬀ), combining kana voicing marks, and Devanagari,
# Bengali and Thai: small alphabets that Wikipedia quotes native names in, 3 bytes a character otherwise
# (they were the largest byte-fallback buckets left on the dev held-out sets).
WORLD_RANGES = ((0xA1, 0xFF), (0x100, 0x17F), (0x370, 0x3FF), (0x400, 0x45F), (0x2010, 0x205E),
                (0x2070, 0x209F), (0x2100, 0x218F), (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2460, 0x24FF),
                (0x25A0, 0x25FF), (0x3000, 0x303F), (0xFF01, 0xFFEF), (0x1D434, 0x1D467),
                (0xFB00, 0xFB06), (0x3099, 0x309A), (0x900, 0x97F), (0x980, 0x9FF), (0xE00, 0xE7F))


def world_symbols() -> frozenset[str]:
    return frozenset(ch for first, last in WORLD_RANGES for ch in _visible(first, last))


# Levels from smallest to largest; each contains the previous one.
INVENTORIES = ("joyo", "jinmeiyo", "jis0208", "full")
AUTO = "auto"
AUTO_SHARE = 0.6  # `auto`: the largest level that takes at most this share of the vocabulary


@functools.cache
def _level_chars(level: str) -> frozenset[str]:
    chars = set(JOYO_FORMS) | set(HIRAGANA) | set(KATAKANA) | set(PUNCTUATION) | set(FULLWIDTH_ALNUM) | {IDEOGRAPHIC_SPACE}
    chars |= set(ASCII_PRINTABLE)
    if level != "joyo":
        chars |= JINMEIYO
    if level in ("jis0208", "full"):
        chars |= jis_x_0208()
    if level == "full":
        chars |= cp932_extensions() | world_symbols()
    chars.discard(" ")
    return frozenset(chars)


def resolve(level: str, vocab_size: int) -> str:
    """The concrete level for `level`; `auto` picks the largest level whose characters fit in
    AUTO_SHARE of `vocab_size` (a big inventory at a small vocabulary starves the multi-character pieces)."""
    if level == AUTO:
        fitting = [lv for lv in INVENTORIES if len(_level_chars(lv)) <= AUTO_SHARE * vocab_size]
        return fitting[-1] if fitting else INVENTORIES[0]
    if level not in INVENTORIES:
        raise ValueError(f"unknown inventory {level!r}; choose one of {', '.join((AUTO, *INVENTORIES))}")
    return level


def required_chars(level: str = "jinmeiyo", vocab_size: int | None = None) -> str:
    """Sorted, deduplicated required characters for an inventory level.

    joyo: 常用漢字 + kana + punctuation + ideographic space + ASCII; jinmeiyo: also 人名用漢字; jis0208: also every JIS X 0208
    character; full: also the Windows-31J extensions and the WORLD_RANGES blocks; auto: see `resolve`.
    """
    if level == AUTO and vocab_size is None:
        raise ValueError("inventory 'auto' needs the vocabulary size")
    return "".join(sorted(_level_chars(resolve(level, vocab_size or 0))))
