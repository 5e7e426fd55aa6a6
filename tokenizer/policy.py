"""Training-time pre-segmentation policies: where learned pieces may not cross.

The segmented text is fed to SentencePiece one segment per line (see `tokenizer.train.segments`), so
no learned piece crosses a cut. Encoding later is plain SentencePiece: no MeCab needed.

- none:   no constraint (pieces may straddle any boundary, as in the baselines)
- morph:  a cut at every MeCab (unidic-lite) morpheme boundary
- phrase: noun compounds and prefix/suffix attachments stay whole, chains of particles/auxiliaries
          stay whole, but there is a cut before every particle (助詞) and auxiliary (助動詞) chain and
          around symbols — longer pieces that are still unions of whole morphemes.
- chunk:  phrase, plus whole verbal chains: a verb/adjective keeps its auxiliaries (さ|れ|た → された),
          its て/で and the auxiliary verbs after it (用い|て, さ|れ|て|いる → されている); particles
          after nouns are still cut. More compression for a little recall.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from functools import partial

from tokenizer.morph import morpheme_spans

POLICIES = ("none", "morph", "phrase", "chunk")
DELIMITER = "\ue000"  # a private-use character; stripped from the input first so it can never clash
BATCH_SENTENCES = 2000  # per worker task: large enough that pickling is noise next to MeCab

_NOUNISH = {"名詞", "形状詞"}
_FUNCTION = {"助詞", "助動詞"}
_SYMBOL = {"補助記号", "記号", "空白", ""}
_VERBAL = {"動詞", "形容詞", "助動詞"}
_TE = {"て", "で"}
_AUX_VERBS = {"いる", "い", "おり", "おる", "ある", "あり", "しまう", "しまっ", "いく", "いっ", "くる", "き",
              "みる", "み", "おく", "おい"}


def _verbal_chain(prev_pos: str, prev: str, pos: str, surface: str) -> bool:
    """chunk policy: does this morpheme continue a verbal chain (inflection, て-form, auxiliary verb)?"""
    if prev_pos in _VERBAL and (pos == "助動詞" or (pos == "助詞" and surface in _TE)):
        return True
    return prev_pos == "助詞" and prev in _TE and pos == "動詞" and surface in _AUX_VERBS


def _attaches(prev_pos: str, pos: str) -> bool:
    """True when a morpheme with `pos` joins the phrase of the preceding morpheme with `prev_pos`."""
    if pos in _SYMBOL or prev_pos in _SYMBOL:
        return False
    if pos in _FUNCTION:
        return prev_pos in _FUNCTION  # cut before the first particle/auxiliary, keep the chain whole
    if prev_pos in _FUNCTION:
        return False
    if prev_pos == "接頭辞" or pos == "接尾辞":
        return True
    return prev_pos in _NOUNISH and pos in _NOUNISH


def cut_points(text: str, policy: str) -> list[int]:
    """Character offsets where `policy` forbids a piece from continuing (whitespace goes right)."""
    if policy == "none":
        return []
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    spans = morpheme_spans(text)
    cuts = []
    for (prev_start, prev_end, prev_pos), (start, end, pos) in zip(spans, spans[1:], strict=False):
        if policy == "morph" or prev_end != start:
            cuts.append(prev_end)
        elif not _attaches(prev_pos, pos) and not (
                policy == "chunk" and _verbal_chain(prev_pos, text[prev_start:prev_end], pos, text[start:end])):
            cuts.append(prev_end)
    return cuts


def presegment(text: str, policy: str) -> str:
    """`text` with DELIMITER inserted at the policy's cut points (the text itself is otherwise unchanged)."""
    text = text.replace(DELIMITER, "")
    cuts = cut_points(text, policy)
    if not cuts:
        return text
    parts, last = [], 0
    for cut in cuts:
        parts.append(text[last:cut])
        last = cut
    parts.append(text[last:])
    return DELIMITER.join(parts)


def _presegment_batch(batch: Sequence[str], policy: str) -> list[str]:
    return [presegment(text, policy) for text in batch]


def presegment_all(texts: Sequence[str], policy: str, workers: int = 1) -> list[str]:
    """`presegment` of every text, in input order, with MeCab spread over `workers` processes.

    MeCab runs at about 1.5 MB/s per core, the largest cost of training after SentencePiece itself.
    `Pool.imap` returns batches in submission order, so the result (and the model trained on it)
    is the same for any worker count. Workers are spawned, not forked: a fork would copy the
    parent's sample page by page as reference counts touch it, and SentencePiece may hold threads.
    As with any spawned pool, a script that calls this needs the `if __name__ == "__main__":` guard.
    """
    batches = [texts[i : i + BATCH_SENTENCES] for i in range(0, len(texts), BATCH_SENTENCES)]
    run = partial(_presegment_batch, policy=policy)
    if workers <= 1 or len(batches) <= 1 or policy == "none":
        return [out for batch in batches for out in run(batch)]
    with multiprocessing.get_context("spawn").Pool(min(workers, len(batches))) as pool:
        return [out for done in pool.imap(run, batches) for out in done]
