"""A real embedded MLflow registry (SQLite + local artifact folder) per test.

Creating an MLflow SQLite database runs its whole chain of alembic migrations (6-10 s on the
2-core test machine); opening an existing one takes about a second. So one empty database
is created per session and each test gets its own copy: every test still talks to the real
MLflow store, in its own directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from retrain.registry import ModelRegistry, embedded_tracking_uri


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("mlflow-template")
    reg = ModelRegistry.embedded(state)
    reg.models()  # opens the store, which creates and migrates the database
    db = state / "mlflow" / "mlflow.db"
    assert db.is_file(), embedded_tracking_uri(state)
    return db


@pytest.fixture
def state_dir(tmp_path: Path, _empty_mlflow_db: Path) -> Path:
    state = tmp_path / "state"
    (state / "mlflow").mkdir(parents=True)
    shutil.copy2(_empty_mlflow_db, state / "mlflow" / "mlflow.db")
    return state


@pytest.fixture
def registry(state_dir: Path) -> ModelRegistry:
    return ModelRegistry.embedded(state_dir)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)
