"""fastText quality classifier: MeCab-segmented text, positive = curated-style text (academic,
government, reference), negative = raw web text (the GPT-3 / Swallow-v2 recipe), quantized `.ftz`.

Training is deterministic: one thread, a fixed seed, and training lines in a seeded order, so the same
inputs give a byte-identical model. The score is P(__label__hq).
"""
from __future__ import annotations

import mmap
import multiprocessing
import os
import random
import re
import secrets
import signal
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

from trainer_bridge.userpaths import open_regular

POSITIVE, NEGATIVE = "__label__hq", "__label__lq"
_MAGIC, _VERSION, _SUPERVISED = 793712314, 12, 3  # fastText's file magic, format version, model_name::sup
_SPACES = re.compile(r"\s+")
# fastText reports a probability p as exp(log(p + 1e-5)) (its Loss::std_log guards log 0): P(hq) came out up to
# 1.00001 and never below 1e-5. The score takes the offset off again and stays in [0, 1].
_LOG_EPSILON = 1e-5


def segment(text: str, max_chars: int = 20_000) -> str:
    """One line of space-separated MeCab surfaces (fastText's input format), first `max_chars` only."""
    from tokenizer.morph import morphemes

    return _SPACES.sub(" ", " ".join(morphemes(text[:max_chars]))).strip()


