"""``rtcc analytics evaluate`` and ``hotspots`` on generated record files; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from tests.analytics import synth

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = synth.incidents(months=17, per_month=50)
    synth.write_oakland(tmp_path / "jtl" / "OakShots_latlong.csv", rows)
    synth.write_sf(tmp_path / "jtl" / "San_Francisco_ShotSpotter.csv", [(t, a, o - 0.2) for t, a, o in rows])
    return tmp_path


def test_evaluate_json_and_table(data: Path) -> None:
    r = runner.invoke(
        app,
        [
            "analytics",
            "evaluate",
            "--data",
            str(data),
            "--city",
            "oakland",
            "--res",
            "8",
            "--tune-months",
            "2",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    assert ev["city"] == "oakland" and ev["dropped"] == 2 and ev["tuning_months"] == ["2021-01", "2021-02"]
    assert set(ev["methods"]) == {"naive", "counts", "recency", "kde", "gi_star"}
    assert ev["methods"]["kde"]["per_share"]["5%"]["pai_mean"] > 5
    assert 0 <= ev["methods"]["kde"]["per_share"]["5%"]["p_vs_naive"] <= 1
    r = runner.invoke(app, ["analytics", "evaluate", "--data", str(data), "--res", "8", "--tune-months", "2"])
    assert r.exit_code == 0, r.output
    assert (
        "±naive" in r.stdout and "5% of the area" in r.stdout and "sf:" in r.stdout and "oakland:" in r.stdout
    )


def test_evaluate_env_var_and_bad_input(data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTCC_INCIDENTS_DIR", str(tmp_path / "missing"))
    r = runner.invoke(app, ["analytics", "evaluate", "--city", "sf"])
    assert r.exit_code == 2 and "RTCC_INCIDENTS_DIR" in r.stderr
    r = runner.invoke(app, ["analytics", "evaluate", "--data", str(data), "--city", "paris"])
    assert r.exit_code == 2 and "unknown city" in r.stderr
    r = runner.invoke(app, ["analytics", "evaluate", "--data", str(data), "--shares", "1,150"])
    assert r.exit_code == 2 and "between 0 and 100" in r.stderr
    r = runner.invoke(
        app, ["analytics", "evaluate", "--data", str(data), "--city", "sf", "--fit-months", "16"]
    )
    assert r.exit_code == 2 and "usable test months" in r.stderr


def test_hotspots_command_writes_geojson(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "night.geojson"
    r = runner.invoke(
        app,
        [
            "analytics",
            "hotspots",
            "--data",
            str(data),
            "--city",
            "oakland",
            "--shift",
            "night",
            "-k",
            "3",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    geo = json.loads(out.read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 3
    r = runner.invoke(app, ["analytics", "hotspots", "--data", str(data), "--city", "oakland"])
    assert r.exit_code == 0 and "hot" in r.stdout
