import random
import re
import unicodedata

import pytest

from filters.normalize import RULES, Normalizer, dedup_key, nfkc, normalize


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
    ("crlf", "1頁\x0c2頁\x0b3\x1c4\x1d5\x1e6", "1頁\n2頁\n3\n4\n5\n6"),  # deleted as controls, they glued lines
    # BiDi embeddings, overrides, isolates and marks, invisible operators: LRM went, RLO and the others stayed
    ("control", "a\u200eb\u202ec\u2066d\u2069e\u2061f\u061cg\u180eh\ufff9i", "abcdefghi"),
    ("halfwidth_katakana", "濁点(ﾞ)と半濁点ﾟ、ｶﾞ", "濁点(゛)と半濁点゜、ガ"),  # a lone mark sat on "(" as U+3099
])
def test_each_rule_alone(rule, raw, expected):
    only = Normalizer({r: r == rule for r in RULES})
    text, fired = only(raw)
    assert text == expected
    assert fired.get(rule, 0) >= 1 and set(fired) == {rule}


@pytest.mark.parametrize("kept", [
    "1995〜2001年", "①②③", "㈱日本", "㍻元年", "～波ダッシュ～", "第一条　この法律は", "（注）「」『』【】",
    "\u8c48\u5c71", "CJK互換\uf929", "タブ\tも残す", "👨\u200d👩\u200d👧 家族",
    "黒猫🐈\u200d⬛", "首振り🙂\u200d↔\ufe0f",  # the ZWJ went before ⬛ (U+2B1B) and ↔ (U+2194)
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
    assert fired == {"crlf": 1, "halfwidth_katakana": 3, "fullwidth_ascii": 3}  # characters (it counted runs)
    assert Normalizer()("Ａ１あＢ、ｃ") == ("A1あB、c", {"fullwidth_ascii": 4})  # characters, not runs


def test_with_crlf_off_a_cr_stays_a_line_break():
    """The `control` rule deleted CR, gluing the lines, when the `crlf` rule that turns it into \\n was off."""
    assert Normalizer({"crlf": False})("一行目\r二行目\r\n三行目\x0c四\x0b五") == ("一行目\r二行目\r\n三行目\x0c四\x0b五", {})


def test_unknown_rule_names_the_key():
    with pytest.raises(ValueError, match=r"normalize\.nfkc: unknown rule"):
        Normalizer({"nfkc": True})


def test_dedup_key_folds_what_stored_text_keeps():
    assert dedup_key("①　㈱ ＡＢＣ\n") == "1(株)ABC"
    assert dedup_key(normalize("ｶﾞ ﾝ")) == dedup_key("ガン")


def test_nfkc_and_dedup_key_match_their_definitions():
    """The definition is the oracle: full-width forms folded ahead of NFKC, and lines normalized one by one, must
    not change its result, also next to combining marks, half-width voiced marks, compatibility characters and
    Hangul jamo (which compose starter with starter) on either side of a line break."""
    rng = random.Random(3)
    alphabet = [chr(c) for c in (*range(0x20, 0x80), *range(0x300, 0x370), *range(0x3000, 0x3100),
                                 *range(0xFF00, 0xFFF0), 0x2126, 0x212B, 0x1E9B, 0x00A8, 0x2026, 0xFB01, 0x2460,
                                 *range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3), 0xAC00,
                                 *[0x0A] * 40)]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text)
        assert dedup_key(text) == re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)), ascii(text)
    assert dedup_key("Ａ\u0301（ｶﾞ）\u3000\u3099") == "Á(ガ)\u3099"


def test_rules_skipped_for_absent_characters_would_not_have_fired():
    """`Normalizer` skips a rule when the text holds none of its characters (one code-point lookup instead of a
    regex scan per rule); running every rule must give the same text and counts, whatever is switched off."""
    from filters import normalize as module

    def every_rule(rules, text):
        fired = {}
        for rule in rules:
            text, count = module._apply(rule, text)
            if count:
                fired[rule] = count
        return text, fired

    rng = random.Random(7)
    table = module._RULE_TABLE
    acted_on = [chr(cp) for cp in range(len(table)) if table[cp]]
    pool = acted_on + list("あア亜漢 \n\r\t\u3000a1。、（）") + ["\U0001f468", "\U0001f408", "\ufe0f", "\u3099", "\uf900"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randrange(12))) for _ in range(4000)]
    for enabled in ({}, {"crlf": False}, {"control": False, "nfc": False}, {"halfwidth_katakana": False}):
        normalizer = Normalizer(enabled)
        assert [normalizer(t) for t in texts] == [every_rule(normalizer.rules, t) for t in texts]
    assert table[0x200D] and table[0xFF9E] and table[0xFF21] and table[0x00A0] and not table[0xFFFF]
