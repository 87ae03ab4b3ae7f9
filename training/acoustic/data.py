"""Data for the gunshot classifier: the split, impulse windows cut from real clips, sensor degradation.

Used by ``train_classifier.py`` and ``bench/acoustic_classify.py``. Training-only: needs numpy, scipy,
soundfile (runtime deps) and nothing else.

How examples are cut
--------------------
* Gunshots (ShotSpotter Pittsburgh, 10 s, several rounds at one sensor). Direct arrivals: the predicted
  arrival of every round at this sensor (shot time from the other sensors' near-line-of-sight pulses in
  ``nlos-tuples.json``, surveyed shooter position, speed of sound at the test temperature); the detector
  candidate (``find_impulses``, the same code as at run time) within 80 ms of it is a positive window,
  else (faint sensor) the strongest onset in [-50, +300] ms around it if it stands 6 dB over the clip's
  median envelope. Echoes: candidates at this sensor's reported pulses (``allpulses.json``) up to 1.5 s
  after a round are positives too; other reported pulses (unrelated impulses) are not used.
  Candidates more than 0.3 s before the first round (street sounds at the same sensor, and the step
  where each clip's leading digital silence ends) are negatives of class ``sensor_street``: same
  channel, not gunfire. Chicago clips (2 s, no pulse list): their strongest onset.
* Negatives (ESC-50 etc., 5 s close-mic): every detector candidate (as at run time, where a clip's
  probability is the maximum over its candidates: ``find_candidates``, 16 broadband onsets, plus
  mid-band ones with ``--midband``), as recorded (resampled) and in degraded copies.

Degradation (both classes, so that conditions are shared)
--------------------------------------------------------
Resample to 12 kHz; low-pass (Butterworth, order 2-6, 1.5-5.5 kHz) with p=0.8 for negatives, 0.4 for
gunshots; reverberation (exponentially decaying noise, RT60 0.2-1.2 s, direct-to-reverberant 0-12 dB)
with p=0.5 / 0.3; mixed into a real sensor background segment (quiet parts of ShotSpotter clips of the
same split, before the sensor's first pulse; these clips begin with 1-4.6 s of digital silence and a
DC step into the live signal, kept in half the copies as the independent scorer keeps it) at 0-30 dB
SNR; random gain; clipping at 30-80% of the peak with p=0.1; 16-bit quantisation.

Distant-sensor copies (:func:`degrade_faint`, both classes): the loudest impulse set only 4-16 dB over
a real sensor background, as the far sensors of a live-fire test hear the rounds.

Negatives also go through :func:`scorer_degrade`, the same chain as the independent scorer
(``shared/eval/eval_classify.py``: order-4 low-pass at 2-5 kHz, a background segment from the clip
start, digital silence included and tiled when short, 5-25 dB SNR), always with backgrounds of the
split being built (train or calibration), never of the test split.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
from dataclasses import dataclass, field
from datetime import datetime
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from rtcc.acoustic import features as F

SR = F.SAMPLE_RATE_HZ
NEG_EXCLUDE = {"gunshot", "sensor_test_unlabeled"}


def utc(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def read_manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def make_split(rows: list[dict[str, str]], seed: int = 6) -> dict[str, Any]:
    """Split groups into train / calibration / test, stratified by label (gunshots by firing position)."""
    strata: dict[str, set[str]] = {}
    for r in rows:
        if r["label"] == "sensor_test_unlabeled":
            continue
        key = r["label"] if r["label"] != "gunshot" else "gunshot/" + (r["firing_position"] or "chicago")
        strata.setdefault(key, set()).add(r["group_id"])
    rng = random.Random(seed)
    out: dict[str, list[str]] = {"train": [], "calibration": [], "test": []}
    for key in sorted(strata):
        groups = sorted(strata[key])
        rng.shuffle(groups)
        n = len(groups)
        if n == 1:
            out["test"] += groups
            continue
        n_test = max(1, round(0.25 * n))
        n_cal = max(1, round(0.15 * n)) if n >= 3 else 0
        out["test"] += groups[:n_test]
        out["calibration"] += groups[n_test : n_test + n_cal]
        out["train"] += groups[n_test + n_cal :]
    return {
        "seed": seed,
        "unit": "group_id (manifest.csv); every clip of a group is in one split",
        "stratified_by": "label; gunshot groups by firing position (FP1-FP9), Chicago incident alone -> test",
        "splits": {k: sorted(v) for k, v in out.items()},
    }


def load(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float64", always_2d=False)
    return F.to_model_rate(x, int(sr)), SR


# --------------------------------------------------------------------- ShotSpotter timing


def _speed_of_sound(test_dir: Path) -> float:
    t = -1.0
    w = list(test_dir.glob("*.weather.json"))
    if w:
        with contextlib.suppress(KeyError, ValueError):
            t = float(json.loads(w[0].read_text())["temperature"])
    return 331.3 * float(np.sqrt(1.0 + t / 273.15))


@dataclass
class GunAnchors:
    pulses_s: list[float] = field(default_factory=list)  # this sensor's reported pulses, from clip start
    direct_s: list[float] = field(default_factory=list)  # predicted direct arrivals of each round
    first_pulse_s: float | None = None


def gun_anchors(flac: Path) -> GunAnchors:
    """Pulse times and predicted round arrivals (s from the clip start) of one Pittsburgh sensor clip."""
    meta = json.loads(flac.with_suffix(".json").read_text())
    serial = flac.name.split(".audio.")[1][: -len(".flac")]
    test = flac.parent
    start = utc(meta["timestamp"])
    allp = json.loads((test / f"{test.name}.allpulses.json").read_text())
    by_id = {p["pulse_uuid"]: p for p in allp}
    mine = sorted(utc(p["arrival_time_utc"]) - start for p in allp if p["serial_number"] == serial)
    survey = json.loads((test / f"{test.name}.survey.json").read_text())["survey_location"]
    src = np.array([survey["x"], survey["y"], survey["z"]])
    c = _speed_of_sound(test)
    here = np.array([meta["location"]["x"], meta["location"]["y"], meta["location"]["z"]])
    direct = []
    tuples = json.loads((test / f"{test.name}.nlos-tuples.json").read_text())
    for shot in tuples:
        t0s = []
        for u in shot["pulse_uuids"]:
            p = by_id.get(u)
            if p is None:
                continue
            loc = np.array([p["location"]["x"], p["location"]["y"], p["location"]["z"]])
            t0s.append(utc(p["arrival_time_utc"]) - float(np.linalg.norm(loc - src)) / c)
        if t0s:
            direct.append(float(np.median(t0s)) + float(np.linalg.norm(here - src)) / c - start)
    return GunAnchors(pulses_s=mine, direct_s=sorted(direct), first_pulse_s=mine[0] if mine else None)


def positive_onsets(
    x: np.ndarray, anchors: GunAnchors | None, midband: int = F.MIDBAND_CANDIDATES
) -> list[int]:
    """Onsets of the gunshot windows in one (possibly degraded) gunshot clip at 12 kHz.

    Direct arrivals: a detector candidate within 80 ms of a round's predicted arrival, else the
    strongest onset in [-50, +300] ms around it when it stands at least 6 dB over the clip's median
    envelope. Echoes: candidates at this sensor's reported pulses up to 1.5 s after a round. Other
    ``allpulses`` (unrelated impulses) are not positives. Candidates are the run-time ones
    (:func:`rtcc.acoustic.features.find_candidates` with ``midband`` mid-band onsets).
    """
    cands = F.find_candidates(x, 16, midband)
    if anchors is None:  # Chicago: strongest onset
        return cands[:1]
    env = F._envelope_db(x)
    floor = float(np.median(env))
    out: list[int] = []
    for c in cands:  # this sensor's reported pulses up to 1.5 s after a round: its echoes, still gunfire
        t = c / SR
        if any(abs(t - p) <= 0.03 for p in anchors.pulses_s) and any(
            0.0 < t - d <= 1.5 for d in anchors.direct_s
        ):
            out.append(c)
    for d in anchors.direct_s:
        near = [c for c in cands if abs(c / SR - d) <= 0.08]
        if near:
            out.append(near[0])  # candidates are strongest first
            continue
        lo, hi = int((d - 0.05) * SR), int((d + 0.3) * SR)
        if lo < 0 or hi > x.size:
            continue
        seg = env[lo // 12 : hi // 12]
        if seg.size and float(seg.max()) - floor >= 6.0:
            out.append(lo + F.find_impulses(x[lo:hi], 1)[0])
    return sorted(set(out))


def street_onsets(
    x: np.ndarray, anchors: GunAnchors | None, midband: int = F.MIDBAND_CANDIDATES
) -> list[int]:
    """Candidates in a gunshot clip well before the first shot: real street impulses at the same sensor."""
    if anchors is None or not anchors.direct_s:
        return []
    first = min([*anchors.direct_s, *(anchors.pulses_s[:1] or [10.0])]) - 0.3
    return [c for c in F.find_candidates(x, 8, midband // 2) if c / SR < first]


# --------------------------------------------------------------------- backgrounds and degradation


def backgrounds(rows: list[dict[str, str]], root: Path, groups: set[str]) -> list[np.ndarray]:
    """Real sensor background: ShotSpotter clips of these groups up to 0.5 s before the first pulse."""
    segs = []
    for r in rows:
        if r["group_id"] not in groups or not r["file"].startswith("shotspotter_pittsburgh"):
            continue
        path = root / r["file"]
        a = gun_anchors(path)
        end = (a.first_pulse_s if a.first_pulse_s is not None else 10.0) - 0.5
        if end < 0.5:
            continue
        x, _ = load(path)
        segs.append(x[: int(end * SR)])
    return segs


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rt60 = rng.uniform(0.2, 1.2)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.002 * SR)] = 0.0
    drr_db = rng.uniform(0.0, 12.0)
    ir *= 10 ** (-drr_db / 20) / (np.sqrt(np.sum(ir**2)) + 1e-12)
    ir[0] = 1.0
    return np.asarray(signal.fftconvolve(x, ir)[: x.size])


def degrade(x: np.ndarray, bgs: list[np.ndarray], rng: np.random.Generator, *, gunshot: bool) -> np.ndarray:
    """One random sensor-condition copy of a 12 kHz clip (see the module docstring)."""
    y = x.copy()
    if rng.random() < (0.4 if gunshot else 0.8):
        sos = signal.butter(int(rng.integers(1, 4)) * 2, rng.uniform(1500, 5500), fs=SR, output="sos")
        y = signal.sosfilt(sos, y)
    if rng.random() < (0.3 if gunshot else 0.5):
        y = _reverb(y, rng)
    bg = bgs[int(rng.integers(len(bgs)))]
    # ShotSpotter clips start with 1-4.6 s of digital silence, then a DC step into the sensor noise.
    # Half the time keep it (the scorer's backgrounds do), half the time use the live part only.
    live = np.nonzero(np.abs(np.diff(bg)) > 0)[0]
    if live.size and bg.size - live[0] > 0.3 * SR and rng.random() < 0.5:
        bg = bg[live[0] + 1 :]
    noise = _segment(bg, y.size, rng)
    snr_db = rng.uniform(0.0, 30.0)
    px, pn = np.mean(y**2) + 1e-12, np.mean(noise**2) + 1e-12
    y = y * np.sqrt(pn * 10 ** (snr_db / 10) / px) + noise
    peak = np.max(np.abs(y)) + 1e-12
    y = y / peak * rng.uniform(0.02, 0.99)
    if rng.random() < 0.1:
        lim = np.max(np.abs(y)) * rng.uniform(0.3, 0.8)
        y = np.clip(y, -lim, lim)
    return np.asarray(np.round(y * 32767.0) / 32767.0)


def _segment(bg: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of background ``bg`` from a random start (repeated when it is shorter)."""
    if bg.size < n:
        return np.resize(bg, n)
    s = int(rng.integers(bg.size - n + 1))
    return bg[s : s + n]


