"""Gunfire source level from ShotSpotter's Pittsburgh live-fire data: reported level against distance.

    python bench/acoustic_source_level.py [--data DIR] [--split tune|heldout|all] [--no-write] [--note TEXT]

For every round, the pulses ShotSpotter selected for it (``nlos-tuples.json``: the direct-path
arrivals of that round, a subset of ``allpulses.json``) give the sensor's reported
``power_dB_SPL`` and its 3-D distance ``d`` to the surveyed shooter. The source level at 1 m is
estimated as in :func:`rtcc.acoustic.evidence.source_level_db`::

    L = power_dB_SPL + 20 log10(d / 1 m) + alpha d

(spherical spreading plus air absorption, ``alpha`` = 0.005 dB/m). Reported: the median, quartiles
and 10th/90th percentiles over pulses and over rounds (the median over a round's sensors, as the
pipeline does), the least-squares slope of level against ``log10(d)`` (−20 for pure spherical
spreading) and the share of rounds with ≥ 4 sensors whose levels fall with distance (Spearman
ρ < 0, the pipeline's consistency check), and the level likelihood ratio the pipeline
would give each round with the default references (share at the full loud ratio, share below 1).

Split (declared): the reference level the pipeline uses (``acoustic.gun_source_db``) was read off
the **tune** firing positions FP1, FP3, FP5, FP7, FP9 only; ``--split heldout`` is a check run once.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from acoustic_locate import DATA, SPLITS

from rtcc.acoustic.evidence import AIR_ABSORPTION_DB_PER_M, level_llr, source_level_db, spearman
from rtcc.settings import AcousticSettings


def rounds_of(fp: Path) -> list[list[tuple[float, float]]]:
    """Per round of a firing position: (distance m, reported power dB SPL) of its selected pulses."""
    out: list[list[tuple[float, float]]] = []
    for t in sorted(p for p in fp.iterdir() if p.is_dir()):
        pulses = {p["pulse_uuid"]: p for p in json.loads((t / f"{t.name}.allpulses.json").read_text())}
        s = json.loads((t / f"{t.name}.survey.json").read_text())["survey_location"]
        tuples = json.loads((t / f"{t.name}.nlos-tuples.json").read_text())
        for shot in tuples:
            pts = []
            for uid in shot["pulse_uuids"]:
                p = pulses.get(uid)
                if p is None or p.get("power_dB_SPL") is None:
                    continue
                loc = p["location"]
                d = math.dist((loc["x"], loc["y"], loc["z"]), (s["x"], s["y"], s["z"]))
                pts.append((d, float(p["power_dB_SPL"])))
            if pts:
                out.append(pts)
    return out


def _q(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs)
    p10, p25, p50, p75, p90 = np.percentile(a, [10, 25, 50, 75, 90])
    return {
        "median": round(float(p50), 1),
        "p25": round(float(p25), 1),
        "p75": round(float(p75), 1),
        "p10": round(float(p10), 1),
        "p90": round(float(p90), 1),
        "n": len(xs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=sorted(SPLITS), default="tune")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to the results")
    ap.add_argument("--note", default="", help="free text recorded with the result")
    args = ap.parse_args()
    per_pulse: list[float] = []
    per_round: list[float] = []
    dist: list[float] = []
    power: list[float] = []
    falling = checked = 0
    llrs: list[float] = []
    ref = AcousticSettings()
    for fp in SPLITS[args.split]:
        for pts in rounds_of(args.data / fp):
            levels = [source_level_db(p, d) for d, p in pts]
            per_pulse += levels
            per_round.append(statistics.median(levels))
            dist += [d for d, _ in pts]
            power += [p for _, p in pts]
            lev = level_llr([(p, d) for d, p in pts], gun_db=ref.gun_source_db, quiet_db=ref.quiet_source_db)
            llrs.append(lev.llr)
            if len(pts) >= 4:
                checked += 1
                rho = spearman([d for d, _ in pts], [p for _, p in pts])
                falling += rho is not None and rho < 0
    slope, intercept = np.polyfit(np.log10(np.maximum(1.0, dist)), power, 1)
    figures: dict[str, Any] = {
        "source_level_db_per_pulse": _q(per_pulse),
        "source_level_db_per_round_median": _q(per_round),
        "distance_m": _q(dist),
        "fit_power_vs_log10_distance": {
            "slope": round(float(slope), 2),
            "intercept": round(float(intercept), 1),
        },
        "rounds_level_falls_with_distance": round(falling / checked, 4) if checked else None,
        "rounds_with_4_or_more_sensors": checked,
        "level_lr_on_rounds": {
            "gun_source_db": ref.gun_source_db,
            "quiet_source_db": ref.quiet_source_db,
            "share_full_loud_lr": round(sum(x >= math.log(2.0) - 1e-9 for x in llrs) / len(llrs), 4),
            "share_lr_below_1": round(sum(x < 0 for x in llrs) / len(llrs), 4),
            "min_lr": round(math.exp(min(llrs)), 3),
        },
    }
    print(json.dumps(figures, indent=1))
    if not args.no_write:
        write_result(
            "acoustic_source_level",
            figures,
            {
                "split": args.split,
                "firing_positions": SPLITS[args.split],
                "reference_read_on": SPLITS["tune"],
                "pulses": "nlos-tuples (ShotSpotter's selected direct-path pulses) joined to allpulses",
                "air_absorption_db_per_m": AIR_ABSORPTION_DB_PER_M,
                "data": str(args.data),
                "note": args.note,
            },
        )


if __name__ == "__main__":
    main()
