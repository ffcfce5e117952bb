"""avsync.models: streaming audio-visual encoders, heads and the contrastive-generative objective.

The public API (each name is importable from here; torch is only imported when one is used,
so `avsync model --help` stays fast):

    config = load_config("tiny")                    # or a YAML path; ModelConfig.from_dict(...)
    model = AVSyncModel(config)                     # plain nn.Module
    out = model(audio, audio_lengths, video, video_lengths, chunk_size=None)  # either may be None
    hyps = greedy_ctc(out.fusion.log_probs, out.fusion.lengths)   # ForwardOutput

    objective = ContrastiveGenerativeObjective(ObjectiveConfig())  # training's weights
    objective.init_model(model)
    total, metrics = objective(model, batch, chunk_size=objective.sample_chunk_size(g),
                               generator=g)

Streaming: `model.audio_encoder.step(chunk, state)`, `model.visual_encoder.step(...)` and
`model.fusion_encoder.step(...)` with `initial_state(batch)` and `state_layout()`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelConfig": "avsync.models.config",
    "ObjectiveConfig": "avsync.models.objective",
    "load_config": "avsync.models.config",
    "AVSyncModel": "avsync.models.model",
    "ForwardOutput": "avsync.models.model",
    "Encoded": "avsync.models.model",
    "EncoderOutput": "avsync.models.encoders",
    "FusionOutput": "avsync.models.encoders",
    "ContrastiveGenerativeObjective": "avsync.models.objective",
    "greedy_ctc": "avsync.models.decoding",
    "greedy_ctc_steps": "avsync.models.decoding",
    "StateLayout": "avsync.models.state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avsync.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
