"""Japanese text normalization for stored text: narrow, counted, and every rule switchable.

NFKC is deliberately *not* applied to stored text: it rewrites ① → 1, ㈱ → (株), ㍻ → 平成 and CJK
compatibility ideographs, which changes what a model learns. NFKC is only for dedup keys (`dedup_key`).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

import numpy as np

from filters.codepoints import BMP, code_points

# Rule order matters: line endings first (so later rules see \n only), NFC after the width folds
# (half-width katakana with a separate voiced mark composes only once it is full width).
RULES = ("crlf", "control", "whitespace", "halfwidth_katakana", "fullwidth_ascii", "nfc", "blank_lines")

# every line break Python's splitlines knows (a form feed between PDF pages too): deleted as controls, they
# glued the lines they separate
_CRLF = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Invisible characters (zero-width, BiDi embeddings/overrides/isolates and marks, invisible operators,
# interlinear annotation) and C0/C1 controls except \t and the line breaks (\n, and CR, VT, FF, FS-RS, which
# the `crlf` rule turns into \n; with that rule off they stay). ZWJ (U+200D) is handled apart because it
# glues emoji sequences (👨‍👩‍👧, 🐈‍⬛, 🙂‍↔️) and is kept there.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b\u200c\u200e\u200f"
                      "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]")
_EMOJI = "\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
_LONE_ZWJ = re.compile(f"(?<![{_EMOJI}\\ufe0f])\\u200d|\\u200d(?![{_EMOJI}])")
# Unicode space variants become an ASCII space; the ideographic space U+3000 is Japanese layout
# (law text: 第一条　この法律は…) and stays.
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f]")
_HALFWIDTH_KANA = re.compile(r"([\uff61-\uff9f]+)")  # split: odd parts are runs
# ﾞ ﾟ after no half-width kana they could voice: the spacing ゛ ゜ (NFKC gives the combining marks, which then
# sat on whatever came before: 濁点(ﾞ) → 濁点(゙))
_LONE_SOUND_MARK = re.compile(r"(?<![\uff66-\uff9d])[\uff9e\uff9f]")
_SPACING_MARK = {"\uff9e": "\u309b", "\uff9f": "\u309c"}
_FULLWIDTH_ALNUM = re.compile(r"([\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+)")  # split: odd parts are runs
_FULLWIDTH_TABLE = {cp: cp - 0xFEE0 for cp in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))}
_BLANK_RUN = re.compile(r"\n[ \t\u3000]*(?:\n[ \t\u3000]*)+\n")
_LEADING_BLANKS = re.compile(r"(?:[ \t\u3000]*\n)+")
_LINE_SPACE = " \t\u3000"
_FULL_WIDTH_FORMS = re.compile("([\u3000\uff01-\uff5e]+)")  # split: odd parts are runs
_NFKC_OF_FORMS = {cp: unicodedata.normalize("NFKC", chr(cp)) for cp in (0x3000, *range(0xFF01, 0xFF5F))}
# NFC maps most CJK compatibility ideographs (U+F900–FAFF, U+2F800–2FA1F) to their unified forms through
# singleton decompositions; they are kept as written, like NFKC's compatibility forms.
_CJK_COMPAT = re.compile(r"([\uf900-\ufaff\U0002f800-\U0002fa1f])")


# The rules that scan every character, and the characters they act on. Most texts hold none of a rule's
# characters: one table lookup over the code points tells which rules can fire, and the others are skipped
# (their regex scans were 4/5 of the normalizer's time on web text).
_SCANNED = {"crlf": (_CRLF,), "control": (_CONTROL, re.compile("\u200d")), "whitespace": (_SPACES,),
            "halfwidth_katakana": (_HALFWIDTH_KANA,), "fullwidth_ascii": (_FULLWIDTH_ALNUM,)}


def _rule_table() -> np.ndarray:
    """A bit per rule of `_SCANNED` for each BMP code point it acts on (none acts above the BMP, none on U+FFFF),
    taken from the rules' own patterns so the table cannot drift from them."""
    table, every = np.zeros(BMP, np.uint8), "".join(map(chr, range(BMP)))
    for bit, patterns in enumerate(_SCANNED.values()):
        for pattern in patterns:
            for m in pattern.finditer(every):
                table[m.start():m.end()] |= 1 << bit
    return table


_RULE_TABLE = _rule_table()
_RULE_BIT = {rule: 1 << bit for bit, rule in enumerate(_SCANNED)}


def _may_fire(text: str) -> int:
    """Bits of the `_SCANNED` rules whose characters the text holds. Checked once, on the input: no rule makes
    another's characters (they remove characters, or map them to ASCII, \n, kana and CJK punctuation)."""
    cps = code_points(text)
    return int(np.bitwise_or.reduce(_RULE_TABLE[np.minimum(cps, BMP - 1)])) if cps.size else 0


def _nfc_keeping_compat_kanji(text: str) -> str:
    parts = _CJK_COMPAT.split(text)
    return "".join(p if i % 2 else unicodedata.normalize("NFC", p) for i, p in enumerate(parts))


