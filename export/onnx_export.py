"""One ONNX graph per streaming part, and the model card that describes them.

The graphs (names and shapes: `avsync.runtime.model_card`): audio step (PCM and log-mel inside),
visual step (uint8 ROIs, centre crop and normalisation inside), fusion step (presence flags
inside), ASD head, attention decoder. Batch on axis 0 and the chunk length are dynamic; states
are one packed float32 tensor per encoder. Exported with the TorchScript-based exporter
(`dynamo=False`): for these graphs it gives the same numbers as the dynamo exporter (checked
when this was written) in a twentieth of the time, which keeps the parity-checked export of a
model, and its tests, within seconds on two CPU cores. Only standard ONNX operators (opset 17).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import onnx
import torch
from torch import nn

from avsync import __version__, timebase
from avsync.media import roi as roi_convention
from avsync.models.encoders import ModalityEncoder
from avsync.models.model import AVSyncModel
from avsync.runtime.model_card import (
    ASD_HEAD,
    AUDIO_STEP,
    DECODER,
    FORMAT,
    FORMAT_VERSION,
    FUSION_STEP,
    GRAPHS,
    MODEL_TYPE,
    TOKENIZER_FILE,
    VISUAL_STEP,
    AsdCalibration,
    GraphSpec,
    ModelCard,
    RoiSpec,
    StateSpec,
    card_metadata,
)
from avsync.text.tokenizer import Tokenizer

log = logging.getLogger(__name__)

OPSET: int = 17
TRACE_BATCH: int = 2  # parity checks then use another batch size and other lengths


class Conv1dAsConv2d(nn.Module):
    """An `nn.Conv1d`, computed as a Conv2d over a height-1 image with the same weights.

    The same numbers, but onnxruntime's CPU kernels run 1-D convolutions through a slow
    generic path: measured on the tiny model's convolutions, the 2-D form is 2-3x faster for
    the front end's strided and causal convolutions and 10-18x faster for the conformer's
    depthwise ones. Used only in the exported graphs; the parity check compares them with
    the untouched PyTorch model.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        assert conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        pad = c.padding[0]
        assert isinstance(pad, int)
        y = nn.functional.conv2d(x.unsqueeze(2), c.weight.unsqueeze(2), c.bias,
                                 stride=(1, c.stride[0]), padding=(0, pad),
                                 dilation=(1, c.dilation[0]), groups=c.groups)
        return y.squeeze(2)


class GroupNorm1AsLayerNorm(nn.Module):
    """`nn.GroupNorm(1, C)` as one LayerNormalization over (C, H, W) plus the per-channel
    affine: the same numbers, one fused onnxruntime kernel instead of the reshape /
    InstanceNormalization / reshape / Mul / Add chain the exporter makes of a GroupNorm."""

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        assert norm.num_groups == 1 and norm.affine
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (C, H, W) are fixed for a model (the ROI size): constants in the graph
        y = nn.functional.layer_norm(x, [int(d) for d in x.shape[1:]], eps=self.norm.eps)
        return y * self.norm.weight[:, None, None] + self.norm.bias[:, None, None]


def for_export(model: AVSyncModel) -> AVSyncModel:
    """A copy of `model` (eval mode) with every Conv1d in its 2-D form and every one-group
    GroupNorm as a LayerNorm (the modules above)."""
    copy = deepcopy(model).eval()
    for module in list(copy.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv1d):
                setattr(module, name, Conv1dAsConv2d(child))
            elif isinstance(child, nn.GroupNorm) and child.num_groups == 1 and child.affine:
                setattr(module, name, GroupNorm1AsLayerNorm(child))
    return copy


class ModalityStepGraph(nn.Module):
    """Audio or visual encoder step: (chunk, state) -> (features, embed, new_state)."""

    def __init__(self, encoder: ModalityEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, chunk: torch.Tensor, state: torch.Tensor):
        return self.encoder.step(chunk, state)


class FusionStepGraph(nn.Module):
    def __init__(self, model: AVSyncModel) -> None:
        super().__init__()
        self.encoder = model.fusion_encoder

    def forward(self, audio_features: torch.Tensor, visual_features: torch.Tensor,
                audio_present: torch.Tensor, video_present: torch.Tensor, state: torch.Tensor):
        return self.encoder.step(audio_features, visual_features, audio_present, video_present,
                                 state)


class AsdGraph(nn.Module):
    def __init__(self, model: AVSyncModel) -> None:
        super().__init__()
        self.head = model.asd_head

    def forward(self, visual_embed: torch.Tensor, audio_embed: torch.Tensor) -> torch.Tensor:
        return self.head(visual_embed, audio_embed)


class DecoderGraph(nn.Module):
    """Teacher-forced decoder -> log-softmax, so a runtime only gathers and sums."""

    def __init__(self, model: AVSyncModel) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, memory: torch.Tensor, memory_lengths: torch.Tensor, tokens: torch.Tensor,
                token_lengths: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(tokens, token_lengths, memory, memory_lengths)
        return torch.log_softmax(logits, dim=-1)


