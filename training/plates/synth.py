"""Synthetic plate-text crops for training the plate CRNN (and for the unit tests' idea of a plate).

Renders plate-like strings (US and EU patterns, optional spaces/dashes/emblems between groups) with
DejaVu / Liberation bold fonts (Debian fonts-dejavu-core, fonts-liberation; free licences, used only
at training time, not shipped) or OpenCV's Hershey fonts, on plate-coloured backgrounds, then cuts a
detector-style crop with random margins, horizontal squeeze (condensed plate fonts) and clutter at
the ends (border, bolts, state names), and degrades it (blur, noise, perspective, JPEG).
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


def _clutter(big: np.ndarray, rng: random.Random, box: tuple[int, int, int, int], fg: int) -> None:
    """Draw what surrounds plate characters in a detector crop: the plate border, bolts, stickers at
    the ends, and small state-name / slogan text above and below. The label does not change."""
    x, y, w, h = box
    x, y = x + 80, y + 80
    if rng.random() < 0.3:  # plate border or bolt just left / right of the characters
        for side in (-1, 1):
            if rng.random() < 0.6:
                gap = int(h * rng.uniform(0.08, 0.5))
                bx = x - gap if side < 0 else x + w + gap
                if rng.random() < 0.5:
                    cv2.line(big, (bx, y - h // 2), (bx, y + h + h // 2), fg, rng.randint(2, max(3, h // 10)))
                else:
                    cv2.circle(big, (bx, y + rng.randint(0, h)), max(2, h // 12), fg, -1)
    if rng.random() < 0.3:  # small text (state, slogan, dealer) above or below
        text = "".join(rng.choice(L) for _ in range(rng.randint(4, 12)))
        scale = h / 64 * rng.uniform(0.6, 1.1)
        ty = (
            y - int(h * rng.uniform(0.15, 0.35))
            if rng.random() < 0.5
            else y + h + int(h * rng.uniform(0.4, 0.6))
        )
        cv2.putText(
            big, text, (x + rng.randint(-h, h), ty), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, 2, cv2.LINE_AA
        )
    if rng.random() < 0.2:  # frame line above the characters
        cv2.line(
            big,
            (0, y - int(h * rng.uniform(0.1, 0.35))),
            (big.shape[1], y - int(h * 0.2)),
            fg,
            rng.randint(1, 4),
        )


def render(rng: random.Random, fonts: list[Path], extra: bool = False) -> tuple[np.ndarray, str]:
    """One grey crop (uint8, H x W) and its label.

    ``extra`` adds stroke widths, horizontal squeeze and end clutter (not used by the shipped model).
    """
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
        stroke = rng.choice([0, 0, 0, 1, 2]) if extra else 0
        left, t, r, b = font.getbbox(shown, stroke_width=stroke)
        w, h = r - left, b - t
        im = Image.new("L", (w + 40, h + 40), bg)
        ImageDraw.Draw(im).text(
            (20 - left, 20 - t), shown, fill=fg, font=font, stroke_width=stroke, stroke_fill=fg
        )
        img = np.array(im)
        box = (20, 20, w, h)
    else:
        face = rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX])
        thick = rng.randint(4, 9)
        (w, h), base = cv2.getTextSize(shown, face, 2.0, thick)
        img = np.full((h + base + 40, w + 40), bg, np.uint8)
        cv2.putText(img, shown, (20, 20 + h), face, 2.0, fg, thick, cv2.LINE_AA)
        box = (20, 20 - thick // 2, w, h + thick)
    if extra and rng.random() < 0.6:  # condensed plate fonts: squeeze (or stretch) horizontally
        sx = rng.uniform(0.55, 1.15)
        img = cv2.resize(img, (max(8, int(img.shape[1] * sx)), img.shape[0]), interpolation=cv2.INTER_AREA)
        box = (int(box[0] * sx), box[1], max(4, int(box[2] * sx)), box[3])
    x, y, w, h = box
    # detector-style margins (PP-OCR unclip leaves ~0.1-0.4 x height around the characters)
    mx0, mx1 = (int(h * rng.uniform(-0.05, 0.5)) for _ in range(2))
    my0, my1 = (int(h * rng.uniform(0.0, 0.35)) for _ in range(2))
    big = cv2.copyMakeBorder(img, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=bg)
    if extra:
        _clutter(big, rng, box, fg)
    elif rng.random() < 0.3:  # clutter above/below: state name, frame
        cv2.line(big, (0, 80 + y - my0 - 3), (big.shape[1], 80 + y - my0 - 3), fg, rng.randint(1, 4))
    x0, y0 = 80 + x - mx0, 80 + y - my0
    x1, y1 = 80 + x + w + mx1, 80 + y + h + my1
    src = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    j = h * 0.06
    src += np.float32([[rng.uniform(-j, j), rng.uniform(-j, j)] for _ in range(4)])
    cw, ch = x1 - x0, y1 - y0
    m = cv2.getPerspectiveTransform(src, np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]]))
    crop = cv2.warpPerspective(big, m, (cw, ch), borderMode=cv2.BORDER_REPLICATE)
    return crop, text
