"""``rtcc analytics``: odd record and call files, ``hotspots --city all`` and ``evaluate --shift``.

Audit findings (session 14):

* a short (truncated) row in a ShotSpotter file crashed ``evaluate``, ``hotspots`` and
  ``unreported`` with an AttributeError traceback (the missing fields read as None);
* ``hotspots --city all`` crashed with a ValueError traceback;
* a calls/incidents header with a quote that never closes (or a field over the csv module's
  limit) crashed ``unreported`` with a csv.Error traceback;
* ``unreported`` judged the Oakland file's geocoding failures (outside the city box) as incidents;
* a calls header with spaces after the commas (``time, lat, lon``) passed the header check, then
  every row read as empty;
* ``evaluate --shift`` kept ``--min-test`` 20 (docs: 5 for a single shift) and blamed
  ``--fit-months`` when months were skipped for too few incidents.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rtcc.analytics.records import load_city
from rtcc.analytics.unreported import read_calls, read_incidents
from rtcc.cli.main import app
from rtcc.errors import ValidationFailed
from tests.analytics import synth

runner = CliRunner()

SHORT_ROW = {"sf": "Multiple_Gunshots,26869\n", "oakland": "2,LOP0801\n"}
FILES = {"sf": "San_Francisco_ShotSpotter.csv", "oakland": "OakShots_latlong.csv"}


def _clean_exit(r: Any, code: int) -> None:
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)  # a traceback would be exit 1


def _truncated(tmp_path: Path, city: str, months: int = 3) -> Path:
    """A city's record file (no geocoding failures) whose last row is cut short."""
    rows = synth.incidents(months=months, per_month=50)
    path = tmp_path / "jtl" / FILES[city]
    if city == "sf":  # moved west into San Francisco's box
        synth.write_sf(path, [(t, a, o - 0.2) for t, a, o in rows])
    else:
        synth.write_oakland(path, rows, bad=0)
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write(SHORT_ROW[city])
    return path


@pytest.mark.parametrize("city", ["sf", "oakland"])
def test_a_truncated_row_is_dropped_and_counted(tmp_path: Path, city: str) -> None:
    path = _truncated(tmp_path, city)
    inc = load_city(tmp_path, city)
    assert inc.dropped == 1 and len(inc) == 150
    inc, aware = read_incidents(path)
    assert inc.dropped == 1 and len(inc) == 150 and aware is False


@pytest.mark.parametrize("city", ["sf", "oakland"])
def test_cli_on_a_record_file_with_a_truncated_row(tmp_path: Path, city: str) -> None:
    path = _truncated(tmp_path, city, months=17)
    r = runner.invoke(
        app, ["analytics", "evaluate", "--data", str(tmp_path), "--city", city, "--res", "8", "--json"]
    )
    _clean_exit(r, 0)
    assert json.loads(r.stdout)["dropped"] == 1
    r = runner.invoke(app, ["analytics", "hotspots", "--data", str(tmp_path), "--city", city, "--res", "8"])
    _clean_exit(r, 0)
    r = runner.invoke(
        app,
        ["analytics", "unreported", "--incidents", str(path), "--calls", str(_calls_of(tmp_path)), "--json"],
    )
    _clean_exit(r, 0)
    assert json.loads(r.stdout)["skipped_incident_rows"] == 1


def _calls_of(tmp_path: Path, rows: list[tuple[datetime, float, float]] | None = None) -> Path:
    """A calls file with one call at each incident of ``rows`` (default: the generated record)."""
    calls = tmp_path / "calls.csv"
    rows = rows if rows is not None else synth.incidents(months=17, per_month=50)
    header = "time,lat,lon,call_type"
    calls.write_text(
        header + "\n" + "".join(f"{t.isoformat()},{a},{o},shots\n" for t, a, o in rows), encoding="utf-8"
    )
    return calls


def test_hotspots_for_all_cities_is_a_clear_error(tmp_path: Path) -> None:
    _truncated(tmp_path, "sf")
    r = runner.invoke(app, ["analytics", "hotspots", "--data", str(tmp_path), "--city", "all"])
    _clean_exit(r, 2)
    assert "one city" in r.stderr and "--city sf" in r.stderr


