"""Acceptance (issue 3): a car-mounted camera's watched folder tells each picture's GPS place.

Cameras on squad cars send "GPS position and heading for moving cameras" with each image. Through
the watched folder a moving camera writes a sidecar ``<stem>.json`` with the picture's time, lat,
lon and heading; each read carries its own place and the direction of travel, the sidecar moves
with its image, and a bad sidecar files the image in ``failed/`` with the reason (nothing sent).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.plates.watch import SidecarError, read_sidecar
from rtcc.roles import DeviceType
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, jpeg


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def _watch(folder: Path, center_url: str, key: str, *extra: str) -> tuple[int, str, str]:
    args = ["plates", "watch", str(folder), "--camera", "lpr-car", "--center", center_url, "--key", key]
    result = await asyncio.to_thread(CliRunner().invoke, _cli(), [*args, "--once", "--poll", "0.05", *extra])
    return result.exit_code, result.stdout, result.stderr


def test_sidecar_fields_and_errors(tmp_path: Path) -> None:
    side = tmp_path / "a.json"
    assert read_sidecar(side) == (None, {})  # no sidecar: nothing told
    told = {"time": "2026-11-21T12:00:00Z", "lat": 33.5, "lon": -86.8, "heading_deg": 90}
    side.write_text(json.dumps(told))
    at, fields = read_sidecar(side)
    assert at == datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert fields == {"lat": "33.5", "lon": "-86.8", "heading_deg": "90.0"}
    for bad, why in (
        ("[1, 2]", "JSON object"),
        ("{", "readable JSON"),
        ('{"lat": 33.5}', "lat and lon together"),
        ('{"lat": 95, "lon": 0}', "lat must be a number"),
        ('{"lat": "33", "lon": 0}', "lat must be a number"),
        ('{"time": "2026-11-21T12:00:00"}', "time zone"),
        ('{"time": "yesterday"}', "ISO 8601"),
        ('{"speed": 3}', "unknown key"),
    ):
        side.write_text(bad)
        with pytest.raises(SidecarError, match=why):
            read_sidecar(side)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_moving_camera_folder_reads_carry_each_pictures_place(center: Running, tmp_path: Path) -> None:
    key = await center.center.provision_device("lpr-car", DeviceType.plate_camera, "squad car", 41.88, -87.63)
    folder = tmp_path / "drop"
    folder.mkdir()
    small = cv2.resize(car_with_plate("7KDR582"), (640, 360), interpolation=cv2.INTER_AREA)
    taken = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    (folder / "car-1.json").write_text(
        json.dumps({"time": taken.isoformat(), "lat": 41.9001, "lon": -87.7002, "heading_deg": 180.0})
    )
    (folder / "car-1.jpg").write_bytes(jpeg(small))
    (folder / "car-2.json").write_text('{"lat": 41.9}')  # no lon: refused, image not sent
    (folder / "car-2.jpg").write_bytes(jpeg(small))

    code, out, err = await _watch(folder, center.url, key, "--lat", "41.0", "--lon", "-87.0")
    assert code == 0, err
    lines = {x["file"]: x for x in map(json.loads, out.splitlines())}
    assert lines["car-1.jpg"]["outcome"] == "done"
    refused = lines["car-2.jpg"]
    assert refused["outcome"] == "failed" and "lat and lon together" in refused["detail"]
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["car-1.jpg", "car-1.json"]
    assert sorted(p.name for p in (folder / "failed").iterdir()) == [
        "car-2.jpg",
        "car-2.jpg.reason.txt",
        "car-2.json",
    ]

    from rtcc.plates.reads import search_reads

    store = center.center.store
    assert store is not None
    rows = await store.read(lambda s: search_reads(s, plate="7KDR582", mode="exact", limit=5))
    [row] = rows  # the refused picture was never uploaded
    assert row.read_at == taken
    assert (row.lat, row.lon) == (41.9001, -87.7002)  # the sidecar's place, not --lat/--lon
    assert row.heading_deg == 180.0 and row.direction == "S"
