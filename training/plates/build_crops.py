"""Cut training crops (detector-style) from the tune split and the US ``seg_and_ocr`` plates.

Writes an ``.npz`` OUTSIDE the repository (the images are AGPL-3.0 and are not redistributed):
``crops`` (object array of grey uint8 crops), ``bgr`` (the same crops in colour, BGR uint8: the
PP-OCRv4 recognizer reads colour) and ``labels`` (plate text, "" = not a plate).
``source`` says where each crop comes from (``e2e-us-det:IMAGE``, ``seg-det:IMAGE`` etc., so a
training run can hold images out). Positives are the detector region that best covers the
ground-truth plate (end-to-end tune images) or whose PP-OCR reading is nearest the label
(seg_and_ocr); the other regions are negatives.
The general PP-OCRv4 recognizer from the rapidocr wheel is used here only, at training time.

Usage: python training/plates/build_crops.py RAPIDOCR_REC_ONNX OUT.npz [DATA_ROOT]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from rtcc.plates.detect import TextDetector
from rtcc.plates.ocr import rectify

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parents[2] / "shared/data/alpr/openalpr-benchmarks"


def lev(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


class PPRec:
    def __init__(self, path: str) -> None:
        self.s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.chars = ["", *self.s.get_modelmeta().custom_metadata_map["character"].splitlines(), " "]

    def __call__(self, crop: np.ndarray) -> str:
        h, w = crop.shape[:2]
        ww = min(320, int(np.ceil(48 * w / h)))
        r = cv2.resize(crop, (ww, 48)).astype(np.float32) / 127.5 - 1
        x = np.zeros((1, 3, 48, 320), np.float32)
        x[0, :, :, :ww] = r.transpose(2, 0, 1)
        idx = self.s.run(None, {self.s.get_inputs()[0].name: x})[0][0].argmax(1)
        s = "".join(self.chars[k] for i, k in enumerate(idx) if k and (i == 0 or k != idx[i - 1]))
        return re.sub(r"[^0-9A-Z]", "", s.upper())


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def grey(c: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(c, cv2.COLOR_BGR2GRAY)


def main() -> None:
    rec = PPRec(sys.argv[1])
    out = sys.argv[2]
    root = Path(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_ROOT
    split = json.loads((HERE / "split.json").read_text())
    crops: list[np.ndarray] = []
    bgr: list[np.ndarray] = []
    labels: list[str] = []
    source: list[str] = []
    det = TextDetector(long_side=960)
    for region in ("us", "eu"):
        for name in split[region]["tune"]:
            img = cv2.imread(str(root / "endtoend" / region / name))
            f = (root / "endtoend" / region / (name[:-4] + ".txt")).read_text().strip().split("\t")
            gt, text = (int(f[1]), int(f[2]), int(f[3]), int(f[4])), f[-1].upper()
            x, y, w, h = gt
            quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
            bgr.append(rectify(img, quad))
            labels.append(text)
            source.append(f"e2e-{region}-gtbox:{name}")
            for r in det(img):
                o = iou(gt, r.box)
                if o > 0.3:
                    bgr.append(rectify(img, r.quad))
                    labels.append(text)
                    source.append(f"e2e-{region}-det:{name}")
                elif o == 0.0 and r.box[3] >= 8:
                    bgr.append(rectify(img, r.quad))
                    labels.append("")
                    source.append(f"e2e-{region}-neg:{name}")
    det_small = TextDetector(long_side=640)
    for line in (root / "seg_and_ocr/groundtruth.csv").read_text().splitlines():
        name, _state, text = line.strip().split(",")
        if text == "0":
            continue
        img = cv2.imread(str(root / "seg_and_ocr/usimages" / name))
        if img is None:
            continue
        h, w = img.shape[:2]
        pad = cv2.copyMakeBorder(img, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
        regions = [r for r in det_small(pad) if r.box[3] >= 8]
        reads = [(lev(rec(rectify(pad, r.quad)), text), i) for i, r in enumerate(regions)]
        best = min(reads, default=(99, -1))
        for d, i in reads:
            if i == best[1] and d <= max(1, len(text) // 3):
                bgr.append(rectify(pad, regions[i].quad))
                labels.append(text)
                source.append(f"seg-det:{name}")
            elif d >= len(text) - 1:
                bgr.append(rectify(pad, regions[i].quad))
                labels.append("")
                source.append(f"seg-neg:{name}")
    crops = [grey(c) for c in bgr]
    arr = np.empty(len(crops), dtype=object)
    arr[:] = crops
    arr_bgr = np.empty(len(bgr), dtype=object)
    arr_bgr[:] = bgr
    np.savez(out, crops=arr, bgr=arr_bgr, labels=np.array(labels), source=np.array(source))
    kinds = [s.split(":")[0] for s in source]
    for k in sorted(set(kinds)):
        print(k, kinds.count(k))


if __name__ == "__main__":
    main()
