"""SentencePiece training for the kanji/kana-aware tokenizer and its two baselines.

Settings that matter for an LLM that must decode exactly: identity normalization (no NFKC), byte
fallback, no dummy prefix (no `▁` glued to every Japanese sentence start), whitespace kept and
whitespace-only pieces allowed (runs of spaces), `\\n` as its own piece, single digits. The guaranteed
inventory goes through `required_chars`, which (unlike user-defined symbols) still lets the character
take part in longer pieces.
"""
from __future__ import annotations

import io
import itertools
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import sentencepiece as spm

from tokenizer.inventory import AUTO, INVENTORIES, JOYO_FORMS, required_chars, resolve
from tokenizer.policy import DELIMITER, POLICIES, presegment_all
from trainer_bridge.userpaths import not_regular

SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")
# The space as the trainer sees it (escaped before required_chars is checked; a literal " " is refused). Required,
# or a sample without a space (laws only, say) gave no `▁` piece: every space became the three byte tokens of
# U+2581 and decoded as `▁`, so the lossless model lost the round trip of every text with a space.
SPACE_PIECE = "\u2581"
BASELINES = ("default", "lossless")


class TokenizerError(ValueError):
    """A problem the user can fix (empty input, impossible vocabulary size, unreadable model)."""

    def __init__(self, message: str, largest_vocab: int | None = None) -> None:
        super().__init__(message)
        self.largest_vocab = largest_vocab  # set when the sample cannot support the asked vocabulary


@dataclass(frozen=True)
class TrainConfig:
    vocab_size: int = 16000
    model_type: str = "unigram"
    policy: str = "phrase"
    inventory: str = AUTO  # a level of tokenizer.inventory, or chosen from the vocabulary size
    reserved_tokens: int = 16
    character_coverage: float = 1.0
    max_piece_length: int = 16
    seed: int = 0
    threads: int = 1

    def validate(self) -> None:
        if self.model_type not in ("unigram", "bpe"):
            raise TokenizerError(f"--model-type must be unigram or bpe, not {self.model_type!r}")
        if self.policy not in POLICIES:
            raise TokenizerError(f"--policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")
        if self.vocab_size < 8:
            raise TokenizerError(f"--vocab-size must be positive and useful, not {self.vocab_size}")
        if self.reserved_tokens >= self.vocab_size:  # checked before the names are made (10**8 took 4.5 GB)
            raise TokenizerError(f"--reserved-tokens {self.reserved_tokens} must be below --vocab-size {self.vocab_size}")
        if self.inventory not in (AUTO, *INVENTORIES):
            raise TokenizerError(f"--inventory must be one of {', '.join((AUTO, *INVENTORIES))}, not {self.inventory!r}")

    @property
    def inventory_level(self) -> str:
        """The concrete inventory level (`auto` resolved against this vocabulary size)."""
        return resolve(self.inventory, self.vocab_size)

    def to_dict(self) -> dict:
        return asdict(self) | {"inventory_level": self.inventory_level}


def reserved_names(count: int) -> list[str]:
    return [f"<reserved_{i:03d}>" for i in range(count)]


def trainer_options(variant: str, cfg: TrainConfig) -> dict:
    """SentencePiece trainer keyword options for `main` or one of the BASELINES."""
    common = {"vocab_size": cfg.vocab_size, "byte_fallback": True, "num_threads": cfg.threads,
              "max_sentence_length": 16384, "minloglevel": 2, "input_sentence_size": 0}
    if variant == "default":  # SentencePiece unigram defaults + byte fallback (NFKC: cannot round-trip)
        return {**common, "model_type": "unigram"}
    lossless = {**common, "model_type": "unigram", "normalization_rule_name": "identity",
                "add_dummy_prefix": False, "remove_extra_whitespaces": False,
                "allow_whitespace_only_pieces": True, "user_defined_symbols": ["\n", "\r"]}
    if variant == "lossless":
        return {**lossless, "required_chars": "".join(sorted(JOYO_FORMS)) + SPACE_PIECE}
    if variant != "main":
        raise ValueError(f"unknown variant {variant!r}")
    opts = {**lossless, "model_type": cfg.model_type, "split_digits": True,
            "required_chars": required_chars(cfg.inventory_level) + SPACE_PIECE,
            "character_coverage": cfg.character_coverage,
            "max_sentencepiece_length": cfg.max_piece_length,
            "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": 3,
            "control_symbols": reserved_names(cfg.reserved_tokens)}
    return opts


