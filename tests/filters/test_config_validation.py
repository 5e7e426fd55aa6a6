"""Every mistake in a `filters:` block is one FilterConfigError naming the dotted key, raised when the chain
is built (the config parse builds it), whether or not the part it belongs to is switched on."""
from __future__ import annotations

from pathlib import Path

import pytest

from filters import FilterConfigError
from filters.chain import FilterChain
from filters.quality import check_model
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "data" / "models" / "quality.ftz"
NAN, INF = float("nan"), float("inf")


def _error(cfg: dict) -> str:
    with pytest.raises(FilterConfigError) as err:
        FilterChain(cfg)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("cfg, expected", [
    # thresholds: finite, >= 0, fractions <= 1 (NaN made a rule reject nothing or everything)
    ({"rules": {"min_chars": NAN}}, "filters.rules.min_chars.threshold: expected a finite number >= 0, got nan"),
    ({"rules": {"min_chars": INF}}, "filters.rules.min_chars.threshold: expected a finite number >= 0, got inf"),
    ({"rules": {"min_chars": -1}}, "filters.rules.min_chars.threshold: expected a finite number >= 0"),
    ({"rules": {"avg_sentence_length": [NAN, 10]}}, "filters.rules.avg_sentence_length.threshold: expected a finite"),
    ({"rules": {"min_japanese_fraction": -5}}, "filters.rules.min_japanese_fraction.threshold: expected a finite "
                                               "number in [0, 1], got -5"),
    ({"rules": {"max_katakana_fraction": 7}}, "filters.rules.max_katakana_fraction.threshold: expected a finite "
                                              "number in [0, 1], got 7"),
    ({"rules": {"min_chars": {"enabled": False, "threshold": NAN}}}, "filters.rules.min_chars.threshold:"),
    # line cleaning, NG words, quality: checked values, not int()/float() at build time
    ({"line_cleaning": {"footer": {"window": "abc"}}}, "filters.line_cleaning.footer.window: expected an integer >= 1"),
    ({"line_cleaning": {"footer": {"window": -3}}}, "filters.line_cleaning.footer.window: expected an integer >= 1"),
    ({"line_cleaning": {"footer": {"window": 2.9}}}, "filters.line_cleaning.footer.window: expected an integer >= 1"),
    ({"line_cleaning": {"footer": {"keyword_fraction": NAN}}}, "filters.line_cleaning.footer.keyword_fraction:"),
    ({"line_cleaning": {"footer": {"keyword_fraction": True}}}, "filters.line_cleaning.footer.keyword_fraction: "
                                                                "expected a number, got True"),
    ({"line_cleaning": {"non_japanese_lines": {"min_japanese_fraction": "x"}}},
     "filters.line_cleaning.non_japanese_lines.min_japanese_fraction: expected a number, got 'x'"),
    ({"ng_words": {"boundary_max_len": -1}}, "filters.ng_words.boundary_max_len: expected an integer >= 0"),
    ({"ng_words": {"boundary_max_len": 2.7}}, "filters.ng_words.boundary_max_len: expected an integer >= 0"),
    # booleans are booleans ("no" is a truthy string), kinds are lists of known kinds
    ({"line_cleaning": {"footer": {"enabled": "no"}}}, "filters.line_cleaning.footer.enabled: expected true or false"),
    ({"line_cleaning": {"non_japanese_lines": {"enabled": "no"}}}, "filters.line_cleaning.non_japanese_lines.enabled:"),
    ({"pii": {"enabled": "off"}}, "filters.pii.enabled: expected true or false, got 'off'"),
    ({"site_lines": {"enabled": "no"}}, "filters.site_lines.enabled: expected true or false, got 'no'"),
    ({"line_cleaning": {"non_japanese_lines": {"kinds": ["webz"]}}},
     "filters.line_cleaning.non_japanese_lines.kinds: unknown value 'webz'"),
    ({"line_cleaning": {"non_japanese_lines": {"kinds": "web"}}},
     "filters.line_cleaning.non_japanese_lines.kinds: expected a list of non-empty strings, got 'web'"),
    ({"line_cleaning": {"non_japanese_lines": {"kinds": []}}}, "filters.line_cleaning.non_japanese_lines.kinds: an "
     "empty list applies it to no document; to turn it off, set enabled: false"),  # it was taken: off for every kind
    ({"rules": {"min_chars": {"kinds": []}}}, "filters.rules.min_chars.kinds: an empty list applies it to no document"),
    # a rule counting an NG list that is not loaded failed mid-run with a KeyError; an extra list named like a
    # built-in one replaced it silently
    ({"rules": {"ad_keywords": 10}}, "filters.rules.ad_keywords: counts the 'ads' NG-word list, which "
     "ng_words.lists does not load; add 'ads' there or disable the rule"),
    ({"preset": "llmjp", "ng_words": {"lists": ["adult"]}}, "filters.rules."),
    ({"ng_words": {"extra_lists": {"adult": "x.txt"}}}, "filters.ng_words.extra_lists.adult: is the name of a "
     "built-in list; give the extra list another name"),
    ({"pii": {"kinds": ["emails", "phone"]}}, "filters.pii.kinds: unknown value 'emails'"),
    ({"pii": {"kinds": "email"}}, "filters.pii.kinds: expected a list"),
    # strings and numbers where lists of strings or paths are expected
    ({"hosts": {"patterns": "*.5ch.net"}}, "filters.hosts.patterns: expected a list of non-empty strings"),
    ({"hosts": {"url_substrings": "ad"}}, "filters.hosts.url_substrings: expected a list of non-empty strings"),
    ({"hosts": {"url_substrings": [""]}}, "filters.hosts.url_substrings: expected a list of non-empty strings"),
    ({"hosts": {"blocklists": "hosts.txt"}}, "filters.hosts.blocklists: expected a list of paths, got 'hosts.txt'"),
    ({"hosts": {"patterns": [5]}}, "filters.hosts.patterns: expected a list of non-empty strings, got [5]"),
    ({"hosts": {"blocklists": [5]}}, "filters.hosts.blocklists[0]: expected a non-empty path, got 5"),
    ({"quality": {"model": 5}}, "filters.quality.model: expected a non-empty path, got 5"),
    ({"quality": {"model": ["x.ftz"]}}, "filters.quality.model: expected a non-empty path, got ['x.ftz']"),
    ({"preset": ["default"]}, "filters.preset: unknown preset ['default']"),
    ({"ng_words": {"extra_lists": ["foo.txt"]}}, "filters.ng_words.extra_lists: expected a mapping of name: path"),
    ({"ng_words": {"extra_lists": {"x": 3}}}, "filters.ng_words.extra_lists.x: expected a non-empty path, got 3"),
    # an int path is a file descriptor to open(): 2 closed stderr; 0 and "" fell back to the built-in list
    ({"line_cleaning": {"footer": {"keywords": 987}}}, "filters.line_cleaning.footer.keywords: expected a non-empty path"),
    ({"line_cleaning": {"footer": {"keywords": 0}}}, "filters.line_cleaning.footer.keywords: expected a non-empty path"),
    ({"line_cleaning": {"footer": {"keywords": ""}}}, "filters.line_cleaning.footer.keywords: expected a non-empty path"),
    # switched-off parts are checked too
    ({"enabled": False, "bogus": 1}, "filters.bogus: unknown key"),
    ({"enabled": False, "preset": "nosuch"}, "filters.preset: unknown preset 'nosuch'"),
    ({"enabled": 0}, "filters.enabled: expected true or false, got 0"),
    ({"enabled": None}, "filters.enabled: expected true or false, got None"),
    ({"preset": "none", "ng_words": {"lists": ["nosuch"]}}, "filters.ng_words.lists: unknown value 'nosuch'"),
    ({"site_lines": {"min_docs": "abc"}}, "filters.site_lines.min_docs: expected an integer >= 2, got 'abc'"),
    ({"line_cleaning": {"footer": {"enabled": False, "window": "abc"}}}, "filters.line_cleaning.footer.window:"),
    ({"line_cleaning": {"footer": {"enabled": False, "keywords": "/no/such/keywords.txt"}}},
     "filters.line_cleaning.footer.keywords: cannot read /no/such/keywords.txt: No such file or directory"),
    ({"quality": {"threshold": 0.9}}, "filters.quality.model: missing; quality.threshold has no model to apply to"),
    ({"quality": {"max_chars": 100}}, "filters.quality.model: missing; quality.max_chars has no model to apply to"),
])
def test_bad_values_are_one_line_naming_the_key(cfg: dict, expected: str) -> None:
    assert _error(cfg).startswith(expected)