@pytest.mark.parametrize(
    "head",
    [
        '"time,lat,lon\n' + "2024-07-04T23:10:00,37.77,-122.42\n" * 10_000,  # a quote that never closes
        "time,lat,lon," + "x" * 200_000 + "\n2024-07-04T23:10:00,37.77,-122.42,\n",  # a huge header field
    ],
    ids=["stray-quote", "huge-field"],
)
def test_an_unreadable_header_is_a_validation_error(tmp_path: Path, head: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(head, encoding="utf-8")
    good = tmp_path / "inc.csv"
    good.write_text("time,lat,lon\n2024-07-04T23:12:00,37.77,-122.42\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="line 1: not readable as CSV"):
        read_calls(bad)
    with pytest.raises(ValidationFailed, match="line 1: not readable as CSV"):
        read_incidents(bad)
    for inc, calls in ((good, bad), (bad, good)):
        r = runner.invoke(app, ["analytics", "unreported", "--incidents", str(inc), "--calls", str(calls)])
        _clean_exit(r, 2)
        assert "not readable as CSV" in r.stderr and "bad.csv" in r.stderr


def test_unreported_drops_positions_outside_the_city_box(tmp_path: Path) -> None:
    rows = synth.incidents(months=2, per_month=20)
    oak = synth.write_oakland(tmp_path / "OakShots_latlong.csv", rows, bad=2)  # lat 30.0, lon -141.2
    inc, _ = read_incidents(oak)
    assert inc.dropped == 2 and len(inc) == 40
    sf = synth.write_sf(tmp_path / "San_Francisco_ShotSpotter.csv", [(t, a, o - 0.2) for t, a, o in rows])
    with sf.open("a", encoding="utf-8", newline="") as fh:
        fh.write("Multiple_Gunshots,9,1-Jan-20,0:01:47,6,,,x,30.0099,-141.218751\n")
    inc, _ = read_incidents(sf)
    assert inc.dropped == 1 and len(inc) == 40
    # every valid incident has a call at its own place and time: none is unreported
    r = runner.invoke(
        app,
        [
            "analytics",
            "unreported",
            "--incidents",
            str(oak),
            "--calls",
            str(_calls_of(tmp_path, rows)),
            "--json",
        ],
    )
    _clean_exit(r, 0)
    got = json.loads(r.stdout)
    assert (got["incidents"], got["unreported"], got["skipped_incident_rows"]) == (40, 0, 2)


def test_a_calls_header_with_spaces_after_the_commas(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text(
        "time, lat, lon, call_type\n"
        "2024-07-04T23:10:00,37.77,-122.42,shots\n"
        "2024-07-04T23:40:00,37.78,-122.41,x\n",
        encoding="utf-8",
    )
    got, aware = read_calls(calls)
    assert len(got) == 2 and got.skipped == [] and got.call_type == ["shots", "x"] and aware is False
    inc = tmp_path / "inc.csv"
    inc.write_text("time , lat,lon\n2024-07-04T23:12:00,37.77,-122.42\n", encoding="utf-8")
    r = runner.invoke(
        app, ["analytics", "unreported", "--incidents", str(inc), "--calls", str(calls), "--json"]
    )
    _clean_exit(r, 0)
    d = json.loads(r.stdout)
    assert (d["judged"], d["reported"], d["calls"], d["skipped_call_rows"]) == (1, 1, 2, 0)


def test_evaluate_one_shift_skips_only_months_under_5(tmp_path: Path) -> None:
    # about a third of 50 incidents a month fall in the day shift: 5–19 test incidents a month
    rows = synth.incidents(months=17, per_month=50)
    synth.write_oakland(tmp_path / "jtl" / "OakShots_latlong.csv", rows)
    args = ["analytics", "evaluate", "--data", str(tmp_path), "--city", "oakland", "--res", "8"]
    args += ["--tune-months", "2", "--shift", "day"]
    r = runner.invoke(app, [*args, "--json"])
    _clean_exit(r, 0)
    ev = json.loads(r.stdout)
    assert ev["city"] == "oakland day shift" and len(ev["test_months"]) >= 2
    assert not any(int(s.split("(")[1].split()[0]) >= 5 for s in ev["skipped_months"])
    # with the all-hours limit every month is too small, and the error says which option to change
    r = runner.invoke(app, [*args, "--min-test", "20"])
    _clean_exit(r, 2)
    assert "--min-test" in r.stderr and "fewer than 20 incidents" in r.stderr
