"""Checkpoint files (atomic, pickle-free, validated), what `--resume` accepts, and `jcorpus-train sample`."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from trainer_bridge.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from trainer_bridge.manifest import PackSettings, write_local
from trainer_bridge.model import GPT, GPTConfig, resolve_config
from trainer_bridge.optim import LossScaler
from trainer_bridge.stream import ShardStream
from trainer_bridge.train import TrainError, _resume_checkpoint, build_parser, main

CFG = GPTConfig(vocab_size=40, seq_len=8, d_model=16, n_heads=2, n_layers=1)


def make_ckpt(step: int, cfg: GPTConfig = CFG) -> Checkpoint:
    model = GPT(cfg, seed=step)
    rng = np.random.default_rng(step)
    return Checkpoint(step, model.params, rng.random(model.num_params, dtype=np.float32),
                      rng.random(model.num_params, dtype=np.float32), cfg.to_json(),
                      {"optimizer_t": step, "streams": [{"next_sample": 8 * step}], "args": {},
                       "loss_scaler": {"scale": 2.0, "window": 200, "good_steps": 0}})


def test_roundtrip_is_exact_and_leaves_no_temp_files(tmp_path):
    ck = make_ckpt(5)
    path = save_checkpoint(tmp_path, ck)
    assert path.name == "ckpt-5.npz" and [p.name for p in tmp_path.iterdir()] == ["ckpt-5.npz"]
    back = load_checkpoint(path)
    assert back.step == 5 and GPTConfig.from_json(back.config_json) == CFG
    for a, b in ((back.params, ck.params), (back.m, ck.m), (back.v, ck.v)):
        np.testing.assert_array_equal(a, b)
    assert back.state["streams"] == [{"next_sample": 40}] and back.state["optimizer_t"] == 5


def test_newest_by_step_number_and_keep(tmp_path):
    for step in (2, 10, 9):
        save_checkpoint(tmp_path, make_ckpt(step))
        prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-9.npz", "ckpt-10.npz"]
    assert latest_checkpoint(tmp_path).name == "ckpt-10.npz"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_diverged_steps_never_replace_sane_checkpoints(tmp_path):
    """With --keep 2, diverged steps (a loss not finite or past 2 ln V + 1, a skip no loss scale explains, weights
    not finite) used to be written and rotate the sane ones out. Now they write nothing; a written checkpoint whose
    weights give such a loss at the next step is deleted, and only a confirmed one (or the last, at the end) rotates
    older ones out."""
    import math

    from trainer_bridge.checkpoint import KeptCheckpoints, diverged_loss

    kept, cap = KeptCheckpoints(tmp_path, keep=2, vocab_size=CFG.vocab_size), diverged_loss(CFG.vocab_size)
    assert cap == 2 * math.log(CFG.vocab_size) + 1
    names = lambda: [p.name for p in list_checkpoints(tmp_path)]  # noqa: E731
    for step in (1, 2, 3):
        assert kept.offer(make_ckpt(step), loss=cap, diverging_skip=False) is None
        assert kept.confirm(3.0) is None
    assert names() == ["ckpt-2.npz", "ckpt-3.npz"] and not kept.diverged
    nan_weights = make_ckpt(6)
    nan_weights.params[7] = np.nan
    for ckpt, loss, skip, why in ((make_ckpt(4), float("nan"), False, "(loss nan)"),
                                  (make_ckpt(5), cap * 1.001, False, f"(loss {cap * 1.001:.4g} > 2 ln V + 1 = "),
                                  (nan_weights, 3.0, False, "(its weights are not finite)"),
                                  (make_ckpt(7), 3.0, True, "(its gradients were not finite)")):
        note = kept.offer(ckpt, loss, skip)
        assert note.startswith(f"step {ckpt.step}: no checkpoint written, the run looks diverged {why}"), note
        assert note.endswith(f"the newest checkpoint is {tmp_path / 'ckpt-3.npz'}") and kept.diverged
    assert kept.offer(make_ckpt(8), 3.0, False) is None and names() == ["ckpt-2.npz", "ckpt-3.npz", "ckpt-8.npz"]
    assert kept.confirm(float("inf")).startswith("ckpt-8.npz deleted: its weights gave loss inf at the next step")
    assert names() == ["ckpt-2.npz", "ckpt-3.npz"] and kept.diverged
    assert kept.offer(make_ckpt(9), 3.0, False) is None and not kept.diverged
    kept.close()  # the run ended: the last one stands
    assert names() == ["ckpt-3.npz", "ckpt-9.npz"]


def test_refuses_pickles_foreign_and_truncated_files(tmp_path):
    evil = tmp_path / "ckpt-1.npz"
    np.savez(evil, params=np.array([object()], dtype=object), m=np.zeros(1), v=np.zeros(1),
             config=np.array("{}"), state=np.array("{}"))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(evil)
    foreign = tmp_path / "ckpt-2.npz"
    np.savez(foreign, params=np.zeros(3, np.float32), m=np.zeros(3, np.float32), v=np.zeros(3, np.float32),
             config=np.array("{}"), state=np.array(json.dumps({"format": "other"})))
    with pytest.raises(CheckpointError, match="not a jcorpus"):
        load_checkpoint(foreign)
    good = save_checkpoint(tmp_path, make_ckpt(3))
    cut = tmp_path / "ckpt-4.npz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "ckpt-99.npz")
    noise = tmp_path / "ckpt-5.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))  # numpy advised allow_pickle=True or pickle.load()
    with pytest.raises(CheckpointError, match=re.escape(f"{noise} is not a jcorpus.ckpt/1 checkpoint (not a complete "
                                                        ".npz archive)") + "$"):
        load_checkpoint(noise)


def rewrite(path, change, key="state"):
    """Apply `change` to a saved checkpoint's state (or config) JSON: what a damaged or hand-edited file holds."""
    with np.load(path) as z:
        arrays = dict(z)
    data = json.loads(str(arrays[key]))
    change(data)
    np.savez(path, **dict(arrays, **{key: np.array(json.dumps(data))}))
    return path


