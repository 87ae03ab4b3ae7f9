"""Per-sensor calibration from test fires (:mod:`rtcc.acoustic.calibration`) and its command line.

Ground truth in physical units: a 12-sensor array whose sensors have known constant time offsets
(a ±12 ms east–west pattern plus ±3 ms) and, for the position model, known survey errors (metres);
test fires at surveyed points.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rtcc.acoustic.calibration import (
    Calibration,
    CalibrationError,
    SensorCorrection,
    SurveyedRound,
    fit_calibration,
)
from rtcc.acoustic.locate import Arrival, locate_all, speed_of_sound
from rtcc.cli.acoustic_locate import fix_json, read_pulses
from rtcc.cli.main import app

TEMP = -1.0
C = speed_of_sound(TEMP)
T0 = 1_545_180_569.0
N_SENSORS = 12
FIRES = [(0.0, 0.0), (250.0, 120.0), (-200.0, 180.0), (60.0, -260.0)]
"""Surveyed test-fire positions (m); the array surrounds them."""


def _array(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensor positions (reported), their time offsets (s, zero mean) and survey errors (m)."""
    rng = np.random.default_rng(seed)
    ang = np.linspace(0.0, 2 * math.pi, N_SENSORS, endpoint=False) + rng.uniform(-0.2, 0.2, N_SENSORS)
    rad = rng.uniform(350.0, 700.0, N_SENSORS)
    pos = np.stack([rad * np.cos(ang), rad * np.sin(ang), rng.uniform(5.0, 25.0, N_SENSORS)], axis=1)
    # a systematic pattern (the eastern sensors late, e.g. one hardware batch) biases a fix; random
    # offsets of a surrounding array mostly average out
    off = 0.012 * np.cos(ang) + rng.uniform(-0.003, 0.003, N_SENSORS)
    off -= off.mean()
    shift = rng.uniform(-6.0, 6.0, (N_SENSORS, 2))
    return pos, off, shift


def _ids() -> list[str]:
    return [f"S{i:02d}" for i in range(N_SENSORS)]


def _round(
    src: tuple[float, float],
    t0: float,
    pos: np.ndarray,
    off: np.ndarray,
    shift: np.ndarray | None,
    rng: np.random.Generator,
) -> list[Arrival]:
    """One bang: arrivals at the *true* sensor positions (reported + shift) plus offsets and 0.2 ms jitter,
    reported with the reported positions."""
    out = []
    for i, sid in enumerate(_ids()):
        true = pos[i].copy()
        if shift is not None:
            true[:2] += shift[i]
        d = math.dist((src[0], src[1], 0.0), tuple(true))
        t = t0 + d / C + off[i] + rng.normal(0.0, 2e-4)
        out.append(Arrival(sid, float(pos[i, 0]), float(pos[i, 1]), float(pos[i, 2]), t, 25.0))
    return out


def _fires(
    pos: np.ndarray, off: np.ndarray, shift: np.ndarray | None, rounds: int = 3
) -> list[SurveyedRound]:
    rng = np.random.default_rng(11)
    out = []
    for k, src in enumerate(FIRES):
        for r in range(rounds):
            arr = _round(src, T0 + 60.0 * k + 1.0 * r, pos, off, shift, rng)
            out.append(SurveyedRound(src[0], src[1], 0.0, tuple(arr)))
    return out


def test_fit_recovers_known_offsets() -> None:
    pos, off, _ = _array()
    cal = fit_calibration(_fires(pos, off, None), temperature_c=TEMP, shrinkage_pulses=0.01)
    got = np.array([cal.sensors[s].offset_s for s in _ids()])
    assert np.max(np.abs((got - got.mean()) - off)) < 3e-4  # 0.3 ms, against offsets up to 15 ms
    assert cal.fitted["residual_rms_before_ms"] > 5.0
    assert cal.fitted["residual_rms_after_ms"] < 0.5
    assert cal.fitted["rounds"] == len(FIRES) * 3


def test_shrinkage_pulls_offsets_toward_zero() -> None:
    pos, off, _ = _array()
    free = fit_calibration(_fires(pos, off, None), temperature_c=TEMP, shrinkage_pulses=0.01)
    shrunk = fit_calibration(_fires(pos, off, None), temperature_c=TEMP, shrinkage_pulses=12.0)
    # 12 pulses per sensor and k = 12: about half the offset
    for s in _ids():
        assert abs(shrunk.sensors[s].offset_s) < abs(free.sensors[s].offset_s) * 0.7 + 2e-4


