"""Host blocklists and URL rules.

Accepted list formats: a UTF-8 file with one host per line (`example.com` blocks the host and all its
subdomains; `*.example.com` only subdomains; `#` comments), or a UT1 blacklist directory
(`<dir>/<category>/domains`, choose categories with `categories`; one category folder given alone is
refused rather than read as an empty list). URL rules are substrings matched case-insensitively against
the whole URL.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from filters.lines import text_lines

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://|//")


def ascii_host(host: str) -> str:
    """A host in one spelling: lower case, no trailing dot, internationalized labels as punycode (例え.jp and
    xn--r8jz45g.jp are one host; a list naming either blocks both)."""
    host = host.rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # a label IDNA refuses (empty, over 63 characters): kept as written
        return host


def host_of(url: str | None) -> str | None:
    """The URL's host (`ascii_host`), without port; None when the URL has none. A URL without a scheme is a
    host first (`bad.example.com/login?next=https://…` included: a `//` later in it is not a scheme's)."""
    if not url:
        return None
    try:
        host = urlsplit(url if _SCHEME.match(url) else "//" + url).hostname
    except ValueError:
        return None
    if not host or any(ch.isspace() for ch in host):
        return None
    return ascii_host(host)


def _read_hosts(path: Path) -> Iterable[str]:
    for line in text_lines(path):
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            yield entry


def _ut1_files(folder: Path, categories: Sequence[str]) -> list[Path]:
    """The `domains` files of the chosen categories (all when none are chosen) of a UT1 folder."""
    if (folder / "domains").is_file():
        raise ValueError(f"{folder} is one UT1 category; give its parent folder and categories: [{folder.name}]")
    names = categories or sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise ValueError(f"{folder} holds no UT1 category folder (<category>/domains)")
    files = [folder / name / "domains" for name in names]
    for domains in files:
        if not domains.is_file():
            raise ValueError(f"{domains}: no such UT1 category file")
    return files


class HostBlocklist:
    """Blocked hosts from inline patterns, host-list files and UT1 folders; an unreadable list is a ValueError."""

    def __init__(self, paths: Sequence[str | Path] = (), categories: Sequence[str] = (),
                 patterns: Sequence[str] = ()) -> None:
        self.exact: set[str] = set()      # host or any of its parents
        self.subdomains: set[str] = set()  # strict subdomains only (*.x)
        self.suffixes: list[str] = []      # '*x' without a dot: plain suffix (Swallow's *wikipedia.org)
        for entry in patterns:
            self._add(entry.lower())
        for raw in paths:
            path = Path(raw)
            for file in _ut1_files(path, categories) if path.is_dir() else [path]:
                for entry in _read_hosts(file):
                    self._add(entry)

    def _add(self, entry: str) -> None:
        if entry.startswith("*."):
            self.subdomains.add(ascii_host(entry[2:]))
        elif entry.startswith("*"):
            self.suffixes.append(entry[1:])
        else:
            self.exact.add(ascii_host(entry))

    def __len__(self) -> int:
        return len(self.exact) + len(self.subdomains) + len(self.suffixes)

    def blocked(self, host: str | None) -> bool:
        if not host:
            return False
        if any(host.endswith(s) for s in self.suffixes):
            return True
        parts = host.split(".")
        for i in range(len(parts)):
            parent = ".".join(parts[i:])
            if parent in self.exact or (i > 0 and parent in self.subdomains):
                return True
        return False


class UrlRules:
    def __init__(self, substrings: Sequence[str] = ()) -> None:
        self.substrings = [s.lower() for s in substrings if s]

    def blocked(self, url: str | None) -> bool:
        if not url or not self.substrings:
            return False
        low = url.lower()
        return any(s in low for s in self.substrings)
