"""Train the plate-state classifier (PyTorch CPU) and export it to ``rtcc/plates/models/plate_state.onnx``.

Data: the ``seg_and_ocr`` US plate crops of ``state_split.json`` (``train`` only for the weights).
Each crop is degraded as a traffic camera sees a plate (box jitter, 40-120 px wide, blur, noise,
JPEG, light, sometimes grey) and resized to ``rtcc.plates.region.STATE_H x STATE_W``. After training,
on ``val``: the temperature (NLL grid) and the abstain threshold (the lowest top probability at which
the states told on val are right >= ``--precision`` of the time) are chosen and stored in the ONNX
metadata with the state list. ``test`` is not read here (``state_eval.py --part test``).

Usage: python training/plates/state_train.py [--data DIR] [--minutes M] [--epochs N] [--seed S]
[--precision P] [--out OUT.onnx]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import torch
from torch import nn

from rtcc.plates.region import STATE_H, STATE_W, state_input

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parents[2] / "shared/data/alpr/openalpr-benchmarks"
OUT = HERE.parents[1] / "rtcc/plates/models/plate_state.onnx"


def load(root: Path, part: str) -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
    """The BGR crops and state codes of one part of ``state_split.json``."""
    split = json.loads((HERE / "state_split.json").read_text())
    images = [
        cv2.imread(str(root / "seg_and_ocr/usimages" / name), cv2.IMREAD_COLOR) for name, _ in split[part]
    ]
    return images, [s for _, s in split[part]]


def degrade(img: npt.NDArray[np.uint8], rng: random.Random, harsh: bool = False) -> npt.NDArray[np.uint8]:
    """A plate crop as a traffic camera might give it (BGR, 40-120 px wide).

    ``harsh``: as the end-to-end traffic images mostly show plates (28-70 px wide, a quarter to
    two thirds of the contrast, darker, blurred, JPEG 20-60, a third grey, the plate frame or
    bumper in the box, seen from above or the side).
    """
    h, w = img.shape[:2]
    # box jitter: the plate box is grown from the number's text region at run time
    s = rng.uniform(0.88, 1.3 if harsh else 1.15)
    cw, ch = w * s * rng.uniform(0.93, 1.07), h * s * rng.uniform(0.93, 1.07)
    cx, cy = w / 2 + rng.uniform(-0.07, 0.07) * w, h / 2 + rng.uniform(-0.08, 0.08) * h
    a = rng.uniform(-4, 4) * np.pi / 180
    shear = rng.uniform(-0.15, 0.15) if harsh else 0.0
    src = np.float32([[cx - cw / 2, cy - ch / 2], [cx + cw / 2, cy - ch / 2], [cx - cw / 2, cy + ch / 2]])
    src[2, 0] += shear * ch
    rot = np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = (src - [cx, cy]) @ rot.T + [cx, cy]
    tw = rng.randint(28, 70) if harsh else rng.randint(40, 120)
    th = max(12, round(tw * ch / cw * rng.uniform(0.9, 1.1)))
    dst = np.float32([[0, 0], [tw, 0], [0, th]])
    m = cv2.getAffineTransform(src.astype(np.float32), dst)
    out = cv2.warpAffine(img, m, (tw, th), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < (0.6 if harsh else 0.3):
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.5, 1.5) if harsh else rng.uniform(0.3, 1.0))
    f = out.astype(np.float32)
    if harsh:
        f = (f - 128) * rng.uniform(0.25, 0.7) + 128 + rng.uniform(-70, 20)
    else:
        f = (f - 128) * rng.uniform(0.6, 1.3) + 128 + rng.uniform(-40, 30)
    f *= np.float32([rng.uniform(0.9, 1.1) for _ in range(3)])  # white balance
    if rng.random() < (0.3 if harsh else 0.15):
        f[:] = f.mean(axis=2, keepdims=True)
    f += np.random.default_rng(rng.randrange(1 << 30)).normal(
        0, rng.uniform(3, 12) if harsh else rng.uniform(0, 8), f.shape
    )
    out = f.clip(0, 255).astype(np.uint8)
    if rng.random() < (0.8 if harsh else 0.5):
        quality = rng.randint(20, 60) if harsh else rng.randint(30, 90)
        _ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


class StateNet(nn.Module):
    """Four conv blocks (16-32-64-96 channels) over a 32x64 crop, global average pool, linear."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            return [
                nn.Conv2d(i, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
                nn.Conv2d(o, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
            ]

        self.features = nn.Sequential(
            *block(3, 16),
            nn.MaxPool2d(2),  # 16 x 32
            *block(16, 32),
            nn.MaxPool2d(2),  # 8 x 16
            *block(32, 64),
            nn.MaxPool2d(2),  # 4 x 8
            *block(64, 96),
        )
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(96 * 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        # global mean and the mean of the top and bottom halves' difference: where colours sit matters
        g = f.mean(dim=(2, 3))
        d = f[:, :, :2].mean(dim=(2, 3)) - f[:, :, 2:].mean(dim=(2, 3))
        return self.fc(self.drop(torch.cat([g, d], dim=1)))


class Calibrated(nn.Module):
    """Softmax of the logits divided by a temperature (the exported graph)."""

    def __init__(self, net: nn.Module, temperature: float) -> None:
        super().__init__()
        self.net, self.t = net, temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x) / self.t, dim=1)


