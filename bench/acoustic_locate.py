"""Localization accuracy on ShotSpotter's Pittsburgh live-fire data, from *all* reported pulses.

    python bench/acoustic_locate.py [--data DIR] [--split heldout|tune|all] [--scorer] [--no-write]

Split (declared, by firing position): the association and solver defaults were tuned on FP1, FP3,
FP5, FP7, FP9 ("tune"); FP2, FP4, FP6, FP8 ("heldout") were only scored. Each firing position's
tests are fed to :func:`rtcc.acoustic.locate.locate_all` together (as the independent scorer
``/work/shared/eval/eval_locate.py`` does), and matched with the scorer's rules: a round is located
when an unused output shot lies within 50 m of the survey point and inside the test's time span;
other outputs are ghosts (> 50 m from every survey point of the firing position) or duplicates.
With ``--scorer`` the independent scorer is also run on the split (a temporary folder of symlinks)
through the ``rtcc`` command line, and its summary line is recorded.
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
        "n": survey["num_rounds"],
        "t0": min(times) - 5,
        "t1": max(times) + 1,
    }


def test_temperature(test_dir: Path) -> float | None:
    """The METAR temperature of a test (°C), or None when it has no weather file."""
    wf = test_dir / f"{test_dir.name}.weather.json"
    return float(json.loads(wf.read_text())["temperature"]) if wf.exists() else None


def load_fp(fp: Path) -> tuple[list[Arrival], list[dict[str, Any]], float]:
    """All pulses of a firing position, its tests' truth, and the median METAR temperature (°C)."""
    arrivals: list[Arrival] = []
    truth: list[dict[str, Any]] = []
    temps: list[float] = []
    for t in sorted(p for p in fp.iterdir() if p.is_dir()):
        pulses = json.loads((t / f"{t.name}.allpulses.json").read_text())
        survey = json.loads((t / f"{t.name}.survey.json").read_text())
        times = [utc(p["arrival_time_utc"]) for p in pulses]
        for p, ts in zip(pulses, times, strict=True):
            loc = p["location"]
            arrivals.append(
                Arrival(p["serial_number"], loc["x"], loc["y"], loc["z"], ts, p.get("signal_to_noise_dB"))
            )
        truth.append(test_truth(t.name, survey, times))
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


def run_scorer(fps: list[str]) -> str:
    """Run the independent scorer on the given firing positions; return its summary line."""
    rtcc = Path(sys.executable).parent / "rtcc"
    with tempfile.TemporaryDirectory() as tmp:
        for fp in fps:
            os.symlink(DATA / fp, Path(tmp) / fp)
        out = subprocess.run(
            [sys.executable, str(SCORER), tmp, "--", str(rtcc)], capture_output=True, text=True, check=False
        )
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    print(out.stdout, end="")
    return next((ln for ln in lines if ln.startswith("localization:")), (lines or [out.stderr])[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=sorted(SPLITS), default="heldout")
    ap.add_argument("--scorer", action="store_true", help="also run the independent scorer on the split")
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to the results")
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    args = ap.parse_args()
    errors: list[float] = []
    inside: list[bool] = []
    rounds = ghosts = dups = poor = 0
    n_sens: list[int] = []
    per_fp: dict[str, Any] = {}
    started = time.perf_counter()
    for fp in SPLITS[args.split]:
        arrivals, truth, temp = load_fp(args.data / fp)
        fixes = locate_all(arrivals, temperature_c=temp)
        s = score(fixes, truth)
        errors += s["errors"]
        inside += s["inside"]
        rounds += s["rounds"]
        ghosts += s["ghosts"]
        dups += s["duplicates"]
        poor += s["poor"]
        n_sens += s["sensors"]
        per_fp[fp] = summarise(s["errors"], s["rounds"], s["ghosts"], s["duplicates"])
        print(fp, per_fp[fp], flush=True)
    figures = summarise(errors, rounds, ghosts, dups)
    figures["ellipse_95_contains_survey"] = round(sum(inside) / len(inside), 4) if inside else None
    figures["fixes_quality_poor"] = poor
    figures["median_sensors_per_fix"] = statistics.median(n_sens) if n_sens else None
    figures["seconds"] = round(time.perf_counter() - started, 2)
    figures["per_fp"] = per_fp
    if args.scorer:
        figures["eval_locate"] = run_scorer(SPLITS[args.split])
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
                "note": args.note,
            },
        )


if __name__ == "__main__":
    main()
