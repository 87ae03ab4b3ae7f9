"""CPU time per image of the shipped reader against one with another second reader, interleaved.

One process, one ONNX Runtime thread per model; the images of a split part resized to 1280x720 are
read by reader A (the general recognizer re-reads uncertain plates, the default before session 7) and reader B
(``--second-model``: a plate recognizer re-reads them), image by image in turn (A then B, B then A on
the next image), after one warm-up read each; the models the two share (detector, plate CRNN, general
recognizer for the state) are the same objects. Prints each reader's mean CPU ms per image and how
many best plates differ (a speed check, not an accuracy figure).

Usage: python training/plates/speed_ab.py --second-model CAND.onnx [--part tune] [--data DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
from tune_holdout import DEFAULT_ROOT, HERE

from rtcc.plates.detect import TextDetector
from rtcc.plates.ocr import PlateOCR
from rtcc.plates.recognize import PlateReader
from rtcc.plates.region import RegionReader, TextRecognizer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--second-model", type=Path, required=True)
    ap.add_argument("--part", default="tune", choices=["tune"])
    ap.add_argument("--data", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    split = json.loads((HERE / "split.json").read_text())
    frames = [
        cv2.resize(cv2.imread(str(args.data / "endtoend" / r / n)), (1280, 720), interpolation=cv2.INTER_AREA)
        for r in ("us", "eu")
        for n in split[r][args.part]
    ]
    det, ocr, general = TextDetector(threads=1), PlateOCR(threads=1), TextRecognizer(threads=1)
    regions = RegionReader(general)
    readers = {
        "A general second": PlateReader(det, ocr, region_reader=regions, second=general),
        "B second-model": PlateReader(det, ocr, region_reader=regions, second=PlateOCR(args.second_model)),
    }
    for r in readers.values():
        r.read(frames[0])
    cpu = dict.fromkeys(readers, 0.0)
    differ = 0
    for _ in range(args.rounds):
        for i, frame in enumerate(frames):
            order = list(readers) if i % 2 == 0 else list(reversed(readers))
            best = {}
            for name in order:
                c0 = time.process_time()
                plates = readers[name].read(frame)
                cpu[name] += time.process_time() - c0
                best[name] = plates[0].text if plates else ""
            differ += len(set(best.values())) > 1
    n = len(frames) * args.rounds
    for name, total in cpu.items():
        print(f"{name}: {1000 * total / n:.1f} CPU ms per image ({n} reads)")
    a, b = (1000 * v / n for v in cpu.values())
    print(f"B - A: {b - a:+.1f} ms per image; best plate differs on {differ} of {n} reads")


if __name__ == "__main__":
    main()
