"""The shipped gunshot classifier: loads as ONNX, is deterministic and bounded, resamples, and its CLI.

The ordering tests use synthetic signals made here (an N-wave muzzle blast with reflections and a
reverberant tail, low-passed as by distance, in sensor-like noise, versus a sustained tone or broadband
noise). Synthetic audio is not real data: these tests only show the model is wired and sane. (The
model keys on the spectral shape of real sensor audio: the same blast with a white noise floor, or
low-passed at 1.5 kHz instead of 1 kHz, scores far lower.) Its accuracy on real held-out clips is
measured by ``bench/acoustic_classify.py`` (figures in ``rtcc/acoustic/models/gunshot_classifier.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
from scipy import signal
from typer.testing import CliRunner

from rtcc.acoustic import features as F
from rtcc.acoustic.classify import MODEL_FILE, AudioError, GunshotClassifier, classify_file
from rtcc.cli.main import app

MODELS = Path(__file__).resolve().parents[2] / "rtcc" / "acoustic" / "models"


def gunshot_like(sr: int, seed: int = 0, duration_s: float = 1.0, snr_db: float = 28.0) -> np.ndarray:
    """A distant gunshot as a street sensor hears it, built from physics rather than recorded.

    A 1.5 ms N-wave at 0.3 s with four wall reflections (12-130 ms, -4 to -18 dB), a reverberant
    noise tail (RT60 0.5 s), the whole low-passed at 1 kHz (air absorption over a few hundred metres),
    in low-frequency street background (1st-order 300 Hz then 4th-order 1.5 kHz roll-off, like the
    sensors' own noise) ``snr_db`` below the blast's peak.
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    x = np.zeros(n)
    t0 = int(0.3 * sr)
    nw = int(0.0015 * sr)
    nwave = np.linspace(1.0, -1.0, nw)
    x[t0 : t0 + nw] = nwave
    for delay_s, gain in ((0.012, 0.6), (0.03, 0.4), (0.07, 0.25), (0.13, 0.12)):
        k = t0 + int(delay_s * sr)
        x[k : k + nw] += gain * nwave
    rt60 = 0.5
    tail_n = int(rt60 * sr)
    t = np.arange(tail_n) / sr
    x[t0 + nw : t0 + nw + tail_n] += (rng.standard_normal(tail_n) * np.exp(-6.9 * t / rt60) * 0.3)[
        : n - t0 - nw
    ]
    x = signal.sosfilt(signal.butter(2, 1000, fs=sr, output="sos"), x)
    w = rng.standard_normal(n)
    bg = signal.sosfilt(signal.butter(1, 300, fs=sr, output="sos"), w)
    bg = signal.sosfilt(signal.butter(4, 1500, fs=sr, output="sos"), bg)
    bg *= np.max(np.abs(x)) * 10 ** (-snr_db / 20) / bg.std()
    y = x + bg
    return np.asarray(0.5 * y / np.max(np.abs(y)))


def tone(sr: int, freq_hz: float = 440.0, duration_s: float = 1.0) -> np.ndarray:
    t = np.arange(int(duration_s * sr)) / sr
    return 0.3 * np.sin(2 * np.pi * freq_hz * t)


def noise(sr: int, seed: int = 1, duration_s: float = 1.0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(int(duration_s * sr))


@pytest.fixture(scope="module")
def clf() -> GunshotClassifier:
    return GunshotClassifier.load()


def test_shipped_model_is_onnx_and_loads_once(clf: GunshotClassifier) -> None:
    path = MODELS / MODEL_FILE
    assert path.stat().st_size < 5 * 2**20
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == F.N_FEATURES
    meta = session.get_modelmeta().custom_metadata_map
    assert int(meta["feature_version"]) == F.FEATURE_VERSION
    assert 0.0 < float(meta["threshold"]) < 1.0
    assert int(meta["max_candidates"]) == clf.max_candidates >= 8
    assert GunshotClassifier.load() is clf


def test_patch_input_is_required_and_used(clf: GunshotClassifier) -> None:
    x = F.to_model_rate(gunshot_like(12_000, seed=2), 12_000)
    windows = [F.cut_window(x, o) for o in F.find_impulses(x, 3)]
    feats = np.stack([F.window_features(w) for w in windows])
    patches = np.stack([F.window_patch(w) for w in windows])
    assert patches.shape == (len(windows), F.N_MELS, F.PATCH_FRAMES)
    if not clf.needs_patch:
        pytest.skip("the shipped model reads features only")
    with pytest.raises(ValueError, match="patch"):
        clf.window_logits(feats)
    z = clf.window_logits(feats, patches)
    assert z.shape == (len(windows),)
    # The patch matters: a floor-level spectrogram changes every window's score.
    z_flat = clf.window_logits(feats, np.full_like(patches, -80.0))
    assert np.all(np.abs(z - z_flat) > 1e-3)


def test_window_inputs_are_level_invariant() -> None:
    x = F.to_model_rate(gunshot_like(12_000, seed=3), 12_000)
    onset = F.find_impulses(x, 1)[0]
    loud, quiet = F.cut_window(x, onset), F.cut_window(x * 0.01, onset)
    np.testing.assert_allclose(F.window_patch(loud), F.window_patch(quiet), atol=0.1)
    mel = slice(0, len(F.SPANS_MS) * F.N_MELS)
    np.testing.assert_allclose(F.window_features(loud)[mel], F.window_features(quiet)[mel], atol=0.1)


def test_probability_is_deterministic_and_bounded(clf: GunshotClassifier) -> None:
    for sr in (12_000, 16_000):
        for sig in (gunshot_like(sr), tone(sr), noise(sr), np.zeros(sr)):
            p1 = clf.probability(sig, sr)
            p2 = clf.probability(sig.copy(), sr)
            assert p1 == p2
            assert 0.0 <= p1 <= 1.0


@pytest.mark.parametrize("sr", [12_000, 16_000])
def test_impulse_scores_above_sustained_sounds(clf: GunshotClassifier, sr: int) -> None:
    shots = [clf.probability(gunshot_like(sr, seed=s), sr) for s in range(3)]
    others = [clf.probability(tone(sr, f), sr) for f in (300.0, 1000.0)] + [clf.probability(noise(sr), sr)]
    assert min(shots) > max(others)
    assert max(others) < clf.threshold


def test_resampling_path(clf: GunshotClassifier) -> None:
    sr = 44_100
    x = gunshot_like(sr, seed=4)
    y = F.to_model_rate(x, sr)
    assert abs(y.size - x.size * 12_000 / sr) <= 1
    # int16 stereo at 44.1 kHz goes through the same path as float mono at 12 kHz
    stereo = (np.stack([x, x], axis=1) * 32767).astype(np.int16)
    p_stereo = clf.probability(stereo, sr)
    p_12k = clf.probability(y, 12_000)
    assert abs(p_stereo - p_12k) < 0.1
    assert clf.probability(x[: int(0.06 * sr)], sr) >= 0.0  # ~60 ms is enough


def test_too_short_or_bad_input_is_an_audio_error(clf: GunshotClassifier) -> None:
    with pytest.raises(AudioError):
        clf.probability(np.zeros(100), 12_000)
    with pytest.raises(AudioError):
        clf.probability(np.full(12_000, np.nan), 12_000)
    with pytest.raises(AudioError):
        clf.probability(np.zeros(12_000), 0)


def test_classify_file_and_cli(tmp_path: Path) -> None:
    shot = tmp_path / "shot.flac"
    sf.write(shot, gunshot_like(12_000, seed=7), 12_000)
    hum = tmp_path / "hum.wav"
    sf.write(hum, tone(16_000), 16_000, subtype="PCM_16")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(200)))
    assert classify_file(shot) > classify_file(hum)
    with pytest.raises(AudioError, match=r"broken\.wav"):
        classify_file(bad)

    result = CliRunner().invoke(app, ["acoustic", "classify", str(shot), str(bad), str(hum)])
    assert result.exit_code == 2
    assert "broken.wav" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["file"] for o in lines] == [str(shot), str(hum)]
    for o in lines:
        assert set(o) == {"file", "gunshot_probability", "label"}
        assert 0.0 <= o["gunshot_probability"] <= 1.0
    assert lines[1]["label"] == "not_gunshot"

    ok = CliRunner().invoke(app, ["acoustic", "classify", str(hum)])
    assert ok.exit_code == 0