@pytest.mark.parametrize(("change", "needle"), [
    (lambda s: s.pop("optimizer_t"), "optimizer_t is None, expected an integer in [0, 3]"),  # was a KeyError
    (lambda s: s.update(optimizer_t=4), "optimizer_t is 4, expected an integer in [0, 3]"),
    (lambda s: s.update(streams=[]), "streams must be a non-empty list"),  # was a ZeroDivisionError
    (lambda s: s.update(streams=[7]), "streams must be a non-empty list"),
    (lambda s: s["loss_scaler"].pop("window"), "loss_scaler is {'good_steps': 0, 'scale': 2.0}, expected"),
    (lambda s: s["loss_scaler"].update(scale=-1.0), "loss_scaler is {'good_steps': 0, 'scale': -1.0, "),
    (lambda s: s.pop("args"), "it lacks the run's arguments (args)"),
    (lambda s: s.update(step="3"), "step is '3', expected an integer >= 0"),
    (lambda s: s.update(step=2), "its state is for step 2"),  # the file is ckpt-3
    (lambda s: s.update(vocab_size=0), "vocab_size is 0, expected an integer >= 1"),
    (lambda s: s.update(skipped_in_a_row=-1), "skipped_in_a_row is -1, expected an integer >= 0"),
    (lambda s: s.update(doc_positions=1), "doc_positions is 1, expected true or false"),
])
def test_incomplete_or_inconsistent_state_is_one_line(tmp_path, capsys, change, needle):
    path = rewrite(save_checkpoint(tmp_path, make_ckpt(3)), change)
    with pytest.raises(CheckpointError, match=re.escape(f"{path} is incomplete or inconsistent: {needle}")):
        load_checkpoint(path)
    assert main(["sample", "--ckpt", str(path), "--tokenizer", "unused"]) == 2
    assert capsys.readouterr().err.startswith(f"jcorpus-train: error: {path} is incomplete")


@pytest.mark.parametrize(("change", "needle"), [
    (lambda c: c.update(d_model=32), f": array params is float32[{GPT(CFG).num_params}], but its model config needs "),
    (lambda c: c.pop("vocab_size"), ": model config lacks the keys ['vocab_size']"),
    (lambda c: c.update(n_layers=True), ": model config n_layers must be a positive integer, got True"),
])
def test_model_config_must_be_valid_and_fit_the_arrays(tmp_path, change, needle):
    path = rewrite(save_checkpoint(tmp_path, make_ckpt(1)), change, key="config")
    with pytest.raises(CheckpointError, match=re.escape(f"{path}{needle}")):
        load_checkpoint(path)


