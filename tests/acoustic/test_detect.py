"""The edge onset detector against synthetic ground truth in physical units (ms, dB), seeded.

The test impulse is a Friedlander wave (the textbook muzzle-blast shape: an instant rise, then
p(t) = A (1 − t/T) e^(−2t/T), T = 4 ms), generated 16× oversampled and decimated so that its onset
falls at a known *fractional* sample. SNR is defined as the detector defines it: the largest 1 ms
mean square of the band-passed impulse over the band-passed noise's mean square.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal
from typer.testing import CliRunner

from rtcc.acoustic.detect import AudioError, OnsetDetector, detect_file
from rtcc.cli.acoustic_detect import parse_utc
from rtcc.cli.main import app

TIMING_TOL_MS = 0.1  # stated tolerance on the onset time at 15–30 dB SNR
SNR_TOL_DB = 3.0


def friedlander(rate: int, onsets_s: list[float], dur_s: float, period_s: float = 0.004) -> np.ndarray:
    """Band-limited Friedlander impulses (peak 1.0) starting at ``onsets_s``."""
    over = 16
    t = np.arange(int(dur_s * rate) * over) / (rate * over)
    x = np.zeros_like(t)
    for t0 in onsets_s:
        u = t - t0
        up = np.maximum(u, 0.0)
        x += np.where(u >= 0, (1 - up / period_s) * np.exp(-2 * up / period_s), 0.0)
    return np.asarray(signal.resample_poly(x, 1, over))


def in_noise(
    rate: int, clean: np.ndarray, snr_db: float, rng: np.random.Generator, level: float = 0.3
) -> np.ndarray:
    """``clean`` scaled by ``level`` plus white noise scaled to ``snr_db`` (detector's definition)."""
    sos = signal.butter(4, [300, min(4000, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    k = round(rate / 1000)
    sta = np.convolve(signal.sosfiltfilt(sos, clean * level) ** 2, np.ones(k) / k)
    noise = rng.standard_normal(clean.size)
    nf = float(np.mean(signal.sosfilt(sos, noise) ** 2))
    g = np.sqrt(float(sta.max()) / nf / 10 ** (snr_db / 10))
    return np.asarray(clean * level + g * noise)


def run(det: OnsetDetector, x: np.ndarray, block: int) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(0, len(x), block):
        out += det.process(x[i : i + block])
    return out + det.flush()


@pytest.mark.parametrize("rate", [12000, 16000, 48000])
@pytest.mark.parametrize("snr_db", [15.0, 20.0, 30.0])
def test_onset_time_and_snr_of_an_impulse_in_noise(rate: int, snr_db: float) -> None:
    rng = np.random.default_rng(int(rate + snr_db))
    for trial in range(5):
        t0 = 1.2 + (trial + rng.uniform(0.05, 0.95)) / rate  # a fractional sample
        x = in_noise(rate, friedlander(rate, [t0], 2.0), snr_db, rng)
        onsets = run(OnsetDetector(rate), x, 256)
        assert len(onsets) == 1, [o.time_s for o in onsets]
        o = onsets[0]
        assert abs(o.time_s - t0) * 1000 < TIMING_TOL_MS
        assert abs(o.snr_db - snr_db) < SNR_TOL_DB
        assert o.duration_ms > 1.0
        assert o.audio.size == round(0.1 * rate)  # 25 ms before + 75 ms after


def test_weak_impulse_at_10_db_is_found_and_roughly_timed() -> None:
    rate = 12000
    rng = np.random.default_rng(10)
    errors = []
    for trial in range(20):
        t0 = 1.1 + trial * 0.0173 + rng.uniform(0, 1) / rate
        x = in_noise(rate, friedlander(rate, [t0], 2.0), 10.0, rng)
        onsets = run(OnsetDetector(rate, threshold_db=8.0), x, 1024)  # default 12 dB is tuned on real data
        near = [abs(o.time_s - t0) * 1000 for o in onsets if abs(o.time_s - t0) < 0.01]
        if near:
            errors.append(min(near))
    assert len(errors) >= 18  # found 90 % of the time at 10 dB
    assert float(np.median(errors)) < TIMING_TOL_MS


def test_two_impulses_120_ms_apart_are_two_onsets() -> None:
    rate = 12000
    x = in_noise(rate, friedlander(rate, [1.0, 1.12], 2.0), 25.0, np.random.default_rng(2))
    onsets = run(OnsetDetector(rate), x, 512)
    assert [round(o.time_s, 3) for o in onsets] == [1.0, 1.12]


def test_noise_only_gives_nothing() -> None:
    rate = 12000
    x = 0.01 * np.random.default_rng(3).standard_normal(rate * 20)
    assert run(OnsetDetector(rate), x, 4096) == []


def test_block_size_does_not_change_the_result() -> None:
    rate = 12000
    x = in_noise(rate, friedlander(rate, [0.8, 1.5, 1.62, 2.7], 3.5), 20.0, np.random.default_rng(4))
    whole = run(OnsetDetector(rate), x, len(x))
    small = run(OnsetDetector(rate), x, 256)
    odd = run(OnsetDetector(rate), x, 1000)
    assert len(whole) == 4
    for other in (small, odd):
        assert len(other) == len(whole)
        for a, b in zip(whole, other, strict=True):
            assert abs(a.sample - b.sample) < 1e-6
            assert abs(a.snr_db - b.snr_db) < 1e-6
            assert abs(a.duration_ms - b.duration_ms) < 1e-6


def test_dropouts_are_not_onsets() -> None:
    """Zero-filled stretches (recorder dropouts) end in a step that must not trigger."""
    rate = 12000
    x = 0.02 * np.random.default_rng(9).standard_normal(rate * 6)
    for a in (1.0, 2.5, 2.6, 4.0):
        x[int(a * rate) : int((a + 0.05) * rate)] = 0.0
    x += 0.3 * friedlander(rate, [3.3], 6.0)
    onsets = run(OnsetDetector(rate), x, 700)
    assert [round(o.time_s, 3) for o in onsets] == [3.3]


def test_stereo_and_integer_pcm() -> None:
    rate = 16000
    mono = in_noise(rate, friedlander(rate, [1.0], 2.0), 25.0, np.random.default_rng(5))
    stereo_i16 = (np.stack([mono, mono], axis=1) * 32767 / np.abs(mono).max()).astype(np.int16)
    (o,) = run(OnsetDetector(rate), stereo_i16, 4000)
    assert abs(o.time_s - 1.0) * 1000 < TIMING_TOL_MS


def test_low_rate_refused_with_a_clear_error() -> None:
    with pytest.raises(AudioError, match="8000 Hz"):
        OnsetDetector(4000)


def test_corrupt_and_truncated_files_give_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"fLaC" + b"\x00garbage" * 50)
    with pytest.raises(AudioError, match="cannot decode"):
        detect_file(junk)
    good = tmp_path / "good.flac"
    sf.write(good, friedlander(12000, [0.5], 1.0) * 0.3, 12000, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[:300])
    try:
        detect_file(cut)  # libsndfile may read what is there; it must not crash
    except AudioError as exc:
        assert "cut.flac" in exc.message
    with pytest.raises(AudioError, match="no such"):
        detect_file(tmp_path / "missing.wav")


def test_cli_detect_reads_sibling_json_and_reports_bad_files(tmp_path: Path) -> None:
    rate = 12000
    x = in_noise(rate, friedlander(rate, [1.0, 2.25], 3.0), 25.0, np.random.default_rng(6))
    clip = tmp_path / "test_001.audio.SCP-1.flac"
    sf.write(clip, x, rate, subtype="PCM_16")
    clip.with_suffix(".json").write_text(
        json.dumps(
            {
                "serial_number": "SCP-1",
                "timestamp": "2018-12-19T00:49:26.000Z",
                "location": {"x": 10.5, "y": -3.0, "z": 2.0},
            }
        )
    )
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    # a missing .wav (and a folder named .wav) used to stop the batch with a traceback
    (tmp_path / "folder.wav").mkdir()
    names = [str(tmp_path / "missing.wav"), str(tmp_path / "folder.wav"), str(bad), str(clip)]
    r = CliRunner().invoke(app, ["acoustic", "detect", *names])
    assert r.exit_code == 2 and not isinstance(r.exception, OSError) and "3 of 4 file(s) failed" in r.stderr
    lines = [json.loads(s) for s in r.stdout.splitlines() if s.startswith("{")]
    start = datetime(2018, 12, 19, 0, 49, 26, tzinfo=UTC)
    got = [(parse_utc(ln["arrival_utc"]) - start).total_seconds() for ln in lines]
    assert (
        len(got) == 2
        and abs(got[0] - 1.0) * 1000 < TIMING_TOL_MS
        and abs(got[1] - 2.25) * 1000 < TIMING_TOL_MS
    )
    first = lines[0]
    assert {"sensor_id", "arrival_utc", "peak_db", "snr_db", "duration_ms"} <= set(first)
    assert first["sensor_id"] == "SCP-1" and first["arrival_utc"].endswith("Z")
    assert len(first["arrival_utc"]) == len("2018-12-19T00:49:27.000000Z")
    assert (first["x_m"], first["y_m"], first["z_m"]) == (10.5, -3.0, 2.0)
    assert "bad.wav" in r.stderr
    # options override the sibling JSON
    r = CliRunner().invoke(
        app, ["acoustic", "detect", str(clip), "--sensor-id", "S9", "--start-utc", "2026-01-01T00:00:00Z"]
    )
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(s) for s in r.stdout.splitlines()]
    assert lines[0]["sensor_id"] == "S9"
    t = parse_utc(lines[0]["arrival_utc"]) - datetime(2026, 1, 1, tzinfo=UTC)
    assert abs(t.total_seconds() - 1.0) * 1000 < TIMING_TOL_MS


def _with_smj0(wav: Path, meta: dict[str, object] | bytes) -> None:
    """Append a ShotSpotter ``smj0`` chunk (zlib JSON) to a WAV file and fix the RIFF size."""
    import struct
    import zlib

    payload = meta if isinstance(meta, bytes) else zlib.compress(json.dumps(meta).encode())
    data = bytearray(wav.read_bytes())
    data += b"smj0" + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    data[4:8] = struct.pack("<I", len(data) - 8)
    wav.write_bytes(bytes(data))


def test_cli_detect_reads_a_shotspotter_wav_s_own_metadata(tmp_path: Path) -> None:
    """ShotSpotter's sensor WAVs (Chicago 2022 examples) carry their serial number, start time and
    position in an ``smj0`` chunk: used when no sibling JSON says otherwise; the position in UTM
    metres, so two sensors' pulses feed ``locate`` directly."""
    from rtcc.acoustic.wav_metadata import utm_xy

    rate = 12000
    x = in_noise(rate, friedlander(rate, [0.5], 1.5), 25.0, np.random.default_rng(8))
    clip = tmp_path / "113adf3a.wav"
    sf.write(clip, x, rate, subtype="PCM_16")
    _with_smj0(
        clip,
        {
            "serialNumber": "SCP-00-BNG-4089",
            "startTimeUTC": "2022-09-18T05:20:54.178Z",
            "geolocation": {"latitude": 41.697987, "longitude": -87.633597, "elevation": 195.6},
            "weather": {"temperature": 25.0},
        },
    )
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip)])
    assert r.exit_code == 0, r.stderr
    [line] = [json.loads(s) for s in r.stdout.splitlines()]
    assert line["sensor_id"] == "SCP-00-BNG-4089"
    dt = (
        parse_utc(line["arrival_utc"]) - datetime(2022, 9, 18, 5, 20, 54, 178000, tzinfo=UTC)
    ).total_seconds()
    assert abs(dt - 0.5) * 1000 < TIMING_TOL_MS
    ex, ny = utm_xy(41.697987, -87.633597)
    assert (line["x_m"], line["y_m"], line["z_m"]) == (ex, ny, 195.6)
    assert 440_000 < ex < 450_000 and 4_610_000 < ny < 4_620_000  # UTM zone 16N, Chicago
    # a sibling JSON wins over the chunk; the command line over both
    clip.with_suffix(".json").write_text(json.dumps({"serial_number": "FROM-JSON"}))
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip)])
    assert json.loads(r.stdout.splitlines()[0])["sensor_id"] == "FROM-JSON"
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip), "--sensor-id", "S1"])
    assert json.loads(r.stdout.splitlines()[0])["sensor_id"] == "S1"
    # a broken chunk is a clear error for that file
    broken = tmp_path / "broken.wav"
    sf.write(broken, x, rate, subtype="PCM_16")
    _with_smj0(broken, b"not zlib at all")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(broken)])
    assert r.exit_code == 2 and "smj0" in r.stderr and "Traceback" not in r.stderr


def test_detect_and_classify_refuse_the_same_bad_audio(tmp_path: Path) -> None:
    """Non-finite samples and rates below 8 kHz: both commands give a clear error (they disagreed)."""
    from rtcc.acoustic.classify import classify_file
    from rtcc.errors import ValidationFailed

    rate = 12000
    x = friedlander(rate, [0.5], 1.0) * 0.3
    x[100] = np.nan
    nan_clip = tmp_path / "nan.wav"
    sf.write(nan_clip, x.astype(np.float32), rate, subtype="FLOAT")
    with pytest.raises(AudioError, match="not finite"):
        detect_file(nan_clip)
    with pytest.raises(ValidationFailed, match="NaN"):
        classify_file(nan_clip)
    low = tmp_path / "low.wav"
    sf.write(low, friedlander(3000, [0.5], 1.0) * 0.3, 3000, subtype="PCM_16")
    with pytest.raises(AudioError, match="8000"):
        detect_file(low)
    with pytest.raises(ValidationFailed, match="8000"):
        classify_file(low)
