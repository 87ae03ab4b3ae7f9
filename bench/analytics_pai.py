"""Hotspot methods on the real ShotSpotter records: PAI and hit rate against the naive baseline.

Rolling evaluation (``rtcc.analytics.evaluate``): fit on the 12 months before each test month,
test on that month, roll across the record; each method's parameters are tuned on the first 3
usable test months only, which are left out of the figures. Flagged-area shares 1 % and 5 % of
the study area (H3 cells). With ``--by-shift`` each shift (day 07–15, evening 15–23, night 23–07)
is also evaluated on its own incidents. Writes one line per city (and shift) to
``bench/results/analytics_pai.jsonl``.

Usage: ``python bench/analytics_pai.py --data ../shared/data/incidents [--city sf] [--by-shift]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from rtcc.analytics.evaluate import evaluate
from rtcc.analytics.grid import StudyArea
from rtcc.analytics.hotspots import SHIFTS, in_shift
from rtcc.analytics.records import CITIES, incidents_dir, load_city
from rtcc.errors import ValidationFailed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=None, help="records folder (default $RTCC_INCIDENTS_DIR or ../shared/…)"
    )
    ap.add_argument("--city", choices=[*CITIES, "all"], default="all")
    ap.add_argument("--res", type=int, default=9)
    ap.add_argument("--fit-months", type=int, default=12)
    ap.add_argument("--tune-months", type=int, default=3)
    ap.add_argument("--shares", default="1,5", help="flagged-area shares in %%; the last one tunes")
    ap.add_argument("--min-test", type=int, default=20, help="skip test months with fewer incidents")
    ap.add_argument("--min-test-shift", type=int, default=5, help="the same for one shift's incidents")
    ap.add_argument("--by-shift", action="store_true")
    args = ap.parse_args()
    shares = tuple(float(x) / 100 for x in args.shares.split(","))
    data = incidents_dir(args.data)
    for city in CITIES if args.city == "all" else [args.city]:
        inc = load_city(data, city)
        area = StudyArea.covering(inc.lat, inc.lon, args.res)
        for shift in [None, *(SHIFTS if args.by_shift else [])]:
            part = inc if shift is None else in_shift(inc, shift)
            min_test = args.min_test if shift is None else args.min_test_shift
            t0 = time.perf_counter()
            try:
                ev = evaluate(
                    part,
                    area=area,
                    city=city,
                    res=args.res,
                    fit_months=args.fit_months,
                    shares=shares,
                    tune_folds=args.tune_months,
                    min_test=min_test,
                )
            except ValidationFailed as exc:
                print(f"{city} {shift or 'all'}: not evaluated: {exc.message}", file=sys.stderr)
                continue
            seconds = time.perf_counter() - t0
            d = ev.to_dict()
            write_result(
                "analytics_pai",
                {
                    "methods": d["methods"],
                    "test_months": [d["test_months"][0], d["test_months"][-1], len(d["test_months"])],
                    "tuning_months": d["tuning_months"],
                    "skipped_months": d["skipped_months"],
                    "incidents": d["incidents"],
                    "dropped": d["dropped"],
                    "cells": d["cells"],
                    "area_km2": d["area_km2"],
                    "seconds": round(seconds, 1),
                },
                {
                    "city": city,
                    "shift": shift or "all",
                    "data": str(data),
                    "res": args.res,
                    "fit_months": args.fit_months,
                    "tune_months": args.tune_months,
                    "shares": list(shares),
                    "min_test": min_test,
                },
            )


if __name__ == "__main__":
    main()
