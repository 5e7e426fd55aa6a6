"""PII masking for Japanese text: a transform, never a rejection.

Masked: e-mail addresses -> <EMAIL>; Japanese phone numbers (fixed, mobile/IP 050/070/080/090,
toll-free 0120/0800/0570, +81, full-width digits, any hyphen variant or parentheses) -> <PHONE>;
マイナンバー (12 digits whose check digit is valid) -> <MYNUMBER>; the number after 〒 -> 〒<POSTCODE>;
IPv4 addresses -> <IP>.
Not masked, by construction: dates and times (no leading 0 trunk prefix or wrong digit count), law
numbers written in kanji, prices, ISBNs (the last group is one check digit), version strings, 12-digit
numbers with a wrong check digit, and unseparated 10-digit numbers (order ids look the same).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable

_D = "0-9０-９"
_H = "\\-‐‑‒–—―−－ー"
# not glued to a number before it; ー is a separator inside a number, but before one it ends a katakana word
# (サポートセンター03-…); a "." only after a digit (3.03-…), so TEL.03-… is a number
_NOT_BEFORE = rf"(?<![{_D}A-Za-z{_H.replace('ー', '')},/_])(?<![{_D}]\.)"

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+[@＠][A-Za-z0-9\-]+(?:[.．][A-Za-z0-9\-]+)*[.．][A-Za-z]{2,}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"(?<![0-9A-Za-z.]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9A-Za-z]|\.[0-9])")
MYNUMBER = re.compile(rf"{_NOT_BEFORE}[{_D}]{{4}}[ {_H}]?[{_D}]{{4}}[ {_H}]?[{_D}]{{4}}(?![{_D}A-Za-z]|[{_H}.,][{_D}])")
PHONE = re.compile(  # an opening bracket may follow anything (TEL（03）…)
    rf"(?:(?=[(（])|{_NOT_BEFORE})(?:[+＋][8８][1１][ {_H}]?(?:[(（][0０][)）])?[ ]?)?"
    rf"[(（]?[{_D}]{{1,5}}[)）]?(?:[ {_H}]?[(（]?[{_D}]{{1,4}}[)）]?){{0,3}}"
    rf"(?![{_D}A-Za-z]|[{_H}.,][{_D}])"
)
POSTCODE = re.compile(rf"〒[ 　]?([{_D}]{{3}}[{_H}]?[{_D}]{{4}})(?![{_D}])")
_GROUP = re.compile(rf"[{_D}]+")
_VERSION_CONTEXT = re.compile(r"(?:ver(?:sion)?\.?|バージョン|[vV])\s*$")


def ascii_digits(s: str) -> str:
    return "".join(str(unicodedata.digit(ch)) for ch in s if ch.isdigit())


def mynumber_valid(digits: str) -> bool:
    """Check digit of the individual number (番号法施行令第8条): weights 2..7, 2..6 from the right."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = digits[:11]
    total = 0
    for n in range(1, 12):
        p = int(body[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    rem = total % 11
    return int(digits[11]) == (0 if rem <= 1 else 11 - rem)


def phone_valid(candidate: str) -> bool:
    """Japanese numbering plan: 10 digits (fixed; 0120/0570 with 3-3 or 2-4 groups) or 11 (mobile/IP/0800)."""
    international = candidate.lstrip("(（ ").startswith(("+", "＋"))
    groups = [ascii_digits(g) for g in _GROUP.findall(candidate)]
    if international:
        groups[0] = groups[0][2:]  # drop the country code 81
        groups = [g for g in groups if g]
        if groups and groups[0] == "0":  # "+81 (0)3 ..."
            groups = groups[1:]
        if not groups or groups[0].startswith("0"):
            return False
        groups[0] = "0" + groups[0]
    digits = "".join(groups)
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    if len(groups) == 1:  # unseparated: only the unambiguous mobile / IP-phone shape
        return len(digits) == 11 and digits[:3] in ("050", "070", "080", "090")
    last = len(groups[-1])
    if len(digits) == 10:
        if digits.startswith(("0120", "0570")):  # 0120-123-456, and 0120-12-3456 as printed on ads
            return last in (3, 4)
        return last == 4 and 2 <= len(groups[0]) <= 5
    if len(digits) == 11:
        return digits[:3] in ("020", "050", "060", "070", "080", "090") and last == 4 or (
            digits.startswith("0800") and last == 4)
    return False


def _unpaired_brackets(match: str) -> tuple[str, str, str]:
    """(opening bracket, number, closing bracket) of a phone match: a bracket the number does not pair is the
    text's (（電話：03-1234-5678）), kept outside the mask instead of being masked away."""
    opens, closes = sum(map(match.count, "(（")), sum(map(match.count, ")）"))
    lead = match[0] if opens > closes and match[0] in "(（" else ""
    trail = match[-1] if closes > opens and match[-1] in ")）" else ""
    return lead, match[len(lead):len(match) - len(trail)], trail


class PiiMasker:
    """Masks the enabled PII kinds and counts replacements per kind."""

    KINDS = ("email", "ip", "mynumber", "phone", "postcode")

    def __init__(self, kinds: Iterable[str] = KINDS) -> None:
        self.kinds = [k for k in self.KINDS if k in set(kinds)]

    def __call__(self, text: str) -> tuple[str, dict[str, int]]:
        counts: Counter = Counter()
        for kind in self.kinds:
            text = getattr(self, f"_mask_{kind}")(text, counts)
        return text, {k: counts[k] for k in self.kinds}

    @staticmethod
    def _sub(pattern: re.Pattern, token: str, kind: str, ok: Callable[[re.Match], bool], text: str,
             counts: Counter) -> str:
        def repl(m: re.Match) -> str:
            if not ok(m):
                return m.group(0)
            counts[kind] += 1
            return token

        return pattern.sub(repl, text)

    def _mask_email(self, text: str, counts: Counter) -> str:
        return self._sub(EMAIL, "<EMAIL>", "email", lambda m: True, text, counts)

    def _mask_ip(self, text: str, counts: Counter) -> str:
        def ok(m: re.Match) -> bool:
            return not _VERSION_CONTEXT.search(m.string[max(0, m.start() - 12):m.start()])

        return self._sub(IPV4, "<IP>", "ip", ok, text, counts)

    def _mask_mynumber(self, text: str, counts: Counter) -> str:
        return self._sub(MYNUMBER, "<MYNUMBER>", "mynumber", lambda m: mynumber_valid(ascii_digits(m.group(0))),
                         text, counts)

    def _mask_phone(self, text: str, counts: Counter) -> str:
        def repl(m: re.Match) -> str:
            whole = m.group(0)
            lead, number, trail = _unpaired_brackets(whole)
            if phone_valid(number.strip()):
                counts["phone"] += 1
                return f"{lead}<PHONE>{trail}"
            # a space also separates groups, so a number before or after it (1 03-1234-5678, 03-1234-5678 9:00～)
            # joined the match and made it invalid, and `sub` never looks inside a match again: try the parts
            # after and before each space
            for i in (i for i, ch in enumerate(whole) if ch == " "):
                after = PHONE.match(m.string, m.start() + i + 1, m.end())
                if after is not None and after.end() == m.end() and (masked := repl(after)) != after.group(0):
                    return whole[: i + 1] + masked
                before = PHONE.match(m.string, m.start(), m.start() + i)
                if before is not None and before.end() == m.start() + i and (masked := repl(before)) != before.group(0):
                    return masked + whole[i:]
            return whole

        return PHONE.sub(repl, text)

    def _mask_postcode(self, text: str, counts: Counter) -> str:
        def repl(m: re.Match) -> str:
            counts["postcode"] += 1
            return "〒<POSTCODE>"

        return POSTCODE.sub(repl, text)
