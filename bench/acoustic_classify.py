#!/usr/bin/env python3
"""Gunshot classification on the held-out TEST split, with the shipped model (issue 6 figures).

Usage::

    python bench/acoustic_classify.py [--data ../shared/data/acoustic] [--scorer] [--note TEXT]

Clips of the test groups in ``training/acoustic/split.json``:

* positives: every gunshot clip, as recorded (ShotSpotter sensors, 12 kHz, whole 10 s / 2 s clips);
* negatives ``raw``: every non-gunshot clip as recorded (16 kHz close-mic);
* negatives ``degraded``: 3 seeded copies of each through the training degradation (low-pass, reverb,
  real sensor background of the TEST groups, level, clipping);
* negatives ``scorer_style``: 3 seeded copies through the independent scorer's degradation
  (low-pass 2-5 kHz, background at 5-25 dB SNR).

Figures per negative set: ROC-AUC; gunshot recall at <= 1 % and <= 0.5 % false positives (best
threshold, read off the ROC); recall and false-positive rate at the shipped label threshold, and per
negative class (fireworks on its own); calibration error (10-bin ECE) and Brier score over all clips;
inference time per clip; and, as a channel-leakage check, the false-positive rate on the live sensor
background before the first shot of each test gunshot clip (pure ShotSpotter channel, no gunshot).
``--scorer`` also lays out the test split as a data folder (symlinks + a
manifest subset) and runs ``shared/eval/eval_classify.py`` on it, recording its summary line.
Results are appended to ``bench/results/acoustic_classify.jsonl``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "training" / "acoustic"), str(ROOT / "bench")]

import data as D  # noqa: E402
from _common import write_result  # noqa: E402

from rtcc.acoustic import features as F  # noqa: E402
from rtcc.acoustic.classify import GunshotClassifier  # noqa: E402


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from scipy import stats

    ranks = stats.rankdata(np.concatenate([pos, neg]))
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def recall_at_fp(pos: np.ndarray, neg: np.ndarray, max_fp: float) -> float:
    """Best recall over thresholds whose false-positive rate is at most ``max_fp`` (label: p >= t)."""
    best = 0.0
    for t in np.unique(np.concatenate([pos, neg])):
        if np.mean(neg >= t) <= max_fp:
            best = max(best, float(np.mean(pos >= t)))
    return best


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    return float(
        sum(
            abs(p[idx == k].mean() - y[idx == k].mean()) * np.sum(idx == k)
            for k in range(bins)
            if np.any(idx == k)
        )
        / p.size
    )


def make_eval_dir(rows: list[dict[str, str]], groups: set[str], data: Path, out: Path) -> int:
    """The test split laid out like the data folder: symlinked clips (and sidecars) + manifest subset."""
    keep = [r for r in rows if r["group_id"] in groups]
    for r in keep:
        src = data / r["file"]
        for s in (
            [src, *src.parent.glob(src.name.split(".audio.")[0] + ".*.json")]
            if ".audio." in src.name
            else [src]
        ):
            dst = out / s.relative_to(data)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(s.resolve())
        side = src.with_suffix(".json")
        if side.exists() and not (out / side.relative_to(data)).exists():
            (out / side.relative_to(data)).symlink_to(side.resolve())
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    return len(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "acoustic")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument(
        "--scorer", action="store_true", help="also run shared/eval/eval_classify.py on the test split"
    )
    ap.add_argument("--note", default="", help="free text recorded with the result (e.g. what changed)")
    args = ap.parse_args()

    rows = D.read_manifest(args.data)
    split = json.loads((ROOT / "training" / "acoustic" / "split.json").read_text())["splits"]
    test = set(split["test"])
    clf = GunshotClassifier.load()
    bgs = D.backgrounds(rows, args.data, test)
    rng = np.random.default_rng(2026)
    srng = random.Random(2026)

    pos: list[float] = []
    neg: dict[str, list[tuple[str, float]]] = {"raw": [], "degraded": [], "scorer_style": []}
    times: list[float] = []

    def score(x: np.ndarray, sr: int) -> float:
        t = time.perf_counter()
        p = clf.probability(x, sr)
        times.append(time.perf_counter() - t)
        return p

    n_files = 0
    for r in rows:
        if r["group_id"] not in test or r["label"] == "sensor_test_unlabeled":
            continue
        n_files += 1
        x, sr = sf.read(str(args.data / r["file"]), dtype="float64")
        if r["label"] == "gunshot":
            pos.append(score(x, int(sr)))
            continue
        neg["raw"].append((r["label"], score(x, int(sr))))
        x12 = F.to_model_rate(x, int(sr))
        for _ in range(args.copies):
            neg["degraded"].append(
                (r["label"], score(D.degrade(x12, bgs, rng, gunshot=False), F.SAMPLE_RATE_HZ))
            )
            y = D.scorer_degrade(x, int(sr), bgs[srng.randrange(len(bgs))], srng)
            neg["scorer_style"].append((r["label"], score(y, F.SAMPLE_RATE_HZ)))

    # Channel check: the live sensor background before the first shot of each test gunshot clip
    # (no gunshot in it). A model that had learned "ShotSpotter channel = gunshot" would fire here.
    bg_only = []
    for r in rows:
        if r["group_id"] not in test or not r["file"].startswith("shotspotter_pittsburgh"):
            continue
        path = args.data / r["file"]
        a = D.gun_anchors(path)
        x12, _ = D.load(path)
        live = np.nonzero(np.abs(np.diff(x12)) > 0)[0]
        start = int(live[0]) + 1 if live.size else 0
        end = int((min([*a.direct_s, *a.pulses_s[:1], 10.0]) - 0.5) * F.SAMPLE_RATE_HZ)
        if end - start >= int(0.5 * F.SAMPLE_RATE_HZ):
            bg_only.append(clf.probability(x12[start:end], F.SAMPLE_RATE_HZ))

    pp = np.array(pos)
    figures: dict[str, Any] = {
        "gunshot_clips": int(pp.size),
        "threshold": clf.threshold,
        "recall_at_threshold": round(float(np.mean(pp >= clf.threshold)), 4),
    }
    all_p, all_y = [pp], [np.ones(pp.size)]
    for name, lst in neg.items():
        nn = np.array([p for _, p in lst])
        per: dict[str, float] = {}
        for lab in sorted({lab for lab, _ in lst}):
            v = np.array([p for lab2, p in lst if lab2 == lab])
            per[lab] = round(float(np.mean(v >= clf.threshold)), 4)
        figures[name] = {
            "negative_clips": int(nn.size),
            "roc_auc": round(auc(pp, nn), 5),
            "recall_at_fp_1pct": round(recall_at_fp(pp, nn, 0.01), 4),
            "recall_at_fp_0_5pct": round(recall_at_fp(pp, nn, 0.005), 4),
            "fp_at_threshold": round(float(np.mean(nn >= clf.threshold)), 4),
            "fireworks_fp_at_threshold": per.get("fireworks"),
            "worst_class_fp": max(per.values()),
            "fp_by_class": per,
        }
        all_p.append(nn)
        all_y.append(np.zeros(nn.size))
    bo = np.array(bg_only)
    figures["sensor_background_only"] = {
        "clips": int(bo.size),
        "fp_at_threshold": round(float(np.mean(bo >= clf.threshold)), 4),
        "median_probability": round(float(np.median(bo)), 4),
        "auc_gunshot_vs_background": round(auc(pp, bo), 5),
    }
    p_all, y_all = np.concatenate(all_p), np.concatenate(all_y)
    figures["ece_10bin_all_clips"] = round(ece(p_all, y_all), 4)
    figures["brier_all_clips"] = round(float(np.mean((p_all - y_all) ** 2)), 4)
    t = np.array(times) * 1000
    figures["ms_per_clip"] = {
        "median": round(float(np.median(t)), 2),
        "p95": round(float(np.percentile(t, 95)), 2),
    }
    model = ROOT / "rtcc" / "acoustic" / "models" / "gunshot_classifier.onnx"
    figures["model_bytes"] = model.stat().st_size
    figures["model_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    figures["candidates"] = {"broadband": clf.max_candidates, "midband": clf.midband_candidates}

    if args.scorer:
        tmp = Path(tempfile.mkdtemp(prefix="rtcc_cls_test_"))
        try:
            make_eval_dir(rows, test, args.data, tmp)
            rtcc = Path(sys.executable).parent / "rtcc"
            cmd = [
                sys.executable,
                str(ROOT.parent / "shared" / "eval" / "eval_classify.py"),
                str(tmp),
                "--",
                str(rtcc),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            figures["scorer"] = {"exit": res.returncode, "output": res.stdout.strip().splitlines()}
            print("independent scorer (shared/eval/eval_classify.py) on the test split:", flush=True)
            print(res.stdout.strip() or res.stderr.strip()[-500:], flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    write_result(
        "acoustic_classify",
        figures,
        {
            "split": "test (training/acoustic/split.json)",
            "test_groups": len(test),
            "test_files": n_files,
            "degraded_copies": args.copies,
            "data": str(args.data),
            "note": args.note,
        },
    )


if __name__ == "__main__":
    main()
