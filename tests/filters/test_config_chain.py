"""Presets load, config errors name the key, and the chain's result carries what the pipeline needs."""
from __future__ import annotations

import pytest

from filters import FilterConfigError
from filters.chain import FilterChain
from filters.rules import PRESETS

ARTICLE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
    "吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番獰悪な種族であったそうだ。\n"
    "連絡先: neko@example.jp 電話 03-1234-5678\n"
    "Home | About | Contact\n"
    "Copyright (C) 2024 Example All Rights Reserved."
)


@pytest.mark.parametrize("preset", [*PRESETS, "none"])
def test_presets_load_and_run(preset: str) -> None:
    result = FilterChain({"preset": preset})(ARTICLE, url="https://example.jp/a", kind="web")
    assert isinstance(result.stats, dict) and isinstance(result.timings, dict)


@pytest.mark.parametrize("cfg, key", [
    ({"bogus": 1}, "filters.bogus:"),
    ({"preset": "nope"}, "filters.preset:"),
    ({"rules": {"min_chars": {"threshold": "x"}}}, "filters.rules.min_chars.threshold: expected a number, got 'x'"),
    ({"rules": {"no_such_rule": {}}}, "filters.rules.no_such_rule:"),
    ({"rules": {"min_chars": {"treshold": 3}}}, "filters.rules.min_chars.treshold:"),
    ({"rules": {"avg_sentence_length": {"threshold": [90, 20]}}}, "filters.rules.avg_sentence_length.threshold:"),
    ({"rules": {"host_blocklist": {"threshold": 1}}}, "filters.rules.host_blocklist.threshold:"),
    ({"rules": {"min_chars": {"kinds": ["blog"]}}}, "filters.rules.min_chars.kinds:"),
    ({"rules": {"min_chars": {"enabled": "yes"}}}, "filters.rules.min_chars.enabled:"),
    ({"pii": {"mask": True}}, "filters.pii.mask:"),
    ({"line_cleaning": {"footer": {"windw": 3}}}, "filters.line_cleaning.footer.windw:"),
    ({"quality": {"model": "/no/such/model.ftz"}}, "filters.quality.model:"),
    ({"rules": {"quality": {}}}, "filters.quality.model:"),
    ({"enabled": "true"}, "filters.enabled:"),
    ({"hosts": {"blocklists": ["/no/such/list.txt"]}}, "filters.hosts.blocklists:"),
])
def test_config_errors_name_the_key(cfg: dict, key: str) -> None:
    with pytest.raises(FilterConfigError) as err:
        FilterChain(cfg)
    message = str(err.value)
    assert message.startswith(key.split(":")[0] + ":") and key in message and "\n" not in message


def test_disabled_filters_pass_text_through() -> None:
    result = FilterChain({"enabled": False})(ARTICLE, url=None, kind="web")
    assert result.text == ARTICLE and result.reject_reason is None


def test_default_preset_cleans_masks_and_keeps() -> None:
    result = FilterChain({"preset": "default"})(ARTICLE, url="https://example.jp/a", kind="web")
    assert result.reject_reason is None
    assert "Home | About" not in result.text and "Copyright" not in result.text
    assert "<EMAIL>" in result.text and "<PHONE>" in result.text
    assert result.meta["pii"] == {"email": 1, "phone": 1}
    assert result.meta["footer_lines_removed"] == 1 and result.meta["non_japanese_lines_removed"] == 1
    assert result.quality is None and "line_cleaning" in result.timings and "pii" in result.timings


def test_rejected_rows_keep_statistics_for_rethresholding() -> None:
    chain = FilterChain({"preset": "default", "rules": {"min_chars": 100_000}})
    result = chain(ARTICLE, url=None, kind="web")
    assert result.reject_reason == "min_chars"
    assert {"chars", "hiragana_fraction", "fragment_char_fraction", "mojibake_fraction"} <= set(result.stats)


def test_rule_shorthands() -> None:
    chain = FilterChain({"preset": "default", "rules": {"min_chars": False, "max_katakana_fraction": 0.0}})
    assert chain("アイウエオ、カキクケコ。さしすせそ", url=None, kind="web").reject_reason == "max_katakana_fraction"


def test_site_lines_key_is_accepted() -> None:
    FilterChain({"preset": "default", "site_lines": {"enabled": True, "min_docs": 3}})


def test_empty_after_cleaning() -> None:
    result = FilterChain({"preset": "default"})("ログイン\nプライバシーポリシー", url=None, kind="reference")
    assert result.reject_reason == "empty_after_cleaning"