def batch(images: list[npt.NDArray[np.uint8]]) -> torch.Tensor:
    return torch.from_numpy(np.stack([state_input(i) for i in images]))


def choose_threshold(top: npt.NDArray[np.float64], right: npt.NDArray[np.bool_], precision: float) -> float:
    """The lowest threshold whose told set (top probability >= it) is right >= ``precision`` of the time,
    scanning down from the most confident; 1.0 when even the most confident miss it."""
    order = np.argsort(-top)
    best = 1.0
    hits = 0
    for k, i in enumerate(order, 1):
        hits += int(right[i])
        if hits / k >= precision and (k == len(order) or top[order[k]] < top[i]):
            best = float(top[i])
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", type=float, default=0.95)
    ap.add_argument("--harsh", type=float, default=0.5, help="share of training views degraded harshly")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tr_x, tr_y = load(args.data, "train")
    va_x, va_y = load(args.data, "val")
    states = sorted(set(tr_y))
    index = {s: i for i, s in enumerate(states)}
    model = StateNet(len(states))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=args.epochs * ((len(tr_x) + 31) // 32))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    # val: one fixed harsh view per crop (traffic-like: they choose T and the threshold), one mild view
    # and the clean crop (printed for reference)
    vrng = random.Random(1234)
    va_imgs = [degrade(i, vrng, harsh=True) for i in va_x] + [degrade(i, vrng) for i in va_x] + va_x
    va_lab = np.array([index.get(s, -1) for s in va_y * 3])
    harsh = np.arange(len(va_lab)) < len(va_x)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = list(range(len(tr_x)))
        rng.shuffle(order)
        for b in range(0, len(order), 32):
            ids = order[b : b + 32]
            x = batch([degrade(tr_x[i], rng, harsh=rng.random() < args.harsh) for i in ids])
            y = torch.tensor([index[tr_y[i]] for i in ids])
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 20 == 19 or epoch == args.epochs - 1:
            model.eval()
            with torch.no_grad():
                pred = model(batch(va_imgs)).argmax(1).numpy()
            print(
                f"epoch {epoch + 1} loss {loss.item():.3f} val acc {np.mean(pred == va_lab):.3f} "
                f"{time.time() - t0:.0f}s",
                flush=True,
            )
        if time.time() - t0 > args.minutes * 60:
            print("time limit at epoch", epoch + 1)
            break
    model.eval()
    with torch.no_grad():
        logits = model(batch(va_imgs)).double()
    lab = torch.from_numpy(va_lab)
    known = (lab >= 0) & torch.from_numpy(harsh)
    temps = np.exp(np.linspace(np.log(0.3), np.log(5), 60))
    nll = [float(nn.functional.cross_entropy(logits[known] / t, lab[known])) for t in temps]
    temperature = float(temps[int(np.argmin(nll))])
    probs = torch.softmax(logits / temperature, 1).numpy()
    top, pred = probs.max(1), probs.argmax(1)
    right = pred == va_lab
    threshold = choose_threshold(top[harsh], right[harsh], args.precision)
    n = len(va_x)
    for name, part in (("harsh", harsh), ("mild", np.roll(harsh, n)), ("clean", np.roll(harsh, 2 * n))):
        told = part & (top >= threshold)
        print(
            f"val {name}: T={temperature:.2f} acc {right[part].mean():.3f}; threshold {threshold:.3f}: "
            f"told {told.sum()}/{part.sum()}, right {right[told].sum()}"
        )
    dummy = torch.zeros(1, 3, STATE_H, STATE_W)
    torch.onnx.export(
        Calibrated(model, temperature),
        (dummy,),
        str(args.out),
        input_names=["x"],
        output_names=["probs"],
        dynamic_axes={"x": {0: "n"}, "probs": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    m = onnx.load(str(args.out))
    meta = {"states": ",".join(states), "temperature": f"{temperature:.4f}", "threshold": f"{threshold:.4f}"}
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(args.out))
    print("wrote", args.out, args.out.stat().st_size, "bytes", meta)


if __name__ == "__main__":
    main()
