"""Fixtures shared by the runtime and server tests: one real export of the untrained debug
model per test session (`export.debug`), and that model loaded through `avsync.runtime`."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsync.runtime import Model, load_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avsync.export.debug import cached_debug_model  # torch: only when a test asks for it

    return cached_debug_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def model(model_dir: Path) -> Model:
    return load_model(model_dir)
