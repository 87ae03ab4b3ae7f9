"""Bad input to ``rtcc acoustic detect|locate|classify``: each case failed silently or unclearly before.

Truncated WAV files, multichannel audio whose channels cancel in a mix, one sensor id at two places
in a pulses CSV, non-finite options, odd sibling-JSON metadata, and unclear messages for a directory
or a missing file. Synthetic audio and CSV written to ``tmp_path``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from rtcc.acoustic.detect import AudioError, OnsetDetector, detect_file, loudest_channel, to_mono_float
from rtcc.acoustic.locate import speed_of_sound
from rtcc.acoustic.wav_metadata import wav_shortfall
from rtcc.cli.acoustic_detect import parse_utc
from rtcc.cli.main import app
from tests.acoustic.test_classify import gunshot_like
from tests.acoustic.test_detect import TIMING_TOL_MS, friedlander, in_noise
from tests.acoustic.test_locate import T0, _iso, bang, sensors

RATE = 12000


def _clip(
    rate: int = RATE, onsets: tuple[float, ...] = (1.0,), dur_s: float = 3.0, seed: int = 6
) -> np.ndarray:
    return in_noise(rate, friedlander(rate, list(onsets), dur_s), 25.0, np.random.default_rng(seed))


def _pulses(stdout: str) -> list[dict[str, object]]:
    return [json.loads(s) for s in stdout.splitlines() if s.startswith("{")]


# -- 1. truncated WAV -----------------------------------------------------------------------------


def _truncated(tmp_path: Path) -> Path:
    """A 10 s 24-bit WAV with an impulse at 1 s, cut to a third of its bytes."""
    full = tmp_path / "full.wav"
    sf.write(full, _clip(dur_s=10.0) / 4, RATE, subtype="PCM_24")
    cut = tmp_path / "cut.wav"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return cut


def test_truncated_wav_is_a_bad_file_for_detect_and_classify(tmp_path: Path) -> None:
    cut = _truncated(tmp_path)
    good = tmp_path / "good.flac"
    sf.write(good, _clip(), RATE, subtype="PCM_16")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(cut), str(good)])
    assert r.exit_code == 2
    assert "cut.wav: truncated WAV file" in r.stderr and "6.67 s of 10.00 s" in r.stderr
    assert "1 of 2 file(s) failed" in r.stderr
    assert [p["sensor_id"] for p in _pulses(r.stdout)] == ["good"]  # the other file is still read
    r = CliRunner().invoke(app, ["acoustic", "classify", str(cut), str(good)])
    assert r.exit_code == 2 and "cut.wav: truncated WAV file" in r.stderr and "missing" in r.stderr
    assert [p["file"] for p in _pulses(r.stdout)] == [str(good)]


def test_wav_shortfall_leaves_complete_and_streamed_files_alone(tmp_path: Path) -> None:
    full = tmp_path / "full.wav"
    sf.write(full, np.zeros(RATE), RATE, subtype="PCM_16")
    assert wav_shortfall(full) is None
    data = bytearray(full.read_bytes())
    cut = tmp_path / "cut.wav"
    cut.write_bytes(bytes(data[:-100]))
    assert wav_shortfall(cut) == (2 * RATE, 2 * RATE - 100, 2 * RATE)
    # a recorder writing to a pipe leaves the sizes at 0 or 0xFFFFFFFF: nothing is promised
    pos = bytes(data).index(b"data") + 4
    for size in (b"\0\0\0\0", b"\xff\xff\xff\xff"):
        streamed = tmp_path / "streamed.wav"
        streamed.write_bytes(bytes(data[:pos]) + size + bytes(data[pos + 4 : -100]))
        assert wav_shortfall(streamed) is None
    flac = tmp_path / "a.flac"
    sf.write(flac, np.zeros(RATE), RATE)
    assert wav_shortfall(flac) is None


# -- 2. multichannel audio ------------------------------------------------------------------------


def test_channels_of_opposite_polarity_do_not_cancel(tmp_path: Path) -> None:
    x = _clip(onsets=(1.0,)) / 4
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([x, -x], axis=1), RATE, subtype="FLOAT")
    (o,) = detect_file(stereo)
    assert abs(o.time_s - 1.0) * 1000 < TIMING_TOL_MS
    # a dead channel beside the live one: the live one is used, wherever it is
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.stack([1e-4 * np.ones_like(x), x], axis=1), RATE, subtype="FLOAT")
    assert len(detect_file(quiet)) == 1
    r = CliRunner().invoke(app, ["acoustic", "detect", str(stereo)])
    assert r.exit_code == 0 and len(_pulses(r.stdout)) == 1


def test_classify_scores_the_loudest_channel(tmp_path: Path) -> None:
    g = gunshot_like(RATE, seed=1)
    mono, stereo = tmp_path / "mono.wav", tmp_path / "stereo.wav"
    sf.write(mono, g, RATE, subtype="FLOAT")
    sf.write(stereo, np.stack([g, -g], axis=1), RATE, subtype="FLOAT")  # a mix is silence
    r = CliRunner().invoke(app, ["acoustic", "classify", str(mono), str(stereo)])
    assert r.exit_code == 0, r.stderr
    p_mono, p_stereo = (float(str(p["gunshot_probability"])) for p in _pulses(r.stdout))
    assert p_mono > 0.5 and p_stereo == p_mono


def test_a_stream_keeps_the_channel_it_chose() -> None:
    """The channel is chosen once (a switch between blocks would put a step in the audio)."""
    x = _clip(onsets=(1.0, 2.0))
    noise = np.random.default_rng(3).standard_normal(x.size) * float(np.std(x[:RATE]))
    noise[: RATE // 2] *= 0.5
    noise[RATE // 2 :] *= 3.0  # the louder channel after 0.5 s, but only noise
    a = np.stack([x, noise], axis=1)
    assert loudest_channel(a[:600]) == 0 and loudest_channel(a[-600:]) == 1
    assert to_mono_float(a, 1)[5] == a[5, 1]
    det = OnsetDetector(RATE)
    onsets = [o for i in range(0, len(a), 600) for o in det.process(a[i : i + 600])] + det.flush()
    assert det.channel == 0
    whole = OnsetDetector(RATE)
    assert [o.sample for o in onsets] == [o.sample for o in whole.process(x) + whole.flush()]
    assert len(onsets) == 2
    with pytest.raises(AudioError, match="channel 2"):
        to_mono_float(a, 2)


# -- 3. one sensor at two places in a pulses CSV ----------------------------------------------------


def _rounds_csv(
    tmp_path: Path, shift: tuple[float, float, float] = (0.0, 0.0, 0.0), name: str = "p.csv"
) -> Path:
    """Three rounds heard by 12 sensors; every other row of each sensor moved by ``shift`` (m)."""
    rng = np.random.default_rng(5)
    src = (-11450.0, 3650.0, -90.0)
    pos = sensors(rng, 12) + np.array(src)
    c = speed_of_sound(20.0)
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"]
    seen: dict[str, int] = {}
    for k in range(3):
        for a in bang(pos, src, T0 + 0.5 * k, c, rng, 40e-6):
            n = seen[a.sensor_id] = seen.get(a.sensor_id, 0) + 1
            dx, dy, dz = shift if n % 2 == 0 else (0.0, 0.0, 0.0)
            lines.append(f"{a.sensor_id},{a.x_m + dx},{a.y_m + dy},{a.z_m + dz},{_iso(a.t_s)},{a.snr_db}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_locate_refuses_a_sensor_at_two_places(tmp_path: Path) -> None:
    ok = CliRunner().invoke(app, ["acoustic", "locate", str(_rounds_csv(tmp_path))])
    assert ok.exit_code == 0 and len(_pulses(ok.stdout)) == 3
    bad = _rounds_csv(tmp_path, (500.0, 0.0, 0.0), "moved.csv")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(bad)])
    assert r.exit_code == 2 and r.stdout == ""
    assert "sensor 'S00' is at two places 500 m apart" in r.stderr
    assert "line 2 (x " in r.stderr and "line 14 (x " in r.stderr and "another sensor_id" in r.stderr


def test_locate_keeps_gps_jitter(tmp_path: Path) -> None:
    """Per-clip GPS jitter (real data: up to ~30 m horizontally, ~35 m in height) is accepted."""
    r = CliRunner().invoke(app, ["acoustic", "locate", str(_rounds_csv(tmp_path, (20.0, 0.0, 35.0)))])
    assert r.exit_code == 0, r.stderr
    assert len(_pulses(r.stdout)) == 3
    r = CliRunner().invoke(app, ["acoustic", "locate", str(_rounds_csv(tmp_path, (-60.0, 70.0, 0.0)))])
    assert r.exit_code == 0 and "two places" not in r.stderr  # 92 m: still one place


def test_far_pair_finds_a_pair_the_first_row_does_not_see(tmp_path: Path) -> None:
    """Rows all within 100 m of the first, but two 160 m apart: still two places."""
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc"]
    for k, (x, y) in enumerate([(0.0, 0.0), (80.0, 0.0), (-80.0, 0.0), (0.0, 10.0)]):
        lines.append(f"S1,{x},{y},0,{_iso(T0 + k)}")
    path = tmp_path / "ring.csv"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 2 and "160 m apart" in r.stderr and "line 3" in r.stderr and "line 4" in r.stderr


# -- 4. non-finite options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--threshold-db", "nan"], "--threshold-db"),
        (["--threshold-db", "inf"], "--threshold-db"),
        (["--threshold-db", "-5"], "--threshold-db"),
        (["--threshold-db", "200"], "--threshold-db"),
        (["--x", "inf", "--y", "0", "--z", "0"], "--x"),
        (["--x", "0", "--y", "nan", "--z", "0"], "--y"),
        (["--x", "0", "--y", "0", "--z", "-inf"], "--z"),
    ],
)
def test_detect_refuses_non_finite_options(tmp_path: Path, args: list[str], option: str) -> None:
    clip = tmp_path / "c.flac"
    sf.write(clip, _clip(), RATE, subtype="PCM_16")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip), *args])
    assert r.exit_code == 2 and r.stdout == "" and option in r.stderr


def test_detect_takes_a_threshold_in_range(tmp_path: Path) -> None:
    clip = tmp_path / "c.flac"
    sf.write(clip, _clip(), RATE, subtype="PCM_16")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip), "--threshold-db", "10"])
    assert r.exit_code == 0 and len(_pulses(r.stdout)) == 1
    with pytest.raises(AudioError, match="finite"):
        OnsetDetector(RATE, threshold_db=math.nan)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "61"])
def test_locate_refuses_a_bad_temperature(tmp_path: Path, value: str) -> None:
    path = _rounds_csv(tmp_path)
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path), "--temperature-c", value])
    assert r.exit_code == 2 and r.stdout == "" and "--temperature-c" in r.stderr
    if value != "61":
        assert "not a finite number" in r.stderr


# -- 5. sibling JSON --------------------------------------------------------------------------------


def _with_json(tmp_path: Path, meta: dict[str, object] | str, name: str = "clip") -> Path:
    clip = tmp_path / f"{name}.flac"
    sf.write(clip, _clip(), RATE, subtype="PCM_16")
    text = meta if isinstance(meta, str) else json.dumps(meta)
    clip.with_suffix(".json").write_bytes(text.encode("utf-8"))
    return clip


def test_sibling_json_with_a_bom_and_an_epoch_timestamp(tmp_path: Path) -> None:
    meta = {"serial_number": "S1", "timestamp": 1545180566.0, "location": {"x": 1, "y": 2, "z": 3}}
    clip = _with_json(tmp_path, "\ufeff" + json.dumps(meta))
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip)])
    assert r.exit_code == 0, r.stderr
    (p,) = _pulses(r.stdout)
    start = datetime(2018, 12, 19, 0, 49, 26, tzinfo=UTC)
    assert abs((parse_utc(str(p["arrival_utc"])) - start).total_seconds() - 1.0) * 1000 < TIMING_TOL_MS
    assert (p["sensor_id"], p["x_m"], p["y_m"], p["z_m"]) == ("S1", 1.0, 2.0, 3.0)
    assert "warning" not in r.stderr


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"location": {"x": True, "y": 2, "z": 3}}, "x=True is not a number"),
        ({"location": [1, 2, 3]}, "location [1, 2, 3] is not an object"),
        ({"timestamp": True}, "timestamp True"),
        ({"timestamp": 1e300}, "timestamp 1e+300"),
    ],
)
def test_sibling_json_bad_values_fail_the_file(tmp_path: Path, meta: dict[str, object], message: str) -> None:
    clip = _with_json(tmp_path, meta)
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip)])
    assert r.exit_code == 2 and r.stdout == "" and message in r.stderr and "clip.json" in r.stderr


def test_incomplete_position_is_warned_about(tmp_path: Path) -> None:
    start = {"timestamp": "2018-12-19T00:49:26Z"}
    no_z = _with_json(tmp_path, {**start, "location": {"x": 1, "y": 2}}, "noz")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(no_z)])
    assert r.exit_code == 0 and "noz.flac" in r.stderr and "no z" in r.stderr
    (p,) = _pulses(r.stdout)
    assert (p["x_m"], p["y_m"], p["z_m"]) == (1.0, 2.0, 0.0)
    r = CliRunner().invoke(app, ["acoustic", "detect", str(no_z), "--z", "7"])  # told: no warning
    assert "warning" not in r.stderr and _pulses(r.stdout)[0]["z_m"] == 7.0
    only_x = _with_json(tmp_path, {**start, "location": {"x": 1}}, "onlyx")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(only_x)])
    assert r.exit_code == 0 and "onlyx.flac" in r.stderr and "incomplete (no y, z)" in r.stderr
    (p,) = _pulses(r.stdout)
    assert "x_m" not in p


# -- 6. messages ------------------------------------------------------------------------------------


def test_directory_and_missing_file_messages(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    r = CliRunner().invoke(app, ["acoustic", "detect", str(folder)])
    assert r.exit_code == 2 and "clips: is a directory, not an audio file" in r.stderr
    missing = tmp_path / "nonexist.wav"
    r = CliRunner().invoke(app, ["acoustic", "classify", str(missing), str(folder)])
    assert r.exit_code == 2
    assert "nonexist.wav: no such audio file" in r.stderr and "System error" not in r.stderr
    assert "clips: is a directory" in r.stderr
