"""Training (inventory, lossless round trip, determinism, errors) and the Hugging Face export."""
from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from tokenizer import hf_export
from tokenizer.inventory import HIRAGANA, JINMEIYO, JOYO, KATAKANA, required_chars
from tokenizer.sample import split_sentences
from tokenizer.train import (
    SPECIALS,
    TokenizerError,
    TrainConfig,
    load,
    minimum_vocab_size,
    train_all,
    train_all_fit,
    train_model,
    trainer_options,
)

VOCAB = 6000
HARD_STRINGS = [
    "𠮷野家で食べた",  # outside the BMP and outside every inventory: bytes
    "家族👨\u200d👩\u200d👧\u200d👦です",  # emoji ZWJ sequence
    "ﾊﾝｶｸｶﾀｶﾅ ｶﾞｷﾞ",  # half-width katakana (NFKC would change it)
    "e\u0301cole か\u3099",  # combining marks
    "列1\t列2\t\t列3",  # tabs
    "  先頭と   連続空白  ",  # runs of spaces, leading and trailing
    "行1\r\n行2\n\n\n行3\r",  # CRLF, blank lines, lone CR
    "",
    "第2025条　全角スペース　と２０２５年",
    "<s> literal </s> <0x41>",
]


@pytest.fixture(scope="module")
def sentences(ja_docs: list[tuple[str, str]]) -> list[str]:
    return [s for _, text in ja_docs for s in split_sentences(text)]


@pytest.fixture(scope="module")
def model(sentences: list[str]) -> bytes:
    cfg = TrainConfig(vocab_size=VOCAB, policy="phrase", inventory="jinmeiyo", reserved_tokens=4)
    return train_model([s for s in sentences], trainer_options("main", cfg))


def test_required_inventory_and_specials_present(model: bytes) -> None:
    sp = load(model)
    pieces = {sp.id_to_piece(i) for i in range(sp.get_piece_size())}
    required = set(required_chars("jinmeiyo"))
    assert len(JOYO) == 2136 and len(JINMEIYO) >= 863
    assert required <= pieces, sorted(required - pieces)[:10]
    assert set(HIRAGANA) | set(KATAKANA) | set("ーヴゝゞヽヾ「」『』、。") <= pieces
    assert [sp.id_to_piece(i) for i in range(4)] == list(SPECIALS)
    assert sp.piece_to_id("<reserved_003>") == 7 and sp.is_control(7)
    assert sp.encode("\n") == [sp.piece_to_id("\n")]
    assert sp.encode("\r\n") == [sp.piece_to_id("\r"), sp.piece_to_id("\n")]  # CR never falls back to bytes
    assert sp.encode("2025", out_type=str) == ["2", "0", "2", "5"]
    for kanji in "𠮟叱塡填剝剥頰頬":  # both forms of the four 常用漢字 whose official form is outside JIS X 0208
        assert sp.encode(kanji, out_type=str) == [kanji]


