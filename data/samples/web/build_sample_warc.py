"""Build data/samples/web/pages.warc.gz, a small licence-clean WARC that exercises the web source.

    python data/samples/web/build_sample_warc.py             # from sample_pages_src.json (in the repo)
    python data/samples/web/build_sample_warc.py --refresh   # re-take the text snapshot from /work/shared

Texts are Japanese Wikipedia paragraphs (CC BY-SA 4.0), e-Gov law texts (public domain), FineWeb-2
documents (ODC-BY 1.0) and a few sentences written for this sample (CC0); the HTML around them is
written here. Record ids, dates and gzip headers are fixed, so the output is byte-identical on every
run. WARC_SOURCES.md lists each record's provenance and licence.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
SRC = HERE / "sample_pages_src.json"
OUT = HERE / "pages.warc.gz"
SHARED = HERE.parents[3] / "shared" / "corpora"
NAMESPACE = uuid.UUID("6f1c3a52-0d4e-4c8e-9a57-2b1d7f0c9e11")
JAWIKI_TITLES = ("梅雨", "グスタフ・マーラー", "生命の起源", "石油", "オランダ", "打楽器", "ハノーファー", "空港")
EGOV_IDS = (15, 35)  # 軽犯罪法, 供託法 (line numbers in egov_laws_2013.jsonl)
FINEWEB_IDS = (1, 3, 16, 23, 35, 48)

# Sentences written for this sample (CC0): they carry the ruby and the chrome that extraction must handle.
INTRO = "この<ruby>記事<rp>(</rp><rt>きじ</rt><rp>)</rp></ruby>は<ruby>試験<rp>(</rp><rt>しけん</rt><rp>)</rp></ruby>用の<ruby><rb>抜粋</rb><rt>ばっすい</rt></ruby>です。"
CHINESE = ["这是一个用于测试的中文网页。今天天气很好，我们一起去公园散步。",
           "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？",
           "图书馆每天上午九点开门，晚上八点关门。周末人很多，请提前预约座位。"]
ENGLISH = ["This page is part of a small test archive for a Japanese text pipeline.",
           "The river runs through the old town, past the market and the railway station, and reaches the sea "
           "after about twenty kilometres. In spring the banks are lined with cherry trees.",
           "Visitors can borrow bicycles at the station. The museum opens at nine and closes at five, except on Mondays."]


def page(title: str, paragraphs: list[str], charset_decl: str, lang: str = "ja", nav: tuple[str, ...] = (),
         site: str = "サンプル百科", intro: bool = True) -> str:
    """A realistic page: head with script/style, header, nav, article, aside, footer."""
    ja = lang == "ja"
    nav = nav or ("ホーム", "カテゴリ一覧", "サイトマップ", "お問い合わせ")
    css, js, written = ("広告スタイル", "{js}", "スクリプトで書いた段落") if ja else ("ad", "tracking", "script")
    ranking = ("人気記事ランキング", "今週のおすすめ", "編集部のおすすめ") if ja else ("Popular", "This week", "Editors")
    search, legal = ("検索", "プライバシーポリシー</a> | <a href=\"/terms\">利用規約") if ja else ("Search", "Privacy")
    links = "".join(f'<li><a href="/{i}">{item}</a></li>' for i, item in enumerate(nav))
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    lede = f"<p class=\"lede\">{INTRO}</p>\n" if intro else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
{charset_decl}
<title>{title} - {site}</title>
<style>body {{ font-family: sans-serif; }} .ad::after {{ content: "{css}"; }}</style>
<script>var trackingMessage = "{js}"; window.dataLayer = [];</script>
</head>
<body>
<header><div class="logo">{site}</div><form action="/search"><input name="q" placeholder="{search}"></form></header>
<nav class="global-nav"><ul>{links}</ul></nav>
<main><article>
<h1>{title}</h1>
{lede}{body}
</article></main>
<aside><h2>{ranking[0]}</h2><ol><li><a href="/r1">{ranking[1]}</a></li><li><a href="/r2">{ranking[2]}</a></li></ol></aside>
<footer><p>Copyright &copy; 2024 {site} All Rights Reserved.</p><p><a href="/privacy">{legal}</a></p></footer>
<script>document.write("<p>{written}</p>");</script>
</body>
</html>
"""


def feed(title: str, items: list[tuple[str, str, str]]) -> str:
    """RSS 2.0 with CDATA and entity-escaped HTML item bodies."""
    out = [f"<item><title>{t}</title><link>{u}</link><pubDate>Mon, 01 Apr 2013 09:00:00 +0900</pubDate>"
           f"<description><![CDATA[<p>{INTRO}</p><p>{body}</p>]]></description></item>" for t, u, body in items]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>{title}</title><link>http://feed.example.test/</link><description>テスト用フィード</description>"
            + "".join(out) + "</channel></rss>\n")


