"""Streaming, seeded sentence sampling under a character budget (memory ∝ budget, not corpus).

Each sentence gets a priority from a keyed hash of (seed, kind, text); a kind's reservoir keeps the
lowest-priority sentences whose characters fit its budget (bottom-k sampling). Because the priority
depends only on the sentence, the sample does not depend on the order documents arrive in.
"""
from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_SENTENCE_END = re.compile(r"(?<=[。！？])|\r?\n")
MAX_SENTENCE_CHARS = 1500  # SentencePiece silently skips sentences over max_sentence_length bytes


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> Iterator[str]:
    """Sentences of `text`: cut after 。！？ and at newlines; overlong ones cut into max_chars slices."""
    for sentence in _SENTENCE_END.split(text):
        if not sentence or sentence.isspace():
            continue
        for start in range(0, len(sentence), max_chars):
            yield sentence[start : start + max_chars]


def priority(seed: int, key: str, text: str) -> int:
    """A 64-bit pseudo-random priority, a pure function of (seed, key, text)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8,
                             key=f"{seed}:{key}".encode()[:64])
    return int.from_bytes(digest.digest(), "big")


@dataclass
class Reservoir:
    """Keeps the lowest-priority items whose total length fits `budget` characters.

    An item's tag (its kind) is kept beside the text, not inside it: only the text counts against the budget,
    so `--char-budget` is characters of sentences, and kinds with longer names or shorter sentences do not
    get less text under `--mix` (a "kind\\t" prefix was counted: 20% of the budget went unused)."""

    budget: int
    _heap: list[tuple[int, str, str]] = field(default_factory=list)  # (-priority, tag, text): a max-heap
    chars: int = 0
    seen_items: int = 0
    seen_chars: int = 0

    def offer(self, prio: int, text: str, tag: str = "") -> None:
        self.seen_items += 1
        self.seen_chars += len(text)
        if len(text) > self.budget:
            return
        if self.chars + len(text) > self.budget and self._heap and -self._heap[0][0] < prio:
            return  # worse than everything kept and does not fit: reject without touching the heap
        heapq.heappush(self._heap, (-prio, tag, text))
        self.chars += len(text)
        while self.chars > self.budget:
            _, _, dropped = heapq.heappop(self._heap)
            self.chars -= len(dropped)

    def tagged(self) -> list[tuple[str, str]]:
        """Kept (tag, text) pairs in priority order (deterministic)."""
        return [(tag, text) for _, tag, text in sorted(self._heap, key=lambda item: (-item[0], item[1], item[2]))]

    def items(self) -> list[str]:
        """Kept texts in priority order (deterministic)."""
        return [text for _, text in self.tagged()]


@dataclass
class SampleResult:
    sentences: list[tuple[str, str]]  # (kind, sentence) in a deterministic order
    heldout: list[tuple[str, str]]  # (kind, document text) for evaluation
    summary: dict


def sample_corpus(records: Iterable[tuple[str, str]], char_budget: int, seed: int = 0,
                  mix: dict[str, float] | None = None, holdout: float = 0.15,
                  heldout_budget: int = 2_000_000) -> SampleResult:
    """Split (kind, text) records into a held-out document set and a training sentence sample.

    A document is held out when its hash falls under `holdout`, so the split is stable across runs.
    Without `mix`, one reservoir samples all kinds in their natural proportion; with it, each listed
    kind gets `char_budget * weight / sum(weights)` and unlisted kinds are not sampled.
    """
    if mix:
        total = sum(mix.values())
        pools = {kind: Reservoir(int(char_budget * w / total)) for kind, w in mix.items() if w > 0}
    else:
        pools = {"*": Reservoir(char_budget)}
    held = Reservoir(heldout_budget)
    docs: dict[str, int] = {}
    cut = int(holdout * 2**64)
    for kind, text in records:
        if not text:
            continue
        docs[kind] = docs.get(kind, 0) + 1
        if priority(seed, "holdout", text) < cut:
            held.offer(priority(seed, "heldout-sample", text), text, kind)
            continue
        pool = pools.get(kind) if mix else pools["*"]
        if pool is None:
            continue
        for sentence in split_sentences(text):
            pool.offer(priority(seed, kind, sentence), sentence, kind)
    sentences = [pair for name in sorted(pools) for pair in pools[name].tagged()]
    heldout = held.tagged()
    per_kind: dict[str, dict[str, int]] = {}
    for kind, sentence in sentences:
        entry = per_kind.setdefault(kind, {"sentences": 0, "chars": 0})
        entry["sentences"] += 1
        entry["chars"] += len(sentence)
    summary = {
        "input_docs_per_kind": dict(sorted(docs.items())),
        "sampled_per_kind": dict(sorted(per_kind.items())),
        "sampled_sentences": len(sentences),
        "sampled_chars": sum(e["chars"] for e in per_kind.values()),
        "seen_sentences": sum(p.seen_items for p in pools.values()),
        "seen_chars": sum(p.seen_chars for p in pools.values()),
        "heldout_docs": len(heldout),
        "heldout_chars": sum(len(t) for _, t in heldout),
        "char_budget": char_budget, "seed": seed, "holdout": holdout, "mix": mix,
    }
    return SampleResult(sentences, heldout, summary)
