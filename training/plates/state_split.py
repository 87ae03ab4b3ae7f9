"""Write ``state_split.json``: a deterministic train / val / test split of the ``seg_and_ocr`` US plate
crops for the plate-state classifier (``rtcc/plates/models/plate_state.onnx``).

Crops are grouped by their plate text (19 texts occur on more than one crop), and a group's side is
chosen by the first byte ``b`` of the SHA-1 of its text: ``b < 180`` train (~70 %), ``b < 218`` val
(~15 %), else test (~15 %), so the same plate never lands on two sides. ``val`` chooses the
temperature and the abstain threshold; ``test`` is read once, for the figures of the model card.

Usage: python training/plates/state_split.py [DATA_ROOT]
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared/data/alpr/openalpr-benchmarks"


def side(text: str) -> str:
    """``train``, ``val`` or ``test`` for a plate text."""
    b = hashlib.sha1(text.encode()).digest()[0]
    return "train" if b < 180 else "val" if b < 218 else "test"


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROOT
    rows = (root / "seg_and_ocr" / "groundtruth.csv").read_text().split()
    parts: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
    for row in rows:
        name, state, text = row.split(",")
        parts[side(text.upper())].append([name, state.upper()])
    split = {
        "data": "openalpr/benchmarks@9790ed2 seg_and_ocr (AGPL-3.0, not redistributed)",
        "rule": "group by plate text; b = sha1(text)[0]: train if b < 180, val if b < 218, else test",
        **parts,
    }
    for k, v in parts.items():
        print(k, len(v), "crops,", len(Counter(s for _, s in v)), "states")
    out = Path(__file__).with_name("state_split.json")
    out.write_text(json.dumps(split, indent=1) + "\n")


if __name__ == "__main__":
    main()
