"""Figures of the plate-state classifier and of the region reader (``rtcc.plates.region``).

``--part val|test``: the ``seg_and_ocr`` crops of that part of ``state_split.json`` (``test`` is read
once, for the model card), each as it is (clean) and once degraded mildly and once harshly, as the
traffic images show plates (``state_train.degrade``, fixed seed): top-1 accuracy, the share told
(probability >= the model's threshold) and the accuracy of the told states.

``--e2e``: the **tune** images of the end-to-end sets (``split.json``; ``--e2e-part test`` only for
"told / plausible by eye", never for tuning): the reader with the text-only region reader (before)
and with the default one (after; ``--looks``: with the look classifier too); prints every told
region with the plate's text and the look classifier's probability, checks the reads' texts are
unchanged, scores the told regions against the labels by eye ``state_us_tune_labels.csv`` /
``state_eu_tune_labels.csv`` (tune only) and times the region step (CPU ms per plate, one thread).

Usage: python training/plates/state_eval.py (--part val|test | --e2e [--e2e-part tune|test] [--looks])
[--data DIR] [--model ONNX]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from state_train import DEFAULT_ROOT, HERE, degrade, load

from rtcc.plates import PlateReader
from rtcc.plates.detect import TextRegion
from rtcc.plates.region import STATE_MODEL, RegionReader, StateClassifier, find_band, plate_box


def crops(args: argparse.Namespace) -> None:
    clf = StateClassifier(args.model)
    images, states = load(args.data, args.part)
    rng = random.Random(4321)
    mild = [degrade(i, rng) for i in images]
    harsh = [degrade(i, rng, harsh=True) for i in images]
    for label, views in (("clean", images), ("mild", mild), ("harsh", harsh)):
        p = clf.probs(views)
        top, pred = p.max(1), [clf.states[k] for k in p.argmax(1)]
        right = np.array([a == b for a, b in zip(pred, states, strict=True)])
        told = top >= clf.threshold
        when = right[told].mean() if told.any() else float("nan")
        print(
            f"{args.part} {label}: {len(views)} crops, "
            f"top-1 {right.sum()}/{len(views)} = {right.mean():.1%}; "
            f"told {told.sum()}/{len(views)} = {told.mean():.1%}, "
            f"right when told {right[told].sum()}/{told.sum()} = {when:.1%} (threshold {clf.threshold:.3f})"
        )


class Timed:
    """A region reader that sums its CPU time and keeps its last arguments."""

    def __init__(self, inner: RegionReader) -> None:
        self.inner, self.cpu, self.calls, self.last = inner, 0.0, 0, None

    def __call__(self, image: np.ndarray, plate: TextRegion, regions: list[TextRegion]) -> str | None:
        c0 = time.process_time()
        out = self.inner(image, plate, regions)
        self.cpu += time.process_time() - c0
        self.calls += 1
        self.last = (image, plate)
        return out


def e2e(args: argparse.Namespace) -> None:
    split = json.loads((HERE / "split.json").read_text())
    labels: dict[str, str] = {}  # tune image -> state or country by eye ("" when not sure)
    for name in ("state_us_tune_labels.csv", "state_eu_tune_labels.csv"):
        with (HERE / name).open() as f:
            for row in csv.DictReader(line for line in f if not line.startswith("#")):
                labels[row["file"]] = row.get("state") or row.get("country") or ""
    before = PlateReader.load()
    assert before.region_reader is not None
    text_only = Timed(RegionReader(before.region_reader.recognizer, state_model=None, bands=False))
    before.region_reader = text_only
    after = PlateReader.load()
    if args.looks:  # the look classifier too (off by default)
        assert after.region_reader is not None
        after.region_reader = RegionReader(after.region_reader.recognizer, state_model=args.model)
    full = after.region_reader
    assert isinstance(full, RegionReader)
    looks = StateClassifier(args.model)
    timed = Timed(full)
    after.region_reader = timed
    changed = 0
    for region in ("us", "eu"):
        told = right = wrong = bands = 0
        names = split[region][args.e2e_part]
        for name in names:
            img = cv2.imread(str(args.data / "endtoend" / region / name))
            truth = (args.data / "endtoend" / region / (name[:-4] + ".txt")).read_text().split()[-1].upper()
            timed.last = None
            a, b = before.read(img), after.read(img)
            if [(p.text, p.box) for p in a] != [(p.text, p.box) for p in b]:
                changed += 1
                print("TEXT CHANGED", name, a, b)
            if not b or timed.last is None:
                continue
            plate = timed.last[1]
            band = find_band(img, plate.box)
            bands += band is not None
            x, y, w, h = plate_box(plate.box, img.shape)
            guess = looks.guess(img[y : y + h, x : x + w])
            if b[0].region:
                told += 1
                note = ""
                if args.e2e_part == "tune":
                    label = labels[name]
                    right += label == b[0].region
                    wrong += bool(label) and label != b[0].region
                    verdict = "right" if label == b[0].region else "WRONG" if label else "not labelled"
                    note = f"label {label or '?'} {verdict}"
                print(
                    f"told {region} {name}: {truth} -> {b[0].text} {b[0].region} "
                    f"(before {a[0].region if a else None}; look {guess.state} {guess.probability:.2f}; "
                    f"band {band is not None}) {note}"
                )
        labelled = sum(bool(labels.get(n)) for n in names)
        tail = (
            f"; by eye ({labelled} labelled) right {right} wrong {wrong}" if args.e2e_part == "tune" else ""
        )
        print(
            f"{region} {args.e2e_part}: {len(names)} images, region told on {told}; bands found {bands}{tail}"
        )
    print(
        f"reads changed by the region step: {changed}; region step CPU ms per plate: text only "
        f"{1000 * text_only.cpu / max(1, text_only.calls):.2f} ({text_only.calls} plates), full "
        f"{1000 * timed.cpu / max(1, timed.calls):.2f} ({timed.calls} plates)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["val", "test"])
    ap.add_argument("--e2e", action="store_true")
    ap.add_argument("--e2e-part", choices=["tune", "test"], default="tune")
    ap.add_argument("--looks", action="store_true", help="--e2e: with the look classifier (off by default)")
    ap.add_argument("--data", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--model", type=Path, default=STATE_MODEL)
    args = ap.parse_args()
    if args.part:
        crops(args)
    if args.e2e:
        e2e(args)


if __name__ == "__main__":
    main()
