"""FineWeb-2 `jpn_Jpan` word-level statistics (Gopher repetition and quality) over MeCab morphemes.

datatrove segments Japanese with spaCy + SudachiPy; we use fugashi + unidic-lite through
`tokenizer.morph` (short units, a similar granularity) so the project carries one morphological analyser.
Formulas follow datatrove's GopherRepetitionFilter / GopherQualityFilter / FineWebQualityFilter:
top n-grams are joined with spaces and measured against the document length, duplicate n-grams are
counted greedily left to right (a repeated n-gram's words are skipped).
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

JA_STOP_WORDS = frozenset(["の", "に", "を", "は", "た", "て", "が", "と", "で", "年", "し", "・", "月", "れ", "さ"])


def segment(text: str) -> list[str]:
    """MeCab surfaces; whitespace is never a word. MeCab skips ASCII spaces but gives the ideographic space
    U+3000 (kept in stored text) as a morpheme of its own, which datatrove's tokenizer strips: counted, it was
    a non-alphabetic word, and a statute written 第一条　目的　… lost `gopher_alpha_words` on it."""
    from tokenizer.morph import morphemes  # imported lazily: only word-level rules pay for MeCab

    return [w for w in morphemes(text) if not w.isspace()]


def _is_symbol(word: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PSZ" for ch in word)


def _top_ngram_chars(words: Sequence[str], n: int) -> int:
    grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0
    gram, freq = grams.most_common(1)[0]
    return len(gram) * freq


def _dup_ngram_chars(words: Sequence[str], n: int) -> int:
    seen: set[str] = set()
    repeated = i = 0
    while i < len(words) - n + 1:
        gram = "".join(words[i:i + n])
        if gram in seen:
            repeated += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated


def word_stats(text: str, words: Sequence[str] | None = None) -> dict[str, float]:
    """Gopher quality/repetition and FineWeb list-ratio statistics; `words` defaults to MeCab surfaces."""
    if words is None:
        words = segment(text)
    n_words = len(words)
    length = len(text) or 1
    content = [w for w in words if not _is_symbol(w)]
    lines = text.splitlines() or [""]
    out: dict[str, float] = {
        "words": float(len(content)),
        "avg_word_length": sum(len(w) for w in content) / len(content) if content else 0.0,
        "hash_per_word": text.count("#") / n_words if n_words else 0.0,
        "ellipsis_per_word": (text.count("...") + text.count("…")) / n_words if n_words else 0.0,
        "bullet_line_fraction": sum(ln.lstrip().startswith(("•", "-")) for ln in lines) / len(lines),
        "end_ellipsis_line_fraction": sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / len(lines),
        "alpha_word_fraction": sum(any(c.isalpha() for c in w) for w in words) / n_words if n_words else 0.0,
        # distinct stop words, as datatrove's `stop_words.intersection(set(words))`: の five times is one
        "stop_words": float(len(JA_STOP_WORDS.intersection(words))),
        "newlines_per_word": text.count("\n") / n_words if n_words else 0.0,
    }
    for n in (2, 3, 4):
        out[f"gopher_top_{n}gram_char_fraction"] = _top_ngram_chars(words, n) / length
    for n in range(5, 11):
        out[f"gopher_dup_{n}gram_char_fraction"] = _dup_ngram_chars(words, n) / length
    return out
