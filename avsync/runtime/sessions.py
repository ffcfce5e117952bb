"""onnxruntime sessions: execution providers chosen automatically, threads settable.

CUDA is used when the installed onnxruntime has the CUDA provider and a GPU answers (the
`onnxruntime-gpu` wheel); otherwise the CPU provider. One intra-op thread per session is the
default because a server runs many streams through a small thread pool of its own; offline tools
may ask for more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avsync.errors import ConfigError, DependencyError, ModelLoadError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise DependencyError("avsync.runtime needs onnxruntime; install it with: "
                              "pip install 'avsync[runtime]'") from None
    return onnxruntime


def default_providers() -> list[str]:
    """[CUDA, CPU] when onnxruntime-gpu is installed and sees a GPU, else [CPU]."""
    ort = _ort()
    if CUDA in ort.get_available_providers() and _gpu_present():
        return [CUDA, CPU]
    return [CPU]


def _gpu_present() -> bool:
    """The CUDA provider is listed by onnxruntime-gpu even on machines without a GPU: ask
    the driver (nvidia-smi's device nodes) before choosing it."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


def session_options(threads: int):
    ort = _ort()
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers
    return options


def open_session(path: Path, threads: int = 1, providers: Sequence[str] | None = None):
    """An `onnxruntime.InferenceSession` for `path`; ModelLoadError naming the file and why."""
    ort = _ort()
    if not path.is_file():
        raise ModelLoadError(f"{path}: ONNX file not found; the model directory is incomplete, "
                             "re-export it with `avsync export`")
    chosen = list(providers) if providers is not None else default_providers()
    options = session_options(threads)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(f"{path}: onnxruntime cannot load it ({type(error).__name__}: "
                             f"{str(error).strip()[:300]}); the file is corrupt or "
                             "truncated: re-export the model") from None


class Graph:
    """One loaded graph: named inputs in, named outputs out, numpy arrays both ways."""

    def __init__(self, session, input_names: Sequence[str], output_names: Sequence[str],
                 path: Path) -> None:
        self.session = session
        self.path = path
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        found_in = [i.name for i in session.get_inputs()]
        found_out = [o.name for o in session.get_outputs()]
        if found_in != list(input_names) or found_out != list(output_names):
            raise ModelLoadError(f"{path}: graph inputs {found_in} / outputs {found_out}, "
                                 f"expected {list(input_names)} / {list(output_names)}; "
                                 "re-export the model")

    @property
    def metadata(self) -> Mapping[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, **inputs: np.ndarray) -> list[np.ndarray]:
        """Run with every input by name; outputs in the declared order."""
        return self.session.run(list(self.output_names), inputs)
