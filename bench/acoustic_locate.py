"""Localization accuracy on ShotSpotter's Pittsburgh live-fire data, from *all* reported pulses.

    python bench/acoustic_locate.py [--data DIR] [--split heldout|tune|all] [--scorer] [--no-write]
                                    [--calibrate-from tune [--calibration-cv none|fp|test]
                                     [--model offset|offset+position] [--shrinkage K]]

Split (declared, by firing position): the association and solver defaults were tuned on FP1, FP3,
FP5, FP7, FP9 ("tune"); FP2, FP4, FP6, FP8 ("heldout") were only scored. Each firing position's
tests are fed to :func:`rtcc.acoustic.locate.locate_all` together (as the independent scorer
``/work/shared/eval/eval_locate.py`` does), and matched with the scorer's rules: a round is located
when an unused output shot lies within 50 m of the survey point and inside the test's time span;
other outputs are ghosts (> 50 m from every survey point of the firing position) or duplicates.
With ``--scorer`` the independent scorer is also run on the split (a temporary folder of symlinks)
through the ``rtcc`` command line, and its summary line is recorded.

``--calibrate-from tune`` fits per-sensor corrections (:mod:`rtcc.acoustic.calibration`) from the
rounds located (uncalibrated) on the tuning FPs and matched to their surveyed positions, and locates
the chosen split with them applied (the scorer gets them through ``--calibration FILE``). Only
sensors that also heard the tuning FPs are corrected. ``--calibration-cv`` estimates it honestly on
the tuning FPs themselves: ``fp`` fits on four tuning FPs and locates the fifth (leave one firing
position out); ``test`` fits on the other tests of the same FP and locates the left-out test alone
(leave one test out — the shooter stood at the same surveyed point, so this is an optimistic bound,
not a transfer estimate), against the same test located alone without calibration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

from rtcc.acoustic.calibration import Calibration, Model, SurveyedRound, fit_calibration, match_rounds
from rtcc.acoustic.locate import Arrival, Fix, locate_all

SHARED = Path(os.environ.get("RTCC_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data/acoustic/shotspotter_pittsburgh_dqv"
SCORER = SHARED / "eval/eval_locate.py"
SPLITS = {
    "tune": ["FP1", "FP3", "FP5", "FP7", "FP9"],
    "heldout": ["FP2", "FP4", "FP6", "FP8"],
    "all": [f"FP{i}" for i in range(1, 10)],
}


def utc(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_truth(name: str, survey: dict[str, Any], times: list[float]) -> dict[str, Any]:
    """One test's truth: surveyed shooter position, rounds fired, and the time span of its pulses."""
    s = survey["survey_location"]
    return {
        "test": name,
        "x": s["x"],
        "y": s["y"],
        "z": s.get("z", 0.0),
        "n": survey["num_rounds"],
        "t0": min(times) - 5,
        "t1": max(times) + 1,
    }


def test_temperature(test_dir: Path) -> float | None:
    """The METAR temperature of a test (°C), or None when it has no weather file."""
    wf = test_dir / f"{test_dir.name}.weather.json"
    return float(json.loads(wf.read_text())["temperature"]) if wf.exists() else None


def load_fp(fp: Path) -> tuple[list[Arrival], list[dict[str, Any]], float]:
    """All pulses of a firing position, its tests' truth (with the index range of each test's pulses
    in ``"pulses"``), and the median METAR temperature (°C)."""
    arrivals: list[Arrival] = []
    truth: list[dict[str, Any]] = []
    temps: list[float] = []
    for t in sorted(p for p in fp.iterdir() if p.is_dir()):
        pulses = json.loads((t / f"{t.name}.allpulses.json").read_text())
        survey = json.loads((t / f"{t.name}.survey.json").read_text())
        times = [utc(p["arrival_time_utc"]) for p in pulses]
        first = len(arrivals)
        for p, ts in zip(pulses, times, strict=True):
            loc = p["location"]
            arrivals.append(
                Arrival(p["serial_number"], loc["x"], loc["y"], loc["z"], ts, p.get("signal_to_noise_dB"))
            )
        truth.append(test_truth(t.name, survey, times) | {"pulses": (first, len(arrivals))})
        temp = test_temperature(t)
        if temp is not None:
            temps.append(temp)
    return arrivals, truth, statistics.median(temps) if temps else -1.0


