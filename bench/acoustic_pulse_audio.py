#!/usr/bin/env python3
"""The classifier on the audio a sensor agent actually sends with each pulse (real clips, one split).

Usage::

    python bench/acoustic_pulse_audio.py [--split calibration|test] [--data DIR] [--note TEXT]

``bench/acoustic_classify.py`` scores whole 10 s clips. In the center the classifier only ever sees
the snippet a sensor sent with a pulse (``rtcc.acoustic.agent.PULSE_AUDIO``). This bench runs the
agent's own detector (``OnsetDetector`` with the agent's options) over each clip of the split at the
clip's own rate, and scores:

* a gunshot clip by the pulse of the first round at that sensor (the onset within 80 ms of the
  round's predicted direct arrival, else one of the sensor's reported pulses; the strongest);
  clips where the detector found no such pulse are counted, not scored;
* a negative clip, raw and once through the independent scorer's degradation (real sensor
  background of the same split), by the highest score over all its pulses (any could be associated).

Each pulse is scored with several snippet lengths cut from the same detection: the agent's (the
classifier's 0.5 s window), the session-9 agent's 25 ms + 75 ms, and the simulator's old 40 ms +
260 ms. Figures: ROC-AUC against raw and degraded negatives, recall and false-positive rates at the
model's label threshold. Results go to ``bench/results/acoustic_pulse_audio.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "training" / "acoustic"), str(ROOT / "bench")]

import data as D  # noqa: E402
from _common import write_result  # noqa: E402
from acoustic_classify import auc  # noqa: E402

from rtcc.acoustic.agent import PULSE_AUDIO  # noqa: E402
from rtcc.acoustic.classify import GunshotClassifier  # noqa: E402
from rtcc.acoustic.detect import Onset, OnsetDetector  # noqa: E402

SNIPPETS = {
    "agent": (PULSE_AUDIO["audio_pre_ms"], PULSE_AUDIO["audio_post_ms"]),
    "agent_session9_25_75": (25.0, 75.0),
    "sim_session9_40_260": (40.0, 260.0),
}
ROUND_TOLERANCE_S = 0.08


def detect(x: np.ndarray, rate: int) -> list[Onset]:
    pre, post = max(v[0] for v in SNIPPETS.values()), max(v[1] for v in SNIPPETS.values())
    det = OnsetDetector(rate, audio_pre_ms=pre, audio_post_ms=post)
    out: list[Onset] = []
    for i in range(0, len(x), rate // 10):
        out += det.process(x[i : i + rate // 10])
    return out + det.flush()


def scores(clf: GunshotClassifier, o: Onset, rate: int) -> dict[str, float] | None:
    rel = round(o.sample - o.audio_start_sample)
    out = {}
    for name, (pre, post) in SNIPPETS.items():
        a = rel - int(pre * rate / 1000)
        if a < 0:
            return None  # too near the clip start for the longest lead-in: not scored
        snippet = o.audio[a : rel + int(post * rate / 1000)]
        try:
            out[name] = float(clf.probability(snippet, rate))
        except Exception:
            return None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=["calibration", "test"], default="calibration")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "acoustic")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    split = json.loads((ROOT / "training" / "acoustic" / "split.json").read_text())["splits"]
    groups = set(split[args.split])
    manifest = D.read_manifest(args.data)
    rows = [r for r in manifest if r["group_id"] in groups and r["label"] != "sensor_test_unlabeled"]
    bgs = D.backgrounds(manifest, args.data, groups)
    clf = GunshotClassifier.load()
    rng = random.Random(11)
    pos: list[dict[str, float]] = []
    neg: dict[str, list[dict[str, float]]] = {"raw": [], "degraded": []}
    unscored = {"gunshot_no_pulse": 0, "negative_no_pulse": 0}
    for r in rows:
        path = args.data / r["file"]
        x, rate = sf.read(str(path), dtype="float64", always_2d=False)
        if x.ndim > 1:
            x = x.mean(axis=1)
        if r["label"] == "gunshot":
            if not (path.with_suffix(".json")).exists():
                continue  # the Pittsburgh clips carry the timing that says which pulse is the round
            anc = D.gun_anchors(path)
            ons = detect(x, int(rate))
            first = anc.direct_s[0] if anc.direct_s else None
            near = [o for o in ons if first is not None and abs(o.sample / rate - first) < ROUND_TOLERANCE_S]
            near = near or [o for o in ons if any(abs(o.sample / rate - p) < 0.02 for p in anc.pulses_s)]
            got = [s for s in (scores(clf, o, int(rate)) for o in sorted(near, key=lambda o: -o.snr_db)) if s]
            if not got:
                unscored["gunshot_no_pulse"] += 1
                continue
            pos.append(got[0])
            continue
        for variant, y, yr in (
            ("raw", x, int(rate)),
            ("degraded", D.scorer_degrade(x, int(rate), bgs[rng.randrange(len(bgs))], rng), D.SR),
        ):
            got = [s for s in (scores(clf, o, yr) for o in detect(np.asarray(y), yr)) if s]
            if not got:
                unscored["negative_no_pulse"] += 1
                continue
            neg[variant].append({k: max(s[k] for s in got) for k in SNIPPETS})
    thr = clf.threshold
    figures: dict[str, Any] = {"gunshot_pulses": len(pos)}
    figures.update({f"negative_clips_{k}": len(v) for k, v in neg.items()})
    figures["unscored"] = unscored
    for name in SNIPPETS:
        p = np.array([d[name] for d in pos])
        f: dict[str, float] = {"recall_at_threshold": round(float(np.mean(p >= thr)), 4)}
        for k, v in neg.items():
            n = np.array([d[name] for d in v])
            f[f"roc_auc_{k}"] = round(auc(p, n), 5)
            f[f"fp_at_threshold_{k}"] = round(float(np.mean(n >= thr)), 4)
        figures[name] = f
    write_result(
        "acoustic_pulse_audio",
        figures,
        {
            "split": f"{args.split} (training/acoustic/split.json)",
            "data": str(args.data),
            "threshold": thr,
            "snippets_ms_pre_post": SNIPPETS,
            "note": args.note,
        },
    )


if __name__ == "__main__":
    main()