def test_position_model_recovers_survey_errors() -> None:
    pos, off, shift = _array()
    cal = fit_calibration(
        _fires(pos, off, shift, rounds=4), temperature_c=TEMP, model="offset+position", shrinkage_pulses=0.01
    )
    got = np.array([[cal.sensors[s].dx_m, cal.sensors[s].dy_m] for s in _ids()])
    # fires from four directions: each sensor's 2-D error is seen from several sides
    assert np.median(np.hypot(*(got - shift).T)) < 1.5
    assert cal.fitted["residual_rms_after_ms"] < 1.0


def test_locating_with_the_calibration_removes_the_bias_at_a_new_position() -> None:
    pos, off, _ = _array()
    cal = fit_calibration(_fires(pos, off, None), temperature_c=TEMP)
    src = (120.0, 60.0)  # not one of the test-fire points
    rng = np.random.default_rng(99)
    shots = [_round(src, T0 + 1000.0 + 0.8 * r, pos, off, None, rng) for r in range(2)]
    arrivals = [a for s in shots for a in s]
    raw = locate_all(arrivals, temperature_c=TEMP)
    fixed = locate_all(cal.apply(arrivals), temperature_c=TEMP)
    assert len(raw) == len(fixed) == 2
    err_raw = [math.hypot(f.x_m - src[0], f.y_m - src[1]) for f in raw]
    err_cal = [math.hypot(f.x_m - src[0], f.y_m - src[1]) for f in fixed]
    assert min(err_raw) > 2.0  # the ±12 ms pattern biases the fix by metres
    assert max(err_cal) < 1.0
    assert max(f.residual_rms_s for f in fixed) < 1e-3 < min(f.residual_rms_s for f in raw)


def test_unknown_sensors_are_left_untouched() -> None:
    cal = Calibration({"A": SensorCorrection(offset_s=0.010, dx_m=1.0, dy_m=-2.0)}, model="offset+position")
    a = Arrival("A", 10.0, 20.0, 3.0, 100.0, 12.0, ref="e1")
    b = Arrival("B", 10.0, 20.0, 3.0, 100.0, 12.0, ref="e2")
    got = cal.apply([a, b])
    assert got[1] is b
    assert (got[0].t_s, got[0].x_m, got[0].y_m, got[0].z_m) == pytest.approx((99.99, 11.0, 18.0, 3.0))
    assert got[0].ref == "e1" and got[0].sensor_id == "A"
    assert cal.correct("B", 5.0, (1.0, 2.0, 3.0)) == (5.0, (1.0, 2.0, 3.0))


def test_file_round_trip(tmp_path: Path) -> None:
    pos, off, _ = _array()
    cal = fit_calibration(_fires(pos, off, None), temperature_c=TEMP)
    path = tmp_path / "cal.json"
    cal.save(path)
    back = Calibration.load(path)
    assert set(back.sensors) == set(cal.sensors)
    for s in cal.sensors:
        assert back.sensors[s].offset_s == pytest.approx(cal.sensors[s].offset_s, abs=1e-7)
    assert back.fitted["rounds"] == cal.fitted["rounds"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"format": "other", "version": 1, "sensors": {}}', "'format'"),
        ('{"format": "rtcc-acoustic-calibration", "version": 9, "sensors": {}}', "version"),
        ('{"format": "rtcc-acoustic-calibration", "version": 1, "model": "x", "sensors": {}}', "'model'"),
        ('{"format": "rtcc-acoustic-calibration", "version": 1, "sensors": []}', "'sensors'"),
        (
            '{"format": "rtcc-acoustic-calibration", "version": 1, "sensors": {"A": {}}}',
            "missing 'offset_ms'",
        ),
        (
            '{"format": "rtcc-acoustic-calibration", "version": 1, "sensors": {"A": {"offset_ms": "1"}}}',
            "finite",
        ),
        (
            '{"format": "rtcc-acoustic-calibration", "version": 1, "sensors": {"A": {"offset_ms": 5000}}}',
            "beyond",
        ),
        (
            '{"format": "rtcc-acoustic-calibration", "version": 1,'
            ' "sensors": {"A": {"offset_ms": 1, "dx_m": 900}}}',
            "beyond",
        ),
    ],
)
def test_bad_files_are_rejected_with_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=message):
        Calibration.load(path)


def test_missing_file_is_a_calibration_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "nope.json")


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(CalibrationError, match="no located"):
        fit_calibration([], temperature_c=TEMP)
    pos, off, _ = _array()
    with pytest.raises(CalibrationError, match="shrinkage"):
        fit_calibration(_fires(pos, off, None), shrinkage_pulses=-1.0)


