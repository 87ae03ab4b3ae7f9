"""Crop-level check of plate recognizers on the held-out (``val``) crops of ``build_crops.py``.

End to end, ``val`` (56 images) hardly tells recognizers apart any more (session 5: 28/29 US for two
different hold-out models). This reads the crops of the held-out images themselves (the ground-truth
box and the detector region of each plate, and the other text regions, which should read as
nothing) and prints, per model: plate crops read exactly (greedy CTC, O/0 folded), the mean negative
log-likelihood per character of the true text (:func:`rtcc.plates.ocr.ctc_log_likelihood`, lower is
better), non-plate crops read as nothing, the substitutions, and the US misses. ``A.onnx+B.onnx``
averages the two models' outputs (an ensemble). A model with a 3-channel input (a PP-OCRv4-style
recognizer, ``finetune_ppocr.py``) reads the colour crops (``bgr``); ``general`` is the untouched
general recognizer seen through the plate alphabet (``TextRecognizer.plate_probs``, colour crops).
Session 6: ``HOLDOUT.txt`` from ``crop_split.py`` (the crop-level val: val images + 20 % of the
``seg_and_ocr`` plate texts). Session 7: 3-channel models are read as :class:`PlateOCR` reads them,
padded to a multiple of 32 px (:func:`rtcc.plates.ocr.rec_padded`); ``general32`` is ``general`` read
the same padded way (``general`` itself reads each crop at its own width, as the shipped second reader).

Usage: python training/plates/eval_crops.py CROPS.npz HOLDOUT.txt MODEL.onnx|general|general32
[MODEL.onnx ...]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np

from rtcc.plates.ocr import PlateOCR, ctc_log_likelihood, decode, rec_padded
from rtcc.plates.region import TextRecognizer


def fold(text: str) -> str:
    return text.replace("O", "0")


def main() -> None:
    crops_file, holdout_file, *models = sys.argv[1:]
    data = np.load(crops_file, allow_pickle=True)
    held = set(Path(holdout_file).read_text().split())
    sources = [str(s) for s in data["source"]]
    keep = [i for i, s in enumerate(sources) if s.partition(":")[2] in held]
    all_crops, all_labels = data["crops"], data["labels"]
    crops = [all_crops[i] for i in keep]
    bgr = [data["bgr"][i] for i in keep] if "bgr" in data.files else crops
    labels = [str(all_labels[i]) for i in keep]
    kinds = [sources[i].partition(":")[0] for i in keep]
    pos = [k for k, s in enumerate(labels) if s]
    neg = [k for k, s in enumerate(labels) if not s]

    def read(model: str) -> list[np.ndarray]:
        if model == "general":
            general = TextRecognizer()
            return [general.plate_probs(c) for c in bgr]
        if model == "general32":
            general = TextRecognizer()
            with mock.patch("rtcc.plates.region.rec_input", rec_padded):
                return [general.plate_probs(c) for c in bgr]
        ocr = PlateOCR(Path(model))
        return ocr.probs(bgr if ocr.colour else crops)

    for spec in models:
        outputs = [read(m) for m in spec.split("+")]
        probs = [np.mean([o[k] for o in outputs], axis=0) for k in range(len(crops))]
        exact, nll, subs, misses = 0, 0.0, Counter[str](), []
        for k in pos:
            text, truth = decode(probs[k]).text, labels[k]
            nll -= ctc_log_likelihood(probs[k], truth) / len(truth)
            if fold(text) == fold(truth):
                exact += 1
                continue
            if "-us-" in kinds[k]:
                misses.append(f"{truth}->{text or '-'}")
            if len(text) == len(truth):
                subs.update(f"{a}->{b}" for a, b in zip(fold(truth), fold(text), strict=True) if a != b)
        empty = sum(decode(probs[k]).text == "" for k in neg)
        print(
            f"{spec}: plate crops exact {exact}/{len(pos)}, mean NLL per character {nll / len(pos):.3f}, "
            f"non-plate crops read as nothing {empty}/{len(neg)}"
        )
        print("  substitutions:", ", ".join(f"{s} x{n}" for s, n in subs.most_common(12)))
        print("  US misses:", " ".join(misses))


if __name__ == "__main__":
    main()