def _apply(rule: str, text: str) -> tuple[str, int]:
    if rule == "crlf":
        return _CRLF.subn("\n", text)
    if rule == "control":
        text, n = _CONTROL.subn("", text)
        text, m = _LONE_ZWJ.subn("", text) if "\u200d" in text else (text, 0)  # its lookbehind runs at every position
        return text, n + m
    if rule == "whitespace":
        return _SPACES.subn(" ", text)
    if rule == "halfwidth_katakana":
        text, n = (_LONE_SOUND_MARK.subn(lambda m: _SPACING_MARK[m.group()], text)  # a lookbehind at every position
                   if "\uff9e" in text or "\uff9f" in text else (text, 0))
        text, m = _rewrite_runs(_HALFWIDTH_KANA, lambda run: unicodedata.normalize("NFKC", run), text)
        return text, n + m
    if rule == "fullwidth_ascii":
        return _rewrite_runs(_FULLWIDTH_ALNUM, lambda run: run.translate(_FULLWIDTH_TABLE), text)
    if rule == "nfc":
        if unicodedata.is_normalized("NFC", text):
            return text, 0
        fixed = _nfc_keeping_compat_kanji(text)
        return fixed, int(fixed != text)
    if rule == "blank_lines":
        return _edge_blanks(*_BLANK_RUN.subn("\n\n", text))
    raise ValueError(f"unknown normalization rule {rule!r}")


def _rewrite_runs(runs: re.Pattern, rewrite: Callable[[str], str], text: str) -> tuple[str, int]:
    """Each run of `runs` (a capturing pattern) rewritten, and how many characters they held: one scan, and
    the slow per-character work only on the runs."""
    parts = runs.split(text)
    if len(parts) == 1:
        return text, 0
    count = len(text) - sum(map(len, parts[::2]))  # the even parts are what lies between the runs
    parts[1::2] = [rewrite(run) for run in parts[1::2]]
    return "".join(parts), count


def _edge_blanks(text: str, count: int) -> tuple[str, int]:
    """Blank lines at the start and at the end go (a regex anchored at the end was tried at every newline)."""
    if lead := _LEADING_BLANKS.match(text):
        text, count = text[lead.end():], count + 1
    cut = text.find("\n", len(text.rstrip(_LINE_SPACE + "\n")))
    return (text[:cut], count + 1) if cut >= 0 else (text, count)


class Normalizer:
    """Applies the enabled rules in a fixed order and reports how often each one fired: characters rewritten or
    removed, except `crlf` (line breaks: CRLF is one), `blank_lines` (runs collapsed, plus one for each end
    trimmed, a final newline included) and `nfc` (1 when it changed the text)."""

    def __init__(self, enabled: Mapping[str, bool] | None = None) -> None:
        enabled = dict(enabled or {})
        unknown = sorted(set(enabled) - set(RULES))
        if unknown:
            raise ValueError(f"normalize.{unknown[0]}: unknown rule; known rules: {', '.join(RULES)}")
        not_bool = next((r for r, on in enabled.items() if not isinstance(on, bool)), None)
        if not_bool:
            raise ValueError(f"normalize.{not_bool}: expected true or false, got {enabled[not_bool]!r}")
        self.rules = tuple(r for r in RULES if enabled.get(r, True))

    def __call__(self, text: str) -> tuple[str, dict[str, int]]:
        fired: dict[str, int] = {}
        present = _may_fire(text)
        for rule in self.rules:
            if rule in _RULE_BIT and not present & _RULE_BIT[rule]:
                continue
            text, count = _apply(rule, text)
            if count:
                fired[rule] = count
        return text, fired


def normalize(text: str) -> str:
    """All rules on; for callers that do not need the counts."""
    return Normalizer()(text)[0]


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, 2x faster on Japanese text.

    Nearly every Japanese document has a full-width （）， or an ideographic space, which fails NFKC's quick
    check, so NFKC took its slow path (72 ns per character). Those characters are replaced by their own NFKC
    first, which leaves NFKC of the text unchanged (NFKD(NFKC(c)) = NFKD(c)), and most texts then pass.
    """
    text, _ = _rewrite_runs(_FULL_WIDTH_FORMS, lambda run: run.translate(_NFKC_OF_FORMS), text)
    if unicodedata.is_normalized("NFKC", text):
        return text
    # One … or ① sent the whole text down that slow path (190 ns a character; 4% of the dev texts, 27% of
    # their characters). NFKC never acts across a line break (a starter no composition involves, and nothing
    # decomposes to one), so only the lines that need it are normalized.
    return "\n".join(line if unicodedata.is_normalized("NFKC", line) else unicodedata.normalize("NFKC", line)
                     for line in text.split("\n"))


def dedup_key(text: str) -> str:
    """The text exact-dedup compares: NFKC-folded (width, compatibility forms) with all whitespace removed."""
    return "".join(nfkc(text).split())  # str.split's whitespace is the same as regex \s
