"""``rtcc cameras``: list, stats, visible, probe — bad input exits 2, unreachable sources 3."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.store.db import Store
from tests.cameras.conftest import free_port
from tests.cameras.helpers import cli_store

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    camera = {"kind": "city", "name": "Main & 1st", "lat": 33.5186, "lon": -86.8104, "fov_deg": 60.0}
    return cli_store(tmp_path, monkeypatch, **camera, level="integrated")


def test_list_stats_visible(db: Store) -> None:
    r = runner.invoke(app, ["cameras", "list"])
    assert r.exit_code == 0 and "Main" in r.output and "integra" in r.output
    r = runner.invoke(app, ["cameras", "stats"])
    assert r.exit_code == 0 and '"city": 1' in r.output
    r = runner.invoke(
        app, ["cameras", "visible", "--at", "2026-11-01T12:00:00Z", "--", "33.5190", "-86.8104"]
    )
    assert r.exit_code == 0 and "Main & 1st" in r.output and "44.5 m" in r.output
    r = runner.invoke(app, ["cameras", "visible", "--", "33.5180", "-86.8104"])  # behind it
    assert r.exit_code == 0 and "no camera" in r.output
    r = runner.invoke(app, ["cameras", "visible", "--at", "2026-11-01T12:00:00", "--", "33.5", "-86.8"])
    assert r.exit_code == 2 and "timezone" in r.output
    r = runner.invoke(app, ["cameras", "list", "--kind", "drone"])
    assert r.exit_code == 2
    db.close()


def test_probe() -> None:
    r = runner.invoke(app, ["cameras", "probe", "synthetic://demo"])
    assert r.exit_code == 0 and "320x240" in r.output
    r = runner.invoke(app, ["cameras", "probe", f"rtsp://127.0.0.1:{free_port()}/x", "--timeout", "2"])
    assert r.exit_code == 3 and "unreachable" in r.output
    r = runner.invoke(app, ["cameras", "probe", "not-a-url"])
    assert r.exit_code == 2
