"""int8: dynamic quantisation of the graphs' MatMul/Gemm weights (onnxruntime.quantization).

Weights become int8 per output channel, activations are quantised on the fly per call, so no
calibration data is needed (sherpa-onnx's choice for its streaming models; BACKGROUND.md: it
pays off mainly on CPUs with VNNI). Convolutions stay float (the visual front end), which keeps
the lips' features precise where a small model is most sensitive. Files: `<graph>.int8.onnx`
beside the float ones, with the same metadata (stamped by the exporter afterwards).
"""

from __future__ import annotations

import logging
from pathlib import Path

from avsync.runtime.model_card import GRAPHS

log = logging.getLogger(__name__)

OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm")


def quantize_graph(source: Path, target: Path) -> Path:
    """Dynamically quantise one float graph into `target`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), op_types_to_quantize=list(OP_TYPES),
                     weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"MatMulConstBOnly": True})
    return target


def quantize_graphs(model_dir: Path) -> dict[str, Path]:
    """`<graph>.onnx` -> `<graph>.int8.onnx` for every graph of a model directory."""
    out = {}
    for spec in GRAPHS:
        out[spec.name] = quantize_graph(model_dir / spec.file(), model_dir / spec.file(True))
        log.info("quantised %s", out[spec.name].name)
    return out
