"""Shared fixtures: the repo root on sys.path (tests run from a checkout), bundled and shared data locations."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "data" / "samples"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture
def shared_corpora() -> Path:
    """The developers' shared corpora; tests that need them skip on a clone without ../shared."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"needs the shared corpora at {SHARED_CORPORA} (not part of the repo)")
    return SHARED_CORPORA
