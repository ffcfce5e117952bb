"""The three streaming encoders: shapes, batch independence, causality, step == forward."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from avsync import timebase
from avsync.models.config import ModelConfig
from avsync.models.model import AVSyncModel
from avsync.models.state import COUNTER

KINDS = ("audio", "visual", "fusion")
Outputs = dict[str, torch.Tensor]


def _inputs(config: ModelConfig, batch: int, steps: int, seed: int) -> dict[str, torch.Tensor]:
    """Random inputs of every encoder for `steps` steps (each drawn independently)."""
    g = torch.Generator().manual_seed(seed)
    r = config.visual_frontend.roi_stored
    return {
        "audio": 0.2 * torch.randn(batch, steps * timebase.SAMPLES_PER_STEP, generator=g),
        "visual": torch.randint(0, 256, (batch, steps, r, r), generator=g, dtype=torch.uint8),
        "fusion_a": torch.randn(batch, steps, config.audio_encoder.d_model, generator=g),
        "fusion_v": torch.randn(batch, steps, config.visual_encoder.d_model, generator=g),
    }


def _per_step(kind: str) -> int:
    """Input elements along axis 1 per step."""
    return timebase.SAMPLES_PER_STEP if kind == "audio" else 1


def _forward(model: AVSyncModel, kind: str, x: dict[str, torch.Tensor], lengths: torch.Tensor,
             chunk: int | None) -> Outputs:
    with torch.no_grad():
        if kind == "fusion":
            ones = torch.ones(lengths.shape[0])
            out = model.fusion_encoder(x["fusion_a"], x["fusion_v"], ones, ones, lengths, chunk)
            return {"log_probs": out.log_probs, "memory": out.memory}
        encoder = model.audio_encoder if kind == "audio" else model.visual_encoder
        out = encoder(x[kind], lengths * _per_step(kind), chunk)
        return {"features": out.features, "embeddings": out.embeddings}


def _stream(model: AVSyncModel, kind: str, x: dict[str, torch.Tensor], chunk: int,
            steps: int) -> tuple[Outputs, torch.Tensor]:
    """Run `step` chunk by chunk (the last one may be short) -> (outputs, final state)."""
    batch = x["audio"].shape[0]
    encoder = {"audio": model.audio_encoder, "visual": model.visual_encoder,
               "fusion": model.fusion_encoder}[kind]
    state, pieces = encoder.initial_state(batch), []
    ones = torch.ones(batch)
    with torch.no_grad():
        for start in range(0, steps, chunk):
            stop = min(start + chunk, steps)
            if kind == "fusion":
                *out, state = encoder.step(x["fusion_a"][:, start:stop],
                                           x["fusion_v"][:, start:stop], ones, ones, state)
            else:
                per = _per_step(kind)
                *out, state = encoder.step(x[kind][:, start * per:stop * per], state)
            pieces.append(out)
    names = ("log_probs", "memory") if kind == "fusion" else ("features", "embeddings")
    return {n: torch.cat([p[i] for p in pieces], dim=1) for i, n in enumerate(names)}, state


def test_forward_shapes_lengths_and_normalised_embeddings(debug_model: AVSyncModel,
                                                         debug_config: ModelConfig) -> None:
    x = _inputs(debug_config, 3, 10, seed=0)
    lengths = torch.tensor([10, 7, 1])
    with torch.no_grad():
        out = debug_model(x["audio"], lengths * 640, x["visual"], lengths, chunk_size=2)
    e, v = debug_config.heads.embed_dim, debug_config.vocab_size
    assert out.audio.features.shape == (3, 10, debug_config.audio_encoder.d_model)
    assert out.visual.embeddings.shape == out.audio.embeddings.shape == (3, 10, e)
    assert out.fusion.log_probs.shape == (3, 10, v)
    assert out.fusion.memory.shape == (3, 10, debug_config.fusion_encoder.d_model)
    assert torch.equal(out.audio.lengths, lengths) and torch.equal(out.fusion.lengths, lengths)
    valid = torch.arange(10)[None] < lengths[:, None]
    norms = out.visual.embeddings.norm(dim=-1)
    assert torch.allclose(norms[valid], torch.ones(int(valid.sum())), atol=1e-5)
    assert torch.equal(norms[~valid], torch.zeros(int((~valid).sum())))
    assert torch.allclose(out.fusion.log_probs.exp().sum(-1), torch.ones(3, 10), atol=1e-5)


@pytest.mark.parametrize("chunk", [2, None])
@pytest.mark.parametrize("kind", KINDS)
def test_batched_forward_equals_per_sample_forward(debug_model: AVSyncModel,
                                                   debug_config: ModelConfig, kind: str,
                                                   chunk: int | None) -> None:
    x = _inputs(debug_config, 3, 11, seed=1)
    lengths = torch.tensor([11, 6, 3])
    batched = _forward(debug_model, kind, x, lengths, chunk)
    for i, n in enumerate(lengths.tolist()):
        single = {k: v[i:i + 1, :n * _per_step(k) if k == "audio" else n]
                  for k, v in x.items()}
        alone = _forward(debug_model, kind, single, lengths[i:i + 1], chunk)
        for name, value in alone.items():
            assert (batched[name][i, :n] - value[0]).abs().max() < 1e-5, (name, i)


@pytest.mark.parametrize("steps", [0, 1])
def test_empty_and_one_step_inputs(debug_model: AVSyncModel, debug_config: ModelConfig,
                                   steps: int) -> None:
    x = _inputs(debug_config, 2, steps, seed=2)
    lengths = torch.full((2,), steps)
    with torch.no_grad():
        for chunk in (2, None):
            out = debug_model(x["audio"], lengths * 640, x["visual"], lengths,
                              chunk_size=chunk)
            assert out.fusion.log_probs.shape == (2, steps, debug_config.vocab_size)
            assert torch.isfinite(out.fusion.log_probs).all()
            assert out.audio.embeddings.shape == (2, steps, debug_config.heads.embed_dim)
    if steps:
        for kind in KINDS:
            streamed, _ = _stream(debug_model, kind, x, chunk=1, steps=1)
            expected = _forward(debug_model, kind, x, lengths, 1)
            for name, value in streamed.items():
                assert (value - expected[name]).abs().max() < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_a_chunk_never_sees_the_future(debug_model: AVSyncModel, debug_config: ModelConfig,
                                       kind: str) -> None:
    chunk, steps = 2, 12
    x = _inputs(debug_config, 2, steps, seed=3)
    lengths = torch.full((2,), steps)
    before = _forward(debug_model, kind, x, lengths, chunk)
    for c in (0, 2, 4):
        end = (c + 1) * chunk  # first step after chunk c
        changed = _perturbed(x, kind, end, steps)
        after = _forward(debug_model, kind, changed, lengths, chunk)
        for name in before:
            assert torch.allclose(after[name][:, :end], before[name][:, :end], atol=1e-6), (c, name)
            assert not torch.allclose(after[name][:, end:], before[name][:, end:], atol=1e-4)
        # the check can fail: the last step of chunk c is visible to the chunk's first step
        inside = _forward(debug_model, kind, _perturbed(x, kind, end - 1, end), lengths, chunk)
        first = c * chunk
        assert not torch.allclose(inside["memory" if kind == "fusion" else "features"][:, first],
                                  before["memory" if kind == "fusion" else "features"][:, first],
                                  atol=1e-4)


def _perturbed(x: dict[str, torch.Tensor], kind: str, start: int, stop: int
               ) -> dict[str, torch.Tensor]:
    """A copy of x whose steps [start, stop) of `kind`'s input are changed."""
    y = {k: v.clone() for k, v in x.items()}
    if kind == "audio":
        y["audio"][:, start * 640:stop * 640] += 0.5
    elif kind == "visual":
        y["visual"][:, start:stop] = 255 - y["visual"][:, start:stop]
    else:
        y["fusion_a"][:, start:stop] += 1.0
        y["fusion_v"][:, start:stop] -= 1.0
    return y


