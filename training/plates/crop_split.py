"""Print the crop-level validation images (session 6): names whose crops no recognizer trains on.

``val`` end-to-end images (``tune_holdout.py``: 29 US, 27 EU) plus the ``seg_and_ocr`` US plates of a
seeded 20 % of the plate *texts* (``random.Random(seed)``, texts sorted first), so that no plate text
is on both sides: a ``seg_and_ocr`` text equal to a ``val`` image's text is held out with it, one equal
to a training end-to-end image's text stays in training. Every crop ``build_crops.py`` cut from a
listed image (plate and non-plate crops) is then validation (``train_crnn.py --hold-out``,
``finetune_ppocr.py --hold-out``, ``eval_crops.py``). The ``test`` images are in no crop set at all
(``build_crops.py`` reads ``tune`` only).

Session 7: ``--exclude OLD.txt`` (an earlier crop-val, now *seen*) leaves out every listed image and
every plate text of a listed image (the end-to-end ``val`` images are all in the seed-0 list), so the
fresh crop-val holds only ``seg_and_ocr`` plates whose texts never decided anything; the crops of
``OLD.txt`` go back to training.

Usage: python training/plates/crop_split.py [DATA_ROOT] [--seed S] [--share F] [--exclude OLD.txt]
> cropval.txt
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from tune_holdout import DEFAULT_ROOT, HERE, holdout


def e2e_text(root: Path, region: str, name: str) -> str:
    """The plate text of an end-to-end image (its ``.txt`` label, upper case)."""
    return (root / "endtoend" / region / (name[:-4] + ".txt")).read_text().strip().split("\t")[-1].upper()


def crop_holdout(
    root: Path = DEFAULT_ROOT, seed: int = 0, share: float = 0.2, exclude: frozenset[str] = frozenset()
) -> list[str]:
    """Image names (end-to-end and ``seg_and_ocr``) whose crops are validation; none of ``exclude`` and
    no ``seg_and_ocr`` plate whose text is the text of an image in ``exclude``."""
    val = holdout(root)
    split = json.loads((HERE / "split.json").read_text())
    val_texts = {e2e_text(root, r, n) for r in val for n in val[r]}
    train_texts = {
        e2e_text(root, r, n) for r in ("us", "eu") for n in split[r]["tune"] if n not in set(val[r])
    }
    seg: dict[str, list[str]] = {}
    for line in (root / "seg_and_ocr/groundtruth.csv").read_text().splitlines():
        name, _state, text = line.strip().split(",")
        if text != "0":
            seg.setdefault(text.upper(), []).append(name)
    seen = {t for t, ns in seg.items() if set(ns) & exclude}
    seen |= {e2e_text(root, r, n) for r in val for n in val[r] if n in exclude}
    free = sorted(t for t in seg if t not in val_texts and t not in train_texts and t not in seen)
    chosen = set(random.Random(seed).sample(free, round(share * len(seg))))
    names = [n for r in ("us", "eu") for n in val[r]]
    names += sorted(n for t, ns in seg.items() if t in chosen or t in val_texts for n in ns)
    return [n for n in names if n not in exclude]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--share", type=float, default=0.2, help="share of the seg_and_ocr plate texts held out")
    ap.add_argument("--exclude", type=Path, help="an earlier crop-val: its images and texts left out")
    args = ap.parse_args()
    exclude = frozenset(args.exclude.read_text().split()) if args.exclude else frozenset[str]()
    print("\n".join(crop_holdout(args.root, args.seed, args.share, exclude)))


if __name__ == "__main__":
    main()
