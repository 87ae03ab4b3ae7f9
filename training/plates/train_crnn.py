"""Train the plate CRNN (PyTorch CPU) and export it to ``rtcc/plates/models/plate_crnn.onnx``.

Data: synthetic plates (``synth.py``) mixed 50/50 with real detector-style crops from
``build_crops.py`` (tune split of the end-to-end sets + US ``seg_and_ocr`` plates; negatives labelled
""). Every sample is degraded (low resolution, blur, noise, JPEG, contrast) before the model sees it.

Usage: python training/plates/train_crnn.py CROPS.npz [MINUTES] [SEED] [INIT.pt] [LR]

The shipped model: 14 minutes from scratch (seed 0, lr 2e-3), then 10 more minutes from that
checkpoint (seed 1, lr 7e-4), then 5 more minutes from that one (seed 2, lr 3e-4).
"""

from __future__ import annotations

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
    def __init__(self, n_classes: int = len(ALPHABET) + 1) -> None:
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.cnn = nn.Sequential(
            *block(1, 16),
            nn.MaxPool2d(2, 2),  # 16 x 64
            *block(16, 32),
            nn.MaxPool2d(2, 2),  # 8 x 32
            *block(32, 64),
            nn.MaxPool2d((2, 1)),  # 4 x 32
            *block(64, 64),
            *block(64, 96),
            nn.MaxPool2d((4, 1)),  # 1 x 32
        )
        self.rnn = nn.LSTM(96, 64, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(128, n_classes)

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


def degrade(g: np.ndarray, rng: random.Random) -> np.ndarray:
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
        g = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return g


def main() -> None:
    data = np.load(sys.argv[1], allow_pickle=True)
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 12.0
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    rng = random.Random(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # 2 threads spin and stall on a shared 2-core machine
    crops, labels = list(data["crops"]), [str(s) for s in data["labels"]]
    pos = [i for i, s in enumerate(labels) if s]
    neg = [i for i, s in enumerate(labels) if not s]
    print(f"real: {len(pos)} plate crops, {len(neg)} non-plate crops")
    fonts = _fonts()
    model = CRNN()
    if len(sys.argv) > 4:
        model.load_state_dict(torch.load(sys.argv[4]))
    lr = float(sys.argv[5]) if len(sys.argv) > 5 else 2e-3
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
            if r < 0.45:
                g, s = render(rng, fonts)
            elif r < 0.85:
                i = rng.choice(pos)
                g, s = crops[i], labels[i]
            else:
                i = rng.choice(neg)
                g, s = crops[i], ""
            xs.append(prepare(degrade(g, rng)))
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
        str(OUT),
        input_names=["x"],
        output_names=["probs"],
        dynamic_axes={"x": {0: "n"}, "probs": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    torch.save(model.state_dict(), "/tmp/pl/crnn.pt")
    print("wrote", OUT, OUT.stat().st_size, "bytes;", step, "steps")


if __name__ == "__main__":
    main()
