"""`ModelConfig`: every size of an avsync model, as frozen dataclasses.

A model is a plain `nn.Module` built from one of these (STYLE.md lesson 2). The YAML files in
`train/configs/` hold one `model:` section each, read with `ModelConfig.from_dict`; checkpoints
store `to_dict()` so a model always travels with the numbers that built it. Unknown keys are
errors, not silently ignored, so a typo in a YAML file cannot train the wrong model.

Loss weights and augmentation are training's (`avsync.models.objective.ObjectiveConfig`, the
YAML files' top-level `objective:` section). Checkpoints and YAML files written before they
moved hold them as `model.objective`; `ModelConfig.from_dict` still reads those
(`split_legacy_objective`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from avsync import timebase
from avsync.errors import ConfigError

# Tokenizer ids (docs/architecture.md): the CTC blank is the padding id.
PAD_ID: int = 0
BLANK_ID: int = 0
UNK_ID: int = 1
BOS_ID: int = 2
EOS_ID: int = 3
FIRST_PIECE_ID: int = 4

BlockKind = Literal["conformer", "transformer"]
PRESETS: tuple[str, ...] = ("debug", "tiny", "small", "base")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_heads(where: str, d_model: int, n_heads: int) -> None:
    check(n_heads >= 1 and d_model % n_heads == 0 and (d_model // n_heads) % 2 == 0,
          f"{where} d_model ({d_model}) must split into n_heads ({n_heads}) heads of an even "
          "width (rotary positions rotate channel pairs)")


@dataclass(frozen=True)
class StreamingConfig:
    """Chunked attention geometry shared by the three encoders (one model card entry each).

    A step in chunk c (steps [c*chunk_size, (c+1)*chunk_size)) sees its whole chunk and at most
    `left_context` steps before the chunk's start. `chunk_size` is what the exported streaming
    model runs with; training samples other sizes too (`ObjectiveConfig.chunk_sizes`).
    """

    chunk_size: int = 4
    left_context: int = 32

    def __post_init__(self) -> None:
        check(self.chunk_size >= 1,
              f"streaming.chunk_size must be >= 1 step, got {self.chunk_size}")
        check(self.left_context >= 1,
              f"streaming.left_context must be >= 1 step, got {self.left_context}")


@dataclass(frozen=True)
class AudioFrontendConfig:
    """Log-mel (inside the model) -> strided conv to 25 Hz -> causal conv -> encoder width.

    The first conv sees the 4 mel frames of a step plus `past_frames` cached earlier frames
    (kernel 4 + past_frames, stride 4); the second one `kernel_steps` steps (causal).
    """

    channels: int = 128
    past_frames: int = 4
    kernel_steps: int = 3

    def __post_init__(self) -> None:
        check(self.channels >= 1, f"audio_frontend.channels must be >= 1, got {self.channels}")
        check(self.past_frames >= 1,
              f"audio_frontend.past_frames must be >= 1, got {self.past_frames}")
        check(self.kernel_steps >= 2,
              f"audio_frontend.kernel_steps must be >= 2, got {self.kernel_steps}")


@dataclass(frozen=True)
class VisualFrontendConfig:
    """uint8 mouth ROI -> normalise -> causal 3D stem -> 2D ResNet trunk per frame -> pooled.

    The stem is a 3D conv (temporal kernel `temporal_kernel`, past frames only, spatial kernel
    `stem_kernel`, stride (1, 2, 2)); `stem_pool` adds ResNet-18's 3x3/2 max pool. Stage i has
    `stage_blocks[i]` basic blocks of `stage_channels[i]` channels and its first block has
    stride `stage_strides[i]` (ResNet-18: 1, 2, 2, 2). Inputs larger than `roi_size` (e.g. `roi_stored` crops from a
    runtime) are centre-cropped inside the model. `roi_convention` names how the crops were
    cut ("face-box" or "mean-face", `avsync.media.roi`); the prepared cache must match it.
    """

    roi_size: int = 36
    roi_stored: int = 40
    temporal_kernel: int = 5
    stem_channels: int = 16
    stem_kernel: int = 5
    stem_pool: bool = False
    stage_channels: tuple[int, ...] = (16, 32, 64)
    stage_blocks: tuple[int, ...] = (1, 1, 1)
    stage_strides: tuple[int, ...] = (1, 2, 2)
    roi_convention: str = "face-box"  # how the mouth crops are cut (avsync.media.roi)

    def __post_init__(self) -> None:
        from avsync.media.roi import CONVENTIONS

        check(self.roi_convention in CONVENTIONS,
              f"visual_frontend.roi_convention {self.roi_convention!r} is not one of "
              f"{sorted(CONVENTIONS)} (avsync.media.roi)")
        check(self.roi_size >= 8, f"visual_frontend.roi_size must be >= 8 px, got {self.roi_size}")
        check(self.roi_stored >= self.roi_size,
              f"visual_frontend.roi_stored ({self.roi_stored}) must be >= roi_size "
              f"({self.roi_size}): the network input is a crop of the stored ROI")
        check(self.temporal_kernel >= 2,
              f"visual_frontend.temporal_kernel must be >= 2, got {self.temporal_kernel}")
        check(self.stem_kernel % 2 == 1,
              f"visual_frontend.stem_kernel must be odd, got {self.stem_kernel}")
        check(len(self.stage_channels) == len(self.stage_blocks) == len(self.stage_strides)
               and len(self.stage_blocks) >= 1,
               f"visual_frontend.stage_channels {self.stage_channels}, stage_blocks "
               f"{self.stage_blocks} and stage_strides {self.stage_strides} must be non-empty "
               "and of equal length")


@dataclass(frozen=True)
class EncoderConfig:
    """A stack of chunk-attention blocks (`conformer`: macaron FF + MHSA + causal conv)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    block: BlockKind = "conformer"
    conv_kernel: int = 15
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _check_heads("encoder", self.d_model, self.n_heads)
        check(self.n_layers >= 0, f"encoder n_layers must be >= 0, got {self.n_layers}")
        check(self.block in ("conformer", "transformer"),
              f"encoder block must be 'conformer' or 'transformer', got {self.block!r}")
        check(self.conv_kernel >= 2, f"encoder conv_kernel must be >= 2, got {self.conv_kernel}")
        check(0.0 <= self.dropout < 1.0, f"encoder dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class DecoderConfig:
    """The attention decoder over the fusion memory (teacher forcing; n-best rescoring)."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _check_heads("decoder", self.d_model, self.n_heads)
        check(self.n_layers >= 1, f"decoder n_layers must be >= 1, got {self.n_layers}")


@dataclass(frozen=True)
class HeadsConfig:
    """Sync projections (L2-normalised, `embed_dim`) and the ASD MLP width.

    `audio_ctc`, `visual_ctc`: a CTC head on the audio (visual) encoder alone, used in
    training only (`ObjectiveConfig.audio_ctc_weight`, `visual_ctc_weight`), never exported.
    """

    embed_dim: int = 128
    asd_hidden: int = 64
    audio_ctc: bool = False
    visual_ctc: bool = False

    def __post_init__(self) -> None:
        check(self.embed_dim >= 2, f"heads.embed_dim must be >= 2, got {self.embed_dim}")
        check(self.asd_hidden >= 1, f"heads.asd_hidden must be >= 1, got {self.asd_hidden}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that builds an `AVSyncModel`. `vocab_size` must equal the tokenizer's."""

    name: str = "custom"
    vocab_size: int = 256
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    audio_frontend: AudioFrontendConfig = field(default_factory=AudioFrontendConfig)
    visual_frontend: VisualFrontendConfig = field(default_factory=VisualFrontendConfig)
    audio_encoder: EncoderConfig = field(default_factory=EncoderConfig)
    visual_encoder: EncoderConfig = field(default_factory=EncoderConfig)
    fusion_encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(n_layers=3))
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def __post_init__(self) -> None:
        check(self.vocab_size > FIRST_PIECE_ID,
              f"vocab_size must be > {FIRST_PIECE_ID} (pad/blank, unk, bos, eos come first), "
              f"got {self.vocab_size}; set it to the tokenizer's vocabulary size")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a YAML/JSON mapping; unknown keys raise `ConfigError` naming them. A
        mapping with the old `objective` block loads too (`split_legacy_objective`)."""
        return from_mapping(cls, split_legacy_objective(data)[0], "model")

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-ready mapping; `from_dict(to_dict())` gives back an equal config."""
        return to_mapping(self)


