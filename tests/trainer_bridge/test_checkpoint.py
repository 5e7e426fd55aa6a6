"""Checkpoint files (atomic, pickle-free, validated) and the `jcorpus-train sample` subcommand."""
from __future__ import annotations

import json

import numpy as np
import pytest

from trainer_bridge.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from trainer_bridge.model import GPT, GPTConfig
from trainer_bridge.train import main

CFG = GPTConfig(vocab_size=40, seq_len=8, d_model=16, n_heads=2, n_layers=1)


def make_ckpt(step: int, cfg: GPTConfig = CFG) -> Checkpoint:
    model = GPT(cfg, seed=step)
    rng = np.random.default_rng(step)
    return Checkpoint(step, model.params, rng.random(model.num_params, dtype=np.float32),
                      rng.random(model.num_params, dtype=np.float32), cfg.to_json(),
                      {"optimizer_t": step, "streams": [{"next_sample": 8 * step}], "loss_scaler": {"scale": 2.0}})


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
        save_checkpoint(tmp_path, make_ckpt(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-9.npz", "ckpt-10.npz"]
    assert latest_checkpoint(tmp_path).name == "ckpt-10.npz"
    assert latest_checkpoint(tmp_path / "missing") is None


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


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> str:
    spm = pytest.importorskip("sentencepiece")
    words = ["日本の", "首都は", "東京", "です", "。", "京都は", "古い", "都", "で", "ある", "富士山", "は", "高い", "山"]
    rng = np.random.default_rng(0)
    text = "\n".join("".join(rng.choice(words, size=8)) for _ in range(300))
    root = tmp_path_factory.mktemp("tok")
    (root / "corpus.txt").write_text(text, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(root / "corpus.txt"), model_prefix=str(root / "tok"), vocab_size=40,
                                   character_coverage=1.0, bos_id=1, eos_id=2, pad_id=3, unk_id=0,
                                   minloglevel=2)
    return str(root / "tok.model")


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
    # greedy decoding equals argmax of the model's own logits, token by token
    model = GPT(GPTConfig.from_json(load_checkpoint(ckpt).config_json), params=load_checkpoint(ckpt).params)
    ids = list(sp.encode("日本の"))
    gen = []
    for _ in range(12):
        nxt = int(np.argmax(model.next_token_logits(np.array(ids + gen))[: sp.get_piece_size()]))
        if nxt == sp.eos_id():
            break
        gen.append(nxt)
    assert outs[2] == "日本の" + sp.decode(gen)


def test_sample_errors_are_one_line(tmp_path, tokenizer, capsys):
    assert main(["sample", "--ckpt", str(tmp_path / "none.npz"), "--tokenizer", tokenizer]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    small = save_checkpoint(tmp_path, make_ckpt(1, GPTConfig(10, 8, 16, 2, 1)))
    assert main(["sample", "--ckpt", str(small), "--tokenizer", tokenizer]) == 2
    assert "the model only 10" in capsys.readouterr().err