def _example_inputs(model: AVSyncModel, spec: GraphSpec) -> tuple[torch.Tensor, ...]:
    """Trace inputs: batch TRACE_BATCH, one chunk of the configured size (random values)."""
    config, b = model.config, TRACE_BATCH
    c = config.streaming.chunk_size
    g = torch.Generator().manual_seed(0)
    if spec is AUDIO_STEP:
        return (0.1 * torch.randn(b, c * timebase.SAMPLES_PER_STEP, generator=g),
                model.audio_encoder.initial_state(b))
    if spec is VISUAL_STEP:
        r = config.visual_frontend.roi_stored
        return (torch.randint(0, 256, (b, c, r, r), generator=g, dtype=torch.uint8),
                model.visual_encoder.initial_state(b))
    if spec is FUSION_STEP:
        return (torch.randn(b, c, config.audio_encoder.d_model, generator=g),
                torch.randn(b, c, config.visual_encoder.d_model, generator=g),
                torch.ones(b), torch.ones(b), model.fusion_encoder.initial_state(b))
    if spec is ASD_HEAD:
        e = config.heads.embed_dim
        return (nn.functional.normalize(torch.randn(b, c, e, generator=g), dim=-1),
                nn.functional.normalize(torch.randn(b, c, e, generator=g), dim=-1))
    assert spec is DECODER
    t, u = 3 * c + 1, 5
    return (torch.randn(b, t, config.fusion_encoder.d_model, generator=g),
            torch.full((b,), t, dtype=torch.long),
            torch.randint(4, config.vocab_size, (b, u), generator=g),
            torch.full((b,), u, dtype=torch.long))


_WRAPPERS: dict[str, Callable[[AVSyncModel], nn.Module]] = {
    AUDIO_STEP.name: lambda m: ModalityStepGraph(m.audio_encoder),
    VISUAL_STEP.name: lambda m: ModalityStepGraph(m.visual_encoder),
    FUSION_STEP.name: FusionStepGraph, ASD_HEAD.name: AsdGraph, DECODER.name: DecoderGraph}

# Dynamic axes per input/output name: batch everywhere, time where a tensor has it.
_TIME_AXES: dict[str, dict[int, str]] = {
    "audio": {1: "samples"}, "video": {1: "steps"}, "features": {1: "steps"},
    "embed": {1: "steps"}, "audio_features": {1: "steps"}, "visual_features": {1: "steps"},
    "log_probs": {1: "steps"}, "memory": {1: "steps"}, "visual_embed": {1: "steps"},
    "audio_embed": {1: "steps"}, "logits": {1: "steps"}, "tokens": {1: "tokens"}}


def _dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    axes = {}
    for name in (*spec.inputs, *spec.outputs):
        time = dict(_TIME_AXES.get(name, {}))
        if spec is DECODER and name == "log_probs":
            time = {1: "tokens"}
        axes[name] = {0: "batch", **time}
    return axes


def export_graph(model: AVSyncModel, spec: GraphSpec, path: Path) -> Path:
    """Trace one part of `model` (eval mode) into `path` with dynamic batch and length."""
    wrapper = _WRAPPERS[spec.name](model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about static head sizes are expected
        torch.onnx.export(wrapper, _example_inputs(model, spec), str(path), dynamo=False,
                          input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=_dynamic_axes(spec), opset_version=OPSET,
                          do_constant_folding=True)
    return path


def export_graphs(model: AVSyncModel, out_dir: Path) -> dict[str, Path]:
    """All five graphs into `out_dir` (without metadata: `stamp_metadata` adds the card)."""
    exported = for_export(model)
    return {spec.name: export_graph(exported, spec, out_dir / spec.file()) for spec in GRAPHS}


def stamp_metadata(path: Path, card: ModelCard, graph: str) -> None:
    """Replace the file's metadata_props with the card (every model.json key) + its graph."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in card_metadata(card, graph).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "avsync-export"
    proto.producer_version = __version__
    onnx.save(proto, str(path))


def build_card(model: AVSyncModel, tokenizer: Tokenizer, *, int8: bool, chunk_steps: int,
               calibration: AsdCalibration, training: dict, metrics: dict,
               export_facts: dict) -> ModelCard:
    """The card of an exported `model` (fields: docs/model-format.md); `chunk_steps` is the
    chunk a runtime should stream with (the graphs take any)."""
    config = model.config
    visual = config.visual_frontend
    pieces = tokenizer.pieces
    states = {name: StateSpec(enc.state_size, tuple(enc.state_layout().to_list()))
              for name, enc in (("audio", model.audio_encoder), ("visual", model.visual_encoder),
                                ("fusion", model.fusion_encoder))}
    graphs = {spec.name: {"file": spec.file(), "int8_file": spec.file(True) if int8 else None,
                          "inputs": list(spec.inputs), "outputs": list(spec.outputs)}
              for spec in GRAPHS}
    return ModelCard(
        format=FORMAT, format_version=FORMAT_VERSION, model_type=MODEL_TYPE,
        model_name=config.name, model_version=__version__,
        sample_rate=timebase.SAMPLE_RATE, fps=timebase.FPS,
        samples_per_step=timebase.SAMPLES_PER_STEP, mel_bins=timebase.MEL_BINS,
        chunk_steps=chunk_steps, left_context=config.streaming.left_context,
        roi=RoiSpec(stored=visual.roi_stored, size=visual.roi_size, mean=timebase.ROI_MEAN,
                    std=timebase.ROI_STD, mouth_center_x=roi_convention.MOUTH_CENTER_X,
                    mouth_center_y=roi_convention.MOUTH_CENTER_Y,
                    mouth_side=roi_convention.MOUTH_SIDE, convention=visual.roi_convention),
        vocab=tuple(pieces), blank_id=tokenizer.blank_id, unk_id=tokenizer.unk_id,
        bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id, tokenizer=TOKENIZER_FILE,
        tokenizer_sha256=tokenizer.sha256, embed_dim=config.heads.embed_dim,
        audio_dim=config.audio_encoder.d_model, visual_dim=config.visual_encoder.d_model,
        fusion_dim=config.fusion_encoder.d_model, states=states, graphs=graphs,
        asd_calibration=calibration, training=training, metrics=metrics, export=export_facts)