@pytest.fixture
def model() -> Path:
    if not MODEL.is_file():
        pytest.skip("data/models/quality.ftz missing")
    return MODEL


@pytest.mark.parametrize("quality, expected", [
    ({"threshold": NAN}, "filters.quality.threshold: expected a finite number in [0, 1], got nan"),
    ({"threshold": -1}, "filters.quality.threshold: expected a finite number in [0, 1], got -1"),
    ({"threshold": "high"}, "filters.quality.threshold: expected a number, got 'high'"),  # named rules.quality before
    ({"max_chars": -5}, "filters.quality.max_chars: expected an integer >= 1, got -5"),
])
def test_quality_values(model: Path, quality: dict, expected: str) -> None:
    assert _error({"quality": {"model": str(model), **quality}}).startswith(expected)


def _write(path: Path, data: bytes | str) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("key", ["line_cleaning.footer.keywords", "ng_words.extra_lists", "hosts.blocklists"])
def test_list_files_that_are_not_utf8_text(tmp_path: Path, key: str) -> None:
    def cfg(p: str) -> dict:
        if key == "ng_words.extra_lists":
            return {"ng_words": {"extra_lists": {"mine": p}}}
        if key == "hosts.blocklists":
            return {"hosts": {"blocklists": [p]}}
        return {"line_cleaning": {"footer": {"keywords": p}}}

    sjis = _write(tmp_path / "sjis.txt", "広告\n".encode("cp932"))
    binary = _write(tmp_path / "bin.txt", b"ab\x00cd\n")
    cases = [(str(tmp_path / "missing.txt"), "No such file or directory"), (sjis, "is not UTF-8 text"),
             (binary, "is not a text file")]
    if key != "hosts.blocklists":  # a folder is a UT1 list there
        cases.append((str(tmp_path), "not a regular file (a directory)"))
    for path, reason in cases:
        message = _error(cfg(path))
        assert message.startswith(f"filters.{key}: ") and path in message and reason in message