def test_joyo_is_the_official_list_and_every_level_holds_both_forms_of_four() -> None:
    """kanji-lists gives 塡 剝 in their official 2010 forms but 叱 頬 in the allowed (JIS) forms: 𠮟 and 頰 fell back
    to bytes, and 剥 填, the forms most text uses, were not guaranteed below jis0208."""
    assert len(JOYO) == 2136 and set("𠮟塡剝頰") <= JOYO and not set("叱填剥頬") & JOYO
    for level in ("joyo", "jinmeiyo", "jis0208", "full"):
        assert set("𠮟叱塡填剝剥頰頬") <= set(required_chars(level)), level


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_lossless_round_trip(model: bytes, text: str) -> None:
    sp = load(model)
    assert sp.decode(sp.encode(text)) == text
    hf = hf_export.to_hf(model)
    assert hf.decode(hf.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text or "<s>" in text


def test_a_model_cut_at_a_field_boundary_is_refused(model: bytes) -> None:
    """Cut where a top-level field ends, a model is still a valid protobuf message and sentencepiece loaded it:
    after some pieces (another vocabulary) or after the trainer spec (no normalizer spec: NFKC, round trip
    lost). Every such cut is refused; the whole model loads."""
    import sentencepiece as spm

    ends, i = [], 0
    while i < len(model):  # ModelProto: only length-delimited fields, each tag and length a varint < 2**28
        i += 1  # the tag: field numbers 1-5, one byte
        size = shift = 0
        while True:
            byte, i = model[i], i + 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        i += size
        ends.append(i)
    assert ends[-1] == len(model) and len(ends) == VOCAB + 2  # the pieces, the trainer spec, the normalizer spec
    assert spm.SentencePieceProcessor(model_proto=model[:ends[-2]]).get_piece_size() == VOCAB  # what was accepted
    for end in [*ends[20:23], ends[-3], ends[-2]]:
        with pytest.raises(TokenizerError, match="no normalizer spec, which every SentencePiece model ends with"):
            load(model[:end])
    assert load(model).get_piece_size() == VOCAB


def test_no_dummy_prefix_before_japanese(model: bytes) -> None:
    pieces = load(model).encode("言語モデル LLM を評価する", out_type=str)
    assert not pieces[0].startswith("▁")
    assert "▁" not in "".join(p for p in pieces if not p.startswith("▁"))


def test_same_input_same_bytes(sentences: list[str]) -> None:
    small = sentences[:1500]
    cfg = TrainConfig(vocab_size=4200, policy="phrase", inventory="joyo")
    first = train_all(small, cfg, baselines=())["main"]
    second = train_all(small, cfg, baselines=())["main"]
    assert first == second
    other_policy = train_all(small, TrainConfig(vocab_size=4200, policy="none", inventory="joyo"), baselines=())
    assert other_policy["main"] != first  # the policy really changes training


def test_hf_export_same_ids(model: bytes, ja_docs: list[tuple[str, str]], tmp_path) -> None:
    path = hf_export.export(model, tmp_path / "tokenizer.json")
    hf = Tokenizer.from_file(str(path))
    texts = [text for _, text in ja_docs] + [t for t in HARD_STRINGS if "<" not in t]
    report = hf_export.compare_ids(load(model), hf, texts)
    assert report["identical_rate"] >= 0.999, report["differences"]
    assert hf.token_to_id("<s>") == 1 and hf.get_vocab_size() == VOCAB


def test_hf_export_documents_its_one_difference(model: bytes) -> None:
    report = hf_export.compare_ids(load(model), hf_export.to_hf(model), ["文中の <s> は特殊トークンになる"])
    assert report["identical"] == 0 and "<s>" in report["differences"][0]["hf"]


def test_errors_are_clear(sentences: list[str], tmp_path) -> None:
    with pytest.raises(TokenizerError, match="no training text"):
        train_model(["", "   "], trainer_options("main", TrainConfig(vocab_size=5000)))
    few = sentences[:200]
    with pytest.raises(TokenizerError, match=r"larger than this sample supports; the largest that works is (\d+)") as err:
        train_model(few, trainer_options("main", TrainConfig(vocab_size=50_000, inventory="joyo", policy="none")))
    largest = int(err.value.args[0].split("works is ")[1].split()[0])
    assert 3000 < largest < 50_000
    assert err.value.largest_vocab == largest
    fitted, used = train_all_fit(few, TrainConfig(vocab_size=50_000, inventory="joyo", policy="none"), baselines=())
    assert used.vocab_size == largest and load(fitted["main"]).get_piece_size() == largest
    with pytest.raises(TokenizerError, match="cannot hold the"):
        train_model(few, trainer_options("main", TrainConfig(vocab_size=1000)))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="cannot read SentencePiece model"):
        load(bad)
    with pytest.raises(TokenizerError, match="cannot read SentencePiece model"):
        load(tmp_path / "missing.model")
    with pytest.raises(TokenizerError, match="--policy"):
        TrainConfig(policy="words").validate()
    with pytest.raises(TokenizerError, match="--reserved-tokens 8000 must be below --vocab-size 8000"):
        TrainConfig(vocab_size=8000, reserved_tokens=8000).validate()  # 10**8 names were made first: 4.5 GB


def test_a_sample_without_a_space_still_round_trips_spaces(sentences: list[str]) -> None:
    """Spaces are guaranteed like printable ASCII: a sample with none (laws only) gave no `▁` piece, so every space
    was encoded as the UTF-8 bytes of U+2581 and decoded as `▁`, in SentencePiece and the HF export alike."""
    spaceless = [s.replace(" ", "") for s in sentences[:1500]]
    models = train_all(spaceless, TrainConfig(vocab_size=4200, policy="none", inventory="joyo"), baselines=("lossless",))
    text = "東京 大阪  名古屋 and Kyoto"
    for name, data in models.items():
        sp = load(data)
        assert sp.piece_to_id("▁") != sp.unk_id(), name
        assert sp.decode(sp.encode(text)) == text, name
    hf = hf_export.to_hf(models["main"])
    assert hf.decode(hf.encode(text).ids) == text and hf.encode(text).ids == load(models["main"]).encode(text)


def test_vocab_file_escapes_can_be_undone(sentences: list[str], tmp_path) -> None:
    """tokenizer.vocab escapes newline, CR and tab; a backslash must be escaped too, or a piece `\\theta` (LaTeX in
    academic text) and a piece tab + `heta` are the same line."""
    import re

    from tokenizer.build import write_vocab

    tricky = ["\\theta", "\theta", "\\n", "\n", "\r", "a\\\\b"]  # and the backslash, a required character
    options = trainer_options("main", TrainConfig(vocab_size=4200, policy="none", inventory="joyo"))
    sp = load(train_model(sentences[:1500], {**options, "user_defined_symbols": tricky}))
    write_vocab(sp, tmp_path / "tokenizer.vocab")
    lines = (tmp_path / "tokenizer.vocab").read_text(encoding="utf-8").split("\n")[:-1]
    unescape = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
    pieces = [re.sub(r"\\(.)", lambda m: unescape[m.group(1)], line.rsplit("\t", 1)[0]) for line in lines]
    assert pieces == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    assert all(piece in pieces for piece in [*tricky, "\\"])


def test_the_minimum_vocabulary_is_what_sentencepiece_requires():
    """`minimum_vocab_size` (the demo refuses a smaller --vocab-size up front) counts what SentencePiece itself
    requires of the main model: one piece fewer is refused, the minimum trains."""
    least = minimum_vocab_size()
    chars = required_chars("auto", least)  # every inventory character, with spaces: nothing beyond the fixed pieces
    sentences = [chars[i:i + 10] + " " + chars[i + 10:i + 20] for i in range(0, len(chars), 20)] * 3
    with pytest.raises(TokenizerError, match=f"cannot hold the {least} required"):
        train_model(sentences, trainer_options("main", TrainConfig(vocab_size=least - 1)))
    assert train_model(sentences, trainer_options("main", TrainConfig(vocab_size=least)))
