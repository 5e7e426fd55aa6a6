"""Export a SentencePiece unigram model to a Hugging Face `tokenizers` tokenizer.json with the same ids.

Mapping: the SentencePiece vocabulary becomes a `Unigram` model with byte fallback (same ids and
scores); identity normalization plus space → `▁`; no pre-tokenizer (SentencePiece runs one Viterbi pass
over the whole normalized text); decoder `▁` → space, byte fallback, fuse. Control, unknown, unused and
byte pieces get a very low score so the Viterbi search never matches them from literal text (in
SentencePiece they are unreachable from text). Special and reserved tokens are registered as special
added tokens, so — unlike SentencePiece — a literal `<s>` in the text becomes the special token.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

from tokenizer.train import TokenizerError

UNREACHABLE_SCORE = -1e6


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> dict[int, object]:
    """Top-level fields of a protobuf message (last value wins). Avoids the generated sentencepiece
    protobuf module, whose gencode version may not match the installed protobuf runtime."""
    out: dict[int, object] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            out[number], pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out[number], pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise TokenizerError("not a SentencePiece model (unexpected protobuf wire type)")
    return out


def model_spec(model_bytes: bytes) -> dict:
    """model_type and normalizer settings read from a .model (ModelProto fields 2 and 3)."""
    top = _fields(model_bytes)
    trainer, norm = _fields(top.get(2, b"")), _fields(top.get(3, b""))
    return {"model_type": {1: "unigram", 2: "bpe", 3: "word", 4: "char"}.get(trainer.get(3, 1), "?"),
            "normalizer": bytes(norm.get(1, b"")).decode(),
            "add_dummy_prefix": bool(norm.get(3, 1)), "remove_extra_whitespaces": bool(norm.get(4, 1))}


def to_hf(model_bytes: bytes) -> Tokenizer:
    """A `tokenizers.Tokenizer` equivalent to the given SentencePiece unigram model."""
    spec = model_spec(model_bytes)
    if spec["model_type"] != "unigram":
        raise TokenizerError("Hugging Face export supports unigram models only (train with --model-type unigram)")
    if spec["normalizer"] != "identity" or spec["add_dummy_prefix"] or spec["remove_extra_whitespaces"]:
        raise TokenizerError(f"Hugging Face export needs identity normalization without dummy prefix, got {spec}")
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    vocab, specials, has_bytes = [], [], False
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i) or sp.is_byte(i):
            vocab.append((piece, UNREACHABLE_SCORE))
            has_bytes |= sp.is_byte(i)
            if sp.is_control(i) or sp.is_unknown(i):
                specials.append(piece)
        else:
            vocab.append((piece, sp.get_score(i)))
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=has_bytes))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def export(model_bytes: bytes, path: str | Path) -> Path:
    path = Path(path)
    to_hf(model_bytes).save(str(path))
    return path


def compare_ids(sp: spm.SentencePieceProcessor, hf: Tokenizer, texts: Iterable[str], max_examples: int = 5) -> dict:
    """How many documents get identical ids from SentencePiece and the HF export (with examples of diffs)."""
    docs = same = 0
    examples = []
    for text in texts:
        docs += 1
        a, b = sp.encode(text), hf.encode(text, add_special_tokens=False).ids
        if a == b:
            same += 1
            continue
        if len(examples) < max_examples:
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            examples.append({"sentencepiece": [sp.id_to_piece(i) for i in a[max(0, at - 2): at + 4]],
                             "hf": [hf.id_to_token(i) for i in b[max(0, at - 2): at + 4]]})
    return {"docs": docs, "identical": same, "identical_rate": same / docs if docs else None,  # None: unchecked
            "differences": examples}