BYTE_PIECES = 256  # byte fallback: one piece per byte value, in every model


def fixed_pieces(cfg: TrainConfig) -> int:
    """Pieces the main model holds whatever the sample, from its own trainer options: the inventory (at the level
    `cfg.inventory` resolves to at `cfg.vocab_size`) with the space, special, reserved and user-defined pieces
    and the byte pieces. A smaller vocabulary cannot train; the sample's characters outside the inventory add more."""
    opts = trainer_options("main", cfg)
    specials = sum(opts[f"{name}_id"] >= 0 for name in ("unk", "bos", "eos", "pad"))
    return (len(opts["required_chars"]) + specials + len(opts["control_symbols"]) + len(opts["user_defined_symbols"])
            + (BYTE_PIECES if opts["byte_fallback"] else 0))


def minimum_vocab_size(inventory: str = AUTO, reserved_tokens: int = 16) -> int:
    """The smallest vocabulary that holds its own fixed pieces, so a command can refuse a smaller one before any
    work: `auto` resolves to a larger level as the vocabulary grows, so this is the least fixed point."""
    size = 0
    while (need := fixed_pieces(TrainConfig(vocab_size=size, inventory=inventory,
                                            reserved_tokens=reserved_tokens))) > size:
        size = need  # the level resolved at `need` is at least the one at `size`: `need` never falls
    return size


def _explain(exc: RuntimeError, vocab_size: int) -> TokenizerError:
    msg = str(exc)
    too_high = re.search(r"Vocabulary size too high \((\d+)\).*?<= (\d+)", msg)
    if too_high:
        return TokenizerError(f"vocabulary size {vocab_size} is larger than this sample supports; "
                              f"the largest that works is {too_high.group(2)} "
                              "(lower --vocab-size, add data, or pass --shrink-to-fit)", int(too_high.group(2)))
    too_low = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", msg)
    if too_low:
        return TokenizerError(f"vocabulary size {vocab_size} cannot hold the {too_low.group(2)} required "
                              f"characters and special pieces; use --vocab-size >= {too_low.group(2)}")
    return TokenizerError(f"SentencePiece training failed: {msg.splitlines()[0] if msg else exc!r}")


def train_model(sentences: Iterable[str], options: dict, seed: int = 0) -> bytes:
    """Train one SentencePiece model on `sentences` (one per line, no newlines) and return its bytes.

    `sentences` may be a generator: SentencePiece pulls it one line at a time, so a caller can feed
    millions of segments without holding them as Python strings.
    """
    lines = iter(sentences)
    blank = []  # kept and passed on: a whitespace-only line is real (lossless) training text
    for first in lines:
        if first.strip(DELIMITER + " "):
            break
        blank.append(first)
    else:
        raise TokenizerError("no training text: the input has no non-empty documents")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:  # an iterator, not a temp file: the input path would be stored in the model and break determinism
        spm.SentencePieceTrainer.train(sentence_iterator=itertools.chain(blank, [first], lines),
                                       model_writer=model, **options)
    except RuntimeError as exc:
        raise _explain(exc, options["vocab_size"]) from None
    return model.getvalue()


def segments(sentences: Sequence[str], policy: str, workers: int = 1) -> Iterator[str]:
    """The policy's segments, one training line each, generated from the pre-segmented sentences.

    Not `pretokenization_delimiter`: in sentencepiece 0.2.x a segment that follows a delimiter is
    learned like a word after a space, so frequent whole segments (もの, 関する, 定める) never become
    pieces; one segment per line gives the intended "no piece crosses a cut" training. Not counted TSV
    input either, though it would be smaller: SentencePiece then picks its seed pieces by how many
    distinct segments contain them, not how often they occur, and the model is worse (16k, dev
    corpora: 1.568 vs 1.578 chars/token, F1 0.865 vs 0.866). At 100 MB the segments are ~15M lines,
    so they are generated from ~1M pre-segmented sentences rather than stored. MeCab runs now (on
    `workers` processes); the generator only splits.
    """
    presegmented = presegment_all(sentences, policy, workers)
    return (seg for text in presegmented for seg in text.split(DELIMITER) if seg)