@pytest.mark.parametrize("chunk", [2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_streaming_steps_equal_forward(debug_model: AVSyncModel, debug_config: ModelConfig,
                                       kind: str, chunk: int) -> None:
    steps = 23  # several chunks, a short last one, and far more than the left context (6)
    assert steps > 3 * debug_config.streaming.left_context
    x = _inputs(debug_config, 2, steps, seed=4)
    expected = _forward(debug_model, kind, x, torch.full((2,), steps), chunk)
    streamed, state = _stream(debug_model, kind, x, chunk, steps)
    for name, value in streamed.items():
        assert value.shape == expected[name].shape
        assert (value - expected[name]).abs().max() <= 1e-5, name
    encoder = {"audio": debug_model.audio_encoder, "visual": debug_model.visual_encoder,
               "fusion": debug_model.fusion_encoder}[kind]
    counter = encoder.state_layout().unpack(state)[f"blocks.{COUNTER}"]
    assert torch.equal(counter, torch.full((2, 1), float(debug_config.streaming.left_context)))


def test_state_layouts_describe_the_packed_states(debug_model: AVSyncModel) -> None:
    for encoder in (debug_model.audio_encoder, debug_model.visual_encoder,
                    debug_model.fusion_encoder):
        layout = encoder.state_layout()
        described = json.loads(json.dumps(layout.to_list()))
        offset = 0
        for entry in described:
            assert entry["offset"] == offset
            size = 1
            for s in entry["shape"]:
                size *= s
            offset += size
        assert offset == layout.size == encoder.state_size
        assert torch.equal(encoder.initial_state(3), torch.zeros(3, layout.size))


def test_an_absent_modality_is_ignored_by_fusion(debug_model: AVSyncModel,
                                                 debug_config: ModelConfig) -> None:
    x = _inputs(debug_config, 2, 6, seed=5)
    lengths = torch.full((2,), 6)
    present, absent = torch.ones(2), torch.zeros(2)
    with torch.no_grad():
        video_only = debug_model.fusion_encoder(x["fusion_a"], x["fusion_v"], absent, present,
                                                lengths, 2)
        other_audio = debug_model.fusion_encoder(-x["fusion_a"], x["fusion_v"], absent, present,
                                                 lengths, 2)
    assert torch.equal(video_only.log_probs, other_audio.log_probs)


def test_transformer_blocks_stream_like_forward_too(debug_config: ModelConfig) -> None:
    fusion = dataclasses.replace(debug_config.fusion_encoder, block="transformer")
    config = dataclasses.replace(debug_config, fusion_encoder=fusion)
    torch.manual_seed(0)
    model = AVSyncModel(config).eval()
    x = _inputs(config, 2, 17, seed=6)
    expected = _forward(model, "fusion", x, torch.full((2,), 17), 3)
    streamed, _ = _stream(model, "fusion", x, 3, 17)
    assert model.fusion_encoder.state_size < AVSyncModel(debug_config).fusion_encoder.state_size
    for name, value in streamed.items():
        assert (value - expected[name]).abs().max() <= 1e-5, name
