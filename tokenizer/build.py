"""One tokenizer build: sample → train (model + baselines) → export → evaluate → write TOKDIR.

TOKDIR/tokenizer.model, tokenizer.vocab, tokenizer.json (HF), training.json, eval.json, and
baselines/{default,lossless}.model so `tokenizer eval --baseline` can reproduce the comparison.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from tokenizer import evaluate, hf_export
from tokenizer.sample import sample_corpus
from tokenizer.train import (
    BASELINES,
    TokenizerError,
    TrainConfig,
    load,
    train_all,
    train_all_fit,
    trainer_options,
)


def write_vocab(sp: spm.SentencePieceProcessor, path: Path) -> None:
    """piece<TAB>score per line, like spm_train's .vocab; newline, CR and tab inside a piece are written
    as the escapes `\\n`, `\\r`, `\\t` so every line is one piece, and a backslash as `\\\\` so the escapes
    can be undone: a LaTeX piece such as `\\theta` read back as a tab and `heta`."""
    escapes = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
    lines = [f"{sp.id_to_piece(i).translate(escapes)}\t{sp.get_score(i):g}" for i in range(sp.get_piece_size())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json_safe(options: dict) -> dict:
    return {k: v for k, v in options.items() if k not in ("required_chars",)} | (
        {"required_chars_count": len(options["required_chars"])} if "required_chars" in options else {})


def _unmatched_kinds(mix: dict[str, float] | None, docs_per_kind: dict[str, int]) -> str:
    """Which --mix kinds (weight > 0) match no document, with the kinds there are; "" when all match. A kind
    name with a typo must not look like a holdout or an empty input."""
    missing = [kind for kind, weight in (mix or {}).items() if weight > 0 and kind not in docs_per_kind]
    if not missing:
        return ""
    return (f"--mix kind{'s' if len(missing) > 1 else ''} {', '.join(missing)} match{'' if len(missing) > 1 else 'es'}"
            f" no document (the input's kinds: {', '.join(docs_per_kind) or 'none'})")


def _why_no_text(summary: dict, unmatched: str) -> str:
    """Why the sample is empty: no documents, no document of a --mix kind, all held out, or all over budget."""
    docs = summary["input_docs_per_kind"]
    if not docs:
        return "the input has no non-empty documents"
    mix = summary["mix"]
    sampled = sum(n for kind, n in docs.items() if not mix or mix.get(kind, 0) > 0)
    if not sampled:
        return unmatched or "--mix gives no kind a weight above 0"
    if not summary["seen_sentences"]:
        which = f"{sampled} non-empty documents{' of the kinds in --mix' if mix else ''}"
        if not summary["heldout_docs"]:  # it blamed --holdout 0 for documents of whitespace alone
            return f"the {which} hold no sentence to sample (only whitespace and line breaks)"
        return f"all {which} were held out (--holdout {summary['holdout']})"
    return f"no sentence fits --char-budget {summary['char_budget']}" + (" (split among the --mix kinds)" if mix else "")


def build(records: Iterable[tuple[str, str]], out_dir: str | Path, cfg: TrainConfig, char_budget: int,
          mix: dict[str, float] | None = None, holdout: float = 0.15, heldout_budget: int = 2_000_000,
          baselines: tuple[str, ...] = BASELINES, shrink_to_fit: bool = False, log=print) -> dict:
    """Run the whole build and return the eval results; raises TokenizerError for user-fixable problems."""
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sample = sample_corpus(records, char_budget, cfg.seed, mix, holdout, heldout_budget)
    unmatched = _unmatched_kinds(mix, sample.summary["input_docs_per_kind"])
    if not sample.sentences:
        raise TokenizerError(f"no training text: {_why_no_text(sample.summary, unmatched)}")
    if unmatched:
        log(f"warning: {unmatched}")
    t1 = time.perf_counter()
    log(f"sampled {sample.summary['sampled_sentences']} sentences / {sample.summary['sampled_chars']} chars; "
        f"held out {sample.summary['heldout_docs']} docs; training {cfg.policy} {cfg.model_type} "
        f"V={cfg.vocab_size} inventory={cfg.inventory_level} + baselines {', '.join(baselines)}")
    sentences = [s for _, s in sample.sentences]
    steps: dict[str, float] = {}
    if shrink_to_fit:
        asked = cfg.vocab_size
        models, cfg = train_all_fit(sentences, cfg, baselines, steps)
        if cfg.vocab_size != asked:
            log(f"vocabulary lowered from {asked} to {cfg.vocab_size}: the largest this sample supports "
                f"(inventory {cfg.inventory_level})")
    else:
        models = train_all(sentences, cfg, baselines, steps)
    t2 = time.perf_counter()
    (out / "tokenizer.model").write_bytes(models["main"])
    (out / "baselines").mkdir(exist_ok=True)
    for name in baselines:
        (out / "baselines" / f"{name}.model").write_bytes(models[name])
    processors = {name: load(data) for name, data in models.items()}
    write_vocab(processors["main"], out / "tokenizer.vocab")
    eval_docs = sample.heldout or [("all", s) for _, s in sample.sentences[:2000]]
    export = {"status": "skipped (bpe model)"}
    if cfg.model_type == "unigram":
        hf_export.export(models["main"], out / "tokenizer.json")
        export = hf_export.compare_ids(processors["main"], hf_export.to_hf(models["main"]),
                                       (text for _, text in eval_docs))
    results = evaluate.evaluate_models(processors, eval_docs)
    t3 = time.perf_counter()
    eval_report = {"eval_set": "held-out documents" if sample.heldout else "training sentences (no held-out docs)",
                   "docs": len(eval_docs), "chars": sum(len(t) for _, t in eval_docs), "models": results}
    (out / "eval.json").write_text(json.dumps(eval_report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    training = {
        "config": cfg.to_dict(),
        "trainer_options": {name: _json_safe(trainer_options(name, cfg))
                            for name in ("main", *baselines)},
        "data": sample.summary,
        "sha256": {"tokenizer.model": hashlib.sha256(models["main"]).hexdigest(),
                   **{f"baselines/{n}.model": hashlib.sha256(models[n]).hexdigest() for n in baselines}},
        "sentencepiece_version": spm.__version__,
        "hf_export": export,
        "seconds": {"sample": round(t1 - t0, 2), "train_all": round(t2 - t1, 2),
                    **{f"train_all.{step}": value for step, value in steps.items()},
                    "export_eval": round(t3 - t2, 2)},
    }
    (out / "training.json").write_text(json.dumps(training, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return eval_report
