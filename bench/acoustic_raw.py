"""Raw audio → ``rtcc acoustic detect`` → ``rtcc acoustic locate``, scored against the surveyed shooter.

    python bench/acoustic_raw.py [--split tune|heldout|all] [--mode raw|hybrid|reference] [--min-sensors N]
                                 [--sparse] [--sensor-positions clip|surveyed] [--calibrate-from tune]
                                 [--data DIR] [--note TEXT] [--no-write]

Data: ShotSpotter's Pittsburgh live-fire recordings. Each test has 10 s of 12 kHz audio from *up to
six* of the sensors that heard it (the README of the data: "Up to 6 sensors per test have audio"),
while ShotSpotter's own pulse lists (``allpulses``) hold every sensor that reported — a median of
10 per shot. For each firing position the bench runs the real command line on every clip
(``rtcc acoustic detect FP*/test_*/*.flac``; each clip's sibling JSON gives the sensor, the UTC of
the first sample and the position), writes one pulses CSV per firing position
(``sensor_id,x_m,y_m,z_m,arrival_utc,snr_db``) and runs ``rtcc acoustic locate CSV --temperature-c
T`` with the median METAR temperature, as ``/work/shared/eval/eval_locate.py`` does.

Modes:

* ``raw`` — only the detector's pulses: the audio-only pipeline.
* ``hybrid`` — the sensors with audio report the detector's pulses (their ShotSpotter pulses inside
  the clip are removed); the other sensors keep ShotSpotter's pulses. This measures whether the
  detector's pulses are as good as ShotSpotter's own where audio exists, with the array's full size.
* ``reference`` — no audio: ShotSpotter's own pulses of the sensors with audio, inside the clips.
  What ``raw`` would give with ShotSpotter's detector: the ceiling set by the few sensors with audio.

``--sparse`` calls :func:`rtcc.acoustic.locate.locate_all` in-process with the opt-in few-sensor
burst rule (``sparse=DEFAULT_SPARSE``, :mod:`rtcc.acoustic.sparse_bursts`): time clusters heard by
at most 7 sensors report rounds only as part of a burst of ≥ 3 rounds with a repeating per-sensor
delay pattern. It can be combined with ``--min-sensors``.

``--min-sensors N`` calls :func:`rtcc.acoustic.locate.locate_all` in-process with ``min_sensors=N``
and ``min_sensors_loud=N`` (and the association's own minimum lowered to N when it is higher)
instead of the command line (the ``locate`` command has no such option;
its default report gate wants 10 sensors, or 8 with loud pulses — more than any test has audio for).

``--sensor-positions surveyed`` replaces each detected pulse's sensor position (the clip's own GPS,
which scatters by up to 18 m) with the sensor's median position in ShotSpotter's pulse files of the
firing position (its surveyed position; no shooter position is used). ``--calibrate-from tune``
applies per-sensor corrections fitted on the tuning FPs' full-array pulses
(``bench/acoustic_locate.py --calibrate-from tune``, :mod:`rtcc.acoustic.calibration`) to the pulses
before locating (``--calibration FILE`` on the command line). The tuning FPs share no sensor with each
other, so on ``--split tune`` this is an in-sample figure; only FP4 (held-out) shares sensors with them.

Scoring follows ``eval_locate.py``: a round is located when an unused output lies within 50 m of
the survey point and inside the test's time span (ShotSpotter's pulses −5 s … +1 s); other outputs
are ghosts (> 50 m from every survey point of the firing position) or duplicates. Coverage is
stated beside it: the rounds whose ShotSpotter-selected pulses fall inside the audio of ≥ 3 sensors.

Split (declared, by firing position, as ``bench/acoustic_locate.py``): "tune" FP1, FP3, FP5, FP7,
FP9; "heldout" FP2, FP4, FP6, FP8. The detector's thresholds were tuned on FP1–FP4
(``bench/acoustic_detect.py``) and not changed for this bench.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from acoustic_locate import (
    DATA,
    SPLITS,
    fit_from,
    summarise,
    surveyed_rounds,
    test_temperature,
    test_truth,
    utc,
)
from acoustic_locate import load_fp as load_fp_pulses

from rtcc.acoustic.associate import AssociationParams
from rtcc.acoustic.calibration import Calibration
from rtcc.acoustic.locate import DEFAULT_SPARSE, Arrival, locate_all

RTCC = Path(sys.executable).parent / "rtcc"
MATCH_M = 50.0
CLIP_S = 10.0


def _rtcc(*args: str) -> str:
    out = subprocess.run([str(RTCC), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"rtcc {' '.join(args[:2])} failed (exit {out.returncode}): {out.stderr[-500:]}")
    return out.stdout


def load_fp(fp: Path) -> dict[str, Any]:
    """Truth, ShotSpotter's pulses, clips and coverage of one firing position."""
    truth: list[dict[str, Any]] = []
    pulses: list[dict[str, Any]] = []
    clips: list[dict[str, Any]] = []
    temps: list[float] = []
    covered = 0
    for t in sorted(p for p in fp.iterdir() if p.is_dir()):
        allp = json.loads((t / f"{t.name}.allpulses.json").read_text())
        survey = json.loads((t / f"{t.name}.survey.json").read_text())
        tuples = json.loads((t / f"{t.name}.nlos-tuples.json").read_text())
        times = [utc(p["arrival_time_utc"]) for p in allp]
        truth.append(test_truth(t.name, survey, times))
        pulses += allp
        mine = []
        for flac in sorted(t.glob("*.flac")):
            meta = json.loads(flac.with_suffix(".json").read_text())
            start = utc(meta["timestamp"])
            mine.append({"path": flac, "sensor": meta["serial_number"], "t0": start, "t1": start + CLIP_S})
        clips += mine
        by_uuid = {p["pulse_uuid"]: p for p in allp}
        for tup in tuples:
            heard = {
                c["sensor"]
                for u in tup["pulse_uuids"]
                if (p := by_uuid.get(u)) is not None
                for c in mine
                if c["sensor"] == p["serial_number"] and c["t0"] <= utc(p["arrival_time_utc"]) <= c["t1"]
            }
            covered += len(heard) >= 3
        temp = test_temperature(t)
        if temp is not None:
            temps.append(temp)
    return {
        "truth": truth,
        "pulses": pulses,
        "clips": clips,
        "temperature_c": statistics.median(temps) if temps else -1.0,
        "rounds_covered_3": covered,
    }


