"""PII masking: what is masked, and what must stay untouched."""
from __future__ import annotations

import pytest

from filters.pii import PiiMasker, mynumber_valid

MASK = PiiMasker()


def _with_check_digit(body: str) -> str:
    total = sum(int(body[11 - n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))
    rem = total % 11
    return body + str(0 if rem <= 1 else 11 - rem)


@pytest.mark.parametrize("text, expected", [
    ("連絡先は taro.yamada@example.co.jp です", "連絡先は <EMAIL> です"),
    ("問い合わせ：info＠example.jp", "問い合わせ：<EMAIL>"),
    ("電話03-1234-5678まで", "電話<PHONE>まで"),
    ("TEL：０３－１２３４－５６７８", "TEL：<PHONE>"),
    ("携帯は090-1234-5678です", "携帯は<PHONE>です"),
    ("携帯は09012345678です", "携帯は<PHONE>です"),
    ("0120-123-456（通話無料）", "<PHONE>（通話無料）"),
    ("フリーダイヤル0120-12-3456", "フリーダイヤル<PHONE>"),  # the 4-2-4 layout ads print was left unmasked
    ("0570-01-2345", "<PHONE>"),
    ("0800-123-4567", "<PHONE>"),
    ("+81-3-1234-5678", "<PHONE>"),
    ("+81 90 1234 5678", "<PHONE>"),
    ("(03)1234-5678", "<PHONE>"),
    ("03（1234）5678", "<PHONE>"),
    ("045‐123‐4567", "<PHONE>"),
    ("〒100-0001 東京都千代田区", "〒<POSTCODE> 東京都千代田区"),
    ("〒１００－０００１", "〒<POSTCODE>"),
    ("サーバー192.168.0.1に接続", "サーバー<IP>に接続"),
    # the text's own brackets stay (they were masked away: "（電話：<PHONE>。"), a bracket after letters can open
    # the number, a number right after a katakana word's ー is a number, full-width dots in an e-mail address
    ("（電話：03-1234-5678）。", "（電話：<PHONE>）。"),
    ("TEL（03）1234-5678", "TEL<PHONE>"),
    ("（03-1234-5678", "（<PHONE>"),
    ("サポートセンター03－1234－5678", "サポートセンター<PHONE>"),
    ("サーバー０９０－１２３４－５６７８", "サーバー<PHONE>"),
    ("連絡はinfo＠example．comへ", "連絡は<EMAIL>へ"),
    # "TEL." before the number, and a number before a space (which also separates groups) joining the match:
    # both were left unmasked
    ("TEL.03-1234-5678", "TEL.<PHONE>"),
    ("Tel.090-1234-5678", "Tel.<PHONE>"),
    ("1 03-1234-5678", "1 <PHONE>"),
    ("番号 12 03-1234-5678", "番号 12 <PHONE>"),
    ("電話 03-1234-5678 9:00～17:00受付", "電話 <PHONE> 9:00～17:00受付"),  # a number after the space, too
    ("TEL 03-1234-5678 10時から", "TEL <PHONE> 10時から"),
])
def test_masked(text: str, expected: str) -> None:
    assert MASK(text)[0] == expected


@pytest.mark.parametrize("text", [
    "平成二十五年法律第八十六号",
    "2013-12-25に施行する",
    "平成25年12月13日",
    "価格は1,980円（税込）",
    "ISBN978-4-00-310101-8",
    "ISBN 0-306-40615-2",
    "バージョン1.2.3.4を公開",
    "Python 2.7.18",
    "v1.0.0.1",
    "12:30-13:45",
    "03-2013",
    "0312345678",
    "100-0001",
    "第1234567号",
    "円周率3.03-1234-5678",
    "12-03-1234-5678",
])
def test_not_masked(text: str) -> None:
    assert MASK(text)[0] == text


def test_mynumber_check_digit() -> None:
    good = _with_check_digit("12345678901")
    assert good == "123456789018" and mynumber_valid(good)
    bad = good[:11] + str((int(good[11]) + 1) % 10)
    assert not mynumber_valid(bad)
    assert MASK(f"個人番号{good}を記入")[0] == "個人番号<MYNUMBER>を記入"
    assert MASK(f"{good[:4]} {good[4:8]} {good[8:]}")[0] == "<MYNUMBER>"
    assert MASK(f"個人番号{bad}を記入")[0] == f"個人番号{bad}を記入"
    assert MASK("1234567890123")[0] == "1234567890123"  # 13 digits is not a 12-digit number


def test_counts_and_selected_kinds() -> None:
    text = "a@b.jp と c@d.jp、電話03-1234-5678"
    masked, counts = MASK(text)
    assert counts == {"email": 2, "ip": 0, "mynumber": 0, "phone": 1, "postcode": 0}
    only_email = PiiMasker(["email"])
    assert only_email(text)[0] == "<EMAIL> と <EMAIL>、電話03-1234-5678"
