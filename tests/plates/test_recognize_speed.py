"""The detector's faster pre- and post-processing compute exactly what the plain formulations do."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from rtcc.plates.detect import TextDetector, to_input


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    return TextDetector()


@pytest.mark.parametrize("shape", [(544, 960, 3), (33, 65, 3), (1, 1, 3), (32, 32, 3)])
def test_input_is_bit_identical_to_blob_from_image(shape: tuple[int, int, int]) -> None:
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    x = to_input(image)
    reference = cv2.dnn.blobFromImage(image, scalefactor=2.0 / 255.0, mean=(127.5, 127.5, 127.5))
    assert x.shape == (1, 3, shape[0], shape[1]) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.array_equal(x, reference)
    # every value 0..255 of every channel maps to (v - 127.5) * 2 / 255
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_channels_stay_in_bgr_order() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 0, 128, 255
    x = to_input(image)[0]
    assert np.allclose(x[0], -1.0) and np.allclose(x[1], 0.5 / 127.5) and np.allclose(x[2], 1.0)


def _reference_regions(
    det: TextDetector, prob: npt.NDArray[np.float32]
) -> list[tuple[npt.NDArray[np.int32], float]]:
    """Contours and box scores as first written: numpy mask and a filled copy of it per contour."""
    mask = cv2.dilate((prob > det.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        if len(c) < 4 or min(cv2.minAreaRect(c)[1]) < 3:
            continue
        x, y, bw, bh = cv2.boundingRect(c)
        sub = mask[y : y + bh, x : x + bw].copy() * 0
        cv2.fillPoly(sub, [c - np.array([x, y])], 1)
        score = float(prob[y : y + bh, x : x + bw][sub > 0].mean())
        if score >= det.box_thresh:
            out.append((c, score))
    return out


def test_post_processing_matches_the_plain_formulation(detector: TextDetector) -> None:
    rng = np.random.default_rng(7)
    prob = (rng.random((136, 240)) * 0.31).astype(np.float32)  # noise, a few specks above the threshold
    prob[20:40, 30:130] = rng.uniform(0.6, 0.95, (20, 100))  # a text line
    prob[70:80, 150:200] = 0.45  # above the threshold, below the box score: dropped
    prob[100:118, 20:60] = rng.uniform(0.5, 0.9, (18, 40))
    prob[60, 10:40] = np.float32(detector.thresh)  # exactly at the threshold: not text
    got = detector._regions(prob, 2.0, 3.0)
    want = _reference_regions(detector, prob)
    assert len(got) == len(want) >= 2
    assert sorted(r.score for r in got) == sorted(s for _, s in want)
    boxes = sorted(r.box for r in got)
    # the text line maps back by the scale (2, 3) and is grown by the unclip distance
    x, y, w, h = next(b for b in boxes if b[2] > 150)
    assert x < 60 < 260 < x + w and y < 60 < 120 < y + h

    def holds(px: int, py: int) -> bool:
        return any(bx < px < bx + bw and by < py < by + bh for bx, by, bw, bh in boxes)

    assert holds(2 * 40, 3 * 109) and not holds(2 * 175, 3 * 75)  # the 0.45 block is dropped


def test_nothing_above_the_threshold_gives_no_region(detector: TextDetector) -> None:
    prob = np.full((64, 64), detector.thresh, np.float32)
    assert detector._regions(prob, 1.0, 1.0) == []
