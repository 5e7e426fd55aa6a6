import pytest

from filters.normalize import RULES, Normalizer, dedup_key, normalize


@pytest.mark.parametrize(("rule", "raw", "expected"), [
    ("fullwidth_ascii", "ＧＰＴ－４は２０２３年", "GPT－4は2023年"),  # letters/digits only; － stays
    ("halfwidth_katakana", "ｺﾝﾋﾟｭｰﾀｰ｡ｶﾞｲﾄﾞ", "コンピューター。ガイド"),
    ("whitespace", "東京\u00a0都\u2003港区\u202f", "東京 都 港区 "),
    ("control", "ab\u200bc\ufeffd\x07e\u200ef", "abcdef"),
    ("crlf", "一行目\r\n二行目\r三行目", "一行目\n二行目\n三行目"),
    ("blank_lines", "\n\n段落一\n\n\n \n\u3000\n段落二\n\n", "段落一\n\n段落二"),
    ("nfc", "か\u3099き\u3099", "がぎ"),
    # blank lines at the edges go, the spaces of the first and last lines with text stay
    ("blank_lines", " \n\u3000\n  本文  \n \n\t", "  本文  "),
    ("blank_lines", " \n\t\n", ""),
    ("control", "a\u200db👨\u200d👩\u200d", "ab👨\u200d👩"),  # a ZWJ that joins no emoji goes
    ("crlf", "a\x85b\u2028c\u2029d\r", "a\nb\nc\nd\n"),
])
def test_each_rule_alone(rule, raw, expected):
    only = Normalizer({r: r == rule for r in RULES})
    text, fired = only(raw)
    assert text == expected
    assert fired.get(rule, 0) >= 1 and set(fired) == {rule}


@pytest.mark.parametrize("kept", [
    "1995〜2001年", "①②③", "㈱日本", "㍻元年", "～波ダッシュ～", "第一条　この法律は", "（注）「」『』【】",
    "\u8c48\u5c71", "CJK互換\uf929", "タブ\tも残す", "👨\u200d👩\u200d👧 家族",
])
def test_what_must_not_change(kept):
    text, fired = Normalizer()(kept)
    assert text == kept, fired
    assert fired == {}


def test_rules_switch_off_and_counts():
    raw = "ＡＢＣ\r\nｱｲｳ"
    assert Normalizer({"fullwidth_ascii": False})(raw)[0] == "ＡＢＣ\nアイウ"
    text, fired = Normalizer()(raw)
    assert text == "ABC\nアイウ"
    assert fired == {"crlf": 1, "halfwidth_katakana": 1, "fullwidth_ascii": 3}
    assert Normalizer()("Ａ１あＢ、ｃ") == ("A1あB、c", {"fullwidth_ascii": 4})  # characters, not runs


def test_unknown_rule_names_the_key():
    with pytest.raises(ValueError, match=r"normalize\.nfkc: unknown rule"):
        Normalizer({"nfkc": True})


def test_dedup_key_folds_what_stored_text_keeps():
    assert dedup_key("①　㈱ ＡＢＣ\n") == "1(株)ABC"
    assert dedup_key(normalize("ｶﾞ ﾝ")) == dedup_key("ガン")
