"""`load_model`: open a model directory, checking every file before the first chunk runs.

Checks, each a `ModelLoadError` naming the file and why: model.json present and complete,
the tokenizer present and the one the card names (SHA-256), every ONNX graph present,
loadable by onnxruntime, with the declared input/output names and a `metadata_props` copy
of the card equal to model.json.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from avsync.errors import ModelLoadError
from avsync.runtime.lm import NgramLM
from avsync.runtime.model import Model
from avsync.runtime.model_card import GRAPHS, ModelCard, check_metadata, read_card
from avsync.runtime.precision import Int8Scheme, Precision, choose_precision
from avsync.runtime.sessions import Graph, default_providers, open_session

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
        graphs[spec.name] = graph
    log.info("%s: %s graphs (%s)", directory, choice.precision.value, choice.reason)
    return Model(card, graphs, directory, choice, _load_lm(directory, card))


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