def test_ut1_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    category = tmp_path / "ut1" / "adult"
    category.mkdir(parents=True)
    _write(category / "domains", "adult.example\n")
    hosts_file = _write(tmp_path / "hosts.txt", "bad.example\n")
    assert "holds no UT1 category folder" in _error({"hosts": {"blocklists": [str(tmp_path / "empty")]}})
    message = _error({"hosts": {"blocklists": [str(category)]}})
    assert message.startswith("filters.hosts.blocklists: ") and "categories: [adult]" in message
    assert _error({"hosts": {"blocklists": [hosts_file], "categories": ["adult"]}}).startswith(
        "filters.hosts.categories: no UT1 folder")
    assert _error({"hosts": {"categories": ["adult"]}}).startswith("filters.hosts.categories:")
    assert "no such UT1 category" in _error({"hosts": {"blocklists": [str(tmp_path / "ut1")], "categories": ["x"]}})
    chain = FilterChain({"hosts": {"blocklists": [str(tmp_path / "ut1")], "categories": ["adult"]}})
    assert chain.hosts.blocked("www.adult.example")


def test_models_fasttext_would_crash_on(tmp_path: Path, model: Path) -> None:
    data = model.read_bytes()
    text = _write(tmp_path / "text.ftz", "__label__hq hello\n" * 10)
    t20 = _write(tmp_path / "t20.ftz", data[:20])  # loads, then SIGFPE on the first prediction
    relabelled = _write(tmp_path / "other.ftz", data.replace(b"__label__hq", b"__label__xx"))
    for path, reason in [(text, "not a fastText model"), (t20, "truncated"), (str(tmp_path), "not a regular file (a directory)"),
                         (relabelled, "has no __label__hq label")]:
        message = _error({"preset": "none", "quality": {"model": path}})
        assert message.startswith("filters.quality.model: ") and reason in message
    # switched off, the model is still checked
    assert _error({"enabled": False, "quality": {"model": t20}}).startswith("filters.quality.model:")
    assert _error({"rules": {"quality": False}, "quality": {"model": t20}}).startswith("filters.quality.model:")


def test_no_prefix_of_a_model_passes(tmp_path: Path, model: Path) -> None:
    data = model.read_bytes()
    path = tmp_path / "cut.ftz"
    for n in [*range(0, 400), *range(400, len(data), 613), len(data) - 1]:
        path.write_bytes(data[:n])
        with pytest.raises(ValueError):
            check_model(str(path))
    check_model(str(model))


def test_valid_values_still_work(tmp_path: Path, model: Path) -> None:
    keywords = _write(tmp_path / "kw.txt", "# comment\n会社概要\n")
    chain = FilterChain({"line_cleaning": {"footer": {"enabled": True, "window": 2, "keyword_fraction": 0.5,
                                                      "keywords": keywords}},
                         "pii": {"enabled": True, "kinds": ["email"]},
                         "quality": {"model": str(model), "threshold": 0.0, "max_chars": 500},
                         "site_lines": {"enabled": False, "min_docs": 3}})
    result = chain("本文です。連絡は a@example.jp へ。電話 03-1234-5678\n会社概要", url=None, kind="web")
    assert result.meta["footer_lines_removed"] == 1 and "<EMAIL>" in result.text and "<PHONE>" not in result.text
    assert result.quality is not None


def test_curate_reports_a_filters_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write(tmp_path / "d.jsonl", '{"id": "1", "text": "本文です。"}\n')
    cfg = _write(tmp_path / "c.yaml", "sources:\n  - {name: w, kind: web, format: jsonl, paths: [d.jsonl], license: x}\n"
                                      "filters: {line_cleaning: {footer: {window: abc}}}\n")
    assert main(["curate", "--config", cfg, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "jcorpus curate: error: filters.line_cleaning.footer.window: expected an integer >= 1, got 'abc'"
    assert not (tmp_path / "out").exists()
