"""int8: dynamic quantisation of the graphs' MatMul/Gemm weights (onnxruntime.quantization).

Weights become 8-bit integers per output channel, activations are quantised on the fly per
call (uint8), so no calibration data is needed (sherpa-onnx's choice for its streaming models).
Convolutions stay float (the visual front end), which keeps the lips' features precise where a
small model is most sensitive. Files: `<graph>.int8.onnx` beside the float ones, with the same
metadata (stamped by the exporter afterwards, with the scheme as `int8_scheme`).

The scheme decides on which CPUs the file is exact (`avsync.runtime.precision` explains why):
the default `u8s7` (7-bit signed weights) is exact on every x86-64 CPU; `u8s8` only on CPUs
with VNNI or AMX.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from avsync.export.compact import expand_fp16_weights
from onnx import numpy_helper

from avsync.errors import AvsyncError
from avsync.runtime.model_card import GRAPHS
from avsync.runtime.precision import DEFAULT_INT8_SCHEME, Int8Scheme

log = logging.getLogger(__name__)

OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm")


class QuantizationError(AvsyncError):
    """The int8 graphs are wrong or lose more accuracy than allowed; nothing was written."""


# the integer weight range each scheme may use: a weight outside it can saturate a kernel
WEIGHT_RANGE: dict[Int8Scheme, tuple[int, int]] = {
    Int8Scheme.U8S7: (-64, 64), Int8Scheme.U8S8: (-128, 127), Int8Scheme.U8U8: (0, 255)}


def quantize_graph(source: Path, target: Path, scheme: Int8Scheme = DEFAULT_INT8_SCHEME
                   ) -> Path:
    """Dynamically quantise one float graph into `target` in `scheme`, then check that every
    integer weight lies in the scheme's range."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = QuantType.QUInt8 if scheme is Int8Scheme.U8U8 else QuantType.QInt8
    model = onnx.load(str(source))
    if expand_fp16_weights(model):  # fp16-stored weights: quantise from plain float32 ones
        source = target.with_name(target.name + ".expanded.onnx")
        onnx.save(model, str(source))
    try:
        _quantize(source, target, weight_type, scheme, quantize_dynamic)
    finally:
        if source.name.endswith(".expanded.onnx"):
            source.unlink(missing_ok=True)
    low, high = integer_weight_range(target)
    allowed = WEIGHT_RANGE[scheme]
    if low < allowed[0] or high > allowed[1]:
        raise QuantizationError(f"{target}: integer weights span [{low}, {high}], outside "
                                f"[{allowed[0]}, {allowed[1]}] of scheme {scheme.value}")
    return target


def _quantize(source: Path, target: Path, weight_type, scheme: Int8Scheme, quantize_dynamic
              ) -> None:
    quantize_dynamic(str(source), str(target), op_types_to_quantize=list(OP_TYPES),
                     weight_type=weight_type, per_channel=True,
                     reduce_range=scheme is Int8Scheme.U8S7,
                     extra_options={"MatMulConstBOnly": True})


def integer_weight_range(path: Path) -> tuple[int, int]:
    """(min, max) over the 8-bit integer initialisers of a graph: its quantised weights."""
    values = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
              if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)]
    if not values:
        return 0, 0
    return (min(int(v.min()) for v in values if v.size),
            max(int(v.max()) for v in values if v.size))


def quantize_graphs(model_dir: Path, scheme: Int8Scheme = DEFAULT_INT8_SCHEME
                    ) -> dict[str, Path]:
    """`<graph>.onnx` -> `<graph>.int8.onnx` for every graph of a model directory."""
    out = {}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization warns about pre-processing
    try:
        for spec in GRAPHS:
            out[spec.name] = quantize_graph(model_dir / spec.file(), model_dir / spec.file(True),
                                            scheme)
    finally:
        root.setLevel(level)
    log.info("quantised %d graphs (%s)", len(out), scheme.value)
    return out
