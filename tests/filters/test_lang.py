import random
import re

import pytest

from filters.lang import LanguageGate, script_counts, script_stats


def test_script_counts_by_hand():
    assert script_counts("日本語のテキスト、abc!") == {"letters": 11, "hiragana": 1, "katakana": 4, "kanji": 3}
    s = script_stats("佐々木〆切")
    assert s["japanese_fraction"] == 1.0 and s["kana_fraction"] == 0.0


@pytest.mark.parametrize(("text", "reason"), [
    ("吾輩は猫である。名前はまだ無い。", None),
    ("正式名称は英語で Commonwealth of Dominica（コーマンウェルス・オヴ・ドミニーカ）。略称は Dominica。", None),
    ("中华人民共和国是位于东亚的社会主义国家，首都为北京。", "lang_not_ja"),  # kanji only: Chinese
    ("This paper proposes automatic data augmentation for live commentary.", "lang_not_ja"),
    ("대한민국은 동아시아에 있는 나라이다.", "lang_not_ja"),
    ("12345 !!! ...", "lang_not_ja"),
])
def test_gate(text, reason):
    assert LanguageGate()(text)[0] == reason


def test_thresholds_sit_where_configured():
    text = "日本語" * 19 + "の"  # kana fraction 1/58
    assert LanguageGate(min_kana_fraction=0.017)(text)[0] is None
    assert LanguageGate(min_kana_fraction=0.018)(text)[0] == "lang_not_ja"


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"language\.min_kana: unknown key"):
        LanguageGate.from_config({"min_kana": 0.1})
    with pytest.raises(ValueError, match=r"language\.min_letters: expected a non-negative integer, got 'ten'"):
        LanguageGate.from_config({"min_letters": "ten"})
    with pytest.raises(ValueError, match=r"language\.min_japanese_fraction: expected a fraction between 0 and 1"):
        LanguageGate.from_config({"min_japanese_fraction": -0.1})


def test_marks_of_the_kana_blocks_are_not_kana():
    """・ ゠ ゛ ゜ and the combining sound marks counted as kana (not as letters): a Chinese text whose
    interpunct decodes to ・ (Python's gb2312 does) passed with a Japanese fraction of 1.09."""
    chinese = "列奥纳多・达・芬奇是意大利文艺复兴时期的画家。威廉・莎士比亚是英国剧作家。"
    assert LanguageGate()(chinese)[0] == "lang_not_ja"
    assert script_stats(chinese)["kana_fraction"] == 0 and script_stats("か\u3099")["kana_fraction"] == 1.0
    assert LanguageGate()("A・B")[0] == "lang_not_ja"
    assert LanguageGate()("レオナルド・ダ・ヴィンチは画家である。")[0] is None


def test_private_use_markers_in_the_text_are_not_counted():
    assert script_counts("\ue001\ue002\ue003あ") == {"letters": 1, "hiragana": 1, "katakana": 0, "kanji": 0}


def _counts_one_by_one(text: str) -> dict[str, int]:
    """The definition, character by character: the oracle for the vectorised `script_counts`."""
    scripts = {"hiragana": [(0x3041, 0x309F)], "katakana": [(0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)],
               "kanji": [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x3134F), (0x3005, 0x3006)]}
    counts = dict.fromkeys(["letters", *scripts], 0)
    for ch in text:
        letter = not re.match(r"[\W\d_]", ch)
        counts["letters"] += letter
        for name, ranges in scripts.items():
            counts[name] += letter and any(lo <= ord(ch) <= hi for lo, hi in ranges)
    return counts


def test_script_counts_match_the_definition_on_every_code_point():
    every_bmp = "".join(map(chr, range(0x10000)))  # incl. lone surrogates and the private-use range
    assert script_counts(every_bmp) == _counts_one_by_one(every_bmp)
    rng = random.Random(5)
    planes = [(0, 0x7F), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xD800, 0xDFFF), (0xFF00, 0xFFFF),
              (0x10000, 0x1FFFF), (0x1F300, 0x1FAFF), (0x20000, 0x3134F), (0x31350, 0x10FFFF)]
    for _ in range(300):
        text = "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(0, 60)))
        assert script_counts(text) == _counts_one_by_one(text), ascii(text)
    for text in ("", "𠮷野家", "👨‍👩‍👧 ①②③ ١٢٣ ²", "\U00030000\U0002ebf0\U000e0100"):
        assert script_counts(text) == _counts_one_by_one(text), ascii(text)
