"""The model card: the ONE module that writes and reads `model.json` and ONNX `metadata_props`.

An exported model directory describes itself (STYLE.md lesson 4, sherpa-onnx's habit): its
preprocessing, chunking, vocabulary, state layouts and graph names travel in `model.json` and,
key for key, in every ONNX file's `metadata_props` (each value JSON-encoded), so a single
`.onnx` file copied into another app still says how to feed it. A missing key is a load-time
`ModelLoadError` naming the file and the key, never a wrong guess at run time.

The graph input/output names below are the constants every exporter and runtime uses.
docs/model-format.md documents every key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avsync.errors import ModelLoadError

FORMAT: str = "avsync-model"
FORMAT_VERSION: int = 1
MODEL_TYPE: str = "avsync-streaming-av-ctc-attention"
MODEL_JSON: str = "model.json"
TOKENIZER_FILE: str = "tokenizer.model"
GRAPH_KEY: str = "avsync.graph"  # extra metadata key: which graph an ONNX file holds


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph: file stem, input names and output names, in call order."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def file(self, int8: bool = False) -> str:
        return f"{self.name}.int8.onnx" if int8 else f"{self.name}.onnx"


# audio: (B, C*640) float32 PCM in [-1, 1] @ 16 kHz; state: (B, S_audio) float32
# -> features (B, C, d_audio), embed (B, C, E) unit-norm, new_state (B, S_audio)
AUDIO_STEP = GraphSpec("audio_step", ("audio", "state"), ("features", "embed", "new_state"))
# video: (B, C, R, R) uint8 mouth ROIs at roi.stored; state: (B, S_visual) float32
# -> features (B, C, d_visual), embed (B, C, E) unit-norm, new_state (B, S_visual)
VISUAL_STEP = GraphSpec("visual_step", ("video", "state"), ("features", "embed", "new_state"))
# audio_features (B, C, d_audio), visual_features (B, C, d_visual), audio_present (B,) and
# video_present (B,) float32 in {0, 1}, state (B, S_fusion)
# -> log_probs (B, C, V) float32 CTC log-probabilities (blank 0), memory (B, C, d_fusion), new_state
FUSION_STEP = GraphSpec(
    "fusion_step", ("audio_features", "visual_features", "audio_present", "video_present",
                    "state"), ("log_probs", "memory", "new_state"))
# visual_embed (B, T, E), audio_embed (B, T, E) -> logits (B, T) float32 (uncalibrated)
ASD_HEAD = GraphSpec("asd_head", ("visual_embed", "audio_embed"), ("logits",))
# memory (B, T, d_fusion) float32, memory_lengths (B,) int64 steps, tokens (B, U) int64
# (bos + hypothesis, padded with 0), token_lengths (B,) int64 -> log_probs (B, U, V) float32
DECODER = GraphSpec("decoder", ("memory", "memory_lengths", "tokens", "token_lengths"),
                    ("log_probs",))
GRAPHS: tuple[GraphSpec, ...] = (AUDIO_STEP, VISUAL_STEP, FUSION_STEP, ASD_HEAD, DECODER)
STREAMS: tuple[str, ...] = ("audio", "visual", "fusion")  # the three packed states


@dataclass(frozen=True)
class RoiSpec:
    """Mouth crops: what to feed the visual graph, and how they are cut out of a face box."""

    stored: int  # side of the uint8 crops the graph takes
    size: int  # network input side: the graph centre-crops `stored` to this
    mean: float  # normalisation inside the graph: (x / 255 - mean) / std
    std: float
    mouth_center_x: float  # mouth box centre, as fractions of the face box side
    mouth_center_y: float
    mouth_side: float  # mouth box side, as a fraction of the face box side
    color: str = "gray8"
    face_box: str = ("square face-centred crop (an LRS2/LRS3 frame is one); "
                     "see docs/architecture.md")
    # how crops are cut (avsync.media.roi.CONVENTIONS); cards written before it are "face-box"
    convention: str = "face-box"


@dataclass(frozen=True)
class StateSpec:
    """One packed state: (B, size) float32, all zeros for a fresh stream; `slices` name it."""

    size: int
    slices: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AsdCalibration:
    """Platt scaling of the ASD logits: P(speaking) = sigmoid(a * logit + b)."""

    method: str = "platt"
    a: float = 1.0
    b: float = 0.0
    fitted_on: str | None = None  # None: identity, never fitted (no validation data given)
    samples: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and math.isfinite(self.b)):
            raise ModelLoadError(f"asd_calibration a={self.a}, b={self.b} must be finite")


@dataclass(frozen=True)
class ModelCard:
    """Everything a runtime needs to run a model directory, and what it is known to do."""

    format: str
    format_version: int
    model_type: str
    model_name: str
    model_version: str
    sample_rate: int
    fps: int
    samples_per_step: int
    mel_bins: int
    chunk_steps: int
    left_context: int
    roi: RoiSpec
    vocab: tuple[str, ...]
    blank_id: int
    unk_id: int
    bos_id: int
    eos_id: int
    tokenizer: str
    tokenizer_sha256: str
    embed_dim: int
    audio_dim: int
    visual_dim: int
    fusion_dim: int
    states: dict[str, StateSpec]
    graphs: dict[str, dict[str, Any]]
    asd_calibration: AsdCalibration
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    # optional word n-gram LM beside the graphs: file, sha256, order, weight, word_bonus,
    # trained_on (docs/model-format.md, "The language model"); None: no LM
    lm: dict[str, Any] | None = None

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def step_ms(self) -> int:
        return 1000 // self.fps

    def graph_file(self, spec: GraphSpec, int8: bool = False) -> str | None:
        """File name of a graph in its directory; None if that variant was not exported."""
        entry = self.graphs[spec.name]
        return entry.get("int8_file") if int8 else entry["file"]

    @property
    def has_int8(self) -> bool:
        return all(self.graphs[g.name].get("int8_file") for g in GRAPHS)

    @property
    def int8_schemes(self) -> frozenset[str]:
        """The quantisation schemes of the int8 graphs (`avsync.runtime.precision`); graphs
        exported before the scheme was recorded are "u8s8". Empty without int8 graphs."""
        if not self.has_int8:
            return frozenset()
        return frozenset(self.graphs[g.name].get("int8_scheme", "u8s8") for g in GRAPHS)

    # serialisation ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the content of model.json (keys in declaration order)."""
        data = asdict(self)
        data["vocab"] = list(self.vocab)
        data["states"] = {k: {"size": v.size, "slices": list(v.slices)}
                          for k, v in self.states.items()}
        for key in OPTIONAL_KEYS:
            if data[key] is None:
                del data[key]  # absent, as in cards written before the key existed
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> ModelCard:
        """Validate and build; `source` (a file name) goes into every error message."""
        try:
            return _parse(data, source)
        except ModelLoadError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise ModelLoadError(f"{source}: malformed model card ({error!r}); re-export the "
                                 "model with `avsync export`") from None

    def replace(self, **changes: Any) -> ModelCard:
        import dataclasses

        return dataclasses.replace(self, **changes)


