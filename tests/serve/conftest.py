"""Server tests run on the real runtime over a real export (made once per test session).

The protocol tests use the untrained debug model (`export.debug`): its transcripts are noise,
but deterministic noise that depends on every sample and every mouth pixel, so "the server
gives the same finals as the offline runtime over the same input" is as strict as with a
trained model. Tests that need a model that actually transcribes are in test_default_model.py.
"""

from __future__ import annotations

import pytest
from avsync.serve.runtime_engine import RuntimeEngine
from serve_harness import SynthClip, default_model_text, synth_clip

from avsync.runtime import Model


@pytest.fixture(scope="session")
def engine(model: Model) -> RuntimeEngine:
    """One engine for every test: per-session state lives in its streams, not in it."""
    from serve_harness import TEST_ENGINE_CONFIG

    return RuntimeEngine(model, TEST_ENGINE_CONFIG)


@pytest.fixture(scope="session")
def clips() -> list[SynthClip]:
    """8 synthetic GRID clips of 8 speakers (about 2 s each; espeak voices, rendered faces)."""
    return [synth_clip(i) for i in range(8)]


@pytest.fixture(scope="session")
def clip(clips: list[SynthClip]) -> SynthClip:
    return clips[0]


@pytest.fixture(scope="session")
def default_clips() -> list[SynthClip]:
    """8 clips of 8 unseen speakers saying what the default model was trained to read (GRID
    commands, or held-out English sentences for an open-vocabulary model)."""
    text = default_model_text()
    return [synth_clip(i, text=text) for i in range(8)]
