"""Rewrite the PP-OCRv4 detector graph into fewer, fused operators (same function, ~1.4x faster on CPU).

The PaddlePaddle -> ONNX export spells every PPLCNetV3 "learnable affine block" (``a * x + b`` with
scalar ``a``, ``b``) and every hard-swish (``x * clip(x + 3, 0, 6) / 6``) as separate elementwise
operators; on one CPU core they took ~37 % of the detector's time. This script rewrites, exactly
(up to float rounding):

- ``Conv -> Mul(a) -> Add(b)`` into the convolution's weights and bias (``W' = a W``,
  ``bias' = a bias + b``);
- ``Add(3) -> Clip(0, 6) -> Mul(x) -> Div(6)`` into one ``HardSwish`` (opset 14);
- ``Mul(a) -> Add(b)`` feeding only an unpadded 1x1 convolution into that convolution
  (``W' = a W``, ``bias' = bias + b * sum(W)``); before padded convolutions it cannot fold (zero
  padding does not commute with it), so
- (session 4) every remaining ``Mul(a) -> Add(b)`` becomes a 1x1 depthwise convolution (weights
  ``a``, bias ``b``): the same function, but ONNX Runtime keeps it in its blocked (NCHWc) layout,
  where the scalar ``Mul`` / ``Add`` made it convert the tensor out of that layout and back (~12 % of
  the detector's time);
- (session 4) ``ConvTranspose -> BatchNormalization`` and ``ConvTranspose -> Add(bias)`` into the
  transposed convolution's weights and bias (ONNX Runtime fuses these for ``Conv`` only);
- (session 4) the squeeze-excitation shortcut ``x + x * s`` (``s`` = ``HardSigmoid`` of a per-channel
  (N, C, 1, 1) gate) into ``x * (s + 1)``: the ``+ 1`` runs on the small gate, one full-size ``Add``
  less (the neck's at 1/4 resolution was ~5 % of the time). Equal up to float rounding.

Usage: python training/plates/fuse_det.py IN.onnx OUT.onnx
(``IN``: ``ch_PP-OCRv4_det_infer.onnx`` of the ``rapidocr-onnxruntime`` 1.4.4 wheel.)
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference, version_converter


def _scalar(values: dict[str, np.ndarray], name: str) -> float | None:
    a = values.get(name)
    return float(a.reshape(-1)[0]) if a is not None and a.size == 1 else None


def fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a rewritten copy of ``model`` (opset 14 or later); ``model`` is left as it is."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    model = copy
    g = model.graph
    values: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        else:
            nodes.append(n)

    def consumers() -> dict[str, list[onnx.NodeProto]]:
        out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in nodes:
            for i in n.input:
                out[i].append(n)
        for o in g.output:
            out[o.name].append(helper.make_node("Identity", [o.name], ["graph_output"]))
        return out

    def affine(
        n: onnx.NodeProto, cons: dict[str, list[onnx.NodeProto]]
    ) -> tuple[float, float, onnx.NodeProto] | None:
        """``n`` is Mul(scalar) followed only by Add(scalar): ``(a, b, add_node)``."""
        if n.op_type != "Mul":
            return None
        a = (
            _scalar(values, n.input[0])
            if _scalar(values, n.input[0]) is not None
            else _scalar(values, n.input[1])
        )
        nxt = cons[n.output[0]]
        if a is None or len(nxt) != 1 or nxt[0].op_type != "Add":
            return None
        add = nxt[0]
        other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
        b = _scalar(values, other)
        return None if b is None else (a, b, add)

    def conv_wb(conv: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
        w = values[conv.input[1]].astype(np.float32)
        b = (
            values[conv.input[2]].astype(np.float32)
            if len(conv.input) > 2
            else np.zeros(w.shape[0], np.float32)
        )
        return w, b

    def set_wb(conv: onnx.NodeProto, w: np.ndarray, b: np.ndarray) -> None:
        wn, bn = conv.output[0] + "_w", conv.output[0] + "_b"
        values[wn], values[bn] = w.astype(np.float32), b.astype(np.float32)
        del conv.input[1:]
        conv.input.extend([wn, bn])

    removed: set[int] = set()
    # 1. Conv -> Mul(a) -> Add(b)
    cons = consumers()
    for conv in nodes:
        if conv.op_type != "Conv":
            continue
        nxt = cons[conv.output[0]]
        if len(nxt) != 1 or (found := affine(nxt[0], cons)) is None:
            continue
        a, b, add = found
        w, bias = conv_wb(conv)
        set_wb(conv, w * a, bias * a + b)
        out = add.output[0]
        removed.update({id(nxt[0]), id(add)})
        conv.output[0] = out
    nodes = [n for n in nodes if id(n) not in removed]
    # 2. hard-swish
    cons = consumers()
    new_nodes = []
    removed = set()
    for n in nodes:
        if n.op_type != "Add" or id(n) in removed or _scalar(values, n.input[1]) != 3.0:
            continue
        x = n.input[0]
        c = cons[n.output[0]]
        if len(c) != 1 or c[0].op_type != "Clip" or _scalar(values, c[0].input[2]) != 6.0:
            continue
        m = cons[c[0].output[0]]
        if len(m) != 1 or m[0].op_type != "Mul" or x not in m[0].input:
            continue
        d = cons[m[0].output[0]]
        if len(d) != 1 or d[0].op_type != "Div" or _scalar(values, d[0].input[1]) != 6.0:
            continue
        removed.update({id(n), id(c[0]), id(m[0]), id(d[0])})
        new_nodes.append((n, helper.make_node("HardSwish", [x], [d[0].output[0]], name=d[0].output[0])))
    first = {id(old): new for old, new in new_nodes}
    nodes = [first.get(id(n), n) for n in nodes if id(n) not in removed or id(n) in first]
    # 3. Mul(a) -> Add(b) -> unpadded 1x1 Conv
    cons = consumers()
    removed = set()
    for n in nodes:
        if (found := affine(n, cons)) is None:
            continue
        a, b, add = found
        nxt = cons[add.output[0]]
        if len(nxt) != 1 or nxt[0].op_type != "Conv":
            continue
        conv = nxt[0]
        w, bias = conv_wb(conv)
        attrs = {at.name: helper.get_attribute_value(at) for at in conv.attribute}
        if w.shape[2:] != (1, 1) or any(attrs.get("pads", [0])) or attrs.get("group", 1) != 1:
            continue
        x = n.input[1] if _scalar(values, n.input[0]) is not None else n.input[0]
        set_wb(conv, w * a, bias + b * w.sum(axis=(1, 2, 3)))
        conv.input[0] = x
        removed.update({id(n), id(add)})
    nodes = [n for n in nodes if id(n) not in removed]

    # 4. ConvTranspose -> BatchNormalization / Add(per-channel bias), repeated while one folds
    removed = {0}
    while removed:
        removed = set()
        cons = consumers()
        for conv in nodes:
            if conv.op_type == "ConvTranspose" and len(cons[conv.output[0]]) == 1:
                removed |= _fold_into_deconv(conv, cons[conv.output[0]][0], values)
        nodes = [n for n in nodes if id(n) not in removed]

    used = {i for n in nodes for i in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in values.items() if k in used]
    graph = helper.make_graph(nodes, g.name, list(g.input), list(g.output), inits)
    out = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    out = _se_shortcut(_affine_as_depthwise(out))
    onnx.checker.check_model(out)
    return out


def _se_shortcut(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Add(x, Mul(x, s))`` with ``s`` a ``HardSigmoid`` output becomes ``Mul(x, Add(s, 1))``."""
    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    cons: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            cons[i].append(n)
    one = "se_one"
    replaced: dict[int, list[onnx.NodeProto]] = {}
    removed: set[int] = set()
    for add in g.node:
        if add.op_type != "Add":
            continue
        for x, m in (add.input, reversed(add.input)):
            mul = prod.get(m)
            if mul is None or mul.op_type != "Mul" or x not in mul.input or len(cons[m]) != 1:
                continue
            gate = mul.input[1] if mul.input[0] == x else mul.input[0]
            if gate == x or getattr(prod.get(gate), "op_type", "") != "HardSigmoid":
                continue
            gate1 = gate + "_plus1"
            replaced[id(add)] = [
                helper.make_node("Add", [gate, one], [gate1], name=gate1),
                helper.make_node("Mul", [x, gate1], [add.output[0]], name=add.output[0]),
            ]
            removed.add(id(mul))
            break
    if not replaced:
        return model
    nodes = [new for n in g.node if id(n) not in removed for new in replaced.get(id(n), [n])]
    inits = [*g.initializer, numpy_helper.from_array(np.array(1.0, np.float32), one)]
    graph = helper.make_graph(nodes, g.name, list(g.input), list(g.output), inits)
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def _fold_into_deconv(conv: onnx.NodeProto, nxt: onnx.NodeProto, values: dict[str, np.ndarray]) -> set[int]:
    """Fold ``nxt`` (BatchNormalization, or Add of a per-channel constant) into the ConvTranspose
    ``conv`` (group 1, weights (C_in, C_out, kh, kw)); the ids of the removed nodes."""
    attrs = {at.name: helper.get_attribute_value(at) for at in conv.attribute}
    if attrs.get("group", 1) != 1:
        return set()
    w = values[conv.input[1]].astype(np.float32)
    bias = (
        values[conv.input[2]].astype(np.float32) if len(conv.input) > 2 else np.zeros(w.shape[1], np.float32)
    )
    if nxt.op_type == "BatchNormalization" and all(i in values for i in nxt.input[1:5]):
        gamma, beta, mean, var = (values[i].astype(np.float32) for i in nxt.input[1:5])
        eps = next((at.f for at in nxt.attribute if at.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        w, bias = w * scale[None, :, None, None], (bias - mean) * scale + beta
    elif nxt.op_type == "Add" and (c := _bias(values, nxt, conv.output[0], w.shape[1])) is not None:
        bias = bias + c
    else:
        return set()
    wn, bn = nxt.output[0] + "_w", nxt.output[0] + "_b"
    values[wn], values[bn] = w.astype(np.float32), bias.astype(np.float32)
    del conv.input[1:]
    conv.input.extend([wn, bn])
    conv.output[0] = nxt.output[0]
    return {id(nxt)}


def _bias(values: dict[str, np.ndarray], add: onnx.NodeProto, x: str, channels: int) -> np.ndarray | None:
    """The per-channel constant ``add`` adds to ``x`` (a scalar, or shaped (1, C, 1, 1) / (C, 1, 1))."""
    c = values.get(add.input[1] if add.input[0] == x else add.input[0])
    if c is None:
        return None
    if c.size == 1:
        return np.full(channels, float(c.reshape(-1)[0]), np.float32)
    if c.size == channels and c.ndim >= 3 and c.shape[-3] == channels:
        return c.reshape(-1).astype(np.float32)
    return None


def _affine_as_depthwise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every ``Mul(scalar a) -> Add(scalar b)`` left becomes a 1x1 depthwise Conv (weights a, bias b)."""
    g = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    channels = {}
    for vi in shape_inference.infer_shapes(model).graph.value_info:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[vi.name] = dims[1].dim_value
    cons: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            cons[i].append(n)
    replaced: dict[int, onnx.NodeProto] = {}
    removed: set[int] = set()
    for n in g.node:
        if n.op_type != "Mul":
            continue
        first = _scalar(values, n.input[0])
        a = first if first is not None else _scalar(values, n.input[1])
        x = n.input[1] if first is not None else n.input[0]
        nxt = cons[n.output[0]]
        if a is None or len(nxt) != 1 or nxt[0].op_type != "Add" or x not in channels:
            continue
        add = nxt[0]
        b = _scalar(values, add.input[1] if add.input[0] == n.output[0] else add.input[0])
        if b is None:
            continue
        c = channels[x]
        wn, bn = add.output[0] + "_dw_w", add.output[0] + "_dw_b"
        values[wn], values[bn] = np.full((c, 1, 1, 1), a, np.float32), np.full(c, b, np.float32)
        replaced[id(n)] = helper.make_node(
            "Conv", [x, wn, bn], [add.output[0]], name=add.output[0] + "_dw", group=c, kernel_shape=[1, 1]
        )
        removed.add(id(add))
    nodes = [replaced.get(id(n), n) for n in g.node if id(n) not in removed]
    used = {i for n in nodes for i in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in values.items() if k in used]
    graph = helper.make_graph(nodes, g.name, list(g.input), list(g.output), inits)
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    m = onnx.load(src)
    out = fuse(version_converter.convert_version(m, 14))
    onnx.save(out, dst)
    print(f"{src}: {len(m.graph.node)} nodes -> {dst}: {len(out.graph.node)} nodes")


if __name__ == "__main__":
    main()
