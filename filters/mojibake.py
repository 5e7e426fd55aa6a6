"""Mojibake signatures: Japanese text decoded with the wrong codec.

- UTF-8 read as CP932/Shift_JIS: the lead bytes E3 81/82/83 of kana become 縺 繧 繝 (rare kanji in real
  text), so runs of them are the classic sign ("縺薙ｓ縺ｫ縺｡縺ｯ").
- UTF-8 read as Latin-1/CP1252: lead byte E3 becomes "ã" followed by a C1/punctuation character; for
  European text "Ã©" or "â€™" pairs.
- EUC-JP read as CP932: kana bytes A4/A5 become half-width ､ ･ alternating with half-width forms (､ﾏ､ﾇ).
- ISO-2022-JP with its escape bytes stripped: "$B...(B" shift sequences left in the text.
- any legacy encoding read as UTF-8 with replacement: U+FFFD.
The statistic is the share of characters inside such signatures among non-space characters.

A `$B` with no `(B` / `(J` later in its run of printable ASCII consumes the run as a non-signature (`no_jis`):
no later `$B` in that run can match either, and trying each made a long run of `$B` quadratic (80k: 9 s).
"""
from __future__ import annotations

import re

# EUC-JP read as CP932: each hiragana/katakana is a lead byte A4/A5, read as ､ or ･, and a trail byte A1-DF, read
# as a half-width form: runs of such pairs (counted apart: see `halfwidth_signature_chars`), with at least one
# trail a kana letter ｦ-ﾝ. A kaomoji's pairs are not a run (｡･ω･｡) or have no such trail (｡･ﾟ･(ﾉД`)･ﾟ･｡).
_HALFWIDTH_SIGNATURE = re.compile(r"(?:[\uff64\uff65][\uff61-\uff9f]){2,}")
_KANA_TRAIL = re.compile(r"[\uff64\uff65][\uff66-\uff9d]")
_HALFWIDTH = re.compile(r"[\uff61-\uff9f]")
_EUC_LEAD_SHARE = 0.15
_SIGNATURES = re.compile(
    r"[縺繧繝][\u3000-\u30ff\uff61-\uff9f\u4e00-\u9fff]"          # UTF-8 as CP932
    r"|ã[\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]"               # UTF-8 (kana) as Latin-1/CP1252
    r"|[ÃÂ][\u0080-\u00bf]|â€[™œ\u009d“”˜¦¢]"                        # UTF-8 (Latin) as Latin-1/CP1252
    r"|\$B(?:[!-~]{2,}?\([BJ]|(?P<no_jis>[!-~]*+))"                   # ISO-2022-JP without ESC (see below)
    r"|\ufffd+"                                                      # replacement characters
)


def halfwidth_signature_chars(text: str) -> int:
    """Characters of the EUC-JP-as-CP932 signature (runs of ､ or ･ each followed by a half-width form).

    Real half-width katakana text can have such runs too (ｱ､ｲ､ｳ), so they count only where ､ and ･, the lead
    bytes of EUC-JP hiragana and katakana, are at least 15% of the half-width characters: 0.17-0.4 in mojibake,
    where every kana is one (the lower end in kanji-heavy law text; a quarter missed 24% of the bundled
    samples' documents). `normalize.halfwidth_katakana` folds these forms, so the pipeline counts them on the
    text before the fold (`meta.mojibake_folded`) and `FilterChain.on_document` passes that to `mojibake_stats`.
    """
    if not _HALFWIDTH.search(text):  # a plain class scan, 4x faster than the pairs': most text has none
        return 0
    pairs = sum(len(run) for run in _HALFWIDTH_SIGNATURE.findall(text) if _KANA_TRAIL.search(run))
    if not pairs:
        return 0
    leads = text.count("\uff64") + text.count("\uff65")
    return pairs if leads >= _EUC_LEAD_SHARE * len(_HALFWIDTH.findall(text)) else 0


def mojibake_stats(text: str, folded: int = 0) -> dict[str, float]:
    """`mojibake_fraction`: characters in mojibake signatures / non-space characters; `folded` adds signature
    characters normalization has already rewritten (`halfwidth_signature_chars` of the text before it)."""
    hit = folded + halfwidth_signature_chars(text)
    hit += sum(m.end() - m.start() for m in _SIGNATURES.finditer(text) if m.group("no_jis") is None)
    visible = len(text) - sum(text.count(ch) for ch in " \n\t\u3000")
    return {"mojibake_fraction": min(1.0, hit / visible) if visible > 0 else 0.0}
