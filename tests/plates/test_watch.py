"""The watched folder: images uploaded, filed in done/ or failed/ with a reason, nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.roles import DeviceType
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, jpeg


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


async def _watch(folder: Path, center_url: str, key: str, *extra: str) -> tuple[int, str, str]:
    args = ["plates", "watch", str(folder), "--camera", "lpr-w", "--center", center_url, "--key", key]
    result = await asyncio.to_thread(CliRunner().invoke, _cli(), [*args, "--once", "--poll", "0.05", *extra])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("backend", ["embedded"])
async def test_watch_uploads_and_files_images(center: Running, tmp_path: Path) -> None:
    key = await center.center.provision_device("lpr-w", DeviceType.plate_camera, "folder cam", 41.88, -87.63)
    folder = tmp_path / "drop"
    folder.mkdir()
    good = folder / "car.jpg"
    good.write_bytes(jpeg(cv2.resize(car_with_plate("7KDR582"), (640, 360), interpolation=cv2.INTER_AREA)))
    taken = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    os.utime(good, (taken.timestamp(), taken.timestamp()))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    (folder / "notes.txt").write_text("not an image: left alone")

    # a wrong key: the watcher stops and leaves every file where it is
    code, _, err = await _watch(folder, center.url, "wrong-key-0123456789")
    assert code == 2 and "refused the camera key" in err
    assert good.exists() and (folder / "broken.jpg").exists()

    code, out, err = await _watch(folder, center.url, key, "--lat", "41.9", "--lon", "-87.7")
    assert code == 0, err
    lines = {x["file"]: x for x in map(json.loads, out.splitlines())}
    assert lines["car.jpg"]["outcome"] == "done" and json.loads(lines["car.jpg"]["detail"]) == ["7KDR582"]
    assert lines["broken.jpg"]["outcome"] == "failed" and "422" in lines["broken.jpg"]["detail"]
    listing = sorted(p.name for p in folder.iterdir())
    assert listing == [".rtcc-watch-sent.jsonl", "done", "failed", "notes.txt"]  # + the watcher's memory
    assert (folder / "done" / "car.jpg").is_file()
    reason = (folder / "failed" / "broken.jpg.reason.txt").read_text()
    assert "validation_failed" in reason

    # the read carries the file's time and the given position
    from rtcc.plates.reads import search_reads

    store = center.center.store
    assert store is not None
    [row] = await store.read(lambda s: search_reads(s, plate="7KDR582", mode="exact", limit=5))
    assert row.read_at == taken and (row.lat, row.lon) == (41.9, -87.7)


async def test_watch_keeps_files_when_the_center_is_down(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "car.jpg").write_bytes(jpeg(car_with_plate("ABC1234", size=(320, 240))))
    code, out, err = await _watch(folder, "http://127.0.0.1:9", "some-key-0123456789")
    assert code == 3 and "left to retry: 1" in err
    assert json.loads(out.splitlines()[0])["outcome"] == "retry"
    assert (folder / "car.jpg").is_file()


async def test_watch_refuses_bad_arguments(tmp_path: Path) -> None:
    code, _, err = await _watch(tmp_path / "missing", "http://127.0.0.1:9", "k" * 20)
    assert code == 2 and "not a folder" in err
    code, _, err = await _watch(tmp_path, "http://127.0.0.1:9", "k" * 20, "--lat", "41.0")
    assert code == 2 and "--lon" in err
