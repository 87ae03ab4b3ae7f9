"""A small convolutional network on an impulse window's log-mel patch plus its envelope features.

Training-only (torch, CPU, one thread); exported to ONNX with two inputs, ``features`` (n, N_FEATURES)
and ``patch`` (n, N_MELS, PATCH_FRAMES), and one output ``logit`` (n, 1), so that serving needs only
ONNX Runtime. The feature standardisation is part of the exported graph.

Architecture: three 3x3 conv blocks (8, 16, 32 channels, batch norm, ReLU, 2x2 max-pool after the
first two) over the (mel, time) patch, then max and mean over time and frequency; the 185 hand-made
features go through a 64-unit layer; both are joined by a 64-unit layer and one output (about 25 k
weights). Training: each epoch sees every gunshot window and a fresh random 35 % of the other
windows, patches shifted by up to 3 frames; class-balanced binary cross-entropy; AdamW with a
one-cycle learning-rate schedule; one thread, seeded.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rtcc.acoustic import features as F


class ImpulseNet(nn.Module):
    """Gunshot log-odds of one window from its log-mel patch and its hand-made features."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2), *block(16, 32)
        )
        self.feat = nn.Sequential(nn.Linear(F.N_FEATURES, 64), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Sequential(nn.Linear(64 + 64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))

    def forward(self, features: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        h = self.conv(((patch + 40.0) / 20.0).unsqueeze(1))
        pooled = torch.cat([torch.amax(h, dim=(2, 3)), torch.mean(h, dim=(2, 3))], dim=1)
        f = self.feat((features - self.mean) / self.std)
        out: torch.Tensor = self.head(torch.cat([pooled, f], dim=1))
        return out


def fit(
    X: np.ndarray,
    P: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    seed: int = 0,
    batch: int = 256,
    neg_share: float = 0.35,
) -> ImpulseNet:
    """Train on window rows (features ``X``, patches ``P``, labels ``y``); returns the model in eval mode."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    mean = X.mean(axis=0)
    std = X.std(axis=0) + 1e-6
    model = ImpulseNet(mean, std)
    xt = torch.tensor(X, dtype=torch.float32)
    pt = torch.tensor(P.astype(np.float32))
    yt = torch.tensor(y, dtype=torch.float32)
    pos_w = float((y == 0).sum()) / max(1.0, float((y == 1).sum()))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    pos_idx = torch.nonzero(yt == 1).squeeze(1)
    neg_idx = torch.nonzero(yt == 0).squeeze(1)
    n_neg = int(neg_share * len(neg_idx))
    per_epoch = len(pos_idx) + n_neg
    pos_w *= neg_share
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_w))
    steps = epochs * ((per_epoch + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        model.train()
        t = time.time()
        pick = neg_idx[torch.randperm(len(neg_idx), generator=gen)[:n_neg]]
        epoch_idx = torch.cat([pos_idx, pick])
        order = epoch_idx[torch.randperm(len(epoch_idx), generator=gen)]
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            p = pt[idx]
            # Random shift of up to 3 frames (16 ms) and a random level floor: onset timing and how far
            # the background sits below the peak both vary in the field.
            shift = int(torch.randint(-3, 4, (1,), generator=gen))
            if shift:
                p = torch.roll(p, shift, dims=2)
            opt.zero_grad()
            loss = loss_fn(model(xt[idx], p).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(
            f"cnn epoch {ep + 1}/{epochs}: loss {total / len(order):.4f} ({time.time() - t:.0f} s)",
            flush=True,
        )
    return model.eval()


def logits(model: ImpulseNet, X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Window log-odds in eval mode."""
    out = []
    with torch.no_grad():
        for i in range(0, len(X), 2048):
            xt = torch.tensor(X[i : i + 2048], dtype=torch.float32)
            pt = torch.tensor(P[i : i + 2048].astype(np.float32))
            out.append(model(xt, pt).squeeze(1).numpy())
    return np.concatenate(out).astype(np.float64)


def export(model: ImpulseNet, path: Path, props: dict[str, str]) -> None:
    """Write the model as ONNX (opset 17) with ``props`` as metadata."""
    import warnings

    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(2, F.N_FEATURES), torch.zeros(2, F.N_MELS, F.PATCH_FRAMES)),
            str(path),
            input_names=["features", "patch"],
            output_names=["logit"],
            dynamic_axes={"features": {0: "n"}, "patch": {0: "n"}, "logit": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    onx = onnx.load(str(path))
    onnx.helper.set_model_props(onx, props)
    onnx.save(onx, str(path))
