"""Each encoder's streaming `step` exports with torch.onnx.export (dynamo) and onnxruntime
reproduces it with a batch and chunk length other than the traced ones, carrying the state.

The export helper owns the real exporter (export/); this guards the contract it relies on:
no Python control flow on tensor values, dynamic batch and chunk, packed float32 states.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.export import Dim

from avsync import timebase
from avsync.models.config import ModelConfig
from avsync.models.model import AVSyncModel


class _Step(torch.nn.Module):
    """Exposes `encoder.step` as `forward` with named arguments."""

    def __init__(self, step: Callable[..., tuple[torch.Tensor, ...]]) -> None:
        super().__init__()
        self.step = step

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.step(*args)


def _inputs(kind: str, config: ModelConfig, batch: int, chunk: int, g: torch.Generator
            ) -> dict[str, torch.Tensor]:
    r = config.visual_frontend.roi_stored
    if kind == "audio":
        return {"audio": 0.1 * torch.randn(batch, chunk * timebase.SAMPLES_PER_STEP, generator=g)}
    if kind == "visual":
        return {"video": torch.randint(0, 256, (batch, chunk, r, r), generator=g,
                                       dtype=torch.uint8)}
    present = torch.randint(0, 2, (2, batch), generator=g).float()
    return {"audio_features": torch.randn(batch, chunk, config.audio_encoder.d_model, generator=g),
            "visual_features": torch.randn(batch, chunk, config.visual_encoder.d_model,
                                           generator=g),
            "audio_present": present[0], "video_present": present[1]}


def _dynamic(kind: str) -> dict[str, dict[int, object]]:
    batch, chunk = Dim("batch", min=1, max=256), Dim("chunk", min=1, max=256)
    if kind == "audio":
        return {"audio": {0: batch, 1: timebase.SAMPLES_PER_STEP * chunk}, "state": {0: batch}}
    if kind == "visual":
        return {"video": {0: batch, 1: chunk}, "state": {0: batch}}
    return {"audio_features": {0: batch, 1: chunk}, "visual_features": {0: batch, 1: chunk},
            "audio_present": {0: batch}, "video_present": {0: batch}, "state": {0: batch}}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["audio", "visual", "fusion"])
def test_step_exports_and_onnxruntime_matches(debug_model: AVSyncModel,
                                              debug_config: ModelConfig, kind: str,
                                              tmp_path) -> None:
    encoder = getattr(debug_model, f"{kind}_encoder")
    g = torch.Generator().manual_seed(0)
    traced = _inputs(kind, debug_config, 2, debug_config.streaming.chunk_size, g)
    names = [*traced, "state"]
    path = tmp_path / f"{kind}.onnx"
    torch.onnx.export(_Step(encoder.step).eval(), (*traced.values(), encoder.initial_state(2)),
                      str(path), dynamo=True, optimize=False,
                      dynamic_shapes=(tuple(_dynamic(kind).values()),), input_names=names)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names

    batch, chunk = 3, debug_config.streaming.chunk_size + 1  # neither was traced
    torch_state = encoder.initial_state(batch)
    onnx_state = torch_state.numpy()
    for _ in range(5):  # longer than the left context: the caches wrap
        x = _inputs(kind, debug_config, batch, chunk, g)
        with torch.no_grad():
            *expected, torch_state = encoder.step(*x.values(), torch_state)
        *got, onnx_state = session.run(None, {**{k: v.numpy() for k, v in x.items()},
                                              "state": onnx_state})
        for want, have in zip((*expected, torch_state), (*got, onnx_state), strict=True):
            assert want.shape == have.shape
            assert np.abs(want.numpy() - have).max() <= 1e-4
