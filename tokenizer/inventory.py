"""The guaranteed character inventory: characters that must exist as single pieces whatever the sample.

Without this, a kanji that happens to be rare in the training sample becomes 3 byte tokens forever.
"""
from __future__ import annotations

import kanji_lists

JOYO: frozenset[str] = frozenset(kanji_lists.JOYO)  # 2,136 常用漢字 (2010 list)
JINMEIYO: frozenset[str] = frozenset(kanji_lists.JINMEIYO)  # 人名用漢字 outside 常用 (current list)

HIRAGANA = "".join(chr(c) for c in range(0x3041, 0x3097)) + "ゝゞゟ"  # ぁ..ゖ incl. small kana
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30FB)) + "ーヽヾヿㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"  # ァ..ヺ (incl. ヴ, small ヵヶ)
PUNCTUATION = (
    "、。，．・：；？！゛゜´｀¨＾￣＿〃仝々〆〇―‐／＼～∥｜…‥‘’“”（）〔〕［］｛｝〈〉《》「」『』【】"
    "＋－±×÷＝≠＜＞≦≧∞∴♂♀°′″℃￥＄％＃＆＊＠§☆★○●◎◇◆□■△▲▽▼※〒→←↑↓〓〜"
)
FULLWIDTH_ALNUM = "".join(chr(c) for c in range(0xFF10, 0xFF1A)) + "".join(
    chr(c) for c in list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B))
)

ASCII_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))  # keeps English/code/markup out of byte fallback


def jis_x_0208() -> frozenset[str]:
    """All 6,879 characters of JIS X 0208: 6,355 kanji (levels 1 and 2) plus kana, Greek, Cyrillic,
    symbols and box drawing. Python's shift_jis codec encodes exactly JIS X 0208 (+ ASCII/JIS X 0201)."""
    out = set()
    for code in range(0x80, 0x10000):
        ch = chr(code)
        try:
            encoded = ch.encode("shift_jis")
        except UnicodeEncodeError:
            continue
        if len(encoded) == 2:  # one-byte codes are ASCII / half-width katakana (JIS X 0201)
            out.add(ch)
    return frozenset(out)


INVENTORIES = ("joyo", "jinmeiyo", "jis0208")


def required_chars(level: str = "jinmeiyo") -> str:
    """Sorted, deduplicated required characters for an inventory level.

    joyo: 常用漢字 + kana + punctuation + ASCII; jinmeiyo: also 人名用漢字; jis0208: also every JIS X 0208 character.
    """
    if level not in INVENTORIES:
        raise ValueError(f"unknown inventory {level!r}; choose one of {', '.join(INVENTORIES)}")
    chars = set(JOYO) | set(HIRAGANA) | set(KATAKANA) | set(PUNCTUATION) | set(FULLWIDTH_ALNUM)
    chars |= set(ASCII_PRINTABLE)
    if level in ("jinmeiyo", "jis0208"):
        chars |= JINMEIYO
    if level == "jis0208":
        chars |= jis_x_0208()
    chars.discard(" ")
    return "".join(sorted(chars))
