"""The fastText quality score is P(__label__hq) in [0, 1] whatever the model's labels, and a model that
cannot tell two classes apart is refused.

Models are trained by the real fastText wheel, each in a fresh interpreter (fastText keeps state between
trainings in one process), one thread and a fixed seed, so every model here is the same on every run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from filters import FilterConfigError
from filters.chain import FilterChain
from filters.quality import NEGATIVE, POSITIVE, QualityModel, check_model, segment, train

ROOT = Path(__file__).resolve().parents[2]
FIT = ("import fasttext, sys\n"
       "m = fasttext.train_supervised(input=sys.argv[1], epoch=50, thread=1, seed=0, verbose=0, minCount=1)\n"
       "m.save_model(sys.argv[2])\n")


def _fasttext_model(tmp_path: Path, rows: list[str], name: str) -> Path:
    """A supervised fastText model of `rows` (`__label__x word word`), trained in a child interpreter."""
    data, model = tmp_path / f"{name}.txt", tmp_path / f"{name}.bin"
    data.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    subprocess.run([sys.executable, "-c", FIT, str(data), str(model)], check=True, timeout=120)
    return model


def test_scores_stay_within_zero_and_one(tmp_path: Path) -> None:
    """fastText reports each probability as exp(log(p + 1e-5)): a confident model scored its positives up to
    1.00001 (above the documented range and the largest quality.threshold) and nothing below 1e-5."""
    pos = [("今日は晴れです。東京の天気は良好です。" * 5) + str(i) for i in range(50)]
    neg = [("激安セール！今すぐクリック！無料！" * 5) + str(i) for i in range(50)]
    train(pos, neg, tmp_path / "q.bin", epoch=1000, lr=1.0, quantize=False)
    model = QualityModel(tmp_path / "q.bin")
    high, low = model.score(pos[0]), model.score(neg[0])
    assert 0.99999 < high <= 1.0
    assert 0.0 <= low < 1e-5


def test_score_is_the_positive_label_probability_with_more_labels(tmp_path: Path) -> None:
    """With three labels `predict(k=2)` can leave __label__hq out: a document with P(hq) = 0.23 scored 0.0 and
    was rejected by any threshold."""
    rows = []
    for i in range(100):
        rows += [f"{POSITIVE} 今日 は 晴れ です {i}", f"{NEGATIVE} 激安 セール 無料 {i}", f"__label__mid 普通 の 文章 です {i}"]
    model = QualityModel(_fasttext_model(tmp_path, rows, "three"))
    text = "激安普通今日"
    labels, probs = model.model.predict(segment(text), k=-1)
    assert POSITIVE not in labels[:2], "precondition: the positive label ranks third for this text"
    expected = dict(zip(labels, probs, strict=True))[POSITIVE] - 1e-5
    assert expected > 0.1 and model.score(text) == pytest.approx(expected, abs=1e-6)

def test_a_model_with_only_the_positive_label_is_refused(tmp_path: Path) -> None:
    """Trained on one class, a model scores every document 1.0: the quality rule never rejects anything."""
    model = _fasttext_model(tmp_path, [f"{POSITIVE} 今日 は 晴れ です {i}" for i in range(20)], "one")
    with pytest.raises(ValueError, match=r"has only the __label__hq label"):
        check_model(str(model))
    with pytest.raises(FilterConfigError) as err:
        FilterChain({"preset": "none", "quality": {"model": str(model)}})
    assert str(err.value).startswith("filters.quality.model: ") and "\n" not in str(err.value)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _start_training(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """`jcorpus quality train` of the shipped model's data with 1000 epochs (many seconds of fastText), and the pid
    of its training process once fastText runs."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "quality", "train", "--config",
                             str(ROOT / "data" / "models" / "quality_train.yaml"), "--epoch", "1000", "--out",
                             str(tmp_path / "out" / "m.ftz"), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        trainers = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        if trainers and list(tmp_path.glob("*/train.txt")):
            time.sleep(1.0)  # into fastText's training
            return proc, trainers[0]
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"training never started: {proc.communicate()}")


@pytest.mark.parametrize("sig, code, said", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_stopped_training_stops_and_leaves_no_model(tmp_path: Path, sig: int, code: int, said: str) -> None:
    """The stop waited for fastText to finish all its epochs, whose process then wrote the model to --out without
    its recipe (a later run refused it as existing)."""
    if not (ROOT / "data" / "samples" / "academic" / "abstracts.jsonl").is_file():
        pytest.skip("bundled samples missing")
    (tmp_path / "out").mkdir()
    proc, trainer = _start_training(tmp_path)
    start = time.monotonic()
    proc.send_signal(sig)  # the command only, as a scheduler or `timeout` stops it
    _, err = proc.communicate(timeout=300)
    took = time.monotonic() - start
    assert proc.returncode == code and err.strip() == f"jcorpus quality: {said}", err
    assert took < 5, f"the stop took {took:.1f} s"
    assert not any((tmp_path / "out").iterdir()) and not list(tmp_path.glob("*/train.txt"))
    assert not Path(f"/proc/{trainer}").exists() or "Z" in Path(f"/proc/{trainer}/stat").read_text().split()[2]


def test_a_training_process_that_dies_is_one_line(tmp_path: Path) -> None:
    """Killed (the kernel's OOM killer, say), it was a BrokenProcessPool traceback."""
    if not (ROOT / "data" / "samples" / "academic" / "abstracts.jsonl").is_file():
        pytest.skip("bundled samples missing")
    (tmp_path / "out").mkdir()
    proc, trainer = _start_training(tmp_path)
    os.kill(trainer, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and err.strip() == (
        "jcorpus quality: error: the fastText training process died (killed by signal 9, SIGKILL); "
        "no model written"), err
    assert not any((tmp_path / "out").iterdir())
