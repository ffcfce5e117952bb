"""fp16-stored weights (export/compact.py): half the bytes, float32 compute after load, and a
graph the int8 quantiser still quantises (it sees the weights expanded back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from avsync.export.compact import compact_file, expand_fp16_weights, store_weights_fp16
from avsync.export.quantize import quantize_graph
from onnx import TensorProto, helper, numpy_helper


def _graph(path: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 96)).astype(np.float32) * 0.1
    bias = rng.standard_normal(96).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y0"]), helper.make_node("Add", ["y0", "b"],
                                                                         ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 96])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key="avsync", value="kept")
    onnx.save(model, str(path))
    return weight


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_fp16_storage_halves_the_weight_and_keeps_fp32_compute(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    _graph(path)
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    before, size = _run(path, x), path.stat().st_size
    assert compact_file(path) == 64 * 96 * 2  # the bias (96 < MIN_ELEMENTS) stays float32
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    kinds = {i.name: i.data_type for i in model.graph.initializer}
    assert kinds == {"w__fp16": TensorProto.FLOAT16, "b": TensorProto.FLOAT}
    assert {p.key: p.value for p in model.metadata_props} == {"avsync": "kept"}
    assert path.stat().st_size < 0.6 * size
    after = _run(path, x)
    assert after.dtype == np.float32 and np.abs(after - before).max() < 2e-3
    assert not np.array_equal(after, before)  # the rounding is real, and small


def test_expanding_restores_plain_float32_weights_for_the_quantiser(tmp_path: Path) -> None:
    path = tmp_path / "g.onnx"
    weight = _graph(path)
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    exact = _run(path, x)
    compact_file(path)
    model = onnx.load(str(path))
    assert expand_fp16_weights(model) == 1 and expand_fp16_weights(model) == 0
    restored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert restored["w"].dtype == np.float32
    assert np.array_equal(restored["w"], weight.astype(np.float16).astype(np.float32))
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    target = quantize_graph(path, tmp_path / "g.int8.onnx")
    ops = {n.op_type for n in onnx.load(str(target)).graph.node}
    assert "MatMulInteger" in ops and "MatMul" not in ops  # quantised though stored as fp16
    assert not list(tmp_path.glob("*.expanded.onnx"))  # its scratch file is gone
    assert np.abs(_run(target, x) - exact).max() < 0.1
    store_weights_fp16(model)
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.FLOAT16,
                                                               TensorProto.FLOAT}
