"""Japanese documentation from Debian's packages, as JSONL training text for `tokenizer_bench.py --extra-train`.

The shared dev corpora hold ~1M characters, too few to train the tokenizer at 32k or to see whether the
compression target depends on the sample size. Debian ships Japanese manuals (LibreOffice and GIMP help,
the Debian reference, policy, FAQ and guides): ~4M characters of real, if technical, Japanese prose.
`apt-get download` needs no root. Measurement only: these manuals are under the GPL, GFDL, MPL and
similar licences, not those of the repo's own data, so nothing from them is committed.

    .venv/bin/python bench/debian_ja_docs.py /tmp/debian-ja   # writes /tmp/debian-ja/docs.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.extract import page_to_text  # noqa: E402

PACKAGES = ("libreoffice-help-ja", "gimp-help-ja", "debian-reference-ja", "developers-reference-ja",
            "maint-guide-ja", "debian-faq-ja", "debian-policy-ja", "debian-edu-doc-ja", "scilab-doc-ja")
JAPANESE_PAGE = re.compile(r"/ja/|[.-]ja[./]")  # the packages' Japanese pages, not their English fallbacks
KANA = re.compile(r"[\u3041-\u30ff]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="work folder; docs.jsonl is written here")
    args = parser.parse_args()
    debs, tree = args.out / "debs", args.out / "tree"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    seen: set[str] = set()
    chars = 0
    with open(args.out / "docs.jsonl", "w", encoding="utf-8") as out:
        for page in sorted(p for p in tree.rglob("*.html") if p.is_file()):
            name = str(page.relative_to(tree))
            if not JAPANESE_PAGE.search("/" + name):
                continue
            text, _ = page_to_text(page.read_bytes(), "text/html")
            if len(KANA.findall(text)) < 50 or text in seen:
                continue
            seen.add(text)
            chars += len(text)
            out.write(json.dumps({"id": name, "kind": "docs", "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(seen)} pages, {chars:,} characters -> {args.out / 'docs.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
