"""``training/plates/fuse_det.py``: the detector graph rewrite keeps the function and fuses the ops.

A small graph with the PaddlePaddle export's patterns (affine blocks, spelled-out hard-swish, an
affine before an unpadded 1x1 conv and one before a padded depthwise conv, a squeeze-excitation
shortcut ``x + x * s``, a transposed conv followed by a bias ``Add`` and a batch norm) is built here;
the rewritten graph must give the same outputs with ONNX Runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training/plates"))
from fuse_det import fuse

from rtcc.plates.detect import DET_MODEL


def _const(name: str, value: np.ndarray | float) -> onnx.NodeProto:
    arr = np.asarray(value, dtype=np.float32)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))


def _graph() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [
        _const("w1", rng.normal(size=(8, 3, 3, 3))),
        _const("b1", rng.normal(size=8)),
        _const("a1", 0.7),
        _const("c1", 0.3),
        _const("three", 3.0),
        _const("zero", 0.0),
        _const("six", 6.0),
        _const("a2", 1.3),
        _const("c2", -0.2),
        _const("w2", rng.normal(size=(6, 8, 1, 1))),
        _const("b2", rng.normal(size=6)),
        _const("a3", 0.9),
        _const("c3", 0.05),
        _const("w3", rng.normal(size=(6, 1, 3, 3))),
        _const("b3", rng.normal(size=6)),
        _const("w4", rng.normal(size=(6, 6, 1, 1))),
        _const("b4", rng.normal(size=6)),
        _const("wt", rng.normal(size=(6, 4, 2, 2))),
        _const("bt", rng.normal(size=(1, 4, 1, 1))),
        _const("gamma", rng.uniform(0.5, 1.5, size=4)),
        _const("beta", rng.normal(size=4)),
        _const("mean", rng.normal(size=4)),
        _const("var", rng.uniform(0.5, 2.0, size=4)),
        helper.make_node("Conv", ["x", "w1", "b1"], ["y1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["a1", "y1"], ["m1"]),
        helper.make_node("Add", ["m1", "c1"], ["z1"]),
        helper.make_node("Add", ["z1", "three"], ["h1"]),
        helper.make_node("Clip", ["h1", "zero", "six"], ["h2"]),
        helper.make_node("Mul", ["z1", "h2"], ["h3"]),
        helper.make_node("Div", ["h3", "six"], ["hs"]),
        helper.make_node("Mul", ["a2", "hs"], ["m2"]),
        helper.make_node("Add", ["m2", "c2"], ["z2"]),
        helper.make_node("Conv", ["z2", "w2", "b2"], ["y2"]),  # 1x1, unpadded: the affine folds in
        helper.make_node("Mul", ["a3", "y2"], ["m3"]),
        helper.make_node("Add", ["m3", "c3"], ["z3"]),
        helper.make_node("Relu", ["z3"], ["r3"]),
        helper.make_node("Mul", ["a2", "r3"], ["m4"]),
        helper.make_node("Add", ["m4", "c2"], ["z4"]),
        helper.make_node("Conv", ["z4", "w3", "b3"], ["y3"], pads=[1, 1, 1, 1], group=6),  # padded
        # squeeze-excitation with a shortcut: y3 + y3 * hardsigmoid(conv(mean(y3)))
        helper.make_node("GlobalAveragePool", ["y3"], ["gap"]),
        helper.make_node("Conv", ["gap", "w4", "b4"], ["se"]),
        helper.make_node("HardSigmoid", ["se"], ["gate"], alpha=0.2, beta=0.5),
        helper.make_node("Mul", ["y3", "gate"], ["scaled"]),
        helper.make_node("Add", ["y3", "scaled"], ["y4"]),
        helper.make_node("ConvTranspose", ["y4", "wt"], ["up"], strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("Add", ["up", "bt"], ["upb"]),
        helper.make_node(
            "BatchNormalization", ["upb", "gamma", "beta", "mean", "var"], ["out"], epsilon=1e-5
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 12])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 20, 24])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"x": x})[0])


def test_fused_graph_computes_the_same() -> None:
    model = _graph()
    fused = fuse(model)
    ops = [n.op_type for n in fused.graph.node]
    assert "HardSwish" in ops and "Div" not in ops and "Clip" not in ops
    # the affine before the padded conv became a 1x1 depthwise conv (4 convs + the gate's conv)
    assert ops.count("Conv") == 5 and "BatchNormalization" not in ops
    # left: the gate's "+ 1" on (1, 6, 1, 1) and the gate's multiply
    assert ops.count("Add") == 1 and ops.count("Mul") == 1
    (plus,) = [n for n in fused.graph.node if n.op_type == "Add"]
    assert any(n.op_type == "HardSigmoid" and n.output[0] in plus.input for n in fused.graph.node)
    x = np.random.default_rng(1).normal(size=(1, 3, 10, 12)).astype(np.float32) * 2
    np.testing.assert_allclose(_run(fused, x), _run(model, x), rtol=1e-4, atol=1e-4)


def test_shipped_detector_is_the_fused_graph() -> None:
    ops = [n.op_type for n in onnx.load(str(DET_MODEL)).graph.node]
    assert "HardSwish" in ops and "Clip" not in ops and len(ops) < 200
    # no scalar affine left outside a convolution: every Mul is a squeeze-excitation gate
    assert ops.count("Mul") == ops.count("HardSigmoid")
