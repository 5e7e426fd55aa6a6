"""Tokenizer quality metrics, several models at once on the same documents (MeCab runs once per doc).

Boundary metrics compare internal token boundaries with fugashi + unidic-lite morpheme boundaries.
Both are projected onto the text with whitespace removed, because MeCab drops whitespace while a
tokenizer attaches it (`▁が`); a boundary is an offset in that projection, start and end excluded.
"""
from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate

import sentencepiece as spm

from tokenizer.inventory import JOYO
from tokenizer.morph import morpheme_spans

SCRIPTS = ("kanji", "hiragana", "katakana", "latin", "digit", "symbol", "whitespace", "mixed", "byte", "special")


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 from counts (0.0 where undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def renyi_efficiency(counts: Iterable[int], vocab_size: int, alpha: float = 2.5) -> float:
    """Rényi entropy H_α of the token unigram distribution divided by ln|V| (Zouhar et al. 2023)."""
    counts = [c for c in counts if c > 0]
    total = sum(counts)
    if total == 0 or vocab_size < 2:
        return 0.0
    power_sum = sum((c / total) ** alpha for c in counts)
    return (math.log(power_sum) / (1 - alpha)) / math.log(vocab_size)


def nonspace_offsets(text: str) -> list[int]:
    """offsets[i] = number of non-whitespace characters in text[:i] (length len(text) + 1)."""
    return [0, *accumulate(0 if ch.isspace() else 1 for ch in text)]


def internal_boundaries(ends: Iterable[int], offsets: list[int]) -> set[int]:
    """Segment end offsets (in `text`) projected to the whitespace-free text, ends of text excluded."""
    last = offsets[-1]
    return {offsets[e] for e in ends if 0 < offsets[e] < last}


def char_class(ch: str) -> str:
    code = ord(ch)
    if ch.isspace() or ch == "▁":
        return "whitespace"
    if 0x3041 <= code <= 0x309F:
        return "hiragana"
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "katakana"
    if ch in "々〆〇":
        return "kanji"
    if unicodedata.name(ch, "").startswith("CJK"):
        return "kanji" if unicodedata.category(ch) == "Lo" else "symbol"
    if ch.isdigit():
        return "digit"
    if ch.isalpha() and unicodedata.name(ch, "").split(" ")[0] in ("LATIN", "FULLWIDTH"):
        return "latin"
    return "symbol"


def piece_class(piece: str) -> str:
    """Script class of a normal piece; a leading `▁` does not make a piece mixed."""
    body = piece[1:] if piece.startswith("▁") and len(piece) > 1 else piece
    classes = {char_class(ch) for ch in body}
    return classes.pop() if len(classes) == 1 else "mixed"


def vocabulary_report(sp: spm.SentencePieceProcessor) -> dict:
    """Vocabulary composition by script, piece-length histogram and 常用漢字 single-piece coverage."""
    composition: Counter[str] = Counter()
    lengths: Counter[str] = Counter()
    pieces = set()
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            composition["special"] += 1
            continue
        if sp.is_byte(i):
            composition["byte"] += 1
            continue
        pieces.add(piece)
        composition[piece_class(piece)] += 1
        n = len(piece)
        lengths[str(n) if n < 16 else "16+"] += 1
    joyo_single = sum(1 for k in JOYO if k in pieces)
    return {
        "vocab_size": sp.get_piece_size(),
        "composition": {k: composition[k] for k in SCRIPTS if composition[k]},
        "piece_length_histogram": dict(sorted(lengths.items(), key=lambda kv: int(kv[0].rstrip("+")))),
        "joyo_kanji_coverage": joyo_single / len(JOYO),
        "joyo_kanji_missing": "".join(sorted(k for k in JOYO if k not in pieces))[:200],
    }


def _utf8_len(ch: str) -> int:
    code = ord(ch)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def token_ends(sp: spm.SentencePieceProcessor, text: str) -> tuple[list[int], list[int]]:
    """(ids, end character offset of each token in `text`); byte tokens inside a character and the empty
    dummy-prefix `▁` add no end.

    The ends come from each piece's UTF-8 end offset in `text`, not from adding up surface lengths: no
    piece of a model that removes extra whitespace (the NFKC `default` baseline) holds the whitespace at
    the start of a text, so the sum ran behind and shifted every boundary of such a document.
    """
    ids, ends, char, byte = [], [], 0, 0
    for piece in sp.encode(text, return_type="proto").pieces:
        ids.append(piece.id)
        if piece.end > piece.begin:
            while byte < piece.end:
                byte += _utf8_len(text[char])
                char += 1
            ends.append(char)
    return ids, ends


class _Acc:
    def __init__(self) -> None:
        self.chars = self.tokens = self.bytes = self.docs = self.exact = 0
        self.tp = self.fp = self.fn = 0
        self.kind_chars: Counter[str] = Counter()
        self.kind_tokens: Counter[str] = Counter()
        self.counts: Counter[int] = Counter()


def evaluate_models(models: dict[str, spm.SentencePieceProcessor],
                    docs: Iterable[tuple[str, str]]) -> dict[str, dict]:
    """All metrics for each model over the same (kind, text) documents."""
    acc = {name: _Acc() for name in models}
    byte_ids = {name: {i for i in range(sp.get_piece_size()) if sp.is_byte(i)} for name, sp in models.items()}
    for kind, text in docs:
        if not text:
            continue
        offsets = nonspace_offsets(text)
        gold = internal_boundaries((end for _, end, _ in morpheme_spans(text)), offsets)
        for name, sp in models.items():
            a = acc[name]
            ids, ends = token_ends(sp, text)
            pred = internal_boundaries(ends, offsets)
            a.tp += len(pred & gold)
            a.fp += len(pred - gold)
            a.fn += len(gold - pred)
            a.docs += 1
            a.exact += sp.decode(ids) == text
            a.chars += len(text)
            a.tokens += len(ids)
            a.kind_chars[kind] += len(text)
            a.kind_tokens[kind] += len(ids)
            a.bytes += sum(1 for i in ids if i in byte_ids[name])
            a.counts.update(ids)
    results = {}
    for name, sp in models.items():
        a = acc[name]
        boundary = prf(a.tp, a.fp, a.fn)
        results[name] = {
            "docs": a.docs, "chars": a.chars, "tokens": a.tokens,
            "chars_per_token": a.chars / a.tokens if a.tokens else 0.0,
            "chars_per_token_by_kind": {k: a.kind_chars[k] / a.kind_tokens[k]
                                        for k in sorted(a.kind_chars) if a.kind_tokens[k]},
            "morph_boundary_precision": boundary["precision"],
            "morph_boundary_recall": boundary["recall"],
            "morph_boundary_f1": boundary["f1"],
            "byte_fallback_rate": a.bytes / a.tokens if a.tokens else 0.0,
            "renyi_efficiency": renyi_efficiency(a.counts.values(), sp.get_piece_size()),
            "roundtrip_exact": a.exact / a.docs if a.docs else 0.0,
            **vocabulary_report(sp),
        }
    return results


_ROWS = (("chars_per_token", "{:.3f}"), ("morph_boundary_precision", "{:.3f}"),
         ("morph_boundary_recall", "{:.3f}"), ("morph_boundary_f1", "{:.3f}"),
         ("byte_fallback_rate", "{:.4%}"), ("renyi_efficiency", "{:.3f}"),
         ("joyo_kanji_coverage", "{:.2%}"), ("roundtrip_exact", "{:.2%}"), ("vocab_size", "{}"))


def format_table(results: dict[str, dict]) -> str:
    """A plain-text side-by-side table of the headline metrics (one column per model)."""
    names = list(results)
    kinds = sorted({k for r in results.values() for k in r.get("chars_per_token_by_kind", {})})
    rows = [("metric", *names)]
    for key, fmt in _ROWS:
        rows.append((key, *(fmt.format(results[n][key]) for n in names)))
    for kind in kinds:
        rows.append((f"chars_per_token[{kind}]",
                     *(f"{results[n]['chars_per_token_by_kind'].get(kind, 0):.3f}" for n in names)))
    for script in SCRIPTS:
        if any(results[n]["composition"].get(script) for n in names):
            rows.append((f"vocab[{script}]", *(str(results[n]["composition"].get(script, 0)) for n in names)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows)
