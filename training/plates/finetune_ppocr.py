"""Fine-tune the pretrained PP-OCRv4 recognizer on plates (session 6, issue 3) and export it to ONNX.

The general recognizer (``rtcc/plates/models/ppocrv4_rec.onnx``, SVTR-LCNet, CTC over 6,623
characters, pretrained on millions of text lines) is turned into a plate reader:

1. **PyTorch form.** The Paddle export keeps its weights in ``Constant`` nodes; they are moved into
   ``graph.initializer``, shapes are inferred (at a fixed 1x3x48x320 input, for the ranks only) and
   the graph is converted with ``onnx2torch`` (training time only: ``pip install --no-deps
   onnx2torch``; its optional ``torchvision`` imports are stubbed here). Float initializers of the
   attention / MLP / layer-norm blocks become trainable parameters.
2. **Head.** The final linear layer keeps 37 of its 6,625 output columns: blank, then ``0-9 A-Z``
   (:data:`rtcc.plates.ocr.ALPHABET`) taken from the dictionary columns of those characters, so
   training starts where the restricted general reader is; the softmax is dropped for training
   (logits + CTC) and put back for the export.
3. **Data.** Each batch: synthetic plates (``synth.render``, grey drawn as BGR), real plate crops
   (``build_crops.py``'s colour ``bgr`` crops) and non-plate crops (target: nothing), all degraded as
   ``train_crnn.degrade`` does (colour kept; 15 % of real crops turned grey). Crops of the images in
   ``--hold-out`` (``crop_split.py``) are never used.
4. **Training.** AdamW (weight decay 1e-4), CTC (blank 0), the backbone's early stages frozen
   (:func:`freeze_early`), a small learning rate on its last stage and the neck and a larger one on
   the head, cosine schedule over a wall-time budget, batch 32, gradient clipping 5,
   batch norms frozen (eval mode: their running statistics stay the pretrained ones). Input: the
   crop resized to height 48 (width ``ceil(48 * w / h)``, 16-320 px, the general reader's
   preparation, :func:`rtcc.plates.ocr.rec_input`), BGR scaled to -1..1, right-padded with 0 to the
   next multiple of 32 px (:func:`rtcc.plates.ocr.rec_padded`, exactly as :class:`PlateOCR` reads).
   Session 7: each batch is split into width buckets (crops of one padded width) run one by one, the
   CTC losses (per character, as ``CTCLoss(reduction="mean")``) summed over the batch, so every crop
   is trained at the very width it is read at; the learning rates warm up linearly over
   ``--warmup`` steps (50) before the cosine.
5. **Export.** The trained weights are written back into the original graph (:func:`export`; opset
   12 as exported by Paddle), with the 37-column head and a softmax: input ``x`` (n, 3, 48, width),
   output ``probs`` (n, width / 8, 37), dynamic batch and width. Checked against the PyTorch model.

**Session 6's problem, fixed in session 7:** batches were padded to their widest crop while
:class:`rtcc.plates.ocr.PlateOCR` read each crop at its own width; the SVTR neck's global attention is
sensitive to that (candidate 1: 179 / 258 crop-val plate crops unpadded, 236 padded to 320 px). Now
training and reading share :func:`rtcc.plates.ocr.rec_padded`.

Usage: python training/plates/finetune_ppocr.py CROPS.npz --out OUT.onnx [--minutes M] [--seed S]
[--lr-backbone LR] [--lr-head LR] [--warmup STEPS] [--freeze N] [--synth F] [--neg F] [--hold-out NAMES.txt]
[--threads N]
python training/plates/finetune_ppocr.py --check-head CROPS.npz (the untrained 37-class head against
the restricted general reader on real crops)
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import _fonts, render
from train_crnn import degrade

from rtcc.plates.ocr import ALPHABET, REC_H, decode, rec_padded
from rtcc.plates.region import GENERAL_REC_MODEL, TextRecognizer


def _stub_torchvision() -> None:
    """``onnx2torch`` imports ``torchvision`` for NMS / RoIAlign only (not in this graph): stub it."""
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")

    def _missing(*_a: object, **_k: object) -> None:
        raise NotImplementedError("torchvision is not installed")

    ops.nms = ops.batched_nms = ops.roi_align = _missing  # type: ignore[attr-defined]
    tv.ops = ops  # type: ignore[attr-defined]
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops


def plate_columns(model: onnx.ModelProto) -> list[int]:
    """Output columns of the general recognizer for blank + :data:`ALPHABET` (its dictionary order)."""
    meta = {p.key: p.value for p in model.metadata_props}
    chars = ["", *meta["character"].splitlines(), " "]
    index = {c: i for i, c in enumerate(chars) if c}
    return [0, *(index[c] for c in ALPHABET)]


def plate_graph(src: Path = GENERAL_REC_MODEL) -> onnx.ModelProto:
    """The general recognizer's graph with weights as initializers, a 37-column head, logits out."""
    model = onnx.load(str(src))
    cols = plate_columns(model)
    g = model.graph
    nodes = []
    for n in g.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            nodes.append(n)
    softmax = nodes[-1]
    assert softmax.op_type == "Softmax" and softmax.output[0] == g.output[0].name
    add, matmul = nodes[-2], nodes[-3]
    assert add.op_type == "Add" and matmul.op_type == "MatMul"
    inits = {t.name: t for t in g.initializer}
    w = onnx.numpy_helper.to_array(inits[matmul.input[1]])[:, cols]
    b = onnx.numpy_helper.to_array(inits[add.input[1]])[cols]
    inits[matmul.input[1]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(w), matmul.input[1]))
    inits[add.input[1]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(b), add.input[1]))
    del g.node[:]
    g.node.extend(nodes[:-1])
    out = onnx.helper.make_tensor_value_info(add.output[0], onnx.TensorProto.FLOAT, None)
    del g.output[:]
    g.output.extend([out])
    # ranks for the converter (BatchNormalization needs them): infer at a fixed input size
    dims = g.input[0].type.tensor_type.shape.dim
    saved = [d.SerializeToString() for d in dims]
    for d, v in zip(dims, (1, 3, REC_H, 320), strict=True):
        d.Clear()
        d.dim_value = v
    model = onnx.shape_inference.infer_shapes(model)
    for d, s in zip(model.graph.input[0].type.tensor_type.shape.dim, saved, strict=True):
        d.Clear()
        d.ParseFromString(s)
    del model.graph.output[0].type.tensor_type.shape.dim[:]
    return model


