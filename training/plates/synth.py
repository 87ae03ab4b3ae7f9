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
PLATE_FONTS = [
    Path("/usr/share/fonts/truetype/opendin/OSP-DIN.ttf"),  # fonts-opendin
    Path("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf"),  # fonts-roboto-unhinted
    Path("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Medium.ttf"),
    Path("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf"),  # fonts-urw-base35
    Path("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf"),  # fonts-bebas-neue
    Path("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf"),
    Path("/usr/share/fonts/truetype/freefont/FreeSansBold.ttf"),  # fonts-freefont-ttf
]
"""Condensed / DIN-like faces closer to US and EU plate fonts (``--plate-style``; Debian packages named
beside each, free licences, used at training time only)."""
CONFUSABLE = "WHVMNEFI1D08BQ0OUY2Z5S6G"
"""Characters the plate recognizers confuse (W/H/V, E/F, I/1, D/0, B/8 ...): drawn more often with
``--plate-style``."""
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


def _fonts(plate_style: bool = False) -> list[Path]:
    base = [d / n for d in FONT_DIRS for n in FONT_NAMES if (d / n).exists()]
    return base + [f for f in PLATE_FONTS if f.exists()] if plate_style else base


def _char(rng: random.Random, kind: str, boost: float) -> str:
    pool = {"L": L + ("O" if rng.random() < 0.1 else ""), "D": D, "A": A}[kind]
    if rng.random() < boost:
        hard = [c for c in CONFUSABLE if c in pool]
        return rng.choice(hard) if hard else rng.choice(pool)
    return rng.choice(pool)


def plate_text(rng: random.Random, boost: float = 0.0) -> tuple[str, list[str]]:
    """A random plate string and its printed groups (label has no separators).

    ``boost``: share of characters drawn from :data:`CONFUSABLE` (0 = uniform).
    """
    pat = rng.choice(PATTERNS)
    s = "".join(_char(rng, c, boost) for c in pat)
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


def _plate_look(img: np.ndarray, rng: random.Random, bg: int, fg: int) -> np.ndarray:
    """Plate-like surroundings of rendered text: a shaded / graphic background (state plates have
    gradients and pictures behind the number), embossed characters (a light or dark edge beside each
    stroke), and uneven light (low light, a shadow across the plate)."""
    h, w = img.shape
    out = img.astype(np.float32)
    text_mask = np.abs(out - bg) > 0.5 * abs(fg - bg)
    if rng.random() < 0.5:  # gradient / low-frequency picture behind the characters
        small = np.random.default_rng(rng.randint(0, 2**31)).normal(0, 1, (3, 6)).astype(np.float32)
        field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        back = bg + field * rng.uniform(5, 35) * (1 if bg > fg else -1)
        out = np.where(text_mask, out, back)
    if rng.random() < 0.4:  # embossing: an edge of another tone beside each stroke
        d = rng.randint(1, 3)
        shift = np.roll(np.roll(text_mask, d, axis=0), d, axis=1) & ~text_mask
        out[shift] = out[shift] * 0.5 + (255 - bg) * 0.5 if rng.random() < 0.5 else bg * 0.6
    if rng.random() < 0.3:  # uneven light: a linear ramp (shadow, low light)
        ramp = np.linspace(rng.uniform(0.4, 1.0), rng.uniform(0.7, 1.1), w, dtype=np.float32)[None]
        out = out * ramp if rng.random() < 0.5 else out * ramp[:, ::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def render(
    rng: random.Random, fonts: list[Path], extra: bool = False, plate_style: bool = False
) -> tuple[np.ndarray, str]:
    """One grey crop (uint8, H x W) and its label.

    ``extra`` adds stroke widths, horizontal squeeze and end clutter (not used by the shipped model).
    ``plate_style`` draws confusable characters more often (:data:`CONFUSABLE`) and adds plate-like
    backgrounds, embossing and uneven light (:func:`_plate_look`) and a mild horizontal squeeze.
    """
    text, groups = plate_text(rng, 0.35 if plate_style else 0.0)
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
    if plate_style:
        img = _plate_look(img, rng, bg, fg)
        if rng.random() < 0.3:
            sx = rng.uniform(0.7, 1.1)
            size_x = (max(8, int(img.shape[1] * sx)), img.shape[0])
            img = cv2.resize(img, size_x, interpolation=cv2.INTER_AREA)
            box = (int(box[0] * sx), box[1], max(4, int(box[2] * sx)), box[3])
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
