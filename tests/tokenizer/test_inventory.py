"""The guaranteed inventory levels and the vocabulary-size-dependent `auto` choice."""
from __future__ import annotations

import unicodedata

import pytest

from tokenizer.inventory import (
    AUTO_SHARE,
    INVENTORIES,
    cp932_extensions,
    jis_x_0208,
    required_chars,
    resolve,
    world_symbols,
)
from tokenizer.sample import split_sentences
from tokenizer.train import TokenizerError, TrainConfig, load, train_model, trainer_options

# One character per block the `full` level adds, none of them in JIS X 0208.
FULL_ONLY = "①Ⅻ㈱㍉髙﨑éŁάЎ⁴№↗∑∮ⓐ◐〝ｱ𝑖𝑥अক"


def test_levels_are_nested_and_sized() -> None:
    sizes = [len(required_chars(level)) for level in INVENTORIES]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    for small, big in zip(INVENTORIES, INVENTORIES[1:], strict=False):
        assert set(required_chars(small)) <= set(required_chars(big))
    assert len(jis_x_0208()) == 6879  # 6,355 kanji + 524 non-kanji (JIS X 0208:1997)
    assert set("αЖ─→∀") <= jis_x_0208()  # its Greek, Cyrillic, box drawing and symbol rows
    full = set(required_chars("full"))
    assert set(FULL_ONLY) <= full and not set(FULL_ONLY) & jis_x_0208()
    assert set(cp932_extensions()) & set("①Ⅰ㈱髙") == set("①Ⅰ㈱髙")
    assert " " not in full
    bad = {ch for ch in full if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn", "Zs")}
    assert bad == {"\u3000"}, sorted(bad)[:10]  # only the ideographic space: no control, private-use, unassigned
    assert world_symbols() <= full


@pytest.mark.parametrize(("vocab", "level"), [(3000, "joyo"), (5000, "joyo"), (6000, "jinmeiyo"),
                                              (8000, "jinmeiyo"), (12000, "jis0208"), (16000, "full"),
                                              (32000, "full")])
def test_auto_picks_the_largest_level_that_fits(vocab: int, level: str) -> None:
    assert resolve("auto", vocab) == level
    assert required_chars("auto", vocab) == required_chars(level)
    assert level == "joyo" or len(required_chars(level)) <= AUTO_SHARE * vocab


def test_config_reports_the_resolved_level_and_rejects_unknown() -> None:
    cfg = TrainConfig(vocab_size=16000)
    assert cfg.inventory == "auto" and cfg.to_dict()["inventory_level"] == "full"
    assert trainer_options("main", cfg)["required_chars"] == required_chars("full") + "\u2581"  # + the space, escaped
    with pytest.raises(TokenizerError, match="--inventory"):
        TrainConfig(inventory="jis0212").validate()
    with pytest.raises(ValueError, match="needs the vocabulary size"):
        required_chars("auto")


def test_full_inventory_removes_byte_fallback_for_its_characters(ja_docs: list[tuple[str, str]]) -> None:
    """Characters absent from the sample still encode as one piece each, and decode exactly."""
    sentences = [s for _, text in ja_docs[:60] for s in split_sentences(text)]
    cfg = TrainConfig(vocab_size=10_000, inventory="full", policy="none", reserved_tokens=0)
    try:
        sp = load(train_model(sentences, trainer_options("main", cfg)))
    except TokenizerError as exc:  # a tiny sample: use the size it supports
        assert exc.largest_vocab
        sp = load(train_model(sentences, trainer_options("main", TrainConfig(
            vocab_size=exc.largest_vocab, inventory="full", policy="none", reserved_tokens=0))))
    text = "経済学者（" + "अमर्त्य" + "）は①で𝑖とéを使う"
    ids = sp.encode(text)
    assert not [i for i in ids if sp.is_byte(i)]
    assert sp.decode(ids) == text
    assert sp.encode("𠮷") and all(sp.is_byte(i) for i in sp.encode("𠮷"))  # outside every level: bytes


def test_every_level_keeps_the_ideographic_space(ja_docs: list[tuple[str, str]]) -> None:
    """U+3000 indents Aozora and laws; a sample without one must not leave it to byte fallback."""
    sentences = [s.replace("\u3000", "") for _, text in ja_docs[:60] for s in split_sentences(text)]
    cfg = TrainConfig(vocab_size=4000, inventory="joyo", policy="none", reserved_tokens=0)
    sp = load(train_model(sentences, trainer_options("main", cfg)))
    ids = sp.encode("\u3000第一条")
    assert not [i for i in ids if sp.is_byte(i)] and sp.decode(ids) == "\u3000第一条"
    assert all("\u3000" in required_chars(level) for level in INVENTORIES)
