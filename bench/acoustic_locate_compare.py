"""Did the burst steps change what the locator reports on Pittsburgh? Old vs new output, no survey.

    python bench/acoustic_locate_compare.py [--split heldout|tune|all]

Locates every firing position's pulses (all tests at once, as ``bench/acoustic_locate.py`` and the
independent scorer do) with ``AssociationParams(burst_completion=False)`` (the session-5
association exactly) and with the default, and compares the two outputs fix by fix (unchanged:
within 1 mm and 1 µs, the same sensors): how many firing positions give identical output, and how
far any fix moved (metres, milliseconds). The
surveyed positions are not read, so this can be run on the held-out firing positions without
looking at their errors. Written to ``bench/results/acoustic_locate_compare.jsonl``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from acoustic_locate import DATA, SPLITS, load_fp

from rtcc.acoustic.associate import AssociationParams
from rtcc.acoustic.locate import locate_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    args = ap.parse_args()
    per_fp: dict[str, Any] = {}
    for fp in SPLITS[args.split]:
        arrivals, _, temp = load_fp(args.data / fp)
        out, cpu = {}, {}
        for name, flag in (("old", False), ("new", True)):
            t = time.process_time()
            out[name] = locate_all(
                arrivals, temperature_c=temp, params=AssociationParams(burst_completion=flag)
            )
            cpu[name] = round(time.process_time() - t, 2)
        old, new = out["old"], out["new"]
        moved = [
            (math.hypot(a.x_m - b.x_m, a.y_m - b.y_m), abs(a.t0_s - b.t0_s) * 1000.0)
            for a, b in zip(old, new, strict=False)
            if math.hypot(a.x_m - b.x_m, a.y_m - b.y_m) > 1e-3
            or abs(a.t0_s - b.t0_s) > 1e-6
            or sorted(a.sensors) != sorted(b.sensors)
        ]
        per_fp[fp] = {
            "fixes_old": len(old),
            "fixes_new": len(new),
            "identical": len(old) == len(new) and not moved,
            "changed": len(moved),
            "max_moved_m": round(max((m for m, _ in moved), default=0.0), 3),
            "max_dt_ms": round(max((d for _, d in moved), default=0.0), 3),
            "cpu_s": cpu,
        }
        print(fp, per_fp[fp])
    figures = {
        "firing_positions": len(per_fp),
        "identical": sum(v["identical"] for v in per_fp.values()),
        "per_fp": per_fp,
    }
    write_result("acoustic_locate_compare", figures, {"split": args.split})


if __name__ == "__main__":
    main()
