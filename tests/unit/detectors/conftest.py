"""Shared fixtures for the detector tests: small generated data, one thread for torch."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    # The test machine has 2 shared cores; torch would otherwise grab both per process.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