# -- command line ------------------------------------------------------------------------------


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_test_fires(root: Path, pos: np.ndarray, off: np.ndarray) -> None:
    """A folder of test fires in the published live-fire layout (survey + allpulses + weather)."""
    rng = np.random.default_rng(3)
    for k, src in enumerate(FIRES):
        d = root / f"FP{k + 1}" / "test_001"
        d.mkdir(parents=True)
        pulses = []
        for r in range(3):
            for a in _round(src, T0 + 60.0 * k + r, pos, off, None, rng):
                loc = {"x": a.x_m, "y": a.y_m, "z": a.z_m}
                pulses.append(
                    {
                        "serial_number": a.sensor_id,
                        "location": loc,
                        "arrival_time_utc": _iso(a.t_s),
                        "signal_to_noise_dB": 25.0,
                    }
                )
        (d / "test_001.allpulses.json").write_text(json.dumps(pulses))
        survey = {"num_rounds": 3, "survey_location": {"x": src[0], "y": src[1], "z": 0.0}}
        (d / "test_001.survey.json").write_text(json.dumps(survey))
        (d / "test_001.weather.json").write_text(json.dumps({"temperature": TEMP}))


def _pulses_csv(path: Path, arrivals: list[Arrival]) -> None:
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"]
    lines += [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arrivals]
    path.write_text("\n".join(lines) + "\n")


