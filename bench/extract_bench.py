"""Compare HTML extractors side by side on a WARC: speed and main-content quality on Japanese pages.

    .venv/bin/python bench/extract_bench.py [WARC] [--manifest M.jsonl] [--repeats 3] [--dump DIR]

Defaults to the developers' shared WARC (/work/shared/corpora/web/, not in the repo). With a manifest
(one JSON line per record with `warc_record_id` and `lang`) only `lang == "ja"` pages are measured;
without one, pages whose decoded HTML has kana. Prints one markdown table (timings are medians of
`--repeats` runs of CPU time of this process, so the figures are per core even on a busy machine) and an end-to-end line for read + charset + extract with the default extractor.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import extract  # noqa: E402
from pipeline.charset import CharsetError, decode_html  # noqa: E402
from pipeline.sources.base import RawDoc, SourceConfig  # noqa: E402
from pipeline.sources.warc import read  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "web"
KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff]")
JAPANESE = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
BOILERPLATE = re.compile(r"©|\(c\)|copyright|all rights reserved|無断転載|プライバシー|利用規約|お問い?合わせ|ログイン|"
                         r"会員登録|トップへ|ページの先頭|ページトップ|サイトマップ|会社概要|シェア|ツイート|ブックマーク|"
                         r"次の記事|前の記事|関連記事|人気記事|ランキング|メニュー|cookie|一覧へ", re.I)
RUBY = re.compile(r"<ruby[^>]*>\s*(?:<rb>)?([^<]+?)(?:</rb>)?\s*(?:<rp>[^<]*</rp>)?\s*<rt>([^<]+)</rt>\s*"
                  r"(?:<rp>[^<]*</rp>)?\s*</ruby>([^<\s]{0,3})", re.I)
VARIANTS = ("resiliparse", "trafilatura", "trafilatura_fast")


def load(warc: str, manifest: str | None) -> list[tuple[RawDoc, str]]:
    """Decoded Japanese pages of the WARC."""
    langs = {}
    if manifest and os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            langs = {row["warc_record_id"]: row["lang"] for row in map(json.loads, f)}
    source = SourceConfig(name="bench", kind="web", format="warc", paths=(warc,), license="n/a")
    pages = []
    for item in read(warc, source):
        if not isinstance(item, RawDoc) or item.skip_reason:
            continue
        try:
            html, _ = decode_html(item.html, item.meta.get("http_content_type"))
        except CharsetError:
            continue
        is_ja = langs.get(item.source_id) == "ja" if langs else bool(KANA.search(html))
        if is_ja:
            pages.append((item, html))
    return pages


def quality(pages: list[tuple[RawDoc, str]], outputs: list[tuple[str, dict]]) -> dict:
    n_lines = short = boiler = ja_chars = with_kana = empty = fallback = leaks = kept = rubies = 0
    for (_, html), (text, meta) in zip(pages, outputs, strict=True):
        lines = [line for line in text.split("\n") if line.strip()]
        n_lines += len(lines)
        short += sum(len(line) < 8 for line in lines)
        boiler += sum(len(line) < 40 and bool(BOILERPLATE.search(line)) for line in lines)
        ja_chars += len(JAPANESE.findall(text))
        with_kana += bool(KANA.search(text)) and "\ufffd" not in text
        empty += len(text) < extract.MIN_MAIN_CHARS
        fallback += "fallback" in meta
        for base, reading, after in RUBY.findall(extract._prepare(html)):
            rubies += 1
            leaks += any(f"{base.strip()}{sep}{reading.strip()}" in text for sep in ("", "(", "（", " "))
            kept += f"{base.strip()}{after}" in text
    return {"ruby": f"{kept}/{rubies}", "ja_chars": ja_chars, "kana_pages": with_kana, "empty": empty, "fallback": fallback,
            "boiler_lines": boiler, "short_line_pct": 100 * short / max(n_lines, 1), "ruby_leaks": leaks}


def time_variant(name: str, pages: list[tuple[RawDoc, str]], repeats: int) -> tuple[float, list]:
    times, outputs = [], []
    for _ in range(repeats):
        start = time.process_time()
        outputs = [extract.html_to_text(html, doc.url, extractor=name) for doc, html in pages]
        times.append(time.process_time() - start)
    return statistics.median(times), outputs


def end_to_end(warc: str, repeats: int) -> tuple[float, float, int, int]:
    """Median CPU seconds for read + decode + extract of every page (and for decoding alone), payload bytes, pages."""
    source = SourceConfig(name="bench", kind="web", format="warc", paths=(warc,), license="n/a")
    times, decode_times, payload, count = [], [], 0, 0
    for _ in range(repeats):
        payload = count = 0
        decoding = 0.0
        start = time.process_time()
        for item in read(warc, source):
            if isinstance(item, RawDoc) and not item.skip_reason:
                payload += len(item.html)
                count += 1
                try:
                    t0 = time.process_time()
                    html = decode_html(item.html, item.meta.get("http_content_type"))[0]
                    decoding += time.process_time() - t0
                    extract.html_to_text(html, item.url)
                except CharsetError:
                    pass
        times.append(time.process_time() - start)
        decode_times.append(decoding)
    return statistics.median(times), statistics.median(decode_times), payload, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("warc", nargs="?", default=str(SHARED / "web_pages.warc.gz"))
    parser.add_argument("--manifest", default=str(SHARED / "web_pages.manifest.jsonl"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--dump", help="write each variant's outputs here for inspection")
    args = parser.parse_args()
    if not os.path.exists(args.warc):
        print(f"no WARC at {args.warc}", file=sys.stderr)
        return 2
    pages = load(args.warc, args.manifest)
    mbytes = sum(len(doc.html) for doc, _ in pages) / 1e6
    print(f"{len(pages)} Japanese pages, {mbytes:.2f} MB of HTML; medians of {args.repeats} runs, CPU time (per core)\n")
    print("| extractor | pages/s | MB/s | ja chars | pages with kana | <50 chars | fallback | "
          "boilerplate lines | short lines % | ruby bases kept | ruby leaks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.variants.split(","):
        seconds, outputs = time_variant(name, pages, args.repeats)
        q = quality(pages, outputs)
        print(f"| {name} | {len(pages) / seconds:.1f} | {mbytes / seconds:.2f} | {q['ja_chars']} | "
              f"{q['kana_pages']}/{len(pages)} | {q['empty']} | {q['fallback']} | {q['boiler_lines']} | "
              f"{q['short_line_pct']:.1f} | {q['ruby']} | {q['ruby_leaks']} |")
        if args.dump:
            out = Path(args.dump) / name
            out.mkdir(parents=True, exist_ok=True)
            for i, (text, meta) in enumerate(outputs):
                (out / f"{i:03d}.txt").write_text(json.dumps(meta, ensure_ascii=False) + "\n\n" + text, "utf-8")
    saved, extract.RUBY_SELECTORS = extract.RUBY_SELECTORS, ()
    with_ruby = [(doc, html) for doc, html in pages if RUBY.search(extract._prepare(html))]
    for name in args.variants.split(","):  # the bare extractors on the markup, ruby left in
        raw = [(extract.EXTRACTORS[name](extract._prepare(html), doc.url)[1], {}) for doc, html in with_ruby]
        q = quality(with_ruby, raw)
        print(f"\n{name} without our ruby handling ({len(with_ruby)} pages): bases kept {q['ruby']}, "
              f"readings leaked {q['ruby_leaks']}", end="")
    extract.RUBY_SELECTORS = saved
    print()
    seconds, decoding, payload, count = end_to_end(args.warc, args.repeats)
    size = os.path.getsize(args.warc)
    print(f"charset decisions alone: {count / decoding:.0f} pages/s, {payload / decoding / 1e6:.1f} MB/s")
    print(f"end to end (read + charset + {extract.DEFAULT_EXTRACTOR}), all {count} records: {count / seconds:.1f} pages/s, "
          f"{payload / seconds / 1e6:.2f} MB/s of payload, {size / seconds / 1e6:.2f} MB/s of .warc.gz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
