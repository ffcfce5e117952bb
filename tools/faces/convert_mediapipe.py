"""Rebuild avsync's face models: MediaPipe's BlazeFace and face mesh, TFLite -> ONNX.

    .venv/bin/pip download --no-deps mediapipe==0.10.21 -d /tmp/mp
    .venv/bin/pip install tflite==2.18.0          # a pure-Python flatbuffer reader
    .venv/bin/python tools/faces/convert_mediapipe.py /tmp/mp/mediapipe-0.10.21-*.whl

Why this script and not the package: `mediapipe` pins numpy<2 (we use numpy 2) and later
versions no longer ship the model files. The two `.tflite` files inside the 0.10.21 wheel are
Apache-2.0 (the wheel's LICENSE is copied beside the output), and they are plain conv nets:
CONV_2D, DEPTHWISE_CONV_2D, ADD, RELU, PRELU, PAD, MAX_POOL_2D, RESHAPE, CONCATENATION, with
float16 weights behind DEQUANTIZE ops. This converter handles exactly those ops (anything else
is an error naming the op), computes in NCHW (ONNX's layout) and keeps the TFLite input and
output shapes (NHWC), so the graphs take what the originals take:

    face_detection_short_range.onnx  input (1, 128, 128, 3) float32 RGB in [-1, 1]
        -> regressors (1, 896, 16), classificators (1, 896, 1)
    face_landmark.onnx               input_1 (1, 192, 192, 3) float32 RGB in [0, 1]
        -> conv2d_21 (1, 1, 1, 1404) (468 x, y, z in input pixels), conv2d_31 (1, 1, 1, 1)
           (face presence logit)

The float16 weights are widened to float32 once here (what DEQUANTIZE does at run time), and
each ONNX file records its source (wheel, member, SHA-256 of both) in metadata_props. Written
with ONNX opset 17; no custom operators. The output is deterministic for a given wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "avsync" / "media" / "models"
MODELS = {  # member of the wheel -> output file
    "mediapipe/modules/face_detection/face_detection_short_range.tflite":
        "face_detection_short_range.onnx",
    "mediapipe/modules/face_landmark/face_landmark.tflite": "face_landmark.onnx",
}
LICENSE_MEMBER = "mediapipe-0.10.21.dist-info/LICENSE"
OPSET = 17
NCHW_TO_NHWC, NHWC_TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
FLOAT32, FLOAT16, INT32 = 0, 1, 2  # tflite TensorType values


def _tflite():
    try:
        import tflite
    except ImportError:
        sys.exit("this needs the pure-Python TFLite reader: .venv/bin/pip install tflite==2.18.0")
    return tflite


class Converter:
    """One TFLite subgraph -> one ONNX graph. 4-D activations are kept NCHW inside."""

    def __init__(self, data: bytes) -> None:
        tfl = _tflite()
        self.tfl = tfl
        self.model = tfl.Model.GetRootAsModel(data, 0)
        self.graph = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(tfl.BuiltinOperator).items()
                         if not k.startswith("_")}
        self.constants: dict[int, np.ndarray] = {}  # tensor index -> float32/int32 value
        self.nchw: set[int] = set()  # activations held as NCHW
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._fresh = 0

    # tensors --------------------------------------------------------------------------------
    def tensor(self, index: int):
        return self.graph.Tensors(index)

    def name(self, index: int) -> str:
        return f"t{index}_{self.tensor(index).Name().decode()}"

    def shape(self, index: int) -> list[int]:
        return [int(v) for v in self.tensor(index).ShapeAsNumpy()]

    def buffer(self, index: int) -> np.ndarray | None:
        tensor = self.tensor(index)
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw.size == 0:
            return None
        dtype = {FLOAT32: np.float32, FLOAT16: np.float16, INT32: np.int32}[tensor.Type()]
        return raw.view(dtype).reshape(self.shape(index))

    def constant(self, index: int) -> np.ndarray:
        if index not in self.constants:
            value = self.buffer(index)
            if value is None:
                raise ValueError(f"tensor {self.name(index)} has no constant data")
            self.constants[index] = value.astype(np.float32 if value.dtype.kind == "f"
                                                 else value.dtype)
        return self.constants[index]

    def initializer(self, value: np.ndarray, hint: str) -> str:
        self._fresh += 1
        name = f"c{self._fresh}_{hint}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))

    def temp(self, hint: str) -> str:
        self._fresh += 1
        return f"x{self._fresh}_{hint}"

    # the walk -------------------------------------------------------------------------------
    def convert(self, source: dict[str, str]) -> onnx.ModelProto:
        g = self.graph
        inputs, outputs = [], []
        for k in range(g.InputsLength()):
            index = int(g.Inputs(k))
            name = self.tensor(index).Name().decode()
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(index)))
            self.node("Transpose", [name], [self.name(index)], perm=NHWC_TO_NCHW)
            self.nchw.add(index)
        for k in range(g.OperatorsLength()):
            self.operator(g.Operators(k))
        for k in range(g.OutputsLength()):
            index = int(g.Outputs(k))
            name = self.tensor(index).Name().decode()
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                         self.shape(index)))
            self.to_nhwc(index, name)
        graph = helper.make_graph(self.nodes, "mediapipe", inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="avsync tools/faces/convert_mediapipe.py")
        model.ir_version = 8
        helper.set_model_props(model, source)
        onnx.checker.check_model(model, full_check=True)
        return model

    def to_nhwc(self, index: int, out: str) -> None:
        if index in self.nchw:
            self.node("Transpose", [self.name(index)], [out], perm=NCHW_TO_NHWC)
        else:
            self.node("Identity", [self.name(index)], [out])

    def operator(self, op) -> None:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        kind = self.op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(i) for i in op.InputsAsNumpy()]
        outs = [int(i) for i in op.OutputsAsNumpy()]
        handler = getattr(self, f"op_{kind.lower()}", None)
        if handler is None:
            raise NotImplementedError(f"TFLite op {kind} is not handled by this converter")
        handler(op, ins, outs)

    def options(self, op, kind):
        table = op.BuiltinOptions()
        options = kind()
        options.Init(table.Bytes, table.Pos)
        return options

    def activation(self, code: int, out: int, raw: str) -> None:
        """Apply a fused activation to `raw`, writing tensor `out`."""
        names = self.tfl.ActivationFunctionType
        if code == names.NONE:
            self.node("Identity", [raw], [self.name(out)])
        elif code == names.RELU:
            self.node("Relu", [raw], [self.name(out)])
        elif code == names.RELU6:
            self.node("Clip", [raw, self.initializer(np.float32(0), "zero"),
                               self.initializer(np.float32(6), "six")], [self.name(out)])
        else:
            raise NotImplementedError(f"fused activation {code}")

    def same_pads(self, size: list[int], kernel: list[int], stride: list[int],
                  dilation: list[int], padding: int) -> list[int]:
        """TensorFlow's SAME/VALID padding as ONNX pads [top, left, bottom, right]."""
        if padding == self.tfl.Padding.VALID:
            return [0, 0, 0, 0]
        before, after = [], []
        for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
            effective = (k - 1) * d + 1
            total = max((-(-n // s) - 1) * s + effective - n, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    # operators ------------------------------------------------------------------------------
    def op_dequantize(self, op, ins, outs) -> None:
        self.constants[outs[0]] = self.constant(ins[0])

    def _conv(self, ins, outs, weight: np.ndarray, options, group: int) -> None:
        _, height, width, _ = self.shape(ins[0])
        kernel = list(weight.shape[2:])
        stride = [options.StrideH(), options.StrideW()]
        dilation = [options.DilationHFactor(), options.DilationWFactor()]
        pads = self.same_pads([height, width], kernel, stride, dilation, options.Padding())
        inputs = [self.name(ins[0]), self.initializer(weight, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.initializer(self.constant(ins[2]), "b"))
        raw = self.temp("conv")
        self.node("Conv", inputs, [raw], kernel_shape=kernel, strides=stride, dilations=dilation,
                  pads=pads, group=group)
        self.activation(options.FusedActivationFunction(), outs[0], raw)
        self.nchw.add(outs[0])

    def op_conv_2d(self, op, ins, outs) -> None:
        weight = self.constant(ins[1]).transpose(0, 3, 1, 2)  # OHWI -> OIHW
        self._conv(ins, outs, weight, self.options(op, self.tfl.Conv2DOptions), 1)

    def op_depthwise_conv_2d(self, op, ins, outs) -> None:
        options = self.options(op, self.tfl.DepthwiseConv2DOptions)
        channels = self.shape(ins[0])[3]
        weight = self.constant(ins[1]).transpose(3, 0, 1, 2)  # 1HW(C*m) -> (C*m)1HW
        self._conv(ins, outs, weight, options, channels)

    def op_max_pool_2d(self, op, ins, outs) -> None:
        options = self.options(op, self.tfl.Pool2DOptions)
        _, height, width, _ = self.shape(ins[0])
        kernel = [options.FilterHeight(), options.FilterWidth()]
        stride = [options.StrideH(), options.StrideW()]
        pads = self.same_pads([height, width], kernel, stride, [1, 1], options.Padding())
        raw = self.temp("pool")
        self.node("MaxPool", [self.name(ins[0])], [raw], kernel_shape=kernel, strides=stride,
                  pads=pads)
        self.activation(options.FusedActivationFunction(), outs[0], raw)
        self.nchw.add(outs[0])

    def op_add(self, op, ins, outs) -> None:
        options = self.options(op, self.tfl.AddOptions)
        if not all(i in self.nchw for i in ins):
            raise NotImplementedError("ADD of a non-activation tensor")
        raw = self.temp("add")
        self.node("Add", [self.name(i) for i in ins], [raw])
        self.activation(options.FusedActivationFunction(), outs[0], raw)
        self.nchw.add(outs[0])

    def op_relu(self, op, ins, outs) -> None:
        self.node("Relu", [self.name(ins[0])], [self.name(outs[0])])
        self.nchw.add(outs[0])

    def op_prelu(self, op, ins, outs) -> None:
        """PReLU as (1 - alpha) * relu(x) + alpha * x (the same function): onnxruntime's
        PRelu kernel broadcasts per element and took 60 % of the face mesh's time (6.2 of
        10.7 ms); Relu, Mul and Add stay in its fast blocked layout (2.2 ms in all)."""
        alpha = self.constant(ins[1]).reshape(-1)[:, None, None]  # (1, 1, C) -> (C, 1, 1)
        x, out = self.name(ins[0]), self.name(outs[0])
        positive, kept, leaked = self.temp("relu"), self.temp("kept"), self.temp("leak")
        self.node("Relu", [x], [positive])
        self.node("Mul", [positive, self.initializer(1 - alpha, "one_minus_alpha")], [kept])
        self.node("Mul", [x, self.initializer(alpha, "alpha")], [leaked])
        self.node("Add", [kept, leaked], [out])
        self.nchw.add(outs[0])

    def op_pad(self, op, ins, outs) -> None:
        paddings = self.constant(ins[1]).astype(np.int64)  # (4, 2) NHWC, (before, after)
        order = paddings[NHWC_TO_NCHW]
        pads = np.concatenate([order[:, 0], order[:, 1]])
        self.node("Pad", [self.name(ins[0]), self.initializer(pads, "pads")],
                  [self.name(outs[0])], mode="constant")
        self.nchw.add(outs[0])

    def op_reshape(self, op, ins, outs) -> None:
        source = self.name(ins[0])
        if ins[0] in self.nchw:  # TFLite reshapes NHWC memory order
            source = self.temp("nhwc")
            self.to_nhwc(ins[0], source)
        shape = np.array(self.shape(outs[0]), np.int64)
        self.node("Reshape", [source, self.initializer(shape, "shape")], [self.name(outs[0])])

    def op_concatenation(self, op, ins, outs) -> None:
        options = self.options(op, self.tfl.ConcatenationOptions)
        if any(i in self.nchw for i in ins):
            raise NotImplementedError("CONCATENATION of 4-D activations")
        raw = self.temp("concat")
        self.node("Concat", [self.name(i) for i in ins], [raw], axis=options.Axis())
        self.activation(options.FusedActivationFunction(), outs[0], raw)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert_wheel(wheel: Path, out: Path) -> list[Path]:
    """Convert both models out of the mediapipe wheel into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    wheel_hash = sha256(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as archive:
        for member, target in MODELS.items():
            data = archive.read(member)
            source = {"source": f"{wheel.name}:{member}", "source_wheel_sha256": wheel_hash,
                      "source_sha256": sha256(data), "license": "Apache-2.0 (see LICENSE.mediapipe)",
                      "converter": "tools/faces/convert_mediapipe.py"}
            model = Converter(data).convert(source)
            path = out / target
            onnx.save(model, str(path))
            written.append(path)
        licence = out / "LICENSE.mediapipe"
        licence.write_bytes(archive.read(LICENSE_MEMBER))
        written.append(licence)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="mediapipe-0.10.21-*.whl (pip download)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = parser.parse_args(argv)
    for path in convert_wheel(args.wheel, args.out):
        print(f"{path}  {path.stat().st_size} bytes  sha256 {sha256(path.read_bytes())[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
