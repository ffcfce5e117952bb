"""`load_model`: open a model directory, checking every file before the first chunk runs.

Checks, each a `ModelLoadError` naming the file and why: model.json present and complete,
the tokenizer present and the one the card names (SHA-256), every ONNX graph present,
loadable by onnxruntime, with the declared input/output names and a `metadata_props` copy
of the card equal to model.json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from avsync.errors import ModelLoadError
from avsync.runtime.model import Model
from avsync.runtime.model_card import GRAPHS, ModelCard, check_metadata, read_card
from avsync.runtime.sessions import Graph, open_session


def load_model(model_dir: str | Path, threads: int = 1, providers: Sequence[str] | None = None,
               int8: bool = False) -> Model:
    """Load an exported model directory.

    threads: intra-op threads per graph; providers: onnxruntime execution providers (None:
    CUDA when onnxruntime-gpu sees a GPU, else CPU); int8: use the `*.int8.onnx` graphs
    written by `avsync export --int8`.
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: not a directory; pass the folder `avsync export` "
                             "wrote (it holds model.json)")
    card = read_card(directory)
    _check_tokenizer(directory, card)
    graphs = {}
    for spec in GRAPHS:
        name = card.graph_file(spec, int8)
        if not name:
            raise ModelLoadError(f"{directory / 'model.json'}: no int8 variant of graph "
                                 f"{spec.name}; export with `avsync export --int8`")
        path = directory / name
        graph = Graph(open_session(path, threads, providers), spec.inputs, spec.outputs, path)
        check_metadata(graph.metadata, card, spec.name, str(path))
        graphs[spec.name] = graph
    return Model(card, graphs, directory, int8)


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