def train_all(sentences: list[str], cfg: TrainConfig, baselines: tuple[str, ...] = BASELINES,
              seconds: dict[str, float] | None = None) -> dict[str, bytes]:
    """The kanji/kana-aware model (`main`) and the baselines, all on the same sentences and vocab size.

    `--threads` is both the MeCab worker count and SentencePiece's `num_threads`; `seconds`, when
    given, receives the time of each step (pre-segmentation, then each model).
    """
    cfg.validate()
    seconds = {} if seconds is None else seconds
    sentences = [s.replace(DELIMITER, "") for s in sentences]
    start = time.perf_counter()
    main_input = sentences if cfg.policy == "none" else segments(sentences, cfg.policy, cfg.threads)
    seconds["presegment"] = round(time.perf_counter() - start, 2)
    models = {}
    for name in ("main", *baselines):
        start = time.perf_counter()
        try:
            models[name] = train_model(main_input if name == "main" else sentences, trainer_options(name, cfg),
                                       cfg.seed)
        except TokenizerError as exc:  # every model shares the vocabulary size: say which one cannot reach it
            which = "main model" if name == "main" else f"baseline {name!r}"
            raise TokenizerError(f"{which} (inventory {cfg.inventory_level}): {exc}", exc.largest_vocab) from None
        seconds[name] = round(time.perf_counter() - start, 2)
    return models


def train_all_fit(sentences: list[str], cfg: TrainConfig, baselines: tuple[str, ...] = BASELINES,
                  seconds: dict[str, float] | None = None) -> tuple[dict[str, bytes], TrainConfig]:
    """`train_all`, lowering the vocabulary to the largest every model supports when the sample is small."""
    shrunk: TokenizerError | None = None
    for _ in range(4):
        try:
            return train_all(sentences, cfg, baselines, seconds), cfg
        except TokenizerError as exc:
            if shrunk is not None and exc.largest_vocab is None:  # e.g. a baseline's limit is below main's inventory
                raise TokenizerError(f"no vocabulary size fits this sample: {shrunk}; then {exc}") from None
            if exc.largest_vocab is None or exc.largest_vocab >= cfg.vocab_size:
                raise
            shrunk, cfg = exc, replace(cfg, vocab_size=exc.largest_vocab)
    return train_all(sentences, cfg, baselines, seconds), cfg


NORMALIZER_SPEC = 3  # ModelProto's field number; sentencepiece writes it after the pieces and the trainer spec


def _top_level_fields(data: bytes) -> set[int]:
    """Field numbers of a serialized protobuf message's top level (all of ModelProto's are length-delimited).
    A model cut after its pieces or its trainer spec is still a valid message, and sentencepiece loaded it:
    without a normalizer spec it normalizes with NFKC (round trip lost); with only some pieces it is another
    vocabulary."""
    fields, i = set(), 0
    while i < len(data):
        key, i = _varint(data, i)
        if key & 7 != 2:  # not length-delimited: not a ModelProto field; let sentencepiece judge the file
            return {NORMALIZER_SPEC}
        size, i = _varint(data, i)
        fields.add(key >> 3)
        i += size
    return fields


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(data):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            break
    return value, i


def load(model: bytes | str | Path, name: str | None = None) -> spm.SentencePieceProcessor:
    """A SentencePieceProcessor from model bytes or a path, with a one-line error for bad files.

    `name` is how the error names the model (default: the path, or `<bytes>`). The one loader for every
    command that reads a model (tokenizer eval, pack, shards inspect, jcorpus-train sample).
    """
    name = name or (str(model) if not isinstance(model, bytes) else "<bytes>")
    if not isinstance(model, bytes) and (what := not_regular(model)):  # a FIFO blocks forever
        raise TokenizerError(f"cannot read SentencePiece model {name}: not a regular file ({what})")
    try:
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        if not data:  # sentencepiece skips loading empty bytes; the first use then logged C++ errors
            raise RuntimeError("an empty file")
        if NORMALIZER_SPEC not in _top_level_fields(data):
            raise RuntimeError("no normalizer spec, which every SentencePiece model ends with: a truncated file?")
        return spm.SentencePieceProcessor(model_proto=data)
    except (OSError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "ParseFromArray" in reason:  # sentencepiece names its C++ source line, not the problem
            reason = "it does not parse as one (the file to pass is TOKDIR/tokenizer.model)"
        raise TokenizerError(f"cannot read SentencePiece model {name}: {reason}") from None
