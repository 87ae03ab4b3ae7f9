"""Train the plate CRNN (PyTorch CPU) and export it to ``rtcc/plates/models/plate_crnn.onnx``.

Data: synthetic plates (``synth.py``) mixed 50/50 with real detector-style crops from
``build_crops.py`` (tune split of the end-to-end sets + US ``seg_and_ocr`` plates; negatives labelled
""). Every sample is degraded (low resolution, blur, noise, JPEG, contrast) before the model sees it.

Usage: python training/plates/train_crnn.py CROPS.npz [--minutes M] [--seed S] [--init STATE.pt]
[--lr LR] [--width W] [--steps 32|64] [--synth FRACTION] [--plate-style] [--hold-out NAMES.txt]
[--threads N] [--out OUT.onnx]

The shipped model and its commands are in ``rtcc/plates/models/MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import _fonts, render

from rtcc.plates.ocr import ALPHABET, INPUT_H, INPUT_W, prepare

OUT = Path(__file__).resolve().parents[2] / "rtcc/plates/models/plate_crnn.onnx"


class CRNN(nn.Module):
    """Conv stack (channels ``c`` x ``width``) + BiLSTM + linear; ``steps`` (32 or 64) time steps over a
    32x128 crop (64: the second pooling halves the height only, so narrow and repeated characters get
    more steps)."""

    def __init__(self, n_classes: int = len(ALPHABET) + 1, width: float = 1.0, steps: int = 32) -> None:
        super().__init__()
        c = [round(k * width) for k in (16, 32, 64, 64, 96)]
        hidden = round(64 * width)

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.cnn = nn.Sequential(
            *block(1, c[0]),
            nn.MaxPool2d(2, 2),  # 16 x 64
            *block(c[0], c[1]),
            nn.MaxPool2d(2, 2) if steps == 32 else nn.MaxPool2d((2, 1)),  # 8 x steps
            *block(c[1], c[2]),
            nn.MaxPool2d((2, 1)),  # 4 x steps
            *block(c[2], c[3]),
            *block(c[3], c[4]),
            nn.MaxPool2d((4, 1)),  # 1 x steps
        )
        self.rnn = nn.LSTM(c[4], hidden, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x).squeeze(2).permute(0, 2, 1)  # B, T, C
        f, _ = self.rnn(f)
        return self.fc(f)  # B, T, K (logits)


class WithSoftmax(nn.Module):
    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.m(x), dim=-1)


def degrade(g: np.ndarray, rng: random.Random, extra: bool = False) -> np.ndarray:
    h, w = g.shape[:2]
    if rng.random() < 0.5:  # horizontal margin jitter
        a, b = int(w * rng.uniform(0, 0.04)), int(w * rng.uniform(0, 0.04))
        g = g[:, a : w - b] if w - a - b > 4 else g
        p0, p1 = int(h * rng.uniform(0, 0.3)), int(h * rng.uniform(0, 0.3))
        g = cv2.copyMakeBorder(g, 0, 0, p0, p1, cv2.BORDER_REPLICATE)
        h, w = g.shape[:2]
    if rng.random() < 0.3:
        ang = rng.uniform(-4, 4)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
        g = cv2.warpAffine(g, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if extra and rng.random() < 0.3:  # perspective: the detector's quad is never exactly the plate's
        j = 0.08 * h
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = src + np.float32([[rng.uniform(-j, j), rng.uniform(-j, j)] for _ in range(4)])
        g = cv2.warpPerspective(
            g, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE
        )
    if extra and rng.random() < 0.3:  # aspect jitter
        g = cv2.resize(g, (max(4, int(w * rng.uniform(0.8, 1.25))), h), interpolation=cv2.INTER_AREA)
        h, w = g.shape[:2]
    th = rng.randint(9, 40)  # plates seen at 9-40 px text height
    if th < h:
        tw = max(4, int(w * th / h))
        g = cv2.resize(g, (tw, th), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.4:
        k = rng.choice([3, 5])
        g = cv2.GaussianBlur(g, (k, k), rng.uniform(0.3, 1.2))
    g = g.astype(np.float32)
    g = g * rng.uniform(0.5, 1.3) + rng.uniform(-40, 40)
    g += np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 12), g.shape)
    g = np.clip(g, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        _ok, enc = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(20, 80)])
        g = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE if g.ndim == 2 else cv2.IMREAD_COLOR)
    return g


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("crops", help="npz from build_crops.py")
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="state dict to start from")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=float, default=1.0, help="channel multiplier of the CRNN")
    ap.add_argument("--synth", type=float, default=0.45, help="share of synthetic plates per batch")
    ap.add_argument("--extra-aug", action="store_true", help="synth clutter/squeeze, perspective, aspect")
    ap.add_argument("--steps", type=int, choices=[32, 64], default=32, help="CTC time steps of the CRNN")
    ap.add_argument(
        "--plate-style", action="store_true", help="synth: plate fonts, confusable chars, plate looks"
    )
    ap.add_argument("--hold-out", type=Path, help="text file of end-to-end image names not to train on")
    ap.add_argument("--out", type=Path, default=OUT, help="ONNX output (state dict beside it, .pt)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 only on an idle 2-core machine)")
    args = ap.parse_args()
    data = np.load(args.crops, allow_pickle=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)  # 2 threads spin and stall on a busy shared 2-core machine
    held = set(args.hold_out.read_text().split()) if args.hold_out else set()
    all_crops, all_labels = data["crops"], data["labels"]  # each data[...] re-reads the file
    keep = [i for i, src in enumerate(data["source"]) if str(src).partition(":")[2] not in held]
    crops = [all_crops[i] for i in keep]
    labels = [str(all_labels[i]) for i in keep]
    pos = [i for i, s in enumerate(labels) if s]
    neg = [i for i, s in enumerate(labels) if not s]
    print(f"real: {len(pos)} plate crops, {len(neg)} non-plate crops")
    fonts = _fonts(args.plate_style)
    model = CRNN(width=args.width, steps=args.steps)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    lr, minutes = args.lr, args.minutes
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    t_end = time.time() + minutes * 60
    step, bs = 0, 64
    t0 = time.time()
    while time.time() < t_end:
        frac = (time.time() - t0) / (minutes * 60)
        for gparam in opt.param_groups:
            gparam["lr"] = lr * (0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))) + 1e-5
        xs, ys = [], []
        for _ in range(bs):
            r = rng.random()
            if r < args.synth:
                g, s = render(rng, fonts, args.extra_aug, args.plate_style)
            elif r < args.synth + (1 - args.synth) * 8 / 11:  # real plates 40 %, non-plates 15 % at 0.45
                i = rng.choice(pos)
                g, s = crops[i], labels[i]
            else:
                i = rng.choice(neg)
                g, s = crops[i], ""
            xs.append(prepare(degrade(g, rng, args.extra_aug)))
            ys.append(s)
        x = torch.from_numpy(np.stack(xs))
        targets = torch.tensor([ALPHABET.index(c) + 1 for s in ys for c in s], dtype=torch.long)
        tl = torch.tensor([len(s) for s in ys], dtype=torch.long)
        logp = model(x).log_softmax(-1).permute(1, 0, 2)  # T, B, K
        il = torch.full((bs,), logp.shape[0], dtype=torch.long)
        loss = ctc(logp, targets, il, tl)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    dummy = torch.zeros(1, 1, INPUT_H, INPUT_W)
    torch.onnx.export(
        WithSoftmax(model),
        (dummy,),
        str(args.out),
        input_names=["x"],
        output_names=["probs"],
        dynamic_axes={"x": {0: "n"}, "probs": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    print("wrote", args.out, args.out.stat().st_size, "bytes;", step, "steps")


if __name__ == "__main__":
    main()
