#!/usr/bin/env python3
"""Cut the simulator's shipped waveforms (``rtcc/sim/waveforms/*.flac``) from the real recordings.

Usage::

    python training/sim/make_waveforms.py [--data ../shared/data/acoustic]

Each excerpt is one classifier window long (:data:`rtcc.acoustic.features.WINDOW_S`, 0.5 s) and
starts :data:`rtcc.acoustic.features.PRE_S` (50 ms) before the sound's strongest peak: the audio a
real sensor agent sends with each pulse (``rtcc.acoustic.agent.PULSE_AUDIO``), so a simulated
pulse reaches the center's classifier in the same shape as a real one. Mono, peak normalised to
0.9, 16-bit FLAC at the source's rate. A gunshot excerpt is cut around one chosen round, whose
next round comes more than a window later (its own echoes stay in, as a sensor hears them).
Sources and licences: ``rtcc/sim/waveforms/ATTRIBUTION.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rtcc.acoustic.features import PRE_S, WINDOW_S  # noqa: E402

OUT = ROOT / "rtcc" / "sim" / "waveforms"
PIT = "shotspotter_pittsburgh_dqv/FP1/{t}/{t}.audio.SCP-00-BNG-5567.flac"
SOURCES: dict[str, tuple[str, float | None]] = {
    # name: (file under the data folder, time of the chosen round's arrival in s, or None: strongest peak)
    "gunshot_45cal": (PIT.format(t="test_001"), 3.382),  # round 1 of 3; next round 1.1 s later
    "gunshot_40cal": (PIT.format(t="test_007"), 3.994),  # round 1 of 3; next round 0.8 s later
    "gunshot_9mm": (PIT.format(t="test_013"), 4.880),  # round 3 of 3 (rounds 1-2 are 0.38 s apart)
    "fireworks": ("esc50_subset/fireworks/2-117615-A-48.flac", None),
    "knock": ("esc50_subset/door_wood_knock/1-103995-A-30.flac", None),
}
SEARCH_S = 0.02
"""Around a chosen round's predicted arrival, the strongest sample within this is its peak."""


def excerpt(x: np.ndarray, rate: int, at_s: float | None) -> np.ndarray:
    """``WINDOW_S`` of ``x`` from ``PRE_S`` before the peak (near ``at_s``), peak 0.9."""
    if x.ndim > 1:
        x = x.mean(axis=1)
    if at_s is None:
        peak = int(np.argmax(np.abs(x)))
    else:
        a, b = int((at_s - SEARCH_S) * rate), int((at_s + SEARCH_S) * rate)
        peak = a + int(np.argmax(np.abs(x[a:b])))
    start = peak - round(PRE_S * rate)
    seg = x[start : start + round(WINDOW_S * rate)]
    if start < 0 or seg.size < round(WINDOW_S * rate):
        raise SystemExit(f"the peak at {peak / rate:.3f} s leaves no full window")
    return np.asarray(0.9 * seg / np.max(np.abs(seg)), dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "acoustic")
    args = ap.parse_args()
    for name, (rel, at_s) in SOURCES.items():
        x, rate = sf.read(str(args.data / rel), dtype="float64")
        seg = excerpt(x, int(rate), at_s)
        sf.write(str(OUT / f"{name}.flac"), seg, int(rate), format="FLAC", subtype="PCM_16")
        print(f"{name}: {rel} -> {seg.size / rate:.2f} s at {rate} Hz")


if __name__ == "__main__":
    main()
