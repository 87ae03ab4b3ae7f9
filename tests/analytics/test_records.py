"""Reading the ShotSpotter record layouts: times, positions, geocoding failures, hour of the week."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from rtcc.analytics.records import Incidents, incidents_dir, load_city
from rtcc.errors import NotFound, ValidationFailed
from tests.analytics import synth


def test_oakland_layout_drops_geocoding_failures(tmp_path: Path) -> None:
    rows = synth.incidents(months=2, per_month=10)
    synth.write_oakland(tmp_path / "jtl" / "OakShots_latlong.csv", rows, bad=3)
    inc = load_city(tmp_path, "oakland")  # found anywhere under the folder
    assert len(inc) == len(rows) and inc.dropped == 3
    assert inc.t[0] == np.datetime64(rows[0][0].replace(second=0), "s")
    assert inc.lat[0] == pytest.approx(rows[0][1], abs=1e-6)
    assert inc.lon[0] == pytest.approx(rows[0][2], abs=1e-6)
    assert bool(np.all(np.diff(inc.t.astype(np.int64)) >= 0))


def test_sf_layout_with_bom(tmp_path: Path) -> None:
    rows = [(t, lat, lon - 0.2) for t, lat, lon in synth.incidents(months=1, per_month=5)]
    synth.write_sf(tmp_path / "San_Francisco_ShotSpotter.csv", rows)
    inc = load_city(tmp_path, "sf")
    assert len(inc) == 5 and inc.dropped == 0
    assert inc.t[-1] == np.datetime64(rows[-1][0], "s")


def test_missing_folder_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="--data"):
        load_city(tmp_path / "nope", "sf")
    with pytest.raises(NotFound, match=r"San_Francisco_ShotSpotter\.csv"):
        load_city(tmp_path, "sf")
    (tmp_path / "OakShots_latlong.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="missing columns"):
        load_city(tmp_path, "oakland")
    with pytest.raises(ValidationFailed, match="unknown city"):
        load_city(tmp_path, "paris")


def test_incidents_dir_option_env_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RTCC_INCIDENTS_DIR", raising=False)
    assert incidents_dir(None) == Path("../shared/data/incidents")
    monkeypatch.setenv("RTCC_INCIDENTS_DIR", str(tmp_path))
    assert incidents_dir(None) == tmp_path
    assert incidents_dir(tmp_path / "x") == tmp_path / "x"


def test_hour_of_week() -> None:
    # 2024-01-01 was a Monday
    inc = Incidents.build(
        [datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 7, 23, 59), datetime(2024, 1, 3, 13, 0)],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    )
    assert inc.hour_of_week().tolist() == [0, 2 * 24 + 13, 167]
