"""`load_model`: open a model directory, checking every file before the first chunk runs.

Checks, each a `ModelLoadError` naming the file and why: model.json present and complete,
the tokenizer present and the one the card names (SHA-256), every ONNX graph present,
loadable by onnxruntime, with the declared input/output names and a `metadata_props` copy
of the card equal to model.json.

On the CPU each streaming step graph also gets a second session specialised to one stream
and one full chunk (`OneStreamGraph`): with every dimension known, onnxruntime folds the
graph's shape arithmetic and rotary angles away (audio 386 -> 224 nodes after optimisation),
and a lone stream's chunk runs 10-20 % faster per graph (bench/runtime.py). Batches, short last
chunks and whole-segment re-reads run the general session; both give the same numbers to
float rounding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avsync.errors import ModelLoadError
from avsync.runtime.lm import NgramLM
from avsync.runtime.model import Model
from avsync.runtime.model_card import (
    AUDIO_STEP,
    FUSION_STEP,
    GRAPHS,
    VISUAL_STEP,
    ModelCard,
    check_metadata,
    read_card,
)
from avsync.runtime.precision import Int8Scheme, Precision, choose_precision
from avsync.runtime.sessions import CPU, Graph, default_providers, open_session, session_options

log = logging.getLogger(__name__)


def load_model(model_dir: str | Path, threads: int = 1, providers: Sequence[str] | None = None,
               precision: str | Precision = Precision.FP32) -> Model:
    """Load an exported model directory.

    threads: intra-op threads per graph; providers: onnxruntime execution providers (None:
    CUDA when onnxruntime-gpu sees a GPU, else CPU); precision: `fp32`, `int8` (the
    `*.int8.onnx` graphs of `avsync export --int8`) or `auto` (int8 where it is exact and
    faster on this CPU, `avsync.runtime.precision`); the choice is `Model.precision`.
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: not a directory; pass the folder `avsync export` "
                             "wrote (it holds model.json)")
    card = read_card(directory)
    _check_tokenizer(directory, card)
    chosen = list(providers) if providers is not None else default_providers()
    choice = choose_precision(precision, _int8_scheme(card, directory), chosen)
    graphs = {}
    for spec in GRAPHS:
        name = card.graph_file(spec, choice.int8)
        if not name:
            raise ModelLoadError(f"{directory / 'model.json'}: no int8 variant of graph "
                                 f"{spec.name}; export with `avsync export --int8` or load "
                                 "with precision fp32 or auto")
        path = directory / name
        graph = Graph(open_session(path, threads, chosen), spec.inputs, spec.outputs, path)
        check_metadata(graph.metadata, card, spec.name, str(path))
        if spec in STEP_GRAPHS and chosen[0] == CPU:
            graph = OneStreamGraph(graph, threads, chosen, one_chunk_dims(card))
        graphs[spec.name] = graph
    log.info("%s: %s graphs (%s)", directory, choice.precision.value, choice.reason)
    return Model(card, graphs, directory, choice, _load_lm(directory, card))


STEP_GRAPHS = (AUDIO_STEP, VISUAL_STEP, FUSION_STEP)


def one_chunk_dims(card: ModelCard) -> dict[str, int]:
    """The step graphs' symbolic dimensions (export/onnx_export.py names them) for one
    stream and one full chunk."""
    return {"batch": 1, "steps": card.chunk_steps,
            "samples": card.chunk_steps * card.samples_per_step}


class OneStreamGraph(Graph):
    """A graph with a second session whose symbolic dimensions are fixed (`dims`): a call
    whose inputs have exactly those shapes runs it, any other call the general session."""

    def __init__(self, general: Graph, threads: int, providers: Sequence[str],
                 dims: dict[str, int]) -> None:
        super().__init__(general.session, general.input_names, general.output_names,
                         general.path)
        inputs = general.session.get_inputs()
        if any(isinstance(d, str) and d not in dims for i in inputs for d in i.shape):
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.single = general.session  # a dimension we cannot fix: no specialisation
            return
        self.shapes = {i.name: tuple(dims[d] if isinstance(d, str) else d for d in i.shape)
                       for i in inputs}
        options = session_options(threads)
        for name, value in dims.items():
            options.add_free_dimension_override_by_name(name, value)
        self.single = _ort_session(general.path, options, providers)

    def __call__(self, **inputs: np.ndarray) -> list[np.ndarray]:
        one = bool(self.shapes) and all(inputs[k].shape == s for k, s in self.shapes.items())
        return (self.single if one else self.session).run(list(self.output_names), inputs)


# With the batch known, onnxruntime rewrites each MatMul + bias Add as Reshape + Gemm + Reshape:
# one node more each, and 5-10 % slower per graph at one stream (bench/runtime.py's machine).
ONE_STREAM_DISABLED_OPTIMIZERS = ("MatMulAddFusion",)


def _ort_session(path: Path, options, providers: Sequence[str]):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), sess_options=options,
                                        providers=list(providers),
                                        disabled_optimizers=list(ONE_STREAM_DISABLED_OPTIMIZERS))


def _load_lm(directory: Path, card: ModelCard) -> NgramLM | None:
    """The model's word language model, checked against its SHA-256; None without one."""
    if card.lm is None:
        return None
    path = directory / card.lm["file"]
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: the language model model.json names is missing; copy "
                             "it back or re-export the model") from None
    if digest != card.lm["sha256"]:
        raise ModelLoadError(f"{path}: SHA-256 {digest[:12]}... is not the "
                             f"{card.lm['sha256'][:12]}... model.json names; the language "
                             "model belongs to another export")
    return NgramLM.load(path)


def _int8_scheme(card: ModelCard, directory: Path) -> Int8Scheme | None:
    """The scheme all int8 graphs share, the least exact one if they differ."""
    if not card.int8_schemes:
        return None
    try:
        schemes = [Int8Scheme(s) for s in card.int8_schemes]
    except ValueError:
        raise ModelLoadError(f"{directory / 'model.json'}: int8_scheme {sorted(card.int8_schemes)} "
                             f"unknown to this runtime (known: {[s.value for s in Int8Scheme]}); "
                             "upgrade avsync or load with precision fp32") from None
    return Int8Scheme.U8S8 if Int8Scheme.U8S8 in schemes else schemes[0]


def _check_tokenizer(directory: Path, card: ModelCard) -> None:
    path = directory / card.tokenizer
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: tokenizer not found; the model directory is "
                             "incomplete, re-export it") from None
    if digest != card.tokenizer_sha256:
        raise ModelLoadError(f"{path}: SHA-256 {digest[:12]}... is not the "
                             f"{card.tokenizer_sha256[:12]}... model.json names; the "
                             "tokenizer belongs to another model")
