#!/usr/bin/env python3
"""Incident-level gunshot decisions on the classifier's TEST split (issue 6, review rule).

Usage::

    python bench/acoustic_incidents.py [--data ../shared/data/acoustic] [--copies 3] [--seed 2026]
                                       [--split test|calibration] [--audio clip|pulse] [--note TEXT]

What the pipeline (``rtcc.acoustic.pipeline``, step 5) would decide per incident, with the shipped
``GunshotClassifier`` and the same evidence function (``rtcc.acoustic.evidence.combine``), on the test
groups of ``training/acoustic/split.json`` only:

* **gunshot incidents**: one per Pittsburgh test folder of the test split (a group of sensors hearing
  the same rounds). The 3 sensors nearest the surveyed shooter (horizontal distance, sensor position from
  the clip's JSON) give their whole-clip probabilities; the audio term is their mean capped log-odds. The
  rounds are the shots of ``nlos-tuples.json`` (ShotSpotter's association; their count is checked against
  the survey's ``num_rounds``) at the surveyed position, each at its emission time (median over its pulses
  of arrival minus distance / speed of sound): that is the pattern the pipeline sees when it locates every
  round (the locate bench). Two decisions: at the first round (pattern ``single``, LR 1) and after all
  rounds (the pipeline re-scores and can only raise the status). Levels off (the clips are dBFS).
* **non-gunfire incidents**, one bang (pattern LR 1), from scorer-style degraded copies
  (``data.scorer_degrade``: 12 kHz, low-pass 2-5 kHz, real sensor background of the test groups at
  5-25 dB SNR, seeded) of the test negatives: ``same_recording`` = 3 copies of one recording as 3 sensors;
  ``same_class`` = every 3 different recordings of one class (copy 1 of each).
* the **old rule** (mean probability) beside it, for comparison.

``--audio`` says what each sensor's probability is computed from. ``clip`` (the default until
session 10): the whole 10 s clip, which the center never sees. ``pulse``: what the center classifies,
the snippet the sensor agent sends with its pulse (``rtcc.acoustic.agent.PULSE_AUDIO``), cut by the
agent's own detector run over the clip at its own rate: for a gunshot sensor the first round's pulse
(the onset within 80 ms of the round's predicted arrival, else one of the sensor's reported pulses;
the nearest sensors *with* such a pulse are used); for a negative copy its most gunshot-like pulse
(a copy where the detector fires on nothing cannot make an incident and is left out).

``--split calibration`` is only a dry run of the code; the reported figure is on test.
Shares at the settings defaults ``alert_above`` / ``review_above``. Appends one line to
``bench/results/acoustic_incidents.jsonl``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "training" / "acoustic"), str(ROOT / "bench")]

import data as D  # noqa: E402
from _common import write_result  # noqa: E402

from rtcc.acoustic.evidence import RoundFix, audio_logit, combine  # noqa: E402
from rtcc.settings import AcousticSettings  # noqa: E402

ALERT_ABOVE = float(AcousticSettings.model_fields["alert_above"].default)
REVIEW_ABOVE = float(AcousticSettings.model_fields["review_above"].default)
MULTIPLE_SHOOTER_M = 30.0  # the pipeline's default (not a setting)
NEAREST = 3


PULSE_MS: dict[str, float] = {}
"""The snippet around each onset (``audio_pre_ms``, ``audio_post_ms``); set from ``--pulse-ms``."""


def _onsets(x: np.ndarray, rate: int) -> list[Any]:
    from rtcc.acoustic.detect import OnsetDetector

    det = OnsetDetector(rate, **PULSE_MS)
    out: list[Any] = []
    for i in range(0, len(x), rate // 10):
        out += det.process(x[i : i + rate // 10])
    return out + det.flush()


def _pulse_p(clf: Any, onset: Any, rate: int) -> float | None:
    try:
        return float(clf.probability(onset.audio, rate))
    except Exception:  # too short (an onset at the clip's very start): the sensor would send it, skip
        return None


def gun_pulse_probability(clf: Any, path: Path) -> float | None:
    """P(gunshot) of the first round's pulse snippet at this sensor, None when it sent none."""
    x, sr = sf.read(str(path), dtype="float64", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    anc = D.gun_anchors(path)
    ons = _onsets(x, int(sr))
    first = anc.direct_s[0] if anc.direct_s else None
    near = [o for o in ons if first is not None and abs(o.sample / sr - first) < 0.08]
    near = near or [o for o in ons if any(abs(o.sample / sr - p) < 0.02 for p in anc.pulses_s)]
    for o in sorted(near, key=lambda o: -o.snr_db):
        p = _pulse_p(clf, o, int(sr))
        if p is not None:
            return p
    return None


def negative_pulse_probability(clf: Any, y: np.ndarray, rate: int) -> float | None:
    """The most gunshot-like pulse snippet of a (degraded) negative, None when nothing triggers."""
    ps = [p for p in (_pulse_p(clf, o, rate) for o in _onsets(y, rate)) if p is not None]
    return max(ps) if ps else None


def status(confidence: float) -> str:
    """The pipeline's review rule at the settings defaults."""
    if confidence >= ALERT_ABOVE:
        return "alerted"
    return "pending_review" if confidence >= REVIEW_ABOVE else "below_threshold"


def decide(probs: Sequence[float], rounds: Sequence[RoundFix]) -> tuple[float, str]:
    """Incident confidence as the pipeline computes it (levels off) and its pattern kind."""
    ev = combine(
        audio_logit(probs),
        rounds,
        None,
        no_audio_confidence=0.5,
        gun_db=137.6,
        quiet_db=120.0,
        multiple_shooter_m=MULTIPLE_SHOOTER_M,
    )
    return ev.confidence, ev.pattern_kind


def shares(confidences: Sequence[float]) -> dict[str, Any]:
    n = len(confidences)
    counts = {"alerted": 0, "pending_review": 0, "below_threshold": 0}
    for c in confidences:
        counts[status(c)] += 1
    return {"incidents": n, **{k: round(v / n, 4) if n else None for k, v in counts.items()}}


def round_times(test: Path) -> tuple[list[float], tuple[float, float], int]:
    """Emission times (UTC s) of the test's rounds, the surveyed shooter (x, y) and the survey's count."""
    survey = json.loads((test / f"{test.name}.survey.json").read_text())
    loc = survey["survey_location"]
    src = np.array([loc["x"], loc["y"], loc["z"]], dtype=float)
    c = D._speed_of_sound(test)
    by_id = {p["pulse_uuid"]: p for p in json.loads((test / f"{test.name}.allpulses.json").read_text())}
    times = []
    for shot in json.loads((test / f"{test.name}.nlos-tuples.json").read_text()):
        t0s = []
        for u in shot["pulse_uuids"]:
            p = by_id.get(u)
            if p is None:
                continue
            here = np.array([p["location"]["x"], p["location"]["y"], p["location"]["z"]], dtype=float)
            t0s.append(D.utc(p["arrival_time_utc"]) - float(np.linalg.norm(here - src)) / c)
        if t0s:
            times.append(float(np.median(t0s)))
    return sorted(times), (float(loc["x"]), float(loc["y"])), int(survey["num_rounds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "acoustic")
    ap.add_argument("--copies", type=int, default=3, help="degraded copies per negative recording")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--split",
        choices=("test", "calibration"),
        default="test",
        help="split to read (calibration: a dry run of the code; the reported figure is on test)",
    )
    ap.add_argument(
        "--audio",
        choices=("clip", "pulse"),
        default="clip",
        help="classify whole clips, or the pulse snippets a sensor agent sends (what the center sees)",
    )
    ap.add_argument(
        "--pulse-ms",
        nargs=2,
        type=float,
        metavar=("PRE", "POST"),
        help="--audio pulse: audio before and after each onset, ms (default: the agent's PULSE_AUDIO)",
    )
    ap.add_argument("--note", default="", help="free text recorded with the result")
    args = ap.parse_args()
    from rtcc.acoustic.agent import PULSE_AUDIO

    PULSE_MS.update(PULSE_AUDIO)
    if args.pulse_ms:
        PULSE_MS.update(audio_pre_ms=args.pulse_ms[0], audio_post_ms=args.pulse_ms[1])
    if not (args.data / "manifest.csv").is_file():
        print(f"error: no acoustic data at {args.data} (manifest.csv missing); pass --data", file=sys.stderr)
        raise SystemExit(2)
    if args.copies < 3:
        print("error: --copies must be at least 3 (3 sensors per incident)", file=sys.stderr)
        raise SystemExit(2)

    from rtcc.acoustic.classify import GunshotClassifier

    rows = D.read_manifest(args.data)
    test = set(json.loads((ROOT / "training" / "acoustic" / "split.json").read_text())["splits"][args.split])
    clf = GunshotClassifier.load()

    # -- gunshot incidents: one per Pittsburgh test folder of the test split
    by_group: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        if (
            r["group_id"] in test
            and r["label"] == "gunshot"
            and r["file"].startswith("shotspotter_pittsburgh")
        ):
            by_group[r["group_id"]].append(r)
    gun: list[dict[str, Any]] = []
    for gid in sorted(by_group):
        test_dir = (args.data / by_group[gid][0]["file"]).parent
        t0s, (sx, sy), num_rounds = round_times(test_dir)
        sensors = []
        for r in by_group[gid]:
            path = args.data / r["file"]
            loc = json.loads(path.with_suffix(".json").read_text())["location"]
            sensors.append((float(np.hypot(loc["x"] - sx, loc["y"] - sy)), r["sensor_serial"], path))
        nearest, probs = [], []
        for d, serial, path in sorted(sensors):
            if len(probs) == NEAREST:
                break
            if args.audio == "pulse":
                p = gun_pulse_probability(clf, path)
                if p is None:
                    continue
            else:
                x, sr = sf.read(str(path), dtype="float64")
                p = float(clf.probability(x, int(sr)))
            nearest.append((d, serial, path))
            probs.append(p)
        rounds = [RoundFix(t, sx, sy) for t in t0s]
        first, _ = decide(probs, rounds[:1])
        final, kind = decide(probs, rounds)
        gun.append(
            {
                "group": gid,
                "rounds": len(t0s),
                "num_rounds": num_rounds,
                "pattern": kind,
                "sensors": [(s, round(d)) for d, s, _ in nearest],
                "probabilities": [round(p, 4) for p in probs],
                "first": round(first, 4),
                "final": round(final, 4),
                "old_mean_p": round(statistics.fmean(probs), 4),
            }
        )
        print(f"{gid}: p={gun[-1]['probabilities']} first {first:.3f} final {final:.3f} ({kind})", flush=True)

    # -- non-gunfire incidents from scorer-style degraded copies of the test negatives
    bgs = D.backgrounds(rows, args.data, test)
    srng = random.Random(args.seed)
    neg: dict[str, list[tuple[str, list[float]]]] = defaultdict(list)  # class -> (recording, copy probs)
    for r in rows:
        if r["group_id"] not in test or r["label"] in ("gunshot", "sensor_test_unlabeled"):
            continue
        x, sr = sf.read(str(args.data / r["file"]), dtype="float64")
        ps = []
        for _ in range(args.copies):
            y = D.scorer_degrade(x, int(sr), bgs[srng.randrange(len(bgs))], srng)
            if args.audio == "pulse":
                q = negative_pulse_probability(clf, np.asarray(y), D.SR)
                if q is not None:
                    ps.append(q)
            else:
                ps.append(float(clf.probability(y, D.SR)))
        if len(ps) >= NEAREST:
            neg[r["label"]].append((r["file"], ps))
    single = [RoundFix(0.0, 0.0, 0.0)]
    neg_fig: dict[str, Any] = {}
    all_same_rec: list[float] = []
    all_same_cls: list[float] = []
    old_rec: list[float] = []
    old_cls: list[float] = []
    for lab in sorted(neg):
        recs = neg[lab]
        same_rec = [decide(ps[:NEAREST], single)[0] for _, ps in recs]
        combos = list(itertools.combinations([ps[0] for _, ps in recs], NEAREST))
        same_cls = [decide(list(c), single)[0] for c in combos]
        all_same_rec += same_rec
        all_same_cls += same_cls
        old_rec += [statistics.fmean(ps[:NEAREST]) for _, ps in recs]
        old_cls += [statistics.fmean(c) for c in combos]
        neg_fig[lab] = {
            "recordings": len(recs),
            "same_recording": shares(same_rec),
            "same_class": shares(same_cls),
            "worst_clip_p": round(max(max(ps) for _, ps in recs), 4),
        }

    figures: dict[str, Any] = {
        "alert_above": ALERT_ABOVE,
        "review_above": REVIEW_ABOVE,
        "gunshot": {
            "first_round": shares([g["first"] for g in gun]),
            "all_rounds": shares([g["final"] for g in gun]),
            "old_rule_mean_probability": shares([g["old_mean_p"] for g in gun]),
            "rounds_match_survey": sum(g["rounds"] == g["num_rounds"] for g in gun),
            "patterns": dict(
                sorted({k: sum(g["pattern"] == k for g in gun) for k in {g["pattern"] for g in gun}}.items())
            ),
            "not_alerted": [g for g in gun if status(g["final"]) != "alerted"],
        },
        "non_gunfire": {
            "same_recording": shares(all_same_rec),
            "same_class": shares(all_same_cls),
            "old_rule_same_recording": shares(old_rec),
            "old_rule_same_class": shares(old_cls),
            "by_class": neg_fig,
        },
    }
    write_result(
        "acoustic_incidents",
        figures,
        {
            "split": f"{args.split} (training/acoustic/split.json)"
            + (", 2nd read: incident level (per clip read earlier)" if args.split == "test" else ""),
            "gunshot_tests": len(gun),
            "chicago": "left out (no survey / round structure)",
            "degraded_copies": args.copies,
            "seed": args.seed,
            "levels": "off (dBFS clips)",
            "audio": args.audio,
            "pulse_ms_pre_post": [PULSE_MS["audio_pre_ms"], PULSE_MS["audio_post_ms"]]
            if args.audio == "pulse"
            else None,
            "data": str(args.data),
            "note": args.note,
        },
    )


if __name__ == "__main__":
    main()
