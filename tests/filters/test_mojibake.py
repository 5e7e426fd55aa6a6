"""Mojibake positives (wrong-codec decodes) and negatives (real text, rare kanji used correctly)."""
from __future__ import annotations

import pytest

from filters.chain import FilterChain
from filters.mojibake import mojibake_stats

TEXT = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"


@pytest.mark.parametrize("garble", [
    lambda t: t.encode("utf-8").decode("cp932", "replace"),
    lambda t: t.encode("utf-8").decode("latin-1"),
    lambda t: t.encode("utf-8").decode("cp1252", "replace"),
    lambda t: t.encode("euc-jp").decode("cp932", "replace"),
    lambda t: t.encode("cp932").decode("utf-8", "replace"),
    lambda t: t.encode("cp932").decode("euc-jp", "replace"),
    lambda t: t.encode("iso-2022-jp").decode("ascii").replace("\x1b", ""),
])
def test_positives_rejected(garble) -> None:
    bad = garble(TEXT)
    assert mojibake_stats(bad)["mojibake_fraction"] > 0.2
    assert FilterChain({"preset": "none", "rules": {"mojibake": {}}})(bad, url=None, kind="web").reject_reason == "mojibake"


@pytest.mark.parametrize("good", [
    TEXT,
    "繧繝彩色（うんげんさいしき）は、同系統の色を段階的に並べる彩色法である。" + TEXT,
    "Café in München — naïve résumé. " + TEXT,
    "ｶﾀｶﾅの半角表記｡ﾃｽﾄです｡" + TEXT * 2,
])
def test_negatives_kept(good: str) -> None:
    assert FilterChain({"preset": "none", "rules": {"mojibake": {}}})(good, url=None, kind="web").reject_reason is None


def test_long_runs_without_a_shift_back_stay_linear():
    """Each `$B` used to scan its whole ASCII run for `(B`: 160k characters of `$B` took 9 s."""
    import time

    start = time.process_time()
    assert mojibake_stats("$B" * 100_000 + "本文")["mojibake_fraction"] == 0.0
    assert mojibake_stats("x$B" + "A" * 100_000 + "(B")["mojibake_fraction"] > 0.99
    assert time.process_time() - start < 1


def test_the_euc_signature_counts_when_normalization_has_folded_it():
    """EUC-JP read as CP932 is half-width ､ﾏ runs, which `normalize.halfwidth_katakana` folds to 、マ before the
    filters run: the signature was gone and the page kept (decoded ignoring errors, as many crawlers do, no
    U+FFFD is left either). The count taken before the fold is added; real half-width text is not mojibake."""
    from filters.mojibake import halfwidth_signature_chars
    from filters.normalize import Normalizer

    bad = TEXT.encode("euc-jp").decode("cp932", "ignore")
    folded, _ = Normalizer()(bad)
    chain = FilterChain({"preset": "none", "rules": {"mojibake": {}}})
    assert mojibake_stats(folded)["mojibake_fraction"] < 0.02  # what the rule saw before
    assert chain(folded, url=None, kind="web", folded_mojibake=halfwidth_signature_chars(bad)).reject_reason == "mojibake"
    law = ("第一条　この法律は、国民の健康の保持増進に関する施策の基本となる事項を定め、公衆衛生の向上及び増進に寄与する"
           "ことを目的とする。").encode("euc-jp").decode("cp932", "ignore")  # kanji-heavy: ､ and ･ are 23% of it
    assert chain(Normalizer()(law)[0], url=None, kind="government",
                 folded_mojibake=halfwidth_signature_chars(law)).reject_reason == "mojibake"
    doc = {"text": folded, "kind": "web", "meta": {"mojibake_folded": halfwidth_signature_chars(bad)}}
    assert chain.on_document(doc).reject_reason == "mojibake"  # what curate, `filters eval` and the bench call
    kaomoji = "".join(f"{sentence}。{face}" for sentence, face in zip(TEXT.split("。")[:4], (  # their pairs are no
        "(｡･ω･｡)", "｡･ﾟ･(ﾉД`)･ﾟ･｡", "(*ﾟ∀ﾟ)･ﾟ･ﾟ", "｡･:*:･ﾟ★"), strict=True))  # run, or have no kana trail
    for good in ("ｶﾀｶﾅの半角表記｡ﾃｽﾄです｡" + TEXT * 2, "ｺﾝﾆﾁﾊ｡ｹﾞﾝｷﾃﾞｽｶ､ｱﾘｶﾞﾄｳ｡" + TEXT, kaomoji):
        assert chain(Normalizer()(good)[0], url=None, kind="web",
                     folded_mojibake=halfwidth_signature_chars(good)).reject_reason is None
        assert chain(good, url=None, kind="web").reject_reason is None  # with the fold off
