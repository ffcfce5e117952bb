"""What a model costs: parameters per part and FLOPs per 40 ms step per part.

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` over each streaming `step` (one
stream, one chunk of the configured size, divided by the chunk's steps), on the meta device:
no memory is allocated and nothing is computed, so even `base` is counted in seconds. The
counter sees matmuls and convolutions (what dominates), not elementwise ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from avsync import timebase
from avsync.models.config import BOS_ID, ModelConfig, steps_latency_ms
from avsync.models.encoders import ModalityEncoder
from avsync.models.model import AVSyncModel
from avsync.models.state import StateLayout

DECODER_MEMORY_STEPS: int = 100  # 4 s of memory for the per-token rescoring cost


@dataclass(frozen=True)
class PartCost:
    """params: parameters of the part; mflops: MFLOPs per 40 ms step (None: not per step)."""

    name: str
    params: int
    mflops: float | None


@dataclass(frozen=True)
class ModelCost:
    name: str
    chunk_size: int
    left_context: int
    latency_ms: int
    parts: tuple[PartCost, ...]
    decoder_mflops_per_token: float

    @property
    def total_params(self) -> int:
        return sum(p.params for p in self.parts)

    @property
    def streaming_mflops(self) -> float:
        return sum(p.mflops or 0.0 for p in self.parts)


def _params(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _flops(run: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run()
    return counter.get_total_flops()


def build_meta(config: ModelConfig) -> AVSyncModel:
    """The model on the meta device: shapes only, no memory, no initialisation cost."""
    with torch.device("meta"):
        return AVSyncModel(config).eval()


def _inputs(model: AVSyncModel, c: int) -> dict[str, torch.Tensor]:
    """Meta tensors for one stream and one chunk of c steps."""
    config, meta = model.config, torch.device("meta")
    r = config.visual_frontend.roi_stored
    return {"audio": torch.zeros(1, c * timebase.SAMPLES_PER_STEP, device=meta),
            "video": torch.zeros(1, c, r, r, dtype=torch.uint8, device=meta),
            "audio_features": torch.zeros(1, c, config.audio_encoder.d_model, device=meta),
            "visual_features": torch.zeros(1, c, config.visual_encoder.d_model, device=meta),
            "embed": torch.zeros(1, c, config.heads.embed_dim, device=meta),
            "ones": torch.ones(1, device=meta)}


def _encoder_costs(encoder: ModalityEncoder, chunk: torch.Tensor, label: str, c: int
                   ) -> tuple[PartCost, PartCost]:
    """(front end, blocks + sync) costs of a modality encoder's step."""
    layout = StateLayout(encoder.frontend.state_specs())
    frontend_state = layout.unpack(layout.initial(1, torch.device("meta")))
    frontend = _flops(lambda: encoder.frontend.step(chunk, frontend_state))
    whole = _flops(lambda: encoder.step(chunk, encoder.initial_state(1, torch.device("meta"))))
    return (PartCost(f"{label} front end", _params(encoder.frontend), frontend * 1e-6 / c),
            PartCost(f"{label} encoder + sync", _params(encoder.blocks, encoder.norm, encoder.sync),
                     (whole - frontend) * 1e-6 / c))


def model_cost(config: ModelConfig, chunk_size: int | None = None) -> ModelCost:
    """Parameters and per-step MFLOPs of every part, for one stream at `chunk_size` steps."""
    model = build_meta(config)
    c = chunk_size or config.streaming.chunk_size
    x = _inputs(model, c)
    fusion = model.fusion_encoder
    fusion_flops = _flops(lambda: fusion.step(
        x["audio_features"], x["visual_features"], x["ones"], x["ones"],
        fusion.initial_state(1, torch.device("meta"))))
    asd_flops = _flops(lambda: model.asd_head(x["embed"], x["embed"]))
    parts = (*_encoder_costs(model.audio_encoder, x["audio"], "audio", c),
             *_encoder_costs(model.visual_encoder, x["video"], "visual", c),
             PartCost("fusion encoder + CTC", _params(fusion), fusion_flops * 1e-6 / c),
             PartCost("ASD head", _params(model.asd_head), asd_flops * 1e-6 / c),
             PartCost("attention decoder", _params(model.decoder), None),
             PartCost("sync temperature", 1, None))
    return ModelCost(config.name, c, config.streaming.left_context, steps_latency_ms(c), parts,
                     _decoder_flops(model) * 1e-6)


def _decoder_flops(model: AVSyncModel) -> int:
    """FLOPs of one decoder token over DECODER_MEMORY_STEPS steps of memory."""
    meta = torch.device("meta")
    memory = torch.zeros(1, DECODER_MEMORY_STEPS, model.config.fusion_encoder.d_model,
                         device=meta)
    token = torch.full((1, 1), BOS_ID, dtype=torch.long, device=meta)
    one = torch.ones(1, dtype=torch.long, device=meta)
    return _flops(lambda: model.decoder(token, one, memory, one * DECODER_MEMORY_STEPS))


def format_cost(cost: ModelCost) -> str:
    """A plain-text table: params and MFLOPs per 40 ms step per part, totals, latency."""
    lines = [f"model {cost.name}: chunk {cost.chunk_size} steps "
             f"({cost.latency_ms} ms algorithmic latency), left context {cost.left_context} "
             f"steps ({cost.left_context * timebase.STEP_MS} ms)",
             f"{'part':<24}{'params':>14}{'MFLOPs/step':>14}"]
    for part in cost.parts:
        mflops = "-" if part.mflops is None else f"{part.mflops:.3f}"
        lines.append(f"{part.name:<24}{part.params:>14,}{mflops:>14}")
    lines.append(f"{'total':<24}{cost.total_params:>14,}{cost.streaming_mflops:>14.3f}")
    gflops = cost.streaming_mflops * timebase.FPS / 1000
    lines.append(f"streaming cost: {gflops:.3f} GFLOP per second of audio-visual input "
                 "(one face, matmuls and convolutions)")
    lines.append(f"decoder rescoring: {cost.decoder_mflops_per_token:.3f} MFLOPs per token over "
                 f"{DECODER_MEMORY_STEPS} steps of memory")
    return "\n".join(lines)
