"""Runs every kernel test on each path the host supports: the default dispatch and the portable C path."""
from __future__ import annotations

import pytest

import sve_kernels  # fails with a one-line hint when the C library is not built
from sve_kernels import _lib

PATHS = ["portable"] + (["sve"] if _lib.HAS_SVE else ["blas"])


@pytest.fixture(params=PATHS)
def kernel_path(request, monkeypatch) -> str:
    """Selects SVE_KERNELS_PATH for one test; the kernels read it on every call."""
    monkeypatch.setenv("SVE_KERNELS_PATH", request.param)
    assert sve_kernels.info()["path"] == request.param
    return request.param


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
