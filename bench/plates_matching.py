"""Hotlist matching throughput: reads matched per second against N entries.

Builds a matcher over ``--entries`` random plates (5–7 characters, US-like)
plus 1% wildcard entries, then matches ``--reads`` reads (10% of them hotlisted
plates with a look-alike substitution) and reports reads/s on one core, the
build time and the index size. Writes ``bench/results/plates_matching.jsonl``.

Usage: ``python bench/plates_matching.py --entries 1000000 --max-distance 0``
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from rtcc.plates.matching import LOOKALIKE_CLASSES, HotEntry, HotlistMatcher

ALPHABET = string.ascii_uppercase + string.digits
SWAP = {c: cls for cls in LOOKALIKE_CLASSES for c in cls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--reads", type=int, default=200_000)
    ap.add_argument("--max-distance", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    plates = ["".join(rng.choices(ALPHABET, k=rng.randint(5, 7))) for _ in range(args.entries)]
    entries = [HotEntry(str(i), p, "stolen_vehicle") for i, p in enumerate(plates)]
    for i in range(args.entries // 100):
        p = list(plates[i])
        p[rng.randrange(len(p))] = "?"
        entries.append(HotEntry(f"w{i}", "".join(p), "custom"))
    t0 = time.perf_counter()
    m = HotlistMatcher(entries, max_distance=args.max_distance)
    build_s = time.perf_counter() - t0
    reads = []
    for _ in range(args.reads):
        if rng.random() < 0.1:
            p = list(rng.choice(plates))
            i = rng.randrange(len(p))
            if p[i] in SWAP:
                p[i] = rng.choice(SWAP[p[i]])
            reads.append("".join(p))
        else:
            reads.append("".join(rng.choices(ALPHABET, k=rng.randint(5, 7))))
    t0 = time.perf_counter()
    hits = sum(1 for r in reads if m.match(r))
    match_s = time.perf_counter() - t0
    write_result(
        "plates_matching",
        {
            "reads_per_s": round(len(reads) / match_s),
            "build_s": round(build_s, 2),
            "reads_with_hits": hits,
            "entries_indexed": m.size,
        },
        {"entries": args.entries, "reads": args.reads, "max_distance": args.max_distance, "cores": 1},
    )


if __name__ == "__main__":
    main()
