"""Association and TDOA localization against synthetic ground truth in physical units (seeded).

Scenes: sensors scattered over ~1 km around a shooter, arrivals ``t0 + distance / c`` plus
Gaussian clock jitter of tens of microseconds (a GPS-disciplined sensor clock), times in POSIX
seconds. Tolerances are stated with each test.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rtcc.acoustic.geometry import ellipse_95
from rtcc.acoustic.locate import Arrival, Fix, locate_all, speed_of_sound
from rtcc.cli.main import app

T0 = 1_545_180_569.25
"""2018-12-19T00:49:29.25Z, POSIX seconds."""


def sensors(rng: np.random.Generator, n: int, radius_m: float = 700.0) -> np.ndarray:
    """``n`` sensor positions (m), shape (n, 3), uniform in a disc, heights 0–15 m."""
    r = radius_m * np.sqrt(rng.uniform(0.05, 1.0, n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(0.0, 15.0, n)], axis=1)


def bang(
    pos: np.ndarray,
    src: tuple[float, float, float],
    t0: float,
    c: float,
    rng: np.random.Generator,
    jitter_s: float,
) -> list[Arrival]:
    d = np.linalg.norm(pos - np.array(src), axis=1)
    t = t0 + d / c + rng.normal(0.0, jitter_s, len(pos))
    return [
        Arrival(f"S{i:02d}", float(p[0]), float(p[1]), float(p[2]), float(ti), 20.0)
        for i, (p, ti) in enumerate(zip(pos, t, strict=True))
    ]


def err_m(f: Fix, src: tuple[float, float, float]) -> float:
    return math.hypot(f.x_m - src[0], f.y_m - src[1])


@pytest.mark.parametrize("n", [8, 10, 12])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_shot_jitter_under_1m(n: int, seed: int) -> None:
    """8–12 sensors, 20–60 µs clock jitter: the fix is within 1 m of the shooter."""
    rng = np.random.default_rng(seed)
    c = speed_of_sound(20.0)
    src = (120.0, -80.0, 2.0)
    arr = bang(sensors(rng, n), src, T0, c, rng, rng.uniform(20e-6, 60e-6))
    fixes = locate_all(arr, temperature_c=20.0, min_sensors=6)
    assert len(fixes) == 1
    assert err_m(fixes[0], src) < 1.0
    assert abs(fixes[0].t0_s - T0) < 0.005
    assert fixes[0].quality == "good"
    assert len(fixes[0].sensors) == n


def test_late_nlos_arrival_is_discounted() -> None:
    """One blocked path arriving 5 ms late (≈1.7 m of extra path): still within 2 m."""
    rng = np.random.default_rng(7)
    c = speed_of_sound(20.0)
    src = (-60.0, 200.0, 1.5)
    arr = bang(sensors(rng, 10), src, T0, c, rng, 40e-6)
    arr[3] = Arrival(arr[3].sensor_id, arr[3].x_m, arr[3].y_m, arr[3].z_m, arr[3].t_s + 0.005, 20.0)
    fixes = locate_all(arr, temperature_c=20.0, min_sensors=6)
    assert len(fixes) == 1
    assert err_m(fixes[0], src) < 2.0


def test_three_rounds_with_echoes_and_strays_give_three_fixes() -> None:
    """Automatic fire 0.12 s apart, echoes 20–400 ms late at half the sensors, 15 unrelated
    impulses, all shuffled: exactly three fixes, each within 2 m, in order (default reporting
    threshold: 10 agreeing sensors of the 12)."""
    rng = np.random.default_rng(11)
    c = speed_of_sound(20.0)
    pos = sensors(rng, 12)
    src = (40.0, 150.0, 1.0)
    arr: list[Arrival] = []
    for k in range(3):
        rnd = bang(pos, src, T0 + 0.12 * k, c, rng, 40e-6)
        arr += rnd
        for a in rnd:
            if rng.random() < 0.5:
                arr.append(Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s + rng.uniform(0.02, 0.4), 8.0))
    for _ in range(15):
        i = int(rng.integers(0, len(pos)))
        arr.append(Arrival(f"S{i:02d}", *map(float, pos[i]), T0 + rng.uniform(-1.0, 3.0), 6.0))
    order = rng.permutation(len(arr))
    fixes = locate_all([arr[int(i)] for i in order], temperature_c=20.0)
    assert len(fixes) == 3
    assert all(err_m(f, src) < 2.0 for f in fixes)
    assert [round(f.t0_s - T0, 2) for f in fixes] == [0.0, 0.12, 0.24]


def test_collinear_sensors_are_poor_quality() -> None:
    """Sensors along a street (±2 m): the far side is a mirror image, so the fix is flagged poor."""
    rng = np.random.default_rng(5)
    c = speed_of_sound(20.0)
    n = 10
    pos = np.stack([np.linspace(-500, 500, n), rng.normal(0, 2.0, n), rng.uniform(0, 10, n)], axis=1)
    fixes = locate_all(bang(pos, (80.0, 250.0, 1.0), T0, c, rng, 40e-6), temperature_c=20.0, min_sensors=6)
    assert fixes
    assert all(f.quality == "poor" for f in fixes)


def test_few_sensors_are_poor_quality() -> None:
    """Five sensors can locate a bang, but with nothing to spare: quality poor."""
    rng = np.random.default_rng(6)
    c = speed_of_sound(20.0)
    fixes = locate_all(
        bang(sensors(rng, 5), (0.0, 50.0, 1.0), T0, c, rng, 40e-6), temperature_c=20.0, min_sensors=5
    )
    assert len(fixes) == 1
    assert fixes[0].quality == "poor"


def test_ellipse_covers_truth_95_percent() -> None:
    """Coverage of the statistical 95 % ellipse over 200 seeded trials (10 sensors, 50 µs jitter,
    no model-error term): at least 90 % contain the shooter (binomial 95 % CI of 0.95 at n=200 is
    ±3 %, and sigma is estimated from the residuals)."""
    c = speed_of_sound(20.0)
    inside = 0
    trials = 200
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        src = (float(rng.uniform(-200, 200)), float(rng.uniform(-200, 200)), 1.0)
        fixes = locate_all(
            bang(sensors(rng, 10), src, T0, c, rng, 50e-6),
            temperature_c=20.0,
            min_sensors=6,
            model_error_m=0.0,
        )
        assert len(fixes) == 1
        f = fixes[0]
        a = math.radians(f.ellipse_angle_deg)
        dx, dy = src[0] - f.x_m, src[1] - f.y_m
        along, across = dx * math.sin(a) + dy * math.cos(a), -dx * math.cos(a) + dy * math.sin(a)
        inside += (along / f.ellipse_major_m) ** 2 + (across / f.ellipse_minor_m) ** 2 <= 1.0
    assert inside / trials >= 0.90


def test_ellipse_angle_is_a_bearing() -> None:
    """Major axis north → 0°, east → 90°, north-east → 45°; semi-axes are sqrt(5.991 λ)."""
    major, minor, ang = ellipse_95(np.diag([1.0, 4.0]))
    assert ang == pytest.approx(0.0, abs=1e-9) or ang == pytest.approx(180.0, abs=1e-9)
    assert major == pytest.approx(math.sqrt(5.991 * 4.0), rel=1e-3)
    assert minor == pytest.approx(math.sqrt(5.991 * 1.0), rel=1e-3)
    assert ellipse_95(np.diag([4.0, 1.0]))[2] == pytest.approx(90.0)
    assert ellipse_95(np.array([[2.5, 1.5], [1.5, 2.5]]))[2] == pytest.approx(45.0)


def test_temperature_sets_the_speed_of_sound() -> None:
    """c(0 °C) = 331.3 m/s, c(20 °C) ≈ 343.2 m/s; locating 30 °C data as if it were -10 °C is worse."""
    assert speed_of_sound(0.0) == pytest.approx(331.3)
    assert speed_of_sound(20.0) == pytest.approx(343.2, abs=0.1)
    with pytest.raises(ValueError):
        speed_of_sound(-300.0)
    rng = np.random.default_rng(9)
    src = (150.0, 90.0, 1.0)
    arr = bang(sensors(rng, 10), src, T0, speed_of_sound(30.0), rng, 30e-6)
    right = locate_all(arr, temperature_c=30.0, min_sensors=6)
    wrong = locate_all(arr, temperature_c=-10.0, min_sensors=6)
    assert err_m(right[0], src) < 1.0
    assert not wrong or err_m(wrong[0], src) > err_m(right[0], src) + 1.0


def test_duplicate_reports_are_merged() -> None:
    """A sensor reporting the same pulse twice does not become a second round."""
    rng = np.random.default_rng(4)
    arr = bang(sensors(rng, 10), (0.0, 0.0, 1.0), T0, speed_of_sound(20.0), rng, 30e-6)
    fixes = locate_all(arr + arr[:4], temperature_c=20.0, min_sensors=6)
    assert len(fixes) == 1


def test_default_reporting_needs_ten_sensors_or_eight_loud_ones() -> None:
    """By default a bang heard by fewer than 10 sensors is associated but not reported — unless at
    least 8 heard it and 3 of them loudly (SNR >= 15 dB)."""
    rng = np.random.default_rng(8)
    arr = bang(sensors(rng, 8), (0.0, 0.0, 1.0), T0, speed_of_sound(20.0), rng, 30e-6)
    quiet = [Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s, 6.0) for a in arr]
    assert locate_all(quiet, temperature_c=20.0) == []
    assert len(locate_all(quiet, temperature_c=20.0, min_sensors=8)) == 1
    assert len(locate_all(arr, temperature_c=20.0)) == 1  # 20 dB everywhere: loud
    assert locate_all(arr[:7], temperature_c=20.0) == []


def test_flood_of_unrelated_loud_pulses_gives_no_ghosts() -> None:
    """Issue 6, bad input: 30 sensors, 3 shots 10 s apart buried in 1,000 unrelated pulses (0.55 per
    sensor per second, louder than the shots at random): exactly the 3 shots, each within 0.5 m."""
    rng = np.random.default_rng(3)
    c = speed_of_sound(20.0)
    pos = sensors(rng, 30, radius_m=1000.0)
    src = (100.0, 50.0, 1.0)
    arr: list[Arrival] = []
    for k in range(3):
        arr += bang(pos, src, T0 + 10.0 * k, c, rng, 40e-6)
    for _ in range(1000):
        i = int(rng.integers(0, 30))
        t = T0 + rng.uniform(-5.0, 55.0)
        arr.append(Arrival(f"S{i:02d}", *map(float, pos[i]), t, float(rng.uniform(0.0, 30.0))))
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 3
    assert all(err_m(f, src) < 0.5 for f in fixes)


# --- the command line ----------------------------------------------------------------------------

ISO_US_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_cli_locates_and_reports_a_bad_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    src = (-11450.0, 3650.0, -90.0)
    pos = sensors(rng, 12) + np.array(src)
    arr = bang(pos, src, T0, speed_of_sound(-1.0), rng, 40e-6)
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"]
    lines += [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arr]
    lines.insert(4, "S99,abc,3650,-90,2018-12-19T00:49:30.000000Z,12")  # file line 5
    path = tmp_path / "pulses.csv"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path), "--temperature-c", "-1"])
    assert r.exit_code == 0, r.stderr
    assert "line 5" in r.stderr and "x_m" in r.stderr
    out = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert len(out) == 1
    import json

    shot = json.loads(out[0])
    assert set(shot) == {
        "time_utc",
        "x_m",
        "y_m",
        "z_m",
        "ellipse_major_m",
        "ellipse_minor_m",
        "ellipse_angle_deg",
        "sensors",
    }
    assert ISO_US_Z.match(shot["time_utc"])
    assert math.hypot(shot["x_m"] - src[0], shot["y_m"] - src[1]) < 1.0
    assert 0.0 <= shot["ellipse_angle_deg"] < 180.0
    assert len(shot["sensors"]) == 12


def test_cli_says_why_nothing_was_located_and_takes_a_sparse_array(tmp_path: Path) -> None:
    """Five sensors heard a clean shot: by default nothing is reported, and stderr says why (it used to
    print nothing at all and exit 0); ``--min-sensors 5`` reports it."""
    rng = np.random.default_rng(5)
    src = (120.0, -40.0, 1.5)
    arr = bang(sensors(rng, 5), src, T0, speed_of_sound(20.0), rng, 30e-6)
    lines = ["sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"]
    lines += [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arr]
    path = tmp_path / "five.csv"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 0 and not r.stdout.strip()
    assert "no shot located" in r.stderr and "5 sensor(s)" in r.stderr and "--min-sensors" in r.stderr
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path), "--min-sensors", "5"])
    out = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert r.exit_code == 0 and len(out) == 1
    import json

    shot = json.loads(out[0])
    assert math.hypot(shot["x_m"] - src[0], shot["y_m"] - src[1]) < 3.0  # 5 sensors: height not solved
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path), "--min-sensors", "2"])
    assert r.exit_code == 2  # below what a fix needs: a clear usage error


def test_cli_missing_column_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "pulses.csv"
    path.write_text("sensor_id,x_m,y_m,arrival_utc\nS1,0,0,2018-12-19T00:49:30.000000Z\n")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 2
    assert "z_m" in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_cli_missing_file_and_bad_times_exit_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["acoustic", "locate", str(tmp_path / "nope.csv")])
    assert r.exit_code == 2
    assert "cannot read" in r.stderr
    path = tmp_path / "pulses.csv"
    path.write_text(
        "sensor_id,x_m,y_m,z_m,arrival_utc\nS1,0,0,0,yesterday\nS2,nan,0,0,2018-12-19T00:49:30Z\n"
    )
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 2
    assert "line 2" in r.stderr and "arrival_utc" in r.stderr
    assert "line 3" in r.stderr and "x_m" in r.stderr
