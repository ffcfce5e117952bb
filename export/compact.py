"""fp16 storage of the fp32 graphs' weights: half the bytes on disk, the same fp32 compute.

Why: a model directory ships fp32 graphs (every CPU) and int8 graphs (x86-64) side by side, and
the fp32 half is most of its size. A large float32 weight is stored as float16 and followed by
a Cast to float32; onnxruntime folds the Cast into a float32 weight when it loads the graph
(constant folding), so inference runs the same fp32 kernels at the same speed, and any ONNX
runtime reads the file as it is. What changes is the weights' rounding (a relative error
below 2^-11); the exporter measures what that does to the log-probs and the WER before it
ships the file (export/exporter.py). Small tensors (biases, norms) stay float32.

`expand_fp16_weights` undoes it in memory, so tools that need plain float32 initializers
(the int8 quantiser: it only quantises MatMuls whose weight is an initializer) see them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ELEMENTS: int = 1024  # smaller float32 tensors are not worth a Cast node
SUFFIX: str = "__fp16"


def store_weights_fp16(model: onnx.ModelProto, min_elements: int = MIN_ELEMENTS) -> int:
    """In place: every float32 initializer of at least `min_elements` becomes a float16
    initializer plus a Cast back to float32 under the original name. -> bytes saved."""
    graph = model.graph
    kept, casts, saved = [], [], 0
    for init in graph.initializer:
        size = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type != TensorProto.FLOAT or size < min_elements:
            kept.append(init)
            continue
        weight = numpy_helper.to_array(init)
        if not np.all(np.isfinite(weight)) or np.abs(weight).max() > 65504:
            kept.append(init)  # outside float16's range: keep it exact
            continue
        half = numpy_helper.from_array(weight.astype(np.float16), init.name + SUFFIX)
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + SUFFIX + "_cast"))
        saved += 2 * size
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return saved


def expand_fp16_weights(model: onnx.ModelProto) -> int:
    """In place: the inverse of `store_weights_fp16` (float16 initializer + its Cast ->
    one float32 initializer of the Cast's output name). -> how many were expanded."""
    graph = model.graph
    halves = {i.name: i for i in graph.initializer
              if i.name.endswith(SUFFIX) and i.data_type == TensorProto.FLOAT16}
    casts = [n for n in graph.node if n.op_type == "Cast" and len(n.input) == 1
             and n.input[0] in halves]
    if not casts:
        return 0
    restored = [numpy_helper.from_array(numpy_helper.to_array(halves[n.input[0]])
                                        .astype(np.float32), n.output[0]) for n in casts]
    used = {n.input[0] for n in casts}
    kept = [i for i in graph.initializer if i.name not in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + restored)
    cast_ids = {id(n) for n in casts}
    nodes = [n for n in graph.node if id(n) not in cast_ids]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def compact_file(path: Path, min_elements: int = MIN_ELEMENTS) -> int:
    """`store_weights_fp16` on one graph file, rewritten in place. -> bytes saved."""
    model = onnx.load(str(path))
    saved = store_weights_fp16(model, min_elements)
    if saved:
        onnx.save(model, str(path))
    return saved
