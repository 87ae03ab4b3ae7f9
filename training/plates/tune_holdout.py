"""Print a validation subset of the ``tune`` part: images whose plate's SHA-1 second byte is odd.

Used to choose training recipes and reader options without touching ``test``: train with
``train_crnn.py --hold-out`` on this list, measure on it (``bench/plates_recognition.py --part val``),
then train the shipped model on all of ``tune``. Grouped by plate text like the split itself.

Usage: python training/plates/tune_holdout.py [DATA_ROOT] > holdout.txt
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parents[2] / "shared/data/alpr/openalpr-benchmarks"


def holdout(root: Path = DEFAULT_ROOT) -> dict[str, list[str]]:
    """Names of the held-out tune images per region (``us``, ``eu``)."""
    split = json.loads((HERE / "split.json").read_text())
    out: dict[str, list[str]] = {}
    for region in ("us", "eu"):
        names = []
        for name in split[region]["tune"]:
            text = (root / "endtoend" / region / (name[:-4] + ".txt")).read_text().strip().split("\t")[-1]
            if hashlib.sha1(text.upper().encode()).digest()[1] % 2:
                names.append(name)
        out[region] = names
    return out


if __name__ == "__main__":
    for names in holdout(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROOT).values():
        print("\n".join(names))
