"""Candidate windows of the gunshot classifier: broadband onsets plus mid-band ones (faint, distant rounds).

Synthetic clips made here: short clicks whose energy lies above 3 kHz (loud in the 200 Hz-5 kHz
envelope, nearly absent from the 500 Hz-2.5 kHz one) and one fainter 1 kHz burst (the band where a
distant round keeps its energy). Only the picking logic is tested; accuracy on real clips is measured by
``bench/acoustic_classify.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from scipy import signal

from rtcc.acoustic import features as F
from rtcc.acoustic.classify import MODEL_FILE, GunshotClassifier

SR = F.SAMPLE_RATE_HZ
MODELS = Path(__file__).resolve().parents[2] / "rtcc" / "acoustic" / "models"


def _burst(freq_hz: float, width_hz: float, n: int, rng: np.random.Generator) -> np.ndarray:
    sos = signal.butter(4, [freq_hz - width_hz / 2, freq_hz + width_hz / 2], "bandpass", fs=SR, output="sos")
    b = signal.sosfilt(sos, rng.standard_normal(n))
    return np.asarray(b * np.exp(-np.arange(n) / (0.01 * SR)))


def clip_with_hidden_round(seed: int = 0) -> tuple[np.ndarray, list[int], int]:
    """3 s of faint noise, four loud 4.2 kHz clicks and one weaker 1 kHz burst; returns their onsets."""
    rng = np.random.default_rng(seed)
    x = 1e-4 * rng.standard_normal(3 * SR)
    clicks = [int(t * SR) for t in (0.4, 0.9, 1.6, 2.6)]
    for c in clicks:
        x[c : c + 600] += 1.0 * _burst(4_200.0, 600.0, 600, rng)
    hidden = int(2.1 * SR)
    x[hidden : hidden + 600] += 0.05 * _burst(1_000.0, 400.0, 600, rng)
    return x, clicks, hidden


def _near(onsets: list[int], t: int, tol_s: float = 0.03) -> bool:
    return any(abs(o - t) <= tol_s * SR for o in onsets)


def test_midband_adds_the_round_the_broadband_picker_ranks_below_clicks() -> None:
    x, clicks, hidden = clip_with_hidden_round()
    broad = F.find_impulses(x, 4)
    assert all(_near(broad, c) for c in clicks)
    assert not _near(broad, hidden)
    cands = F.find_candidates(x, 4, 2)
    assert cands[:4] == broad  # broadband first, unchanged
    assert _near(cands[4:], hidden)


def test_candidates_are_not_duplicated_and_bounded() -> None:
    x, _, _ = clip_with_hidden_round(seed=1)
    cands = F.find_candidates(x, 4, 8)
    assert 4 <= len(cands) <= 12
    gaps = np.abs(np.subtract.outer(cands, cands))[~np.eye(len(cands), dtype=bool)]
    assert gaps.min() > F.MERGE_S * SR  # a mid-band onset on a listed impulse is merged into it


def test_midband_zero_is_the_broadband_picker() -> None:
    x, _, _ = clip_with_hidden_round(seed=2)
    assert F.find_candidates(x, 5, 0) == F.find_impulses(x, 5)
    assert F.find_candidates(np.zeros(0), 5, 5) == [0]


def test_classifier_reads_candidate_counts_from_the_model() -> None:
    meta = ort.InferenceSession(str(MODELS / MODEL_FILE), providers=["CPUExecutionProvider"])
    m = meta.get_modelmeta().custom_metadata_map
    clf = GunshotClassifier.load()
    assert clf.max_candidates == int(m["max_candidates"])
    assert clf.midband_candidates == int(m.get("midband_candidates", 0))


def test_mid_band_windows_are_scored() -> None:
    # The clip's score is the maximum over the broadband windows and the added mid-band ones.
    x, _, _ = clip_with_hidden_round(seed=3)
    path = MODELS / MODEL_FILE
    broad_only = GunshotClassifier.from_path(path)
    broad_only.max_candidates, broad_only.midband_candidates = 4, 0
    both = GunshotClassifier.from_path(path)
    both.max_candidates, both.midband_candidates = 4, 2
    mid = [F.cut_window(x, o) for o in F.find_candidates(x, 4, 2)[4:]]
    assert mid
    z_mid = both.window_logits(
        np.stack([F.window_features(w) for w in mid]), np.stack([F.window_patch(w) for w in mid])
    )
    z_b, z_both = broad_only.clip_logit(x), both.clip_logit(x)
    assert z_both == pytest.approx(max(z_b, float(z_mid.max())), abs=1e-5)
    assert z_both >= z_b - 1e-6
