"""``rtcc acoustic locate``: one row years off, or one absurd coordinate, no longer hides a shot (audit s14).

The locator took its time reference (the earliest arrival) and origin (the mean position) over every
row: a row of 1970 left the solver times of ~1.7e9 s, whose squares keep no microseconds, and one
coordinate of 1e300 m moved the origin out of reach. Now stretches of pulses more than an hour apart
are located separately (each with its own reference and origin) and the CLI skips rows with a
coordinate beyond ±1e7 m, reporting them like other bad rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from rtcc.acoustic.locate import Arrival, locate_all, speed_of_sound
from rtcc.cli.main import app
from tests.acoustic.test_locate import T0, _iso, bang, sensors

HEADER = "sensor_id,x_m,y_m,z_m,arrival_utc,snr_db"
SRC = (120.0, -40.0, 1.5)
YEAR_S = 365.25 * 86400.0


def _shot(seed: int = 14, t0: float = T0, src: tuple[float, float, float] = SRC) -> list[Arrival]:
    rng = np.random.default_rng(seed)
    return bang(sensors(rng, 12), src, t0, speed_of_sound(20.0), rng, 30e-6)


def _csv(tmp_path: Path, arr: list[Arrival], extra: str, at: int = 4) -> Path:
    lines = [HEADER] + [f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},{_iso(a.t_s)},{a.snr_db}" for a in arr]
    lines.insert(at, extra)  # at=4: file line 5
    path = tmp_path / "pulses.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _shots(stdout: str) -> list[dict[str, object]]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def test_a_row_of_1970_does_not_hide_the_shot(tmp_path: Path) -> None:
    arr = _shot()
    a = arr[3]  # the same sensor again, its clock once at the epoch
    path = _csv(tmp_path, arr, f"{a.sensor_id},{a.x_m},{a.y_m},{a.z_m},1970-01-01T00:00:00Z,30.0")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    [shot] = _shots(r.stdout)
    assert math.hypot(float(shot["x_m"]) - SRC[0], float(shot["y_m"]) - SRC[1]) < 3.0  # type: ignore[arg-type]
    assert len(shot["sensors"]) == 12  # type: ignore[arg-type]


def test_a_pulse_years_off_leaves_the_fix_as_it_was() -> None:
    arr = _shot()
    [alone] = locate_all(arr)
    for off in (3600.0 * 2, 30 * 86400.0, 5 * YEAR_S, 54 * YEAR_S):
        stray = replace(arr[3], sensor_id="S99", t_s=arr[0].t_s - off)
        [fix] = locate_all([*arr, stray])
        assert fix.sensors == alone.sensors
        assert abs(fix.t0_s - alone.t0_s) < 1e-6
        assert math.hypot(fix.x_m - alone.x_m, fix.y_m - alone.y_m) < 1e-3


def test_two_shots_years_apart_are_both_located() -> None:
    first, later = _shot(1), _shot(2, t0=T0 + 10 * YEAR_S, src=(-200.0, 80.0, 0.0))
    fixes = locate_all([*first, *later])
    assert len(fixes) == 2
    assert fixes[0].t0_s < fixes[1].t0_s
    assert math.hypot(fixes[0].x_m - SRC[0], fixes[0].y_m - SRC[1]) < 3.0
    assert math.hypot(fixes[1].x_m + 200.0, fixes[1].y_m - 80.0) < 3.0


def test_an_absurd_coordinate_is_a_skipped_row(tmp_path: Path) -> None:
    arr = _shot()
    a = arr[5]
    path = _csv(tmp_path, arr, f"S77,1e300,{a.y_m},{a.z_m},{_iso(a.t_s)},30.0")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 0, r.stderr
    assert "line 5" in r.stderr and "x_m" in r.stderr and "skipped" in r.stderr
    [shot] = _shots(r.stdout)
    assert math.hypot(float(shot["x_m"]) - SRC[0], float(shot["y_m"]) - SRC[1]) < 3.0  # type: ignore[arg-type]
    assert "S77" not in shot["sensors"]  # type: ignore[operator]
    # a UTM-sized frame (northing 4,480 km) is still fine
    utm = [replace(x, x_m=x.x_m + 585_000.0, y_m=x.y_m + 4_480_000.0) for x in arr]
    path = _csv(tmp_path, utm, f"S77,-1e8,0,0,{_iso(a.t_s)},30.0")
    r = CliRunner().invoke(app, ["acoustic", "locate", str(path)])
    assert r.exit_code == 0, r.stderr
    assert "line 5" in r.stderr
    [shot] = _shots(r.stdout)
    assert math.hypot(float(shot["x_m"]) - 585_120.0, float(shot["y_m"]) - 4_479_960.0) < 3.0  # type: ignore[arg-type]
