"""Synthetic plate pictures for the camera-ingest and video tests (no real data needed)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


def car_with_plate(
    text: str,
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    shift: tuple[int, int] = (0, 0),
) -> npt.NDArray[np.uint8]:
    """A BGR frame: noisy road, a grey car body, and a white plate reading ``text``.

    ``shift`` moves the car by (dx, dy) pixels from the middle of a 1280x720 frame.
    """
    w, h = size
    dx, dy = shift
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(img, (380 + dx, 220 + dy), (900 + dx, 620 + dy), (150, 140, 135), -1)  # body
    cv2.rectangle(img, (420 + dx, 250 + dy), (860 + dx, 380 + dy), (60, 55, 50), -1)  # rear window
    cv2.rectangle(img, (380 + dx, 560 + dy), (900 + dx, 610 + dy), (40, 40, 40), -1)  # bumper
    cv2.rectangle(img, (560 + dx, 440 + dy), (720 + dx, 520 + dy), (245, 245, 245), -1)  # plate
    cv2.rectangle(img, (560 + dx, 440 + dy), (720 + dx, 520 + dy), (30, 30, 30), 2)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 1.1, 3)
    cv2.putText(
        img,
        text,
        (640 + dx - tw // 2, 480 + dy + th // 2),
        cv2.FONT_HERSHEY_DUPLEX,
        1.1,
        (20, 20, 20),
        3,
        cv2.LINE_AA,
    )
    return img


def road(size: tuple[int, int] = (1280, 720), seed: int = 0) -> npt.NDArray[np.uint8]:
    """An empty noisy road frame (no plate)."""
    w, h = size
    rng = np.random.default_rng(seed)
    return rng.normal(90, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)


def jpeg(img: npt.NDArray[np.uint8], quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(buf)