LEGACY_OBJECTIVE_KEY = "objective"


def split_legacy_objective(data: Any) -> tuple[Any, dict[str, Any] | None]:
    """A model mapping written before the objective moved to training -> (the mapping
    without it, the old `objective` block or None).

    The old block also decided whether the model had its training-only modality CTC heads
    (a weight above 0 built one): those become `heads.audio_ctc` / `heads.visual_ctc`, so the
    weights of an old checkpoint load into the model that trained them.
    """
    if not isinstance(data, dict) or LEGACY_OBJECTIVE_KEY not in data:
        return data, None
    model = {k: v for k, v in data.items() if k != LEGACY_OBJECTIVE_KEY}
    objective = data[LEGACY_OBJECTIVE_KEY]
    if not isinstance(objective, dict):
        raise ConfigError(f"model.objective must be a mapping, got {objective!r}")
    heads = dict(model.get("heads") or {})
    for head in ("audio_ctc", "visual_ctc"):
        weight = objective.get(f"{head}_weight", 0.0)
        heads.setdefault(head, isinstance(weight, (int, float)) and weight > 0)
    model["heads"] = heads
    return model, dict(objective)


def to_mapping(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_mapping(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_mapping(v) for v in value]
    return value


def from_mapping(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}: {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(names)}")
    kwargs = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from error


def _convert(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        if value is None or value == "full":
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)][0]
        return _convert(inner, value, where)
    if origin is Literal:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, bool, str) and not isinstance(value, hint):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be int, got {value!r}")
    return value


def config_dir() -> Path:
    """Where the preset YAML files live: `train/configs/` beside the `avsync` package.

    Found by path, not by import, so `avsync` never imports `train` (STYLE.md lesson 1); this
    holds for a checkout (editable install) and for an installed wheel (package data).
    """
    return Path(__file__).resolve().parents[2] / "train" / "configs"


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A preset name (`debug`, `tiny`, `base`) or a YAML file path -> its `model:` section."""
    path, document = read_config_file(name_or_path)
    if "model" not in document:
        raise ConfigError(f"{path} has no 'model:' section; add one (see train/configs/tiny.yaml)")
    return ModelConfig.from_dict(document["model"])


def read_config_file(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A preset name or a YAML file path -> (its path, its whole document)."""
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in PRESETS:
            raise ConfigError(f"no config file {str(name_or_path)!r} and it is not a preset; "
                              f"give a YAML path or one of {list(PRESETS)}")
        path = config_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"preset file {path} is missing; reinstall avsync or pass a path")
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a YAML mapping of sections, got "
                          f"{type(document).__name__}")
    return path, document


def steps_latency_ms(chunk_size: int) -> int:
    """Worst-case algorithmic latency of a chunk: its first step waits for the chunk to fill."""
    return chunk_size * timebase.STEP_MS