@pytest.mark.parametrize("short", ["params", "m", "v"])
def test_a_short_array_is_the_one_named(tmp_path, short):
    """A shortened params array was reported as the `m` array (checked against params, not the config)."""
    path = save_checkpoint(tmp_path, make_ckpt(1))
    with np.load(path) as z:
        arrays = dict(z)
    arrays[short] = arrays[short][:-1]
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=re.escape(
            f"{path}: array {short} is float32[{GPT(CFG).num_params - 1}], but its model config needs float32[")):
        load_checkpoint(path)


def train_tokenizer(root, **special_ids) -> str:
    spm = pytest.importorskip("sentencepiece")
    words = ["日本の", "首都は", "東京", "です", "。", "京都は", "古い", "都", "で", "ある", "富士山", "は", "高い", "山"]
    rng = np.random.default_rng(0)
    text = "\n".join("".join(rng.choice(words, size=8)) for _ in range(300))
    (root / "corpus.txt").write_text(text, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(root / "corpus.txt"), model_prefix=str(root / "tok"), vocab_size=40,
                                   character_coverage=1.0, minloglevel=2, **special_ids)
    return str(root / "tok.model")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    docs = [(f"d{i}", "src", "web", "CC0", np.append(rng.integers(4, 64, int(rng.integers(3, 40))), 2).astype(np.uint32))
            for i in range(80)]
    out = tmp_path_factory.mktemp("resume")
    write_local(str(out), docs, PackSettings(seq_len=16, vocab_size=64, eos_id=2, pad_id=3),
                {"vocab_size": 64, "sha256": "x", "eos_id": 2, "pad_id": 3})
    return out


def resume(shards: Path, run: Path, *argv: str, world: int = 1, rank: int = 0) -> tuple[Checkpoint, ShardStream]:
    """What `jcorpus-train ... --resume` does before training: find, check and apply RUN's newest checkpoint."""
    args = build_parser().parse_args(["--shards", str(shards), "--steps", "8", "--out", str(run), *argv])
    stream = ShardStream(str(shards / "manifest.json"), rank, world, seed=args.seed,
                         global_batch_size=args.global_batch)
    cfg = resolve_config(args.model, stream.vocab_size, stream.seq_len)
    return _resume_checkpoint(run, args, cfg, stream, rank), stream


TRAINED_WITH = ("--doc-mask", "--lr", "2e-3", "--global-batch", "4")


@pytest.fixture()
def halted(shards, tmp_path) -> tuple[Path, np.ndarray]:
    """RUN/ckpt-2.npz as a run with TRAINED_WITH writes it, and the global batch after it."""
    args = build_parser().parse_args(["--shards", str(shards), "--steps", "8", "--out", str(tmp_path / "run"),
                                      *TRAINED_WITH])
    stream = ShardStream(str(shards / "manifest.json"), seed=0, global_batch_size=4)
    stream.next(), stream.next()
    cfg = resolve_config("tiny", stream.vocab_size, stream.seq_len)
    model = GPT(cfg)
    state = {"optimizer_t": 2, "loss_scaler": LossScaler().state_dict(), "streams": [stream.state_dict()],
             "args": vars(args)}
    save_checkpoint(args.out, Checkpoint(2, model.params, model.params * 0, model.params * 0, cfg.to_json(), state))
    return Path(args.out), stream.next()


def test_resume_refuses_arguments_that_change_the_result(shards, halted):
    """These used to be ignored: the run went on with the new lr, precision and no doc mask."""
    run, _ = halted
    with pytest.raises(TrainError, match=re.escape(
            f"--resume: {run / 'ckpt-2.npz'} was made with other arguments that change the result: "
            "--global-batch 4 (given 8), --precision 'fp32' (given 'fp16'), --lr 0.002 (given 0.001), "
            "--doc-mask True (given False)")):
        resume(shards, run, "--precision", "fp16")
    for arg in (["--warmup", "3"], ["--weight-decay", "0"], ["--clip", "0.5"], ["--seed", "1"], ["--loss-scale", "8"],
                ["--scale-window", "9"]):
        with pytest.raises(TrainError, match=f"{arg[0]} .* \\(given {arg[1]}"):
            resume(shards, run, *TRAINED_WITH, *arg)
    with pytest.raises(TrainError, match=r'--resume: --model small is \{"d_model": 512.* here but \{"d_model": 128'):
        resume(shards, run, *TRAINED_WITH, "--model", "small")


