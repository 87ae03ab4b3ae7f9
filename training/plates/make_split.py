"""Write ``split.json``: a deterministic tune/test split of the OpenALPR end-to-end US and EU sets.

Images are grouped by their ground-truth plate text (some vehicles appear in several consecutive
frames), and a group goes to ``test`` when the first byte of the SHA-1 of its text is odd, so the same
car never lands on both sides. Only ``tune`` images (and the ``seg_and_ocr`` crops) may be used for
training or tuning; ``test`` is for the final figures only.

Usage: python training/plates/make_split.py [DATA_ROOT]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared/data/alpr/openalpr-benchmarks"


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROOT
    split: dict[str, object] = {
        "data": "openalpr/benchmarks@9790ed2 endtoend/{us,eu} (AGPL-3.0, not redistributed)",
        "rule": "group by plate text; test if sha1(text)[0] is odd, else tune",
    }
    for region in ("us", "eu"):
        parts: dict[str, list[str]] = {"tune": [], "test": []}
        for txt in sorted((root / "endtoend" / region).glob("*.txt")):
            fields = txt.read_text().strip().split("\t")
            text = fields[-1].upper()
            side = "test" if hashlib.sha1(text.encode()).digest()[0] % 2 else "tune"
            parts[side].append(fields[0])
        split[region] = parts
        print(region, {k: len(v) for k, v in parts.items()})
    out = Path(__file__).with_name("split.json")
    out.write_text(json.dumps(split, indent=1) + "\n")


if __name__ == "__main__":
    main()
