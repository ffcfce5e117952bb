"""Shared fixtures for the model tests: the debug config, its objective and a seeded debug
model."""

from __future__ import annotations

import pytest
import torch

from avsync.models.config import ModelConfig, load_config
from avsync.models.model import AVSyncModel
from avsync.models.objective import ObjectiveConfig, load_objective


@pytest.fixture(autouse=True)
def one_thread():
    """Debug-size tensors gain nothing from two threads, and on a shared 2-core machine the
    threads' barriers stall whenever another process holds a core; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def debug_config() -> ModelConfig:
    return load_config("debug")


@pytest.fixture(scope="session")
def debug_objective() -> ObjectiveConfig:
    return load_objective("debug")


@pytest.fixture()
def debug_model(debug_config: ModelConfig) -> AVSyncModel:
    """A freshly initialised debug model in eval mode (seeded; dropout off)."""
    torch.manual_seed(0)
    return AVSyncModel(debug_config).eval()
