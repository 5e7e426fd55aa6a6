"""Site-level frequent-line removal in Beam: lines in >= min_docs pages of one host go, order-independent."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.errors import ConfigError
from pipeline.site_lines import SiteLines


def _doc(i: int, host: str | None, body: str) -> dict:
    url = f"https://{host}/p{i}" if host else None
    return {"id": f"d{i}", "url": url, "text": body, "meta": {}, "kind": "web"}


def _docs() -> list[dict]:
    nav = "ホーム | ニュース | お問い合わせ"
    docs = [_doc(i, "a.example.jp", f"{nav}\n記事{i}の本文です。\n© 2024 A社") for i in range(4)]
    docs.append(_doc(4, "b.example.jp", f"{nav}\n別サイトの本文です。"))  # same line, other host: kept
    docs.append(_doc(5, None, f"{nav}\nURLのない文書です。"))
    return docs


def _run(docs: list[dict], min_docs: int) -> list[tuple[str, str, int]]:
    with beam.Pipeline(runner=FnApiRunner()) as p:
        out = (p | beam.Create(docs) | SiteLines({"min_docs": min_docs, "fanout": 2})
               | beam.Map(lambda d: (d["id"], d["text"], d["meta"].get("site_lines_removed", 0))))
        expected = []
        for d in docs:
            if d["url"] and "a.example.jp" in d["url"] and min_docs <= 4:
                i = d["id"][1:]
                expected.append((d["id"], f"記事{i}の本文です。", 2))
            else:
                expected.append((d["id"], d["text"], 0))
        assert_that(out, equal_to(expected))
    return expected


def test_frequent_lines_removed_per_host() -> None:
    _run(_docs(), min_docs=3)


def test_below_min_docs_nothing_removed() -> None:
    _run(_docs(), min_docs=5)


def test_order_independent() -> None:
    _run(list(reversed(_docs())), min_docs=4)


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="filters.site_lines.min_docs"):
        SiteLines({"min_docs": 1})
    with pytest.raises(ConfigError, match="filters.site_lines.fanout"):
        SiteLines({"fanout": "x"})
    with pytest.raises(ConfigError, match=r"filters.site_lines.fanout: expected an integer in \[1, 4096\], got 10"):
        SiteLines({"fanout": 10**20})  # accepted before: 10**20 partial sums per line