_NESTED = {"roi": RoiSpec, "asd_calibration": AsdCalibration}
OPTIONAL_KEYS = frozenset({"lm"})  # cards written before these keys existed still load
LM_KEYS = ("file", "sha256", "order", "weight", "word_bonus")


def _require(data: Mapping[str, Any], keys: list[str], where: str, source: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ModelLoadError(
            f"{source}: missing key(s) {missing} in {where}; the model directory is incomplete "
            "or from another version: re-export it with `avsync export`")


def _parse(data: Mapping[str, Any], source: str) -> ModelCard:
    import dataclasses

    if not isinstance(data, Mapping):
        raise ModelLoadError(f"{source}: model card must be a JSON object, got "
                             f"{type(data).__name__}")
    required = [f.name for f in dataclasses.fields(ModelCard) if f.name not in OPTIONAL_KEYS]
    _require(data, required, "the model card", source)
    if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
        raise ModelLoadError(f"{source}: format {data['format']!r} version "
                             f"{data['format_version']!r} is not {FORMAT!r} version "
                             f"{FORMAT_VERSION}; use the avsync release that exported it")
    values = {k: data[k] for k in required}
    values.update({k: data[k] for k in OPTIONAL_KEYS if data.get(k) is not None})
    if values.get("lm") is not None:
        _require(values["lm"], list(LM_KEYS), "'lm'", source)
    for key, kind in _NESTED.items():
        fields = [f.name for f in dataclasses.fields(kind) if f.default is dataclasses.MISSING]
        _require(values[key], fields, f"'{key}'", source)
        values[key] = kind(**values[key])
    _check_convention(values["roi"].convention, source)
    for stream in STREAMS:
        _require(values["states"], [stream], "'states'", source)
        _require(values["states"][stream], ["size", "slices"], f"'states.{stream}'", source)
    values["states"] = {k: StateSpec(int(v["size"]), tuple(v["slices"]))
                        for k, v in values["states"].items()}
    for spec in GRAPHS:
        _require(values["graphs"], [spec.name], "'graphs'", source)
        _require(values["graphs"][spec.name], ["file", "inputs", "outputs"],
                 f"'graphs.{spec.name}'", source)
        declared = values["graphs"][spec.name]
        if tuple(declared["inputs"]) != spec.inputs or tuple(declared["outputs"]) != spec.outputs:
            raise ModelLoadError(
                f"{source}: graph {spec.name} declares inputs {declared['inputs']} and outputs "
                f"{declared['outputs']}, this runtime needs {list(spec.inputs)} and "
                f"{list(spec.outputs)}; re-export the model")
    values["vocab"] = tuple(str(p) for p in values["vocab"])
    return ModelCard(**values)


def _check_convention(name: str, source: str) -> None:
    from avsync.media.roi import CONVENTIONS

    if name not in CONVENTIONS:
        raise ModelLoadError(
            f"{source}: the model was trained on mouth crops cut by convention {name!r}, which "
            f"this avsync cannot cut (it knows {sorted(CONVENTIONS)}); serving it would feed "
            "it crops unlike its training data: use the avsync release that exported it")


# files ---------------------------------------------------------------------------------------
def write_card(model_dir: str | Path, card: ModelCard) -> Path:
    """Write `model.json` (indented, stable key order) into `model_dir`."""
    path = Path(model_dir) / MODEL_JSON
    path.write_text(json.dumps(card.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def read_card(model_dir: str | Path) -> ModelCard:
    """Read and validate `model_dir/model.json` -> ModelCard (ModelLoadError if not usable)."""
    path = Path(model_dir) / MODEL_JSON
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: not found; a model directory holds model.json, the "
                             "ONNX graphs and the tokenizer (see docs/model-format.md)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{path}: not valid JSON ({error}); re-export the model") from None
    return ModelCard.from_json(data, str(path))


def card_metadata(card: ModelCard, graph: str) -> dict[str, str]:
    """The ONNX `metadata_props` of one graph: every model.json key, JSON-encoded, plus
    `avsync.graph` naming the graph the file holds."""
    props = {key: json.dumps(value, ensure_ascii=False) for key, value in card.to_json().items()}
    props[GRAPH_KEY] = graph
    return props


def card_from_metadata(props: Mapping[str, str], source: str) -> ModelCard:
    """Rebuild the card from an ONNX file's `metadata_props` (ModelLoadError naming the file
    and the missing key)."""
    try:
        data = {k: json.loads(v) for k, v in props.items() if k != GRAPH_KEY}
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{source}: metadata value is not JSON ({error}); re-export") from None
    return ModelCard.from_json(data, f"{source} (metadata_props)")


def check_metadata(props: Mapping[str, str], card: ModelCard, graph: str, source: str) -> None:
    """An ONNX file's metadata must hold the same card as model.json and name its graph."""
    if props.get(GRAPH_KEY) != graph:
        raise ModelLoadError(f"{source}: metadata key {GRAPH_KEY!r} is "
                             f"{props.get(GRAPH_KEY)!r}, expected {graph!r}; the file is not "
                             "the graph model.json names")
    mirrored = card_from_metadata(props, source)
    if mirrored != card:
        theirs, ours = mirrored.to_json(), card.to_json()
        differing = sorted(k for k in ours if theirs.get(k) != ours[k])
        raise ModelLoadError(f"{source}: metadata_props disagree with model.json on "
                             f"{differing}; the files come from different exports")
