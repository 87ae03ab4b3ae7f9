"""Synthetic plate-text crops for training the plate CRNN (and for the unit tests' idea of a plate).

Renders plate-like strings (US and EU patterns, optional spaces/dashes/emblems between groups) with
DejaVu / Liberation bold fonts (Debian fonts-dejavu-core, fonts-liberation; free licences, used only
at training time, not shipped) or OpenCV's Hershey fonts, on plate-coloured backgrounds, then cuts a
detector-style crop with random margins and degrades it (blur, noise, perspective, JPEG).
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]
FONT_NAMES = [
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSansNarrow-Bold.ttf",
    "LiberationMono-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSansNarrow-Regular.ttf",
]
L = "ABCDEFGHIJKLMNPQRSTUVWXYZ"
D = "0123456789"
A = L + D
PATTERNS = [
    "DLLLDDD",
    "LLLDDDD",
    "LLLDDD",
    "DDDLLL",
    "LLDDDD",
    "DDDDDD",
    "DLLDDD",
    "LLDDDLL",
    "LLDDDDLL",
    "LLLDDDL",
    "DDDDLL",
    "LLLLDDD",
    "AAAAAA",
    "AAAAAAA",
    "AAAAA",
    "LLDDLLL",
    "DDLLLD",
    "LDDDDDD",
]


def _fonts() -> list[Path]:
    return [d / n for d in FONT_DIRS for n in FONT_NAMES if (d / n).exists()]


def plate_text(rng: random.Random) -> tuple[str, list[str]]:
    """A random plate string and its printed groups (label has no separators)."""
    pat = rng.choice(PATTERNS)
    s = "".join(rng.choice({"L": L + ("O" if rng.random() < 0.1 else ""), "D": D, "A": A}[c]) for c in pat)
    if rng.random() < 0.5:
        cut = rng.randint(2, len(s) - 2)
        return s, [s[:cut], s[cut:]]
    return s, [s]


def render(rng: random.Random, fonts: list[Path]) -> tuple[np.ndarray, str]:
    """One grey crop (uint8, H x W) and its label."""
    text, groups = plate_text(rng)
    sep = rng.choice([" ", "  ", "-", " - ", " . "])
    shown = sep.join(groups)
    bg = rng.randint(150, 255)
    fg = rng.randint(0, 90)
    if rng.random() < 0.15:
        bg, fg = fg, bg
    size = 64
    if fonts and rng.random() < 0.8:
        font = ImageFont.truetype(str(rng.choice(fonts)), size)
        left, t, r, b = font.getbbox(shown)
        w, h = r - left, b - t
        im = Image.new("L", (w + 40, h + 40), bg)
        ImageDraw.Draw(im).text((20 - left, 20 - t), shown, fill=fg, font=font)
        img = np.array(im)
        box = (20, 20, w, h)
    else:
        face = rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX])
        thick = rng.randint(4, 9)
        (w, h), base = cv2.getTextSize(shown, face, 2.0, thick)
        img = np.full((h + base + 40, w + 40), bg, np.uint8)
        cv2.putText(img, shown, (20, 20 + h), face, 2.0, fg, thick, cv2.LINE_AA)
        box = (20, 20 - thick // 2, w, h + thick)
    x, y, w, h = box
    ih, iw = img.shape
    # detector-style margins (PP-OCR unclip leaves ~0.1-0.4 x height around the characters)
    mx0, mx1 = (int(h * rng.uniform(-0.05, 0.5)) for _ in range(2))
    my0, my1 = (int(h * rng.uniform(0.0, 0.35)) for _ in range(2))
    big = cv2.copyMakeBorder(img, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=bg)
    if rng.random() < 0.3:  # clutter above/below: state name, frame
        cv2.line(big, (0, 80 + y - my0 - 3), (big.shape[1], 80 + y - my0 - 3), fg, rng.randint(1, 4))
    x0, y0 = 80 + x - mx0, 80 + y - my0
    x1, y1 = 80 + x + w + mx1, 80 + y + h + my1
    src = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    j = h * 0.06
    src += np.float32([[rng.uniform(-j, j), rng.uniform(-j, j)] for _ in range(4)])
    cw, ch = x1 - x0, y1 - y0
    m = cv2.getPerspectiveTransform(src, np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]]))
    crop = cv2.warpPerspective(big, m, (cw, ch), borderMode=cv2.BORDER_REPLICATE)
    _ = (ih, iw)
    return crop, text
