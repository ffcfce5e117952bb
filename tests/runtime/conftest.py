"""Runtime tests run on a real export of an untrained debug model (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsync.runtime import Model, load_model
from export.debug import cached_debug_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_debug_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def model(model_dir: Path) -> Model:
    return load_model(model_dir)

