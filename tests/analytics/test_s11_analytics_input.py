"""``rtcc analytics``: a non-UTF-8 record file or an output folder that is not there, cleanly.

Audit findings (session 11): ``analytics evaluate`` and ``hotspots`` crashed with a
UnicodeDecodeError traceback on a non-UTF-8 record file, and ``hotspots -o /nonexistent/dir/x``
with a FileNotFoundError traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from tests.analytics import synth

runner = CliRunner()


def _latin1(tmp_path: Path, *, at: float) -> Path:
    """Synthetic SF records with a Latin-1 byte ``at`` a share of the file (past the first read block)."""
    rows = synth.incidents(months=17, per_month=50)
    path = synth.write_sf(tmp_path / "jtl" / "San_Francisco_ShotSpotter.csv", rows)
    raw = path.read_bytes()
    cut = raw.index(b"\n", int(len(raw) * at)) + 1
    path.write_bytes(raw[:cut] + b"caf\xe9,\xff\xfe\n" + raw[cut:])
    return tmp_path


@pytest.mark.parametrize("at", [0.0, 0.8])
@pytest.mark.parametrize("command", [["evaluate", "--res", "8"], ["hotspots", "--res", "8"]])
def test_a_non_utf8_record_file_is_a_clear_error(tmp_path: Path, command: list[str], at: float) -> None:
    data = _latin1(tmp_path, at=at)
    r = runner.invoke(app, ["analytics", *command, "--data", str(data), "--city", "sf"])
    assert r.exit_code == 2, r.output  # an uncaught exception would be exit code 1
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "not UTF-8" in r.stderr and "San_Francisco_ShotSpotter.csv" in r.stderr


def test_hotspots_to_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    rows = synth.incidents(months=3, per_month=50)
    synth.write_sf(tmp_path / "jtl" / "San_Francisco_ShotSpotter.csv", rows)
    target = tmp_path / "nonexistent" / "dir" / "x.geojson"
    r = runner.invoke(
        app,
        ["analytics", "hotspots", "--data", str(tmp_path), "--city", "sf", "--res", "8", "-o", str(target)],
    )
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "cannot write" in r.stderr and "x.geojson" in r.stderr


def test_unreported_with_a_bad_byte_past_the_header_block(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    body = "".join(f"2024-07-04T23:{i % 60:02d}:00,37.77,-122.41,shots fired\n" for i in range(2000))
    calls.write_bytes(
        b"time,lat,lon,call_type\n" + body.encode() + b"2024-07-05T00:00:00,37.7,-122.4,caf\xe9\n"
    )
    incidents = tmp_path / "inc.csv"
    incidents.write_text("time,lat,lon\n2024-07-04T23:10:00,37.77,-122.41\n")
    r = runner.invoke(app, ["analytics", "unreported", "--incidents", str(incidents), "--calls", str(calls)])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "UTF-8" in r.stderr