def score(fixes: list[Fix], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Match fixes to rounds with the independent scorer's rules."""
    used: set[int] = set()
    errors: list[float] = []
    inside: list[bool] = []
    rounds = 0
    for tr in truth:
        rounds += tr["n"]
        cand = sorted(
            (math.hypot(f.x_m - tr["x"], f.y_m - tr["y"]), i)
            for i, f in enumerate(fixes)
            if tr["t0"] <= f.t0_s <= tr["t1"] and i not in used
        )
        for d, i in [c for c in cand if c[0] <= 50.0][: tr["n"]]:
            used.add(i)
            errors.append(d)
            inside.append(_in_ellipse(fixes[i], tr["x"], tr["y"]))
    ghosts = dups = 0
    for i, f in enumerate(fixes):
        if i in used:
            continue
        if all(math.hypot(f.x_m - tr["x"], f.y_m - tr["y"]) > 50.0 for tr in truth):
            ghosts += 1
        else:
            dups += 1
    return {
        "rounds": rounds,
        "errors": errors,
        "inside": inside,
        "ghosts": ghosts,
        "duplicates": dups,
        "poor": sum(f.quality == "poor" for f in fixes),
        "sensors": [len(f.sensors) for f in fixes],
    }


def _in_ellipse(f: Fix, x: float, y: float) -> bool:
    a = math.radians(f.ellipse_angle_deg)
    ux, uy = math.sin(a), math.cos(a)  # major axis direction (bearing from north)
    dx, dy = x - f.x_m, y - f.y_m
    along, across = dx * ux + dy * uy, -dx * uy + dy * ux
    return (along / max(f.ellipse_major_m, 1e-9)) ** 2 + (across / max(f.ellipse_minor_m, 1e-9)) ** 2 <= 1.0


def summarise(errors: list[float], rounds: int, ghosts: int, dups: int) -> dict[str, Any]:
    e = sorted(errors)
    return {
        "rounds_fired": rounds,
        "rounds_located": len(e),
        "median_m": round(statistics.median(e), 2) if e else None,
        "p90_m": round(e[int(0.9 * (len(e) - 1))], 2) if e else None,
        "max_m": round(e[-1], 2) if e else None,
        "within_15m": round(sum(x <= 15 for x in e) / rounds, 4) if rounds else None,
        "within_25m": round(sum(x <= 25 for x in e) / rounds, 4) if rounds else None,
        "ghosts": ghosts,
        "duplicates": dups,
    }


def run_scorer(fps: list[str], calibration: Calibration | None = None) -> str:
    """Run the independent scorer on the given firing positions; return its summary line.

    With a calibration, the scorer's ``rtcc`` is a two-line wrapper that appends
    ``--calibration FILE`` to the ``locate`` command the scorer runs.
    """
    rtcc = Path(sys.executable).parent / "rtcc"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        for fp in fps:
            os.symlink(DATA / fp, data / fp)
        cmd = str(rtcc)
        if calibration is not None:
            cal_file = Path(tmp) / "calibration.json"
            calibration.save(cal_file)
            wrapper = Path(tmp) / "rtcc-calibrated"
            wrapper.write_text(f'#!/bin/sh\nexec "{rtcc}" "$@" --calibration "{cal_file}"\n')
            wrapper.chmod(0o755)
            cmd = str(wrapper)
        out = subprocess.run(
            [sys.executable, str(SCORER), str(data), "--", cmd], capture_output=True, text=True, check=False
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    print(out.stdout, end="")
    return next((ln for ln in lines if ln.startswith("localization:")), (lines or [out.stderr])[-1])


def surveyed_rounds(fixes: list[Fix], truth: list[dict[str, Any]]) -> list[SurveyedRound]:
    """The located rounds of the tests in ``truth`` with their surveyed positions (scorer's matching)."""
    return match_rounds(fixes, [(t["x"], t["y"], t["z"], t["n"], t["t0"], t["t1"]) for t in truth])


FpData = tuple[list[Arrival], list[dict[str, Any]], float]


def fit_from(
    rounds_by_fp: dict[str, list[tuple[SurveyedRound, float]]], fps: list[str], model: Model, shrinkage: float
) -> Calibration:
    """Fit a calibration from the located rounds (and their temperatures) of the given firing positions."""
    rounds = [r for fp in fps for r in rounds_by_fp[fp]]
    return fit_calibration(
        [r for r, _ in rounds], temperature_c=[t for _, t in rounds], model=model, shrinkage_pulses=shrinkage
    )


def _merge(acc: dict[str, Any], s: dict[str, Any]) -> None:
    for k in ("errors", "inside", "sensors"):
        acc.setdefault(k, []).extend(s[k])
    for k in ("rounds", "ghosts", "duplicates", "poor"):
        acc[k] = acc.get(k, 0) + s[k]


def locate_fp(
    fp: str,
    data: FpData,
    cal: Calibration | None,
    cv: str,
    rounds_by_fp: dict[str, list[tuple[SurveyedRound, float]]],
    model: Model,
    shrinkage: float,
) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
    """Locate and score one firing position.

    Returns the score, the uncalibrated score of the same runs (``test`` CV only) and the number
    of pulses the calibration corrected."""
    arrivals, truth, temp = data
    if cv == "test":  # each test alone, calibrated from the other tests of its FP
        acc: dict[str, Any] = {}
        base: dict[str, Any] = {}
        corrected = 0
        per_test = [
            surveyed_rounds(locate_all(arrivals[t["pulses"][0] : t["pulses"][1]], temperature_c=temp), [t])
            for t in truth
        ]
        for i, t in enumerate(truth):
            others = [r for j, rs in enumerate(per_test) if j != i for r in rs]
            c_i = fit_calibration(others, temperature_c=temp, model=model, shrinkage_pulses=shrinkage)
            own = arrivals[t["pulses"][0] : t["pulses"][1]]
            corrected += sum(a.sensor_id in c_i.sensors for a in own)
            _merge(acc, score(locate_all(c_i.apply(own), temperature_c=temp), [t]))
            _merge(base, score(locate_all(own, temperature_c=temp), [t]))
        return acc, base, corrected
    if cv == "fp" and cal is not None:
        cal = fit_from(rounds_by_fp, [f for f in rounds_by_fp if f != fp], model, shrinkage)
    corrected = sum(a.sensor_id in cal.sensors for a in arrivals) if cal is not None else 0
    fixes = locate_all(cal.apply(arrivals) if cal is not None else arrivals, temperature_c=temp)
    return score(fixes, truth), None, corrected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    ap.add_argument("--scorer", action="store_true", help="also run the independent scorer on the split")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to the results")
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    ap.add_argument(
        "--calibrate-from", choices=["tune"], default=None, help="fit per-sensor corrections on these FPs"
    )
    ap.add_argument(
        "--calibration-cv",
        choices=["none", "fp", "test"],
        default="none",
        help="cross-validate the calibration within the tuning FPs (needs --split tune)",
    )
    ap.add_argument("--model", choices=["offset", "offset+position"], default="offset")
    ap.add_argument("--shrinkage", type=float, default=3.0, help="ridge strength, equivalent pulses")
    args = ap.parse_args()
    if args.calibration_cv != "none" and (args.split != "tune" or args.calibrate_from != "tune"):
        ap.error("--calibration-cv needs --split tune --calibrate-from tune")
    model: Model = args.model
    acc: dict[str, Any] = {}
    base: dict[str, Any] = {}
    corrected = total_pulses = 0
    per_fp: dict[str, Any] = {}
    started = time.perf_counter()
    loaded: dict[str, FpData] = {}
    rounds_by_fp: dict[str, list[tuple[SurveyedRound, float]]] = {}
    cal: Calibration | None = None
    if args.calibrate_from:
        for fp in SPLITS[args.calibrate_from]:
            arrivals, truth, temp = loaded[fp] = load_fp(args.data / fp)
            rounds = surveyed_rounds(locate_all(arrivals, temperature_c=temp), truth)
            rounds_by_fp[fp] = [(r, temp) for r in rounds]
        cal = fit_from(rounds_by_fp, SPLITS[args.calibrate_from], model, args.shrinkage)
        print("calibration:", json.dumps(dict(cal.fitted)), flush=True)
    for fp in SPLITS[args.split]:
        data = loaded[fp] if fp in loaded else load_fp(args.data / fp)
        s, b, n_cor = locate_fp(fp, data, cal, args.calibration_cv, rounds_by_fp, model, args.shrinkage)
        _merge(acc, s)
        if b is not None:
            _merge(base, b)
        corrected += n_cor
        total_pulses += len(data[0])
        per_fp[fp] = summarise(s["errors"], s["rounds"], s["ghosts"], s["duplicates"])
        if cal is not None:
            per_fp[fp]["corrected_pulses"] = round(n_cor / max(len(data[0]), 1), 4)
        print(fp, per_fp[fp], flush=True)
    figures = summarise(acc["errors"], acc["rounds"], acc["ghosts"], acc["duplicates"])
    inside, n_sens = acc["inside"], acc["sensors"]
    figures["ellipse_95_contains_survey"] = round(sum(inside) / len(inside), 4) if inside else None
    figures["fixes_quality_poor"] = acc["poor"]
    figures["median_sensors_per_fix"] = statistics.median(n_sens) if n_sens else None
    if cal is not None:
        figures["calibration"] = {
            "from": args.calibrate_from,
            "cv": args.calibration_cv,
            "model": model,
            "shrinkage_pulses": args.shrinkage,
            "fitted": dict(cal.fitted),
            "corrected_pulses": round(corrected / max(total_pulses, 1), 4),
        }
        if base:
            figures["calibration"]["uncalibrated_same_cv"] = summarise(
                base["errors"], base["rounds"], base["ghosts"], base["duplicates"]
            )
    figures["seconds"] = round(time.perf_counter() - started, 2)
    figures["per_fp"] = per_fp
    if args.scorer:
        figures["eval_locate"] = run_scorer(
            SPLITS[args.split], cal if args.calibration_cv == "none" else None
        )
    print(json.dumps({k: v for k, v in figures.items() if k != "per_fp"}))
    if not args.no_write:
        write_result(
            "acoustic_locate",
            figures,
            {
                "split": args.split,
                "firing_positions": SPLITS[args.split],
                "tuned_on": SPLITS["tune"],
                "pulses": "allpulses (every pulse reported)",
                "data": str(args.data),
                "report_gate": "n>=10 sensors, or n>=8 with >=3 pulses at SNR>=15 dB (and RMS<=10 ms)",
                "bursts": "rounds <=3 s apart from one place located jointly (shared position)",
                "calibrated_from": args.calibrate_from,
                "note": args.note,
            },
        )


if __name__ == "__main__":
    main()