def test_resume_allows_what_does_not_change_the_result(shards, halted, tmp_path):
    """More --steps, another --out or shards path, logging and checkpoint options, and another number of ranks."""
    run, after = halted
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    same = [*TRAINED_WITH, "--steps", "20", "--ckpt-every", "3", "--keep", "0", "--log-every", "1", "--no-overlap",
            "--halt-after", "5", "--shards", str(shards / "manifest.json")]
    halves = [resume(shards, moved, *same, world=2, rank=r) for r in (0, 1)]
    assert [ckpt.step for ckpt, _ in halves] == [2, 2]
    np.testing.assert_array_equal(np.concatenate([stream.next() for _, stream in halves]), after)


def test_positions_restart_per_document_unless_the_checkpoint_predates_it(shards, halted):
    """--doc-mask restarts positions at each document; `halted` is a --doc-mask checkpoint written before it (no
    doc_positions), whose run goes on with row positions as it was trained, and a new checkpoint records them."""
    from trainer_bridge.train import _doc_positions

    run, _ = halted
    args = build_parser().parse_args(["--shards", str(shards), "--steps", "8", "--out", str(run), *TRAINED_WITH])
    ckpt, _ = resume(shards, run, *TRAINED_WITH)
    assert _doc_positions(args, None) and not _doc_positions(args, ckpt)
    rewrite(run / "ckpt-2.npz", lambda s: s.update(doc_positions=True))
    assert _doc_positions(args, resume(shards, run, *TRAINED_WITH)[0])
    assert not _doc_positions(build_parser().parse_args(["--shards", "s", "--steps", "1", "--out", "o"]), None)


@pytest.mark.parametrize("cursor", [None, 10**30])  # 10**30 was an OverflowError at the first batch
def test_resume_names_the_checkpoint_whose_stream_state_is_wrong(shards, halted, cursor):
    run, _ = halted
    rewrite(run / "ckpt-2.npz", lambda s: s["streams"][0].update(next_sample=cursor))
    with pytest.raises(CheckpointError, match=re.escape(f"{run / 'ckpt-2.npz'}: stream state has next_sample={cursor}")):
        resume(shards, run, *TRAINED_WITH)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> str:
    return train_tokenizer(tmp_path_factory.mktemp("tok"), bos_id=1, eos_id=2, pad_id=3, unk_id=0)


def greedy(ckpt, sp, ids: list[int], n: int) -> str:
    """Greedy decoding by hand: the argmax of the model's own logits, token by token, up to EOS."""
    model = GPT(GPTConfig.from_json(load_checkpoint(ckpt).config_json), params=load_checkpoint(ckpt).params)
    gen: list[int] = []
    for _ in range(n):
        nxt = int(np.argmax(model.next_token_logits(np.array(ids + gen))[: sp.get_piece_size()]))
        if nxt == sp.eos_id():
            break
        gen.append(nxt)
    return sp.decode(gen)


def test_sample_prints_a_deterministic_continuation(tmp_path, tokenizer, capsys):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    ckpt = save_checkpoint(tmp_path, make_ckpt(7, GPTConfig(sp.get_piece_size(), 8, 16, 2, 1)))
    args = ["sample", "--ckpt", str(ckpt), "--tokenizer", tokenizer, "--prompt", "日本の", "--tokens", "12"]
    outs = []
    for extra in (["--seed", "1"], ["--seed", "1"], ["--temperature", "0"]):
        assert main(args + extra) == 0
        outs.append(capsys.readouterr().out.strip())
    assert outs[0] == outs[1] and all(o.startswith("日本の") and len(o) > len("日本の") for o in outs)
    assert outs[2] == "日本の" + greedy(ckpt, sp, list(sp.encode("日本の")), 12)


