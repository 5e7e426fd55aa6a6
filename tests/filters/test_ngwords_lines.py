"""NG-word automaton boundaries, footer trimming, non-Japanese lines, site line keys."""
from __future__ import annotations

from pathlib import Path

from filters.lines import FooterTrimmer, drop_non_japanese_lines, line_key, remove_keyed_lines
from filters.ngwords import BUILTIN_LISTS, NgWordMatcher


def _matcher(tmp_path: Path, words: list[str]) -> NgWordMatcher:
    path = tmp_path / "ng.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return NgWordMatcher({"test": path})


def test_short_keywords_need_script_boundaries(tmp_path: Path) -> None:
    m = _matcher(tmp_path, ["乳", "イモ", "ガキ", "キチガイ", "チンコ", "麻薬取引"])
    assert m.matches("牛乳を飲む") == []          # single kanji glued to a kanji
    assert m.matches("ジャガイモを煮る") == []     # katakana glued to katakana
    assert [w for _, w, _ in m.matches("このガキが")] == ["ガキ"]
    assert [w for _, w, _ in m.matches("乳が出る")] == ["乳"]
    assert [w for _, w, _ in m.matches("キチガイだ")] == ["キチガイ"]
    assert m.matches("パチンコ店") == []          # katakana keywords of any length need katakana boundaries
    assert [w for _, w, _ in m.matches("麻薬取引所")] == ["麻薬取引"]  # longer kanji keywords match inside words


def test_longest_match_wins(tmp_path: Path) -> None:
    m = _matcher(tmp_path, ["アダルト", "アダルトビデオ"])
    stats = m.stats("無料アダルトビデオ", japanese_chars=9)
    assert stats["ng_test_hits"] == 1 and stats["ng_word_fraction"] == 7 / 9


def test_keywords_are_normalized_like_the_text_they_are_matched_in(tmp_path: Path) -> None:
    """The text is normalized before the filters (half-width katakana to full-width, full-width letters to
    ASCII), the keywords of an extra list were not: `ｴﾛ動画` or `ＸＸＸサイト` could never match."""
    from filters.normalize import normalize

    m = _matcher(tmp_path, ["ｴﾛ動画", "ＸＸＸサイト"])
    text = normalize("無料のｴﾛ動画とＸＸＸサイト")
    assert text == "無料のエロ動画とXXXサイト"
    assert [w for _, w, _ in m.matches(text)] == ["エロ動画", "XXXサイト"]


def test_builtin_lists_load() -> None:
    m = NgWordMatcher(BUILTIN_LISTS)
    assert set(m.names) == {"adult", "discrimination", "violence", "ads"}
    assert m.stats("静かな公園で本を読んだ。", 12)["ng_word_fraction"] == 0


def test_footer_trimming() -> None:
    lines = ["本文の一行目です。", "本文の二行目です。", "Copyright (C) 2024 Example Inc. All Rights Reserved.", "プライバシーポリシー"]
    kept, removed = FooterTrimmer()(lines)
    assert kept == lines[:2] and removed == 2
    body = ["お問い合わせの多い質問について、担当者が丁寧に説明しました。"]
    assert FooterTrimmer()(body) == (body, 0)  # a keyword in a long sentence is not a footer


def test_non_japanese_lines() -> None:
    lines = ["日本語の文です。", "Home | About | Contact", "=========", "２", "", "English sentence here."]
    kept, removed = drop_non_japanese_lines(lines)
    assert kept == ["日本語の文です。", "２", ""] and removed == 3


def test_line_keys_fold_width_and_spaces_not_digits() -> None:
    assert line_key("© 2019 Example") == line_key("©2019 Ｅｘａｍｐｌｅ")
    assert line_key("記事1の本文") != line_key("記事2の本文")
    assert line_key("a") is None
    text, removed = remove_keyed_lines("本文\nメニュー\n本文二", {line_key("メニュー")})
    assert text == "本文\n本文二" and removed == 1


def test_host_blocklists_plain_and_ut1(tmp_path: Path) -> None:
    from filters.hosts import HostBlocklist, host_of

    ut1 = tmp_path / "blacklists"
    for category, hosts in (("adult", "porn.example\n"), ("gambling", "casino.example\n")):
        (ut1 / category).mkdir(parents=True)
        (ut1 / category / "domains").write_text(hosts, encoding="utf-8")
    plain = tmp_path / "hosts.txt"
    plain.write_text("# comment\nspam.example.jp\n*.5ch.net\n", encoding="utf-8")
    blocked = HostBlocklist([ut1, plain], categories=["adult"])
    assert blocked.blocked(host_of("http://www.porn.example/x")) and blocked.blocked("porn.example")
    assert not blocked.blocked("casino.example")  # category not selected
    assert blocked.blocked("spam.example.jp") and blocked.blocked("a.spam.example.jp")
    assert blocked.blocked("news.5ch.net") and not blocked.blocked("5ch.net")
    assert not blocked.blocked("notspam.example.jp") and not blocked.blocked(None)
    assert host_of("HTTP://Example.JP:8080/path") == "example.jp" and host_of("not a url") is None


def test_hosts_match_in_any_spelling() -> None:
    """An internationalized host listed in Unicode did not block its punycode spelling, nor the reverse; a URL
    without a scheme but with `//` later in it had no host at all."""
    from filters.hosts import HostBlocklist, host_of

    blocked = HostBlocklist(patterns=["例え.jp", "xn--ickqs6k2dyb.jp", "bad.example.com"])
    for url in ("https://例え.jp/a", "https://xn--r8jz45g.jp/a", "https://エグザンプル.jp/", "http://WWW.例え.JP./x",
                "bad.example.com/login?next=https://elsewhere.example/"):
        assert blocked.blocked(host_of(url)), url
    assert host_of("bad.example.com/login?next=https://elsewhere.example/") == "bad.example.com"
    assert not blocked.blocked(host_of("https://例え.com/"))
