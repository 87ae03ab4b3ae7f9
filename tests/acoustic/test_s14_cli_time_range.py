"""``rtcc acoustic locate|detect`` with times beyond datetime's range (audit s14).

``0001-01-01T00:00:00+01:00`` and ``9999-12-31T23:59:59-01:00`` parse but have no UTC equivalent in
years 1–9999; a start time at the very end of year 9999 puts the file's later pulses past it. Each
used to end in a traceback (``OverflowError``), and ``detect`` skipped the remaining files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from rtcc.acoustic.locate import speed_of_sound
from rtcc.cli import acoustic_detect, acoustic_locate
from rtcc.cli.main import app
from tests.acoustic.test_detect import friedlander, in_noise
from tests.acoustic.test_locate import T0, _iso, bang, sensors

RATE = 12000
HEADER = "sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"


def _shot_csv(tmp_path: Path, bad_time: str) -> tuple[Path, tuple[float, float, float]]:
    """A clean shot heard by 12 sensors, plus one row (file line 5) with ``bad_time``."""
    rng = np.random.default_rng(14)
    src = (120.0, -40.0, 1.5)
    arr = bang(sensors(rng, 12), src, T0, speed_of_sound(20.0), rng, 30e-6)
    lines = [HEADER] + [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arr]
    lines.insert(4, f"S77,10,20,5,{bad_time},20")
    path = tmp_path / "pulses.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, src


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_utc_refuses_a_time_out_of_range_as_a_value_error(when: str) -> None:
    with pytest.raises(ValueError, match="out of the supported date range"):
        acoustic_locate.parse_utc(when)
    with pytest.raises(ValueError, match="out of the supported date range"):
        acoustic_detect.parse_utc(when)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_locate_skips_an_out_of_range_row_and_locates_the_shot(tmp_path: Path, when: str) -> None:
    path, src = _shot_csv(tmp_path, when)
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    _clean(r)
    assert r.exit_code == 0, r.stderr
    assert "line 5" in r.stderr and "out of the supported date range" in r.stderr
    out = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert len(out) == 1
    assert math.hypot(out[0]["x_m"] - src[0], out[0]["y_m"] - src[1]) < 3.0
    assert "S77" not in out[0]["sensors"]


def test_locate_with_only_out_of_range_rows_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "pulses.csv"
    path.write_text(
        f"{HEADER}\nS1,0,0,0,0001-01-01T00:00:00+14:00,20\nS2,5,0,0,9999-12-31T23:59:59-14:00,20\n"
    )
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    _clean(r)
    assert r.exit_code == 2
    assert "no usable pulse rows" in r.stderr


def _clip(path: Path) -> Path:
    """Two impulses (0.8 s and 1.9 s into a 3 s clip) in noise."""
    audio = in_noise(RATE, friedlander(RATE, [0.8, 1.9], 3.0), 25.0, np.random.default_rng(3))
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


def _pulses(stdout: str) -> list[dict[str, object]]:
    return [json.loads(s) for s in stdout.splitlines() if s.startswith("{")]


def _clean(r: object) -> None:
    exc = getattr(r, "exception", None)
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    assert "Traceback" not in getattr(r, "stdout", "") + getattr(r, "stderr", "")


def test_detect_start_utc_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "bang.wav")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(clip), "--start-utc", "0001-01-01T00:00:00+14:00"])
    _clean(r)
    assert r.exit_code == 2
    assert "--start-utc" in r.stderr and "out of the supported date range" in r.stderr


def test_detect_pulses_past_year_9999_fail_that_file_only(tmp_path: Path) -> None:
    late = _clip(tmp_path / "late.wav")
    good = _clip(tmp_path / "good.wav")
    (tmp_path / "good.json").write_text(json.dumps({"sensor_id": "g1", "timestamp": "2024-05-01T12:00:00Z"}))
    r = CliRunner().invoke(
        app, ["acoustic", "detect", str(late), str(good), "--start-utc", "9999-12-31T23:59:59Z"]
    )
    _clean(r)
    assert r.exit_code == 2
    assert "late.wav" in r.stderr and "year 9999" in r.stderr
    # --start-utc overrides the sidecar for both files: both fail, neither with a traceback
    assert "2 of 2 file(s) failed" in r.stderr


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59Z", 253402300799.5])
def test_detect_sidecar_time_at_the_end_of_year_9999_fails_that_file_only(
    tmp_path: Path, timestamp: object
) -> None:
    late = _clip(tmp_path / "late.wav")
    (tmp_path / "late.json").write_text(json.dumps({"sensor_id": "s1", "timestamp": timestamp}))
    good = _clip(tmp_path / "good.wav")
    (tmp_path / "good.json").write_text(json.dumps({"sensor_id": "g1", "timestamp": "2024-05-01T12:00:00Z"}))
    r = CliRunner().invoke(app, ["acoustic", "detect", str(late), str(good)])
    _clean(r)
    assert r.exit_code == 2
    assert "late.wav" in r.stderr and "1 of 2 file(s) failed" in r.stderr
    pulses = _pulses(r.stdout)
    assert pulses and {p["sensor_id"] for p in pulses} == {"g1"}  # the second file is still processed
    assert all(str(p["arrival_utc"]).startswith("2024-05-01T12:00:0") for p in pulses)


def test_detect_sidecar_time_out_of_range_names_the_file(tmp_path: Path) -> None:
    bad = _clip(tmp_path / "bad.wav")
    (tmp_path / "bad.json").write_text(json.dumps({"timestamp": "0001-01-01T00:00:00+14:00"}))
    good = _clip(tmp_path / "good.wav")
    r = CliRunner().invoke(app, ["acoustic", "detect", str(bad), str(good), "--sensor-id", "x"])
    _clean(r)
    assert r.exit_code == 2
    assert "bad.json" in r.stderr and "out of the supported date range" in r.stderr
    assert len(_pulses(r.stdout)) == 2  # the good file's two pulses