def test_empty_prompt_starts_a_document_after_eos(tmp_path, tokenizer, capsys):
    """Packed documents follow an EOS, so "" continues from [EOS] (it was an IndexError)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    ckpt = save_checkpoint(tmp_path, make_ckpt(5, GPTConfig(sp.get_piece_size(), 8, 16, 2, 1)))
    args = ["sample", "--ckpt", str(ckpt), "--tokenizer", tokenizer, "--prompt", "", "--tokens", "12"]
    assert main(args + ["--temperature", "0"]) == 0
    assert capsys.readouterr().out == greedy(ckpt, sp, [sp.eos_id()], 12) + "\n"
    assert main(args) == 0 and capsys.readouterr().out.strip()
    no_eos = train_tokenizer(tmp_path, eos_id=-1)
    assert main(["sample", "--ckpt", str(ckpt), "--tokenizer", no_eos, "--prompt", ""]) == 2
    assert capsys.readouterr().err == f"jcorpus-train: error: --prompt is empty and {no_eos} has no EOS piece to start from\n"


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    """numpy's ArrayMemoryError was a traceback (once per rank under mpiexec)."""
    def allocate(path):
        return np.empty(2**48, dtype=np.float32)  # 1 PiB

    monkeypatch.setattr("trainer_bridge.train.load_checkpoint", allocate)
    assert main(["sample", "--ckpt", "c.npz", "--tokenizer", "t.model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jcorpus-train: error: out of memory: Unable to allocate ") and err.count("\n") == 1


def test_sample_errors_are_one_line(tmp_path, tokenizer, capsys):
    assert main(["sample", "--ckpt", str(tmp_path / "none.npz"), "--tokenizer", tokenizer]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    for vocab in (10, 80):  # 80: a tokenizer smaller than the model's was taken, and sampled garbage
        other = save_checkpoint(tmp_path, make_ckpt(vocab, GPTConfig(vocab, 8, 16, 2, 1)))
        assert main(["sample", "--ckpt", str(other), "--tokenizer", tokenizer]) == 2
        assert capsys.readouterr().err == (f"jcorpus-train: error: tokenizer {tokenizer} has 40 pieces, but {other} was "
                                           f"trained on a vocabulary of {vocab}: pass the tokenizer its shards were "
                                           "packed with\n")
    padded = make_ckpt(3, GPTConfig(64, 8, 16, 2, 1))  # a model config may round the shards' vocabulary up
    padded.state["vocab_size"] = 40
    assert main(["sample", "--ckpt", str(save_checkpoint(tmp_path, padded)), "--tokenizer", tokenizer]) == 0
    ckpt = save_checkpoint(tmp_path, make_ckpt(2, GPTConfig(40, 8, 16, 2, 1)))
    json_tok = tmp_path / "tokenizer.json"
    json_tok.write_text('{"model": {"type": "Unigram"}}')
    cut = tmp_path / "cut.model"
    cut.write_bytes(Path(tokenizer).read_bytes()[:300])
    for bad, why in ((json_tok, "it does not parse as one (the file to pass is TOKDIR/tokenizer.model)"),
                     (cut, "no normalizer spec, which every SentencePiece model ends with: a truncated file?")):
        assert main(["sample", "--ckpt", str(ckpt), "--tokenizer", str(bad)]) == 2  # a RuntimeError traceback
        assert capsys.readouterr().err == f"jcorpus-train: error: cannot read SentencePiece model {bad}: {why}\n"
    # another tokenizer of the same size sampled garbage: a checkpoint now records the shards' tokenizer
    other = make_ckpt(2, GPTConfig(40, 8, 16, 2, 1))
    other.state["tokenizer_sha256"] = hashlib.sha256(b"another model").hexdigest()
    other_path = save_checkpoint(tmp_path / "other", other)
    assert main(["sample", "--ckpt", str(other_path), "--tokenizer", tokenizer]) == 2
    assert capsys.readouterr().err.startswith(f"jcorpus-train: error: tokenizer {tokenizer} is not the one "
                                              f"{other_path} was trained with (sha256 ")
    other.state["tokenizer_sha256"] = hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()
    assert main(["sample", "--ckpt", str(save_checkpoint(tmp_path / "same", other)), "--tokenizer", tokenizer]) == 0
