"""Edge onset detector: speed (× real time per core) and timing against ShotSpotter's pulse lists.

    python bench/acoustic_detect.py [--data DIR] [--split heldout|tune|all] [--block N] [--note TEXT]
                                    [--no-write]

Data: ShotSpotter's Pittsburgh live-fire recordings (12 kHz FLAC per sensor, first-sample UTC in
the sibling JSON). Ground truth: the pulses ShotSpotter *selected* for multilateration
(``nlos-tuples.json``) on the sensors that have audio, with ``arrival_time_utc`` from
``allpulses.json`` — given to the millisecond, so ±0.2 ms is at the resolution of the truth.

Split (declared, by firing position): thresholds were tuned on FP1–FP4 ("tune"); FP5–FP9
("heldout") were only scored. The rise threshold's default (9 dB, was 6 dB) was chosen on FP1 and
FP3 only — tune here and in ``bench/acoustic_raw.py``'s split alike. Speed is the CPU time
(``time.process_time``) of the detector alone on decoded audio (decoding excluded), one core, the
detector fed in 12,000-sample (1 s) blocks by default (``--block`` to change; a live agent uses
0.1 s blocks).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import write_result
from rtcc.acoustic.detect import OnsetDetector, read_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "acoustic" / "shotspotter_pittsburgh_dqv"
SPLITS = {"tune": ["FP1", "FP2", "FP3", "FP4"], "heldout": ["FP5", "FP6", "FP7", "FP8", "FP9"]}
BLOCK = 12000


def _utc(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _clips(root: Path, fps: list[str]) -> list[tuple[Path, float, list[float], list[float]]]:
    """(flac, start time, selected pulse times, all pulse times) per clip."""
    out = []
    for fp in fps:
        for test in sorted((root / fp).iterdir()):
            if not test.is_dir():
                continue
            pulses = json.loads((test / f"{test.name}.allpulses.json").read_text())
            tuples = json.loads((test / f"{test.name}.nlos-tuples.json").read_text())
            chosen = {u for t in tuples for u in t["pulse_uuids"]}
            for flac in sorted(test.glob("*.flac")):
                meta = json.loads(flac.with_suffix(".json").read_text())
                sensor = meta["serial_number"]
                t0 = _utc(meta["timestamp"])
                mine = [p for p in pulses if p["serial_number"] == sensor]
                sel = sorted(_utc(p["arrival_time_utc"]) for p in mine if p["pulse_uuid"] in chosen)
                allp = sorted(_utc(p["arrival_time_utc"]) for p in mine)
                out.append((flac, t0, sel, allp))
    return out


def run(root: Path, fps: list[str], options: dict[str, float], block: int = BLOCK) -> dict[str, Any]:
    clips = _clips(root, fps)
    errors: list[float] = []
    missed = 0
    in_dropout = 0
    n_sel = 0
    n_det = 0
    matched_all = 0
    n_all = 0
    audio_s = 0.0
    cpu_s = 0.0
    for flac, t0, sel, allp in clips:
        x, rate = read_audio(flac)
        audio_s += x.size / rate
        c0 = time.process_time()
        det = OnsetDetector(rate, **options)  # type: ignore[arg-type]
        onsets = []
        for i in range(0, x.size, block):
            onsets += det.process(x[i : i + block])
        onsets += det.flush()
        cpu_s += time.process_time() - c0
        times = np.array([t0 + o.time_s for o in onsets])
        n_det += times.size
        for t in sel:
            i = round((t - t0) * rate)
            around = x[max(0, i - round(0.005 * rate)) : i + round(0.005 * rate)]
            if around.size == 0 or np.mean(around == 0) > 0.5:
                in_dropout += 1  # the clip holds no audio there (zero-filled dropout): unfindable
                continue
            n_sel += 1
            if times.size == 0:
                missed += 1
                continue
            e = float(times[np.argmin(np.abs(times - t))] - t)
            if abs(e) <= 0.005:
                errors.append(e * 1000)
            else:
                missed += 1
        t1 = t0 + x.size / rate
        for t in allp:
            if t0 <= t <= t1:
                n_all += 1
                if times.size and np.min(np.abs(times - t)) <= 0.002:
                    matched_all += 1
    abs_err = sorted(abs(e) for e in errors)
    bias = statistics.median(errors) if errors else 0.0
    centred = sorted(abs(e - bias) for e in errors)
    return {
        "clips": len(clips),
        "audio_s": round(audio_s, 1),
        "speed_x_realtime_per_core": round(audio_s / cpu_s, 1),
        "selected_pulses": n_sel,
        "found_within_1ms": round(sum(a <= 1.0 for a in abs_err) / max(n_sel, 1), 4),
        "found_within_0_2ms": round(sum(a <= 0.2 for a in abs_err) / max(n_sel, 1), 4),
        "found_within_5ms": round(len(abs_err) / max(n_sel, 1), 4),
        "missed_beyond_5ms": missed,
        "abs_err_ms_median": round(statistics.median(abs_err), 3) if abs_err else None,
        "abs_err_ms_p90": round(abs_err[int(0.9 * (len(abs_err) - 1))], 3) if abs_err else None,
        "signed_err_ms_median": round(bias, 3),
        "centred_within_1ms": round(sum(a <= 1.0 for a in centred) / max(n_sel, 1), 4),
        "centred_within_0_2ms": round(sum(a <= 0.2 for a in centred) / max(n_sel, 1), 4),
        "centred_abs_err_ms_median": round(statistics.median(centred), 3) if centred else None,
        "centred_abs_err_ms_p90": round(centred[int(0.9 * (len(centred) - 1))], 3) if centred else None,
        "selected_pulses_in_dropouts_excluded": in_dropout,
        "detections": n_det,
        "allpulses_in_clips": n_all,
        "allpulses_found_within_2ms": round(matched_all / max(n_all, 1), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", choices=["heldout", "tune", "all"], default="all")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    ap.add_argument("--block", type=int, default=BLOCK, help="Samples per block fed to the detector.")
    ap.add_argument("--threshold-db", type=float, default=None)
    ap.add_argument("--rise-db", type=float, default=None)
    ap.add_argument("--echo-db", type=float, default=None)
    ap.add_argument("--echo-window-ms", type=float, default=None)
    ap.add_argument("--refractory-ms", type=float, default=None)
    args = ap.parse_args()
    options: dict[str, float] = {}
    if args.threshold_db is not None:
        options["threshold_db"] = args.threshold_db
    for name in ("rise_db", "echo_db", "echo_window_ms", "refractory_ms"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    splits = ["tune", "heldout"] if args.split == "all" else [args.split]
    figures = {s: run(args.data, SPLITS[s], options, args.block) for s in splits}
    params = {
        "data": "ShotSpotter Pittsburgh live-fire (dqv subset), 12 kHz FLAC",
        "split": {s: SPLITS[s] for s in splits},
        "tuned_on": "tune (FP1-FP4)",
        "truth": "nlos-tuples selected pulses on sensors with audio; "
        "allpulses arrival_time_utc (1 ms resolution)",
        "match": "nearest detection within 5 ms of a selected pulse",
        "centred": "errors minus their median (a constant offset cancels in time differences); "
        "with 1 ms truth resolution even a perfect detector has only ~40% within ±0.2 ms",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "block_samples": args.block,
        "detector_options": options or "defaults",
        "speed": "CPU time (time.process_time) of the detector alone on decoded audio, one process",
        "note": args.note,
    }
    if args.no_write:
        print(json.dumps({"params": params, "figures": figures}, indent=2))
    else:
        write_result("acoustic_detect", figures, params)


if __name__ == "__main__":
    main()
