"""Text-region detection with the PP-OCRv4 DB detector (ONNX), tuned for licence plates.

The detector outputs a per-pixel text probability map; regions above ``thresh`` are turned into
rotated rectangles, grown by the DB "unclip" distance and mapped back to the input image. Plates are
picked later among these regions by the reader, which knows what plate text looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from rtcc.plates.backend import Backend, ModelSession
from rtcc.plates.backend import session as backend_session

MODEL_DIR = Path(__file__).with_name("models")
DET_MODEL = MODEL_DIR / "ppocrv4_det.onnx"
DET_MODEL_INT8 = MODEL_DIR / "ppocrv4_det_int8.onnx"
"""The same detector quantized to int8 (``training/plates/quantize_det.py``): ~1.6x faster, less exact."""

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class TextRegion:
    """One detected text region.

    Attributes
    ----------
    quad : ndarray, shape (4, 2), float32
        Corners in input-image pixels, clockwise from top-left (as read).
    score : float
        Mean text probability inside the region, 0-1.
    """

    quad: npt.NDArray[np.float32]
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Axis-aligned ``(x, y, w, h)`` of the quad, in pixels (not clipped)."""
        x0, y0 = np.floor(self.quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.quad.max(axis=0)).astype(int)
        return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _normalisation_table() -> npt.NDArray[np.float32]:
    """The detector's input value of each ``uint8`` pixel value, as OpenCV's ``blobFromImage`` with
    ``scalefactor`` 2/255 and ``mean`` 127.5 computes it: ``(pixel - 127.5) * 2 / 255`` in float32."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), 3, axis=2)
    blob = cv2.dnn.blobFromImage(ramp, scalefactor=2.0 / 255.0, mean=(127.5, 127.5, 127.5))
    return np.ascontiguousarray(blob[0, 0, 0])


_NORM = _normalisation_table()
_KERNEL = np.ones((2, 2), np.uint8)


def to_input(resized: Image) -> npt.NDArray[np.float32]:
    """The detector's (1, 3, H, W) float32 input of a resized BGR ``uint8`` image.

    Each pixel value ``v`` becomes ``(v - 127.5) * 2 / 255`` (-1..1), channels first. The input has
    only 256 values, so each channel plane is mapped through a 256-entry table
    (:data:`_NORM`, computed once with ``cv2.dnn.blobFromImage`` itself) straight into its place in
    the output: the same bits as ``blobFromImage``, without its float image and transpose passes.
    """
    h, w = resized.shape[:2]
    out = np.empty((1, 3, h, w), np.float32)
    for c, plane in enumerate(cv2.split(resized)):
        cv2.LUT(plane, _NORM, dst=out[0, c])
    return out


def order_quad(pts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Order 4 points as top-left, top-right, bottom-right, bottom-left."""
    pts = pts[np.argsort(pts[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


class TextDetector:
    """PP-OCRv4 DB text detector.

    Parameters
    ----------
    long_side : int
        The image is resized so its long side is this many pixels (rounded to a multiple of 32)
        before detection (960: a 1280x720 frame is read at 960x544; plates of 55+ px stay readable).
    thresh : float
        Probability threshold of the text map, 0-1.
    box_thresh : float
        Minimum mean probability of a kept region, 0-1.
    unclip_ratio : float
        DB growth of each region (area x ratio / perimeter), as in PP-OCR.
    threads : int
        Inference threads.
    model : Path
        ONNX file: :data:`DET_MODEL` (float, default) or :data:`DET_MODEL_INT8`.
    backend : {"onnxruntime", "openvino"}
        Where the network runs (:mod:`rtcc.plates.backend`).
    precision : {"bf16", "f32"}
        OpenVINO's arithmetic: bfloat16 (fast, a little less exact) or float32.
    static_after : int or None
        OpenVINO: compile an input shape on its own once it has been seen this many times
        (:class:`rtcc.plates.backend.OpenVinoSession`; a camera's frames all have one shape).
    """

    def __init__(
        self,
        long_side: int = 960,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        threads: int = 1,
        model: Path = DET_MODEL,
        backend: Backend = "onnxruntime",
        precision: Literal["bf16", "f32"] = "bf16",
        static_after: int | None = None,
    ) -> None:
        self.long_side = long_side
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.backend = backend
        self.sess: ModelSession = backend_session(model, threads, backend, precision, static_after)
        self.input_name = self.sess.get_inputs()[0].name

    def __call__(self, image: Image) -> list[TextRegion]:
        """Detect text regions in a BGR ``uint8`` image of shape (H, W, 3)."""
        h, w = image.shape[:2]
        scale = self.long_side / max(h, w)
        rh = max(32, round(h * scale / 32) * 32)
        rw = max(32, round(w * scale / 32) * 32)
        resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        x = to_input(np.asarray(resized, dtype=np.uint8))
        prob = self.sess.run(None, {self.input_name: x})[0][0, 0]
        return self._regions(prob, w / rw, h / rh)

    def _regions(self, prob: npt.NDArray[np.float32], sx: float, sy: float) -> list[TextRegion]:
        # 1 where prob > thresh: the boolean mask viewed as uint8 (no conversion pass)
        mask = cv2.dilate((prob > self.thresh).view(np.uint8), _KERNEL)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        out: list[TextRegion] = []
        for c in contours[:1000]:
            if len(c) < 4:
                continue
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(c)
            if min(rw, rh) < 3:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            sub = np.zeros((bh, bw), np.uint8)
            cv2.fillPoly(sub, [c], 1, offset=(-x, -y))
            score = float(prob[y : y + bh, x : x + bw][sub > 0].mean())
            if score < self.box_thresh:
                continue
            d = rw * rh * self.unclip_ratio / (2 * (rw + rh))
            pts = cv2.boxPoints(((cx, cy), (rw + 2 * d, rh + 2 * d), angle)).astype(np.float32)
            pts *= np.array([sx, sy], dtype=np.float32)
            out.append(TextRegion(order_quad(pts), score))
        return out
