"""Shared fixtures: the repo root on sys.path (tests run from a checkout), bundled and shared data locations."""
from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "data" / "samples"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"


def wiki_config(folder: Path, copies: int = 1) -> Path:
    """A curate config of the bundled Wikipedia sample (`copies` sources of it), filters off: the stop and runner
    tests' input."""
    config = folder / "c.yaml"
    config.write_text(json.dumps({"sources": [
        {"name": f"wiki{i}", "kind": "reference", "format": "jsonl", "license": "CC-BY-SA-4.0",
         "paths": [str(SAMPLES / "reference" / "wikipedia.jsonl")]} for i in range(copies)],
        "filters": {"enabled": False}}))
    return config


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture
def shared_corpora() -> Path:
    """The developers' shared corpora; tests that need them skip on a clone without ../shared."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"needs the shared corpora at {SHARED_CORPORA} (not part of the repo)")
    return SHARED_CORPORA


@pytest.fixture
def beam_leftovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Temporary files go to a fresh folder, here and in child processes; the function lists the
    `beam-pipeline-temp*` folders left there (Beam makes one per Pipeline, removed only at the end of run())."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return lambda: sorted(p.name for p in folder.glob("beam-pipeline-temp*"))