def torch_model(src: Path = GENERAL_REC_MODEL) -> nn.Module:
    """The plate-headed recognizer as a PyTorch module (logits (n, T, 37)); weights trainable."""
    _stub_torchvision()
    from onnx2torch import convert  # training-time dependency (pip install --no-deps onnx2torch)

    m: Any = convert(plate_graph(src))
    inits = m.initializers
    for name, buf in list(inits.named_buffers(recurse=False)):
        if buf.dtype == torch.float32 and buf.dim() >= 1 and buf.numel() >= 16:
            delattr(inits, name)
            inits.register_parameter(name, nn.Parameter(buf.clone()))
    return m  # type: ignore[no-any-return]


def freeze_early(m: nn.Module, last: int) -> int:
    """Freeze the backbone's convolutions up to ``Conv/last`` (and the stem's batch norm); return how
    many parameters stay trainable. PP-OCRv4's LCNet backbone is ``Conv/0``-``Conv/32`` (its last,
    480-channel stage ``Conv/24``-``Conv/32``), then the SVTR neck (``Conv/33``-``Conv/37``, batch
    norms 1-5, the attention / MLP / layer-norm initializers) and the head. Frozen early layers keep
    the pretrained features and make a step ~3x cheaper (no backward through them)."""
    for name, p in m.named_parameters():
        k = re.match(r"p2o/(Conv|BatchNormalization)/(\d+)\.", name)
        early = k is not None and (
            (k.group(1) == "Conv" and int(k.group(2)) <= last) or (k.group(1) != "Conv" and k.group(2) == "0")
        )
        p.requires_grad_(not early)
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def head_parameters(m: nn.Module) -> list[nn.Parameter]:
    """The head's weight and bias (the two parameters of shape (C, 37) and (37,))."""
    n = len(ALPHABET) + 1
    return [p for p in m.parameters() if p.shape[-1] == n and p.dim() <= 2]


