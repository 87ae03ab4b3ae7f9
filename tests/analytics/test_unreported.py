"""Unreported gunfire: matching incidents to 911/CAD calls by distance and time; malformed call files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.analytics.records import Incidents
from rtcc.analytics.unreported import Calls, read_calls, read_incidents, unreported_share
from rtcc.cli.main import app
from rtcc.errors import ValidationFailed
from tests.analytics import synth

runner = CliRunner()
T0 = datetime(2024, 7, 4, 22, 0)
A = synth.HOT_A


def _calls(rows: list[tuple[datetime, float, float, str]]) -> Calls:
    import numpy as np

    return Calls(
        np.array([r[0] for r in rows], dtype="datetime64[s]"),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        [r[3] for r in rows],
    )


def test_distance_and_time_limits() -> None:
    inc = Incidents.build(
        [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=3)],
        [A[0]] * 4,
        [A[1]] * 4,
    )
    calls = _calls(
        [
            (T0 + timedelta(minutes=5), *synth.offset(*A, 100.0, 0.0), "shots fired"),  # reports #1
            (T0 + timedelta(hours=1, minutes=3), *synth.offset(*A, 0.0, 400.0), "shots fired"),  # too far
            (T0 + timedelta(hours=2, minutes=30), *A, "shots fired"),  # too late
            (T0 + timedelta(hours=3, minutes=-10), *synth.offset(*A, -200.0, 0.0), "noise"),  # other type
        ]
    )
    res = unreported_share(inc, calls, radius_m=250, window_min=15)
    assert (res.judged, res.reported, res.unreported) == (4, 2, 2)  # #1 and #4 (any call type)
    assert res.share_unreported == 0.5
    only = unreported_share(inc, calls, radius_m=250, window_min=15, call_types=["Shots Fired"])
    # the last "shots fired" call ends 15 min after T0+2h30: #4 lies outside the calls' period
    assert (only.reported, only.unreported, only.outside_coverage, only.calls_used) == (1, 2, 1, 3)
    wide = unreported_share(inc, calls, radius_m=500, window_min=45)
    assert wide.reported == 4 and wide.share_unreported == 0.0
    with pytest.raises(ValidationFailed):
        unreported_share(inc, calls, radius_m=0)


def test_incidents_outside_the_calls_period_are_not_judged() -> None:
    inc = Incidents.build([T0 - timedelta(days=10), T0], [A[0]] * 2, [A[1]] * 2)
    res = unreported_share(inc, _calls([(T0 + timedelta(minutes=1), *A, "x")]), window_min=15)
    assert (res.judged, res.outside_coverage, res.reported) == (1, 1, 1)
    none = unreported_share(inc, _calls([]))
    assert none.share_unreported is None and none.outside_coverage == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_call_rows_are_named_by_line(tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "cad.csv",
        "time,lat,lon,call_type\n"
        "2024-07-04T22:05:00,37.76,-122.18,shots fired\n"
        "yesterday,37.76,-122.18,shots fired\n"
        "2024-07-04T22:06:00,north,-122.18,shots fired\n"
        "2024-07-04T22:07:00,97.5,-122.18,shots fired\n"
        "2024-07-04T22:08:00,37.76\n",
    )
    with pytest.raises(ValidationFailed) as info:
        read_calls(bad)
    msg = info.value.message
    assert "4 malformed call row(s)" in msg
    for line, why in ((3, "bad time"), (4, "bad lat/lon"), (5, "out of range"), (6, "")):
        assert f"line {line}:" in msg and why in msg
    calls, aware = read_calls(bad, skip_bad=True)
    assert len(calls) == 1 and len(calls.skipped) == 4 and aware is False
    with pytest.raises(ValidationFailed, match="missing lat"):
        read_calls(_write(tmp_path / "x.csv", "time,latitude,lon\n"))
    with pytest.raises(ValidationFailed, match="one clock"):
        read_calls(
            _write(tmp_path / "m.csv", "time,lat,lon\n2024-07-04T22:00:00Z,1,1\n2024-07-04T22:00:00,1,1\n")
        )


def test_cli_unreported(tmp_path: Path) -> None:
    inc = _write(
        tmp_path / "inc.csv",
        "time,lat,lon\n2024-07-04T22:00:00-07:00,37.76,-122.18\n2024-07-04T23:00:00-07:00,37.76,-122.18\n",
    )
    cad = _write(
        tmp_path / "cad.csv",
        "time,lat,lon,call_type\n2024-07-05T05:04:00Z,37.7605,-122.1801,shots fired\n"
        "2024-07-05T07:00:00Z,37.7605,-122.1801,shots fired\n",
    )
    r = runner.invoke(
        app, ["analytics", "unreported", "--incidents", str(inc), "--calls", str(cad), "--json"]
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["judged"], got["reported"], got["share_unreported"]) == (2, 1, 0.5)

    broken = _write(tmp_path / "broken.csv", "time,lat,lon\n2024-07-05T05:04:00Z,37.76,oops\n")
    r = runner.invoke(app, ["analytics", "unreported", "--incidents", str(inc), "--calls", str(broken)])
    assert r.exit_code == 2 and "line 2" in r.stderr and "--skip-bad" in r.stderr
    local = _write(tmp_path / "local.csv", "time,lat,lon\n2024-07-04T22:01:00,37.76,-122.18\n")
    r = runner.invoke(app, ["analytics", "unreported", "--incidents", str(inc), "--calls", str(local)])
    assert r.exit_code == 2 and "same clock" in r.stderr
    r = runner.invoke(
        app, ["analytics", "unreported", "--incidents", str(tmp_path / "no.csv"), "--calls", str(cad)]
    )
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_shotspotter_file_as_incidents(tmp_path: Path) -> None:
    rows = synth.incidents(months=1, per_month=5)
    path = synth.write_oakland(tmp_path / "OakShots_latlong.csv", rows, bad=0)
    inc, aware = read_incidents(path)
    assert len(inc) == 5 and aware is False
