"""Every rule just inside and just outside its threshold, on small hand-made Japanese texts.

For each rule the statistic of a real text is computed once (its correctness is tested against
hand-computed values in test_textstats.py / test_wordstats.py); the rule must keep the text when the
threshold sits just on the passing side of that value and reject it, with its own name, just beyond.
"""
from __future__ import annotations

import pytest

from filters import FilterConfigError
from filters.chain import FilterChain
from filters.rules import RULES

EPS = 1e-6
DOC = (
    "今日は朝から雨が降っていた。駅まで歩いて十分ほどかかった。\n"
    "電車の中で本を読んだ。とても面白い小説だった…\n"
    "会社に着いてから、メールを確認した。メールを確認した。\n"
    "午後は会議が三つあった。\n"
    "- 資料の準備\n"
    "#タグ\n"
    "夜はラーメンを食べて帰った。"
)
THRESHOLD_RULES = sorted(n for n, s in RULES.items() if s.op != "flag" and s.family != "quality")


def _chain(name: str, threshold) -> FilterChain:
    return FilterChain({"preset": "none", "rules": {name: {"threshold": threshold}},
                        "ng_words": {"lists": ["adult", "discrimination", "violence", "ads"]}})


def _stat(name: str) -> float:
    spec = RULES[name]
    high = min(spec.upper, 1e9)
    loose = [0, high] if spec.op == "window" else (0 if spec.op == "min" else high)
    result = _chain(name, loose)(DOC, url=None, kind="web")
    assert result.reject_reason is None
    return result.stats[spec.stat]


@pytest.mark.parametrize("name", THRESHOLD_RULES)
def test_rule_inside_and_outside(name: str) -> None:
    spec = RULES[name]
    v = _stat(name)
    if spec.op == "min":
        inside, outside = v, v + EPS
    elif spec.op == "max":
        inside, outside = v, v - EPS
    elif spec.op == "max_incl":
        inside, outside = v + EPS, v
    else:  # window: pass when v is an endpoint, fail when v is just outside on either side
        inside, outside = [v, v + 1], [v + EPS, v + 1]
        assert _chain(name, [max(v - 1, 0), v - EPS])(DOC, url=None, kind="web").reject_reason == name
    assert _chain(name, inside)(DOC, url=None, kind="web").reject_reason is None
    if all(0 <= t <= spec.upper for t in (outside if isinstance(outside, list) else [outside])):
        assert _chain(name, outside)(DOC, url=None, kind="web").reject_reason == name
    else:  # v sits on the statistic's bound (0 hits, fraction 1): no threshold can fail it, and none beyond is valid
        with pytest.raises(FilterConfigError, match=f"^filters.rules.{name}.threshold: expected a finite number"):
            _chain(name, outside)


@pytest.mark.parametrize("name, url, reason", [
    ("host_blocklist", "https://news.5ch.net/test/read.cgi/1", "host_blocklist"),
    ("host_blocklist", "https://ja.wikipedia.org/wiki/猫", "host_blocklist"),
    ("host_blocklist", "https://5ch.net.example.jp/", None),
    ("host_blocklist", None, None),
    ("url_blocklist", "https://example.jp/adult/page.html", "url_blocklist"),
    ("url_blocklist", "https://example.jp/news/page.html", None),
])
def test_flag_rules(name: str, url: str | None, reason: str | None) -> None:
    chain = FilterChain({"preset": "none", "rules": {name: True},
                         "hosts": {"patterns": ["*.5ch.net", "*wikipedia.org"], "url_substrings": ["/adult/"]}})
    assert chain(DOC, url=url, kind="web").reject_reason == reason


def test_first_failing_rule_in_config_order_and_stats_kept() -> None:
    cfg = {"preset": "none", "rules": {"min_chars": 10_000, "max_katakana_fraction": 0.0}}
    result = FilterChain(cfg)(DOC, url=None, kind="web")
    assert result.reject_reason == "min_chars"
    assert result.stats["katakana_fraction"] > 0 and result.stats["chars"] == len(DOC)
    cfg = {"preset": "none", "rules": {"max_katakana_fraction": 0.0, "min_chars": 10_000}}
    assert FilterChain(cfg)(DOC, url=None, kind="web").reject_reason == "max_katakana_fraction"


def test_kinds_restrict_a_rule() -> None:
    cfg = {"preset": "none", "rules": {"min_chars": {"threshold": 10_000, "kinds": ["web"]}}}
    chain = FilterChain(cfg)
    assert chain(DOC, url=None, kind="web").reject_reason == "min_chars"
    assert chain(DOC, url=None, kind="reference").reject_reason is None


def test_swallow_preset_thresholds_on_hand_made_texts() -> None:
    """Swallow v1: 400 characters minimum; a 400-letter Japanese text passes, 399 fails."""
    unit = "今日はとても良い天気で、公園を散歩しながら季節の移り変わりを感じた。"  # 34 chars, 1 sentence
    base = unit * 12  # 408 chars
    chain = FilterChain({"preset": "none", "rules": {"min_chars": 400, "min_japanese_chars": 400}})
    assert chain(base[:400], url=None, kind="web").reject_reason is None
    assert chain(base[:399], url=None, kind="web").reject_reason == "min_chars"