def test_cli_calibrate_from_a_test_fire_folder_then_locate_with_it(tmp_path: Path) -> None:
    pos, off, _ = _array()
    _write_test_fires(tmp_path / "fires", pos, off)
    out = tmp_path / "cal.json"
    r = CliRunner().invoke(app, ["acoustic", "calibrate", str(tmp_path / "fires"), "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["rounds"] == 12 and summary["test_fires"] == 4
    cal = Calibration.load(out)
    got = np.array([cal.sensors[s].offset_s for s in _ids()])
    # default shrinkage k = 3 pulses on 12 pulses per sensor: 12 / 15 of each offset
    assert np.max(np.abs(got - off * 12.0 / 15.0)) < 5e-4

    src = (120.0, 60.0)
    rng = np.random.default_rng(7)
    csv_path = tmp_path / "pulses.csv"
    _pulses_csv(csv_path, _round(src, T0 + 2000.0, pos, off, None, rng))
    args = ["acoustic", "locate", str(csv_path), "--temperature-c", str(TEMP)]
    plain = CliRunner().invoke(app, args)
    calibrated = CliRunner().invoke(app, [*args, "--calibration", str(out)])
    assert plain.exit_code == 0 and calibrated.exit_code == 0, calibrated.stderr
    p, c = json.loads(plain.stdout), json.loads(calibrated.stdout)
    assert (
        math.hypot(c["x_m"] - src[0], c["y_m"] - src[1])
        < 1.5
        < math.hypot(p["x_m"] - src[0], p["y_m"] - src[1])
    )


def test_cli_calibrate_from_pulses_and_shots_csv(tmp_path: Path) -> None:
    pos, off, _ = _array()
    rng = np.random.default_rng(4)
    arrivals: list[Arrival] = []
    shots = ["x_m,y_m,z_m,rounds,start_utc,end_utc"]
    for k, src in enumerate(FIRES):
        t = T0 + 60.0 * k
        for r in range(3):
            arrivals += _round(src, t + r, pos, off, None, rng)
        shots.append(f"{src[0]},{src[1]},0,3,{_iso(t - 1)},{_iso(t + 5)}")
    _pulses_csv(tmp_path / "p.csv", arrivals)
    (tmp_path / "shots.csv").write_text("\n".join(shots) + "\n")
    out = tmp_path / "cal.json"
    r = CliRunner().invoke(
        app,
        [
            "acoustic",
            "calibrate",
            str(tmp_path / "p.csv"),
            "--shots",
            str(tmp_path / "shots.csv"),
            "--out",
            str(out),
            "--temperature-c",
            str(TEMP),
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert Calibration.load(out).fitted["rounds"] == 12


def test_cli_calibrate_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "cal.json")
    r = runner.invoke(app, ["acoustic", "calibrate", str(tmp_path / "nope"), "--out", out])
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = runner.invoke(app, ["acoustic", "calibrate", str(tmp_path), "--out", out])
    assert r.exit_code == 2 and "no test fires" in r.stderr
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("sensor_id,x_m,y_m,z_m,arrival_utc\nA,0,0,0,2018-12-19T00:49:29Z\n")
    r = runner.invoke(app, ["acoustic", "calibrate", str(csv_path), "--out", out])
    assert r.exit_code == 2 and "--shots" in r.stderr
    shots = tmp_path / "s.csv"
    shots.write_text(
        "x_m,y_m,z_m,rounds,start_utc,end_utc\n1,2,3,x,2018-12-19T00:49:29Z,2018-12-19T00:49:39Z\n"
    )
    r = runner.invoke(app, ["acoustic", "calibrate", str(csv_path), "--shots", str(shots), "--out", out])
    assert r.exit_code == 2 and "line 2" in r.stderr
    shots.write_text(
        "x_m,y_m,z_m,rounds,start_utc,end_utc\n1,2,3,1,2018-12-19T00:49:29Z,2018-12-19T00:49:39Z\n"
    )
    r = runner.invoke(app, ["acoustic", "calibrate", str(csv_path), "--shots", str(shots), "--out", out])
    assert r.exit_code == 2 and "no test-fire round" in r.stderr
    assert not Path(out).exists()


def test_cli_locate_rejects_a_bad_calibration_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("sensor_id,x_m,y_m,z_m,arrival_utc\nA,0,0,0,2018-12-19T00:49:29Z\n")
    bad = tmp_path / "cal.json"
    bad.write_text(
        '{"format": "rtcc-acoustic-calibration", "version": 1, "sensors": {"A": {"offset_ms": null}}}'
    )
    r = CliRunner().invoke(app, ["acoustic", "locate", str(csv_path), "--calibration", str(bad)])
    assert r.exit_code == 2
    assert "bad calibration" in r.stderr and "offset_ms" in r.stderr
    assert r.stdout == ""


def test_cli_locate_without_calibration_is_unchanged(tmp_path: Path) -> None:
    """The contract without ``--calibration``: exactly the JSON lines of ``locate_all`` on the rows."""
    pos, off, _ = _array()
    rng = np.random.default_rng(8)
    arrivals = _round((30.0, -40.0), T0, pos, off, None, rng) + _round(
        (30.0, -40.0), T0 + 0.9, pos, off, None, rng
    )
    csv_path = tmp_path / "p.csv"
    _pulses_csv(csv_path, arrivals)
    r = CliRunner().invoke(app, ["acoustic", "locate", str(csv_path), "--temperature-c", str(TEMP)])
    assert r.exit_code == 0, r.stderr
    rows, bad = read_pulses(csv_path)
    assert not bad
    expected = "".join(fix_json(f) + "\n" for f in locate_all(rows, temperature_c=TEMP))
    assert len(expected.splitlines()) == 2
    assert r.stdout == expected


# -- live pipeline ------------------------------------------------------------------------------


async def test_pipeline_applies_the_configured_calibration(tmp_path: Path) -> None:
    """``acoustic.calibration_path``: every pulse of a calibrated sensor is corrected before location."""
    from types import SimpleNamespace

    from rtcc.acoustic.pipeline import _P, AcousticPipeline
    from rtcc.bus.memory import MemoryBus
    from rtcc.metrics import Metrics

    path = tmp_path / "cal.json"
    Calibration({"A": SensorCorrection(offset_s=0.010, dx_m=2.0, dy_m=-1.0)}, model="offset+position").save(
        path
    )
    seen: list[Arrival] = []

    def fake_locate(arrivals: list[Arrival], *, temperature_c: float) -> list[object]:
        seen.extend(arrivals)
        return []

    bus = MemoryBus()
    pipe = AcousticPipeline(
        None,  # type: ignore[arg-type]  # the store is not touched here
        bus,
        Metrics(),
        calibration_path=str(path),
        locate=fake_locate,
        arrival=Arrival,
        classifier=SimpleNamespace(probability=lambda audio, rate: 0.5),
        min_sensors=1,
        members=1,
    )
    loop_future = asyncio.get_running_loop().create_future
    pulses = [
        _P(
            SimpleNamespace(device=sid, snr_db=20.0, event_id=sid),
            1000.0 + k,
            (10.0, 20.0, 3.0),
            0.0,
            loop_future(),
        )
        for k, sid in enumerate(("A", "B"))
    ]
    await bus.start()
    await pipe.start()
    try:
        pipe._locate(pulses)
    finally:
        await pipe.stop()
        await bus.stop()
        for p in pulses:
            p.done.cancel()
    by = {a.sensor_id: a for a in seen}
    assert (by["A"].t_s, by["A"].x_m, by["A"].y_m, by["A"].z_m) == pytest.approx((-0.010, 12.0, 19.0, 3.0))
    assert (by["B"].t_s, by["B"].x_m, by["B"].y_m, by["B"].z_m) == pytest.approx((1.0, 10.0, 20.0, 3.0))


async def test_pipeline_refuses_a_bad_calibration_file(tmp_path: Path) -> None:
    from rtcc.acoustic.pipeline import AcousticPipeline
    from rtcc.bus.memory import MemoryBus
    from rtcc.metrics import Metrics

    path = tmp_path / "cal.json"
    path.write_text('{"format": "something else"}')
    pipe = AcousticPipeline(None, MemoryBus(), Metrics(), calibration_path=str(path))  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="format"):
        await pipe.start()