def load_sources(refresh: bool) -> dict:
    if not refresh:
        return json.loads(SRC.read_text("utf-8"))
    wiki: dict[str, dict] = {}
    with open(SHARED / "reference" / "jawiki_jsquad_paragraphs.jsonl", encoding="utf-8") as f:
        for row in map(json.loads, f):
            if row["title"] in JAWIKI_TITLES:
                entry = wiki.setdefault(row["title"], {"title": row["title"], "url": row["url"], "paragraphs": []})
                if len(entry["paragraphs"]) < 3:
                    entry["paragraphs"].append(row["text"])
    with open(SHARED / "government" / "egov_laws_2013.jsonl", encoding="utf-8") as f:
        laws = [json.loads(line) for line in f]
    with open(SHARED / "web" / "fineweb2_ja_text.jsonl", encoding="utf-8") as f:
        fineweb = [json.loads(line) for line in f]
    src = {
        "jawiki": [wiki[t] for t in JAWIKI_TITLES],
        "egov": [{"id": laws[i]["id"], "title": laws[i]["title"], "text": laws[i]["text"].strip()[:1500]}
                 for i in EGOV_IDS],
        "fineweb": [{"id": fineweb[i]["id"], "url": fineweb[i]["url"], "text": fineweb[i]["text"].strip()}
                    for i in FINEWEB_IDS],
    }
    SRC.write_text(json.dumps(src, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return src


def paras(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def build_pages(src: dict) -> list[dict]:
    """Every response record: url, body bytes, http content type, and what it is for."""
    wiki, law, fw = src["jawiki"], src["egov"], src["fineweb"]
    meta_utf8 = '<meta charset="utf-8">'

    def http_equiv(cs: str) -> str:
        return f'<meta http-equiv="Content-Type" content="text/html; charset={cs}">'

    base = page(wiki[0]["title"], wiki[0]["paragraphs"], meta_utf8).encode("utf-8")
    near = page(wiki[0]["title"], [p.replace("みられる", "見られる").replace("期間のこと", "期間をいう")
                                   for p in wiki[0]["paragraphs"]], meta_utf8,
                nav=("トップ", "新着記事", "ヘルプ")).encode("utf-8")
    law_sjis = law[0]["text"].replace("から", "〜", 1)  # a WAVE DASH: cp932 0x8160
    pages = [
        ("http://wiki.example.test/梅雨", base, "text/html", "UTF-8, <meta charset>"),
        ("http://law.example.test/keihanzai.html", page(law[0]["title"], paras(law_sjis), http_equiv("Shift_JIS"),
                                                      site="法令サンプル").encode("cp932"), "text/html",
         "Shift_JIS via <meta http-equiv>, contains 〜"),
        ("http://wiki.example.test/mahler.html", page(wiki[1]["title"], wiki[1]["paragraphs"], http_equiv("EUC-JP"))
         .encode("euc_jp"), "text/html", "EUC-JP via <meta http-equiv>"),
        ("http://wiki.example.test/origin-of-life.html", page(wiki[2]["title"], wiki[2]["paragraphs"],
                                                             http_equiv("ISO-2022-JP")).encode("iso2022_jp_ext"),
         "text/html", "ISO-2022-JP via <meta http-equiv>"),
        ("http://blog.example.test/cosmetics.html", page("手作り化粧品", paras(fw[0]["text"]), http_equiv("Shift_JIS"),
                                                         site="サンプルブログ").encode("utf-8"),
         "text/html", "UTF-8 bytes mislabelled Shift_JIS (must be overridden)"),
        ("http://pref.example.test/food-safety.html", page("食中毒にご注意", paras(fw[1]["text"]), "",
                                                           site="サンプル県").encode("cp932"),
         "text/html", "Shift_JIS, no declaration anywhere"),
        ("http://wiki.example.test/oil.html", page(wiki[3]["title"], wiki[3]["paragraphs"], "").encode("euc_jp"),
         "text/html; charset=EUC-JP", "EUC-JP declared only in the HTTP header"),
        ("http://mirror.example.test/tsuyu.html", base, "text/html", "exact duplicate of record 1 (same bytes)"),
        ("http://wiki2.example.test/梅雨", near, "text/html", "near duplicate of record 1 (two edits, other nav)"),
        ("http://zh.example.test/index.html", page("中文测试页面", CHINESE, http_equiv("gb2312"), lang="zh",
                                                   nav=("首页", "新闻", "联系我们"), site="示例网站", intro=False)
         .encode("gb2312"), "text/html", "Chinese (GB2312)"),
        ("http://en.example.test/town.html", page("A small town", ENGLISH, meta_utf8, lang="en",
                                                  nav=("Home", "About", "Contact"), site="Example Town",
                                                  intro=False).encode("utf-8"), "text/html", "English"),
        ("http://law.example.test/kyotaku.html", page(law[1]["title"], paras(law[1]["text"]), meta_utf8,
                                                      site="法令サンプル").encode("utf-8"), "text/html",
         "UTF-8 law text"),
        ("http://wiki.example.test/netherlands.html", page(wiki[4]["title"], wiki[4]["paragraphs"], "")
         .encode("utf-8"), "text/html", "UTF-8, no declaration"),
        ("http://feed.example.test/rss.xml", feed("サンプルフィード", [(w["title"], w["url"], w["paragraphs"][0])
                                                              for w in wiki[5:8]]).encode("utf-8"),
         "application/rss+xml", "RSS feed, CDATA bodies with ruby"),
        ("http://blog.example.test/wiki-person.html", page("人物", paras(fw[2]["text"]) + paras(fw[3]["text"]),
                                                           meta_utf8, site="サンプルブログ").encode("utf-8"),
         "text/html", "FineWeb-2 texts (Wikipedia-derived)"),
        ("http://travel.example.test/geneva.html", page("ジュネーブ", paras(fw[4]["text"]), meta_utf8,
                                                        site="旅行サンプル").encode("utf-8"),
         "text/html", "FineWeb-2 text"),
        ("http://univ.example.test/mail.html", page("生涯メールサービス", paras(fw[5]["text"]), http_equiv("utf-8"),
                                                    site="大学サンプル").encode("utf-8-sig"),
         "text/html", "UTF-8 with a byte-order mark"),
    ]
    return [{"url": u, "body": b, "content_type": ct, "note": n} for u, b, ct, n in pages]


def record_id(n: int) -> str:
    return f"<urn:uuid:{uuid.uuid5(NAMESPACE, f'record-{n}')}>"


def write_warc(pages: list[dict], out: Path) -> list[dict]:
    """Response records, plus the record types a crawl also holds (warcinfo, request, metadata, a redirect,
    an image, a gzip-encoded body) which the reader must skip or decode."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    rows = []
    n = 0

    def put(rec_type: str, url: str, payload: bytes, http: StatusAndHeaders | None, ctype: str = "") -> str:
        nonlocal n
        n += 1
        rid = record_id(n)
        headers = {"WARC-Record-ID": rid, "WARC-Date": f"2024-04-01T09:00:{n:02d}Z"}
        rec = writer.create_warc_record(url, rec_type, payload=io.BytesIO(payload), length=len(payload),
                                        warc_content_type=ctype, warc_headers_dict=headers, http_headers=http)
        writer.write_record(rec)
        return rid

    put("warcinfo", "", b"software: jcorpus build_sample_warc.py\r\nformat: WARC File Format 1.0\r\n", None,
        "application/warc-fields")
    for i, p in enumerate(pages):
        if i == 1:
            req = StatusAndHeaders("GET /keihanzai.html HTTP/1.1", [("Host", "law.example.test")], is_http_request=True)
            put("request", p["url"], b"", req)
        http = StatusAndHeaders("200 OK", [("Content-Type", p["content_type"]), ("Content-Length", str(len(p["body"])))],
                                protocol="HTTP/1.1")
        rid = put("response", p["url"], p["body"], http)
        rows.append({"record_id": rid, "url": p["url"], "note": p["note"], "sha1": hashlib.sha1(p["body"]).hexdigest()})
        if i == 3:
            put("metadata", p["url"], b"fetchTimeMs: 120\r\n", None, "application/warc-fields")
    redirect = StatusAndHeaders("301 Moved Permanently", [("Location", "http://wiki.example.test/梅雨")], protocol="HTTP/1.1")
    put("response", "http://wiki.example.test/tsuyu", b"", redirect)
    image = StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1")
    put("response", "http://wiki.example.test/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(32), image)
    body = pages[11]["body"]
    encoded = gzip.compress(body, mtime=0)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip"),
                                       ("Content-Length", str(len(encoded)))], protocol="HTTP/1.1")
    rid = put("response", "http://law.example.test/kyotaku-gz.html", encoded, http)
    rows.append({"record_id": rid, "url": "http://law.example.test/kyotaku-gz.html",
                 "note": "same page as kyotaku.html sent with Content-Encoding: gzip", "sha1": hashlib.sha1(body).hexdigest()})
    out.write_bytes(buf.getvalue())
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refresh", action="store_true", help="re-take the text snapshot from /work/shared")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = write_warc(build_pages(load_sources(args.refresh)), args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {len(rows)} documents, {args.out.stat().st_size} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