class _Cursor:
    """Reads little-endian fields of a fastText file; never past its end (a short file is an error)."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.pos = buf, 0

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError("is truncated or not a fastText model (its sizes run past the end of the file)")
        self.pos += n

    def read(self, fmt: str) -> tuple:
        start = self.pos
        self.skip(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.buf, start)

    def cstring(self) -> bytes:
        end = self.buf.find(b"\0", self.pos)
        start = self.pos
        self.skip(end - start + 1 if end >= 0 else -1)
        return self.buf[start:end]


def _skip_quantizer(cur: _Cursor, dim: int) -> int:
    """A product quantizer (dim, nsubq, dsub, lastdsub, 256 centroids a dimension); returns nsubq."""
    pq_dim, nsubq, dsub, _ = cur.read("<iiii")
    if pq_dim != dim or nsubq < 1 or dsub < 1:
        raise ValueError("has an inconsistent quantized matrix")
    cur.skip(dim * 256 * 4)
    return nsubq


def _skip_matrix(cur: _Cursor, quantized: bool, rows: int | None, dim: int) -> None:
    """Dense: m, n, m*n floats. Quantized: qnorm, m, n, codes, quantizer, then norm codes and quantizer
    (fastText's DenseMatrix/QuantMatrix::save). `rows` None: not checked (a pruned input matrix)."""
    if quantized:
        qnorm, m, n, codesize = cur.read("<?qqi")
        cur.skip(codesize)
        if codesize != m * _skip_quantizer(cur, n):
            raise ValueError("has an inconsistent quantized matrix")
        if qnorm:
            cur.skip(m)
            _skip_quantizer(cur, 1)
    else:
        m, n = cur.read("<qq")
        cur.skip(m * n * 4)
    if n != dim or (rows is not None and m != rows):
        raise ValueError(f"has a {m}x{n} matrix where {rows if rows is not None else 'm'}x{dim} is expected")


def _walk_model(cur: _Cursor) -> list[str]:
    """The labels, after walking fastText's saveModel layout field by field."""
    magic, version = cur.read("<ii")
    if magic != _MAGIC:
        raise ValueError("is not a fastText model (wrong magic number)")
    if version != _VERSION:
        raise ValueError(f"is fastText format version {version}, not {_VERSION}; retrain it with `jcorpus quality train`")
    args = cur.read("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate t
    dim, word_ngrams, loss, model_kind, bucket, maxn = args[0], args[5], args[6], args[7], args[8], args[10]
    if model_kind != _SUPERVISED or dim < 1 or loss not in (1, 2, 3, 4):
        raise ValueError("is not a supervised fastText classifier")
    if bucket < 0 or (bucket == 0 and (word_ngrams > 1 or maxn > 0)):  # fastText hashes modulo bucket
        raise ValueError(f"has bucket {bucket} but hashes word n-grams or subwords into buckets")
    size, nwords, nlabels, _, prune_size = cur.read("<iiiqq")
    if size != nwords + nlabels or nwords < 0 or nlabels < 1 or prune_size < -1:
        raise ValueError("has an inconsistent dictionary")
    labels = []
    for _ in range(size):
        word = cur.cstring()
        _, kind = cur.read("<qb")
        if kind == 1:
            labels.append(word.decode("utf-8", errors="replace"))
    if len(labels) != nlabels:
        raise ValueError("has an inconsistent dictionary")
    cur.skip(max(prune_size, 0) * 8)
    (quant_input,) = cur.read("<?")
    _skip_matrix(cur, quant_input, None if prune_size >= 0 else nwords + bucket, dim)
    (quant_output,) = cur.read("<?")
    _skip_matrix(cur, quant_input and quant_output, nlabels, dim)
    if cur.pos != len(cur.buf):
        raise ValueError("has trailing bytes after the model (not a fastText model)")
    return labels


def check_model(path: str) -> None:
    """A complete supervised fastText file with the positive label, or a ValueError saying what is wrong.

    fastText trusts the sizes in the file: a truncated or foreign file makes `load_model` allocate
    gigabytes, fail with a C++ message, or load and then kill the process with SIGFPE on the first
    prediction. Walking the format in Python (magic, version, args, dictionary, matrices; it must end
    exactly at the end of the file) bounds every size by the file's own before fastText reads it, costs
    milliseconds and needs no child process in every worker."""
    try:
        with open_regular(path) as fh:  # a FIFO blocked the open forever
            if os.fstat(fh.fileno()).st_size < 8:
                raise ValueError("is not a fastText model (too short)")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                labels = _walk_model(_Cursor(buf))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} {exc}") from None
    if POSITIVE not in labels:
        raise ValueError(f"{path} has no {POSITIVE} label (labels: {', '.join(labels)}); train it with "
                         "`jcorpus quality train`")
    if len(labels) < 2:  # P(hq) is 1 for every document: the quality rule would never reject anything
        raise ValueError(f"{path} has only the {POSITIVE} label, so it scores every document 1; train it on two "
                         "classes with `jcorpus quality train`")


class QualityModel:
    """A loaded classifier; `score(text)` is the probability of the positive label."""

    def __init__(self, path: str | os.PathLike, max_chars: int = 20_000) -> None:
        import fasttext

        check_model(str(path))
        self.model = fasttext.load_model(str(path))
        self.max_chars = max_chars

    def score(self, text: str) -> float:
        line = segment(text, self.max_chars)
        if not line:
            return 0.0
        # every label (k=-1): with three or more, the top two could leave __label__hq out and score it 0
        labels, probs = self.model.predict(line, k=-1)
        prob = float(dict(zip(labels, probs, strict=True)).get(POSITIVE, 0.0))
        return min(1.0, max(0.0, prob - _LOG_EPSILON))


class TrainingError(RuntimeError):
    """fastText failed, or its process died, while training: no model was written."""


def _fit(report, train_file: str, out: str, options: dict, quantize: bool, cutoff: int) -> None:
    """The training process: trains, saves to `out`, sends None, or the error it met, through `report`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops this process
    try:
        import fasttext

        model = fasttext.train_supervised(input=train_file, verbose=0, **options)
        if quantize:
            model.quantize(input=train_file, qnorm=True, retrain=False, cutoff=cutoff, thread=1)
        model.save_model(out)
    except Exception as exc:  # said by the parent in one line
        report.send(f"{type(exc).__name__}: {exc}")
    else:
        report.send(None)
    finally:
        report.close()


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        names = {s.value: s.name for s in signal.Signals}  # not every number has a name (real-time signals)
        return f"killed by signal {-exitcode}" + (f", {names[-exitcode]}" if -exitcode in names else "")
    return f"exit code {exitcode}"


def _fit_in_child(train_file: str, out: str, options: dict, quantize: bool, cutoff: int) -> None:
    """Run `_fit` in a freshly spawned interpreter and wait for it; any exception here (Ctrl-C, SIGTERM) kills it.

    fastText's Python binding keeps state between trainings in one process (a second run in the same process
    gives a different model, later runs "Encountered NaN"), so every training runs in a new interpreter: that is
    what makes the same inputs give the same bytes. A pool's worker could not be stopped: a stop waited for all
    the epochs, after which the worker saved the model anyway."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_fit, args=(send, train_file, out, options, quantize, cutoff), daemon=True)
    try:
        proc.start()
        send.close()
        try:
            error = receive.recv()
        except EOFError:  # gone without a word: killed (out of memory?) or crashed in C++
            proc.join()
            raise TrainingError(f"the fastText training process died ({_died(proc.exitcode)})") from None
        if error is not None:
            raise TrainingError(f"fastText training failed: {error}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()


def train(positive: Iterable[str], negative: Iterable[str], out: str | os.PathLike, *, seed: int = 0,
          epoch: int = 10, dim: int = 32, lr: float = 0.1, word_ngrams: int = 2, min_count: int = 2,
          max_chars: int = 20_000, quantize: bool = True, bucket: int = 50_000, cutoff: int = 5_000) -> dict:
    """Train, optionally quantize, save to `out`; returns a JSON-able summary of data and options. ValueError: no
    training line in a class; TrainingError: fastText failed (nothing is written to `out` either way)."""
    rows = [f"{POSITIVE} {s}" for s in (segment(t, max_chars) for t in positive) if s]
    n_pos = len(rows)
    rows += [f"{NEGATIVE} {s}" for s in (segment(t, max_chars) for t in negative) if s]
    n_neg = len(rows) - n_pos
    if not n_pos or not n_neg:
        raise ValueError(f"need documents in both classes, got {n_pos} positive and {n_neg} negative")
    random.Random(seed).shuffle(rows)
    options = {"epoch": epoch, "dim": dim, "lr": lr, "wordNgrams": word_ngrams, "minCount": min_count,
               "thread": 1, "seed": seed, "loss": "softmax", "bucket": bucket}
    with tempfile.TemporaryDirectory() as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as fh:
            fh.write("\n".join(rows) + "\n")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # saved next to `out` and renamed into place: a training stopped or killed while saving leaves no model
        part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
        try:
            _fit_in_child(train_file, str(part), options, quantize, cutoff)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    return {"positive_docs": n_pos, "negative_docs": n_neg, "quantized": quantize, "cutoff": cutoff, "max_chars": max_chars,
            "fasttext": options}