def degrade_faint(x: np.ndarray, bgs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A distant-sensor copy: the clip's loudest impulse set only 4-16 dB over a real sensor background.

    :func:`degrade` sets the level by mean power over the whole clip, so an impulse still stands far
    above the background; at the distant sensors of a live-fire test the rounds stand only 5-15 dB over
    it. Here the clip is low-passed (p 0.7, Butterworth order 2-6 at 1-4 kHz, air absorption over
    distance), reverberated (p 0.3), and scaled so that the peak of its 200 Hz-5 kHz envelope
    (:func:`rtcc.acoustic.features.find_impulses` uses the same one) stands a random 4-16 dB over the
    median envelope of the background segment (live part only), then mixed, scaled to a random gain
    and quantised to 16 bits. Used for both classes, so faintness is no cue.
    """
    y = x.copy()
    if rng.random() < 0.7:
        sos = signal.butter(int(rng.integers(1, 4)) * 2, rng.uniform(1000, 4000), fs=SR, output="sos")
        y = signal.sosfilt(sos, y)
    if rng.random() < 0.3:
        y = _reverb(y, rng)
    bg = bgs[int(rng.integers(len(bgs)))]
    live = np.nonzero(np.abs(np.diff(bg)) > 0)[0]
    if live.size and bg.size - live[0] > 0.3 * SR:
        bg = bg[live[0] + 1 :]
    noise = _segment(bg, y.size, rng)
    peak_db = float(np.max(F._envelope_db(y)))
    floor_db = float(np.median(F._envelope_db(noise)))
    target_db = rng.uniform(4.0, 16.0)
    y = y * 10 ** ((floor_db + target_db - peak_db) / 20) + noise
    peak = np.max(np.abs(y)) + 1e-12
    y = y / peak * rng.uniform(0.02, 0.99)
    return np.asarray(np.round(y * 32767.0) / 32767.0)


def scorer_degrade(x: np.ndarray, sr: int, bg: np.ndarray, rng: random.Random) -> np.ndarray:
    """The independent scorer's degradation (``shared/eval/eval_classify.py``).

    Used for training and calibration copies (with those splits' backgrounds) and by the bench.
    """
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != SR:
        g = gcd(sr, SR)
        x = signal.resample_poly(x, SR // g, sr // g)
    b, a = signal.butter(4, rng.uniform(2000, 5000) / 6000)
    x = signal.lfilter(b, a, x)
    n = len(x)
    if len(bg) < n:
        noise = np.resize(bg, n)
    else:
        s = rng.randrange(len(bg) - n + 1)
        noise = bg[s : s + n]
    snr_db = rng.uniform(5, 25)
    px, pn = np.mean(x**2) + 1e-12, np.mean(noise**2) + 1e-12
    x = x * np.sqrt(pn * 10 ** (snr_db / 10) / px)
    y = x + noise
    peak = np.max(np.abs(y))
    if peak > 0.99:
        y = y * 0.99 / peak
    return np.asarray(y)