def detect(clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rtcc acoustic detect`` on every clip (one process); the pulse lines."""
    out = _rtcc("acoustic", "detect", *[str(c["path"]) for c in clips])
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def pulse_rows(fpd: dict[str, Any], detected: list[dict[str, Any]], mode: str) -> list[list[Any]]:
    """CSV rows ``sensor_id,x_m,y_m,z_m,arrival_utc,snr_db`` for the mode."""
    rows = [[d["sensor_id"], d["x_m"], d["y_m"], d["z_m"], d["arrival_utc"], d["snr_db"]] for d in detected]
    if mode in ("hybrid", "reference"):
        spans: dict[str, list[tuple[float, float]]] = {}
        for c in fpd["clips"]:
            spans.setdefault(c["sensor"], []).append((c["t0"], c["t1"]))
        for p in fpd["pulses"]:
            ts = utc(p["arrival_time_utc"])
            if any(a <= ts <= b for a, b in spans.get(p["serial_number"], [])) != (mode == "reference"):
                continue  # hybrid: the detector reports this sensor here; reference: only these
            loc = p["location"]
            rows.append(
                [
                    p["serial_number"],
                    loc["x"],
                    loc["y"],
                    loc["z"],
                    p["arrival_time_utc"],
                    p.get("signal_to_noise_dB", ""),
                ]
            )
    return rows


def surveyed_positions(rows: list[list[Any]], pulses: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows with each sensor's position replaced by its median position in ShotSpotter's pulses."""
    seen: dict[str, list[tuple[float, float, float]]] = {}
    for p in pulses:
        loc = p["location"]
        seen.setdefault(p["serial_number"], []).append((loc["x"], loc["y"], loc["z"]))
    med = {s: tuple(statistics.median(v[k] for v in xyz) for k in range(3)) for s, xyz in seen.items()}
    return [[r[0], *med[r[0]], *r[4:]] if r[0] in med else r for r in rows]


def calibration_from(split: str, data: Path) -> Calibration:
    """Per-sensor corrections fitted on the full-array pulses of the split's FPs (offset model, k = 3)."""
    rounds_by_fp = {}
    for fp in SPLITS[split]:
        arrivals, truth, temp = load_fp_pulses(data / fp)
        rounds = surveyed_rounds(locate_all(arrivals, temperature_c=temp), truth)
        rounds_by_fp[fp] = [(r, temp) for r in rounds]
    return fit_from(rounds_by_fp, SPLITS[split], "offset", 3.0)


def locate(
    rows: list[list[Any]],
    temperature_c: float,
    min_sensors: int | None,
    sparse: bool = False,
    calibration: Calibration | None = None,
) -> list[tuple[float, float, float]]:
    """Shots (time, x, y) from the pulses: the ``locate`` command, or in-process with ``min_sensors``
    and/or the few-sensor burst rule (``sparse``); corrected by ``calibration`` when given."""
    if min_sensors is not None or sparse:
        arrivals = [
            Arrival(
                str(r[0]),
                float(r[1]),
                float(r[2]),
                float(r[3]),
                utc(str(r[4])),
                float(r[5]) if r[5] != "" else None,
            )
            for r in rows
        ]
        if calibration is not None:
            arrivals = calibration.apply(arrivals)
        prm = AssociationParams()
        gate: dict[str, Any] = {}
        if min_sensors is not None:
            prm = replace(prm, min_sensors=min(min_sensors, prm.min_sensors))
            gate = {"min_sensors": min_sensors, "min_sensors_loud": min_sensors}
        fixes = locate_all(
            arrivals,
            temperature_c=temperature_c,
            params=prm,
            sparse=DEFAULT_SPARSE if sparse else None,
            **gate,
        )
        return [(f.t0_s, f.x_m, f.y_m) for f in fixes]
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sensor_id", "x_m", "y_m", "z_m", "arrival_utc", "snr_db"])
        w.writerows(rows)
        path = fh.name
    cal_args: list[str] = []
    if calibration is not None:
        cal_path = Path(path).with_suffix(".calibration.json")
        calibration.save(cal_path)
        cal_args = ["--calibration", str(cal_path)]
    try:
        out = _rtcc("acoustic", "locate", path, "--temperature-c", str(temperature_c), *cal_args)
    finally:
        Path(path).unlink(missing_ok=True)
        if cal_args:
            Path(cal_args[1]).unlink(missing_ok=True)
    shots = []
    for line in out.splitlines():
        if line.startswith("{"):
            o = json.loads(line)
            shots.append((utc(o["time_utc"]), float(o["x_m"]), float(o["y_m"])))
    return shots


def score(shots: list[tuple[float, float, float]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """The rules of ``eval_locate.py``: rounds located, their errors, ghosts, duplicates."""
    used: set[int] = set()
    errors: list[float] = []
    rounds = 0
    for tr in truth:
        rounds += tr["n"]
        cand = sorted(
            (math.hypot(sx - tr["x"], sy - tr["y"]), i)
            for i, (st, sx, sy) in enumerate(shots)
            if tr["t0"] <= st <= tr["t1"] and i not in used
        )
        for d, i in [c for c in cand if c[0] <= MATCH_M][: tr["n"]]:
            used.add(i)
            errors.append(d)
    ghosts = dups = 0
    for i, (_, sx, sy) in enumerate(shots):
        if i in used:
            continue
        if all(math.hypot(sx - tr["x"], sy - tr["y"]) > MATCH_M for tr in truth):
            ghosts += 1
        else:
            dups += 1
    return {"rounds": rounds, "errors": errors, "ghosts": ghosts, "duplicates": dups, "shots": len(shots)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=sorted(SPLITS), default="tune")
    ap.add_argument("--mode", choices=["raw", "hybrid", "reference"], default="raw")
    ap.add_argument("--min-sensors", type=int, default=None, help="locate in-process with this report gate")
    ap.add_argument("--sparse", action="store_true", help="locate in-process with the few-sensor rule")
    ap.add_argument(
        "--sensor-positions",
        choices=["clip", "surveyed"],
        default="clip",
        help="detected pulses at the clip's GPS position, or the sensor's position in ShotSpotter's pulses",
    )
    ap.add_argument(
        "--calibrate-from", choices=["tune"], default=None, help="apply corrections fitted on these FPs"
    )
    ap.add_argument("--no-write", action="store_true", help="print only, do not append to the results")
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    args = ap.parse_args()
    cal = calibration_from(args.calibrate_from, args.data) if args.calibrate_from else None
    errors: list[float] = []
    rounds = ghosts = dups = covered = n_pulses = n_clips = 0
    per_fp: dict[str, Any] = {}
    started = time.perf_counter()
    for fp in SPLITS[args.split]:
        fpd = load_fp(args.data / fp)
        detected = [] if args.mode == "reference" else detect(fpd["clips"])
        rows = pulse_rows(fpd, detected, args.mode)
        if args.sensor_positions == "surveyed":
            rows = surveyed_positions(rows, fpd["pulses"])
        shots = locate(rows, fpd["temperature_c"], args.min_sensors, args.sparse, cal)
        s = score(shots, fpd["truth"])
        errors += s["errors"]
        rounds += s["rounds"]
        ghosts += s["ghosts"]
        dups += s["duplicates"]
        covered += fpd["rounds_covered_3"]
        n_pulses += len(detected)
        n_clips += len(fpd["clips"])
        per_fp[fp] = summarise(s["errors"], s["rounds"], s["ghosts"], s["duplicates"]) | {
            "rounds_with_audio_at_3_sensors": fpd["rounds_covered_3"],
            "shots_out": s["shots"],
        }
        print(fp, per_fp[fp], flush=True)
    figures = summarise(errors, rounds, ghosts, dups)
    figures["rounds_with_audio_at_3_sensors"] = covered
    figures["clips"] = n_clips
    figures["detected_pulses"] = n_pulses
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["per_fp"] = per_fp
    print(json.dumps({k: v for k, v in figures.items() if k != "per_fp"}))
    if not args.no_write:
        write_result(
            "acoustic_raw",
            figures,
            {
                "split": args.split,
                "firing_positions": SPLITS[args.split],
                "mode": args.mode,
                "locate": f"locate_all(min_sensors={args.min_sensors}, sparse={args.sparse})"
                if args.min_sensors is not None or args.sparse
                else "rtcc acoustic locate (command line, default gate)",
                "detect": "none (ShotSpotter's pulses)"
                if args.mode == "reference"
                else "rtcc acoustic detect (command line, default options)",
                "sensor_positions": args.sensor_positions,
                "calibrated_from": args.calibrate_from,
                "detector_tuned_on": ["FP1", "FP2", "FP3", "FP4"],
                "locator_tuned_on": SPLITS["tune"],
                "data": str(args.data),
                "note": args.note,
            },
        )


if __name__ == "__main__":
    main()
