"""Rendered photos of the simulated plate reads, so demo hits show a picture beside the entry.

A simulated plate camera sends what a real edge reader sends: the plate it read, its box and
confidence, and the picture it read it from (``POST /api/v1/plates/images`` with ``plate``,
``box`` and ``confidence``; the center stores the picture and the plate crop in its media store
and does not read the plate again). The picture is a drawn rear view of a car — body colour and
position varying by vehicle — with an Alabama-style white plate showing the text the camera
*read* (so a misread is visibly what the camera saw; the truth log keeps the real plate).
"""

from __future__ import annotations

import random

import cv2
import numpy as np

SIZE = (640, 360)
"""Width and height of a photo, pixels."""

_BODY_COLOURS = ((150, 140, 135), (40, 40, 160), (160, 60, 30), (30, 30, 30), (200, 200, 200), (40, 110, 40))


def render_read_photo(text: str, seed: str | int) -> tuple[bytes, tuple[int, int, int, int]]:
    """A JPEG rear view of a car whose plate shows ``text``, and the plate's box.

    Parameters
    ----------
    text : str
        The plate as the camera read it (1-16 characters).
    seed : str or int
        Varies the car's colour, position and the road noise (the same seed, the same photo).

    Returns
    -------
    jpeg : bytes
        The photo, 640x360 JPEG.
    box : tuple of int
        ``(x, y, w, h)`` of the plate in the photo, inside it.
    """
    rng = random.Random(f"photo:{seed}")
    w, h = SIZE
    noise = np.random.default_rng(rng.getrandbits(32))
    img = noise.normal(95, 3, (h, w, 3)).clip(0, 255).astype(np.uint8)
    dx, dy = rng.randint(-60, 60), rng.randint(-20, 20)
    body = _BODY_COLOURS[rng.randrange(len(_BODY_COLOURS))]
    cx, top = w // 2 + dx, 90 + dy
    cv2.rectangle(img, (cx - 170, top), (cx + 170, top + 220), body, -1)  # body
    cv2.rectangle(img, (cx - 145, top + 15), (cx + 145, top + 90), (55, 50, 45), -1)  # rear window
    cv2.rectangle(img, (cx - 170, top + 190), (cx + 170, top + 220), (35, 35, 35), -1)  # bumper
    pw, ph = 150, 75
    box = (cx - pw // 2, top + 120, pw, ph)
    x, y = box[0], box[1]
    cv2.rectangle(img, (x, y), (x + pw, y + ph), (245, 245, 245), -1)
    cv2.rectangle(img, (x, y), (x + pw, y + ph), (30, 30, 30), 2)
    cv2.putText(img, "ALABAMA", (x + 42, y + 15), cv2.FONT_HERSHEY_PLAIN, 0.8, (120, 40, 20), 1, cv2.LINE_AA)
    scale = 1.0
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
    if tw > pw - 14:  # long plates: smaller characters, still inside the plate
        scale *= (pw - 14) / tw
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
    org = (x + (pw - tw) // 2, y + 22 + (ph - 22 + th) // 2)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, (20, 20, 20), 2, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:  # pragma: no cover - encoding a non-empty BGR array does not fail
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf), box