def batch(crops: list[np.ndarray]) -> torch.Tensor:
    """BGR crops of one padded width as one input batch (:func:`rec_padded` each)."""
    xs = [rec_padded(c) for c in crops]
    assert len({x.shape[2] for x in xs}) == 1, "one padded width per batch"
    return torch.from_numpy(np.stack(xs))


def buckets(crops: list[np.ndarray]) -> dict[int, list[int]]:
    """Indices of ``crops`` grouped by their padded input width (:func:`rec_padded`)."""
    out: dict[int, list[int]] = {}
    for i, c in enumerate(crops):
        out.setdefault(rec_padded(c).shape[2], []).append(i)
    return out


def lr_factor(step: int, frac: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, times a cosine over the wall-time fraction ``frac``."""
    return min(1.0, (step + 1) / max(warmup, 1)) * 0.5 * (1 + float(np.cos(np.pi * min(frac, 1.0))))


def as_bgr(g: np.ndarray) -> np.ndarray:
    return g if g.ndim == 3 else cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


def load_crops(
    path: Path, hold_out: Path | None
) -> tuple[list[np.ndarray], list[str], list[np.ndarray], list[str]]:
    """Training (not held-out) and held-out ``(bgr crops, labels)`` of a ``build_crops.py`` file."""
    data = np.load(path, allow_pickle=True)
    held = set(hold_out.read_text().split()) if hold_out else set()
    crops, labels, sources = data["bgr"], data["labels"], data["source"]
    tr_c, tr_l, ho_c, ho_l = [], [], [], []
    for c, lab, src in zip(crops, labels, sources, strict=True):
        if str(src).partition(":")[2] in held:
            ho_c.append(c)
            ho_l.append(str(lab))
        else:
            tr_c.append(c)
            tr_l.append(str(lab))
    return tr_c, tr_l, ho_c, ho_l


def check_head(crops_file: Path, n: int = 200) -> None:
    """Greedy readings of the untrained plate-headed model against ``TextRecognizer.plate_probs``."""
    m = torch_model().eval()
    general = TextRecognizer()
    crops, labels, _, _ = load_crops(crops_file, None)
    idx = [i for i, s in enumerate(labels) if s][:n]
    same = 0
    for i in idx:
        with torch.no_grad():
            p = torch.softmax(m(batch([crops[i]])), -1)[0].numpy()
        a, b = decode(p).text, decode(general.plate_probs(crops[i])).text
        same += a == b
    print(f"untrained head: greedy reading equals plate_probs on {same}/{len(idx)} plate crops")


def onnx_names(m: nn.Module, model: onnx.ModelProto) -> dict[str, str]:
    """Each trainable tensor of ``m`` (:func:`torch_model`, before training) -> its ONNX initializer.

    Convolutions and batch norms by their node (``onnx2torch`` names modules after nodes); the other
    initializers (attention, MLP, layer norms, the head) by equal shape and values, which must be unique.
    """
    g = model.graph
    nodes = {n.name.replace(".", "/"): n for n in g.node}
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    slots = {
        "Conv": {"weight": 1, "bias": 2},
        "BatchNormalization": {"weight": 1, "bias": 2, "running_mean": 3, "running_var": 4},
    }
    out: dict[str, str] = {}
    for name, t in m.state_dict().items():
        mod, _, attr = name.rpartition(".")
        if mod in nodes and attr in slots.get(nodes[mod].op_type, {}):
            out[name] = nodes[mod].input[slots[nodes[mod].op_type][attr]]
        elif mod == "initializers" and t.dtype == torch.float32 and t.dim() >= 1 and t.numel() >= 16:
            a = t.numpy()
            same = [k for k, v in arrays.items() if v.shape == a.shape and np.array_equal(v, a)]
            assert len(same) == 1, (name, same)
            out[name] = same[0]
    trainable = {n for n, _ in m.named_parameters()}
    assert trainable <= set(out), trainable - set(out)
    return out


def export(m: nn.Module, names: dict[str, str], out: Path, src: Path = GENERAL_REC_MODEL) -> None:
    """Write the trained weights of ``m`` into the plate graph (:func:`plate_graph`) with a softmax.

    Tracing the converted module would fix the width (its reshapes read Python ints), so the
    weights go back into the original graph instead: input ``x`` (n, 3, 48, width), output ``probs``
    (n, width / 8, 37); dynamic batch and width. Checked against ``m`` with ONNX Runtime.
    """
    import onnxruntime as ort

    model = plate_graph(src)
    g = model.graph
    del g.value_info[:]  # inferred at a fixed width (for the converter): not for a dynamic-width graph
    state = m.state_dict()
    inits = {t.name: t for t in g.initializer}
    for key, init in names.items():
        inits[init].CopyFrom(onnx.numpy_helper.from_array(state[key].detach().numpy().copy(), init))
    logits = g.output[0].name
    g.node.extend([onnx.helper.make_node("Softmax", [logits], ["probs"], axis=2)])
    del g.output[:]
    g.output.extend(
        [
            onnx.helper.make_tensor_value_info(
                "probs", onnx.TensorProto.FLOAT, ["n", "steps", len(ALPHABET) + 1]
            )
        ]
    )
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {"alphabet": ALPHABET, "source": "ppocrv4_rec.onnx fine-tuned"})
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for width in (48, 160, 320):
        x = np.random.default_rng(width).uniform(-1, 1, (2, 3, REC_H, width)).astype(np.float32)
        with torch.no_grad():
            ref = torch.softmax(m(torch.from_numpy(x)), -1).numpy()
        diff = float(np.abs(sess.run(None, {"x": x})[0] - ref).max())
        print(f"export check width {width}: max |onnx - torch| {diff:.2e}")
        assert diff < 1e-3


def check_reading(m: nn.Module, out: Path, crops: list[np.ndarray], labels: list[str], n: int = 8) -> None:
    """On ``n`` training plate crops: :class:`PlateOCR` on the export (padded, as read) against the
    PyTorch model on the training input (:func:`batch`), and the export's greedy text at the crop's
    own width (:func:`rec_input`, unpadded) against its padded text."""
    import onnxruntime as ort

    from rtcc.plates.ocr import PlateOCR, rec_input

    ocr = PlateOCR(out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    idx = [i for i, s in enumerate(labels) if s][:: max(1, sum(map(bool, labels)) // n)][:n]
    for i in idx:
        read = ocr.probs([crops[i]])[0]
        with torch.no_grad():
            ref = torch.softmax(m(batch([crops[i]])), -1)[0].numpy()
        own = sess.run(None, {"x": rec_input(crops[i])[None]})[0][0]
        print(
            f"reading check {labels[i]}: width {rec_input(crops[i]).shape[2]} -> {2 * read.shape[0] * 4}, "
            f"max |PlateOCR - training input| {float(np.abs(read - ref).max()):.1e}, "
            f"padded {decode(read).text or '-'}, own width {decode(own).text or '-'}"
        )
        assert read.shape == ref.shape and float(np.abs(read - ref).max()) < 1e-3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("crops", type=Path, help="npz from build_crops.py (with its colour 'bgr' crops)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/plate_ppocr.onnx"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr-backbone", type=float, default=3e-4, help="last backbone stage and neck")
    ap.add_argument("--lr-head", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=50, help="steps of linear learning-rate warm-up")
    ap.add_argument("--synth", type=float, default=0.35, help="share of synthetic plates per batch")
    ap.add_argument("--neg", type=float, default=0.15, help="share of non-plate crops per batch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--freeze", type=int, default=23, help="freeze backbone Conv/0..Conv/N (-1: none)")
    ap.add_argument("--hold-out", type=Path, help="image names not to train on (crop_split.py)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check-head", action="store_true", help="only compare the untrained head (no training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.check_head:
        check_head(args.crops)
        return
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    crops, labels, _, _ = load_crops(args.crops, args.hold_out)
    pos = [i for i, s in enumerate(labels) if s]
    neg = [i for i, s in enumerate(labels) if not s]
    print(f"real: {len(pos)} plate crops, {len(neg)} non-plate crops", flush=True)
    fonts = _fonts(True)
    m = torch_model().eval()  # batch norms frozen: eval mode throughout
    names = onnx_names(m, plate_graph())
    print(f"trainable parameters: {freeze_early(m, args.freeze)}", flush=True)
    head = head_parameters(m)
    head_ids = {id(p) for p in head}
    backbone = [p for p in m.parameters() if id(p) not in head_ids and p.requires_grad]
    groups = [{"params": backbone, "lr0": args.lr_backbone}, {"params": head, "lr0": args.lr_head}]
    opt = torch.optim.AdamW([{"params": g["params"]} for g in groups], weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True, reduction="none")
    t0 = time.time()
    t_end = t0 + args.minutes * 60
    step, losses = 0, []
    while time.time() < t_end:
        frac = (time.time() - t0) / (args.minutes * 60)
        for g, spec in zip(opt.param_groups, groups, strict=True):
            g["lr"] = float(spec["lr0"]) * lr_factor(step, frac, args.warmup) + 1e-6
        xs, ys = [], []
        for _ in range(args.batch):
            r = rng.random()
            if r < args.synth:
                g_img, s = render(rng, fonts, True, True)
                img = as_bgr(degrade(g_img, rng, True))
            else:
                i = rng.choice(neg) if r < args.synth + args.neg else rng.choice(pos)
                c, s = crops[i], labels[i]
                if rng.random() < 0.15:
                    c = cv2.cvtColor(c, cv2.COLOR_BGR2GRAY)
                img = as_bgr(degrade(c, rng, True))
            xs.append(img)
            ys.append(s)
        opt.zero_grad()
        loss = 0.0
        for idx in buckets(xs).values():
            bx, by = [xs[i] for i in idx], [ys[i] for i in idx]
            logp = m(batch(bx)).log_softmax(-1).permute(1, 0, 2)  # T, B, K
            targets = torch.tensor([ALPHABET.index(c) + 1 for s in by for c in s], dtype=torch.long)
            tl = torch.tensor([len(s) for s in by], dtype=torch.long)
            il = torch.full((len(by),), logp.shape[0], dtype=torch.long)
            # as CTCLoss "mean": each crop's loss over its target length (at least 1), mean over the batch
            part = (ctc(logp, targets, il, tl) / tl.clamp(min=1)).sum() / len(ys)
            part.backward()
            loss += float(part.item())
        nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        step += 1
        losses.append(loss)
        if step % 25 == 0:
            print(f"step {step} loss {np.mean(losses[-25:]):.3f} {time.time() - t0:.0f}s", flush=True)
    torch.save(m.state_dict(), args.out.with_suffix(".pt"))
    export(m, names, args.out)
    check_reading(m, args.out, crops, labels)
    print("wrote", args.out, args.out.stat().st_size, "bytes;", step, "steps")


if __name__ == "__main__":
    main()
