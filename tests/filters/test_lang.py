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


def test_private_use_markers_in_the_text_are_not_counted():
    assert script_counts("\ue001\ue002\ue003あ") == {"letters": 1, "hiragana": 1, "katakana": 0, "kanji": 0}
