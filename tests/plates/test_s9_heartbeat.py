"""Session 9: plate cameras report their health with heartbeats (``plates watch`` and ``plates video``).

A real center (SQLite, its health monitor with a short offline time) and the real ``rtcc`` command
in a child process, stopped with SIGTERM as a service manager does: the camera goes online from
its heartbeats alone (no upload), says ``recording: false`` while its folder is gone, goes
offline after it stops; a refused key stops it (exit 2, files kept); a center that cannot be
reached is said once and is not fatal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rtcc.roles import DeviceType, Role
from rtcc.store.tables import Device
from tests.conftest import Running, StartCenter
from tests.plates.test_video import _cli, make_video

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])
RTCC = str(Path(sys.executable).parent / "rtcc")


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen([RTCC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def _device(center: Running, device_id: str) -> Device:
    store = center.center.store
    assert store is not None
    row = await store.read(lambda s: s.get(Device, device_id))
    assert row is not None
    return row


async def _until(
    center: Running, device_id: str, ok: Callable[[Device], bool], proc: subprocess.Popen[str] | None = None
) -> Device:
    for _ in range(300):  # 30 s at most
        row = await _device(center, device_id)
        if ok(row):
            return row
        if proc is not None and proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"the agent ended early ({proc.returncode}): {err}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; last row: status={row.status} attributes={row.attributes}")


async def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    return proc.returncode, out, err


def _recording(value: bool) -> Callable[[Device], bool]:
    return lambda d: d.status == "online" and (d.attributes or {}).get("recording") is value


@EMBEDDED
async def test_watch_heartbeats_show_the_camera_online_recording_and_then_offline(
    start_center: StartCenter, tmp_path: Path
) -> None:
    center = await start_center(server={"device_offline_after_s": 8.0})  # offline after 8 s
    key = await center.center.provision_device("lpr-hb", DeviceType.plate_camera, "pole", 41.88, -87.63)
    assert (await _device(center, "lpr-hb")).status != "online"
    folder = tmp_path / "drop"
    folder.mkdir()
    proc = _spawn(
        "plates", "watch", str(folder), "--camera", "lpr-hb", "--center", center.url, "--key", key,
        "--poll", "0.2", "--heartbeat-s", "0.5",
    )  # fmt: skip
    try:
        # online with nothing uploaded: from the heartbeats
        await _until(center, "lpr-hb", _recording(True), proc)
        officer = await _officer(center)
        got = (await officer.get("/api/v1/devices/lpr-hb")).json()
        assert got["status"] == "online" and got["attributes"]["recording"] is True
        folder.rename(tmp_path / "unmounted")  # the share goes away
        await _until(center, "lpr-hb", _recording(False), proc)
        await asyncio.sleep(1.5)  # several scans (every 0.2 s) find it gone
        (tmp_path / "unmounted").rename(folder)  # and comes back
        await _until(center, "lpr-hb", _recording(True), proc)
    finally:
        code, _out, err = await _stop(proc)
    assert code == 0, err  # SIGTERM is a clean stop
    assert err.count("cannot read") == 1 and err.count("readable again") == 1, err
    assert "stopped; done: 0" in err
    # silent from now on: the health monitor takes it offline
    await _until(center, "lpr-hb", lambda d: d.status == "offline")


async def _officer(center: Running) -> Any:
    center.add_user("officer1", Role.officer)
    return await center.login("officer1")


@EMBEDDED
async def test_watch_stops_when_the_center_refuses_the_heartbeat_key(center: Running, tmp_path: Path) -> None:
    key = await center.center.provision_device("lpr-k", DeviceType.plate_camera, "pole", 41.88, -87.63)
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept")
    # an empty folder: nothing is uploaded, only the heartbeat can learn the key is wrong
    proc = _spawn(
        "plates", "watch", str(folder), "--camera", "lpr-k", "--center", center.url,
        "--key", "wrong-" + key[6:], "--poll", "0.2", "--heartbeat-s", "0.5",
    )  # fmt: skip
    try:
        _out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2 and "refused the camera key" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (await _device(center, "lpr-k")).status != "online"


async def test_watch_says_once_that_the_center_is_unreachable_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    proc = _spawn(
        "plates", "watch", str(folder), "--camera", "lpr-u", "--center", "http://127.0.0.1:9",
        "--key", "some-key-0123456789", "--poll", "0.2", "--heartbeat-s", "0.5",
    )  # fmt: skip
    first = ""
    try:
        assert proc.stderr is not None
        # the agent is up once it says so (a loaded machine takes seconds to import it; a SIGTERM
        # before its handler is installed would kill it), then several more heartbeats fail
        first = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 120)
        await asyncio.sleep(3.0)
        assert proc.poll() is None  # not fatal
    finally:
        code, _out, err = await _stop(proc)
    err = first + err
    assert code == 0, err
    assert err.count("center not reachable for heartbeats") == 1, err


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video-hb") / "street.mp4"
    make_video(path)
    return path


@EMBEDDED
async def test_video_to_a_center_brings_the_camera_online(
    video_file: Path, center: Running, tmp_path: Path
) -> None:
    key = await center.center.provision_device("cam-hb", DeviceType.plate_camera, "trailer", 41.88, -87.63)
    args = [
        "plates",
        "video",
        str(video_file),
        "--camera",
        "cam-hb",
        "--heading",
        "0",
        "--heartbeat-s",
        "0.5",
    ]
    printed = await asyncio.to_thread(CliRunner().invoke, _cli(), args)  # print mode: sends nothing
    assert printed.exit_code == 0, printed.output
    assert (await _device(center, "cam-hb")).status != "online"
    args += ["--center", center.url, "--key", key, "--buffer", str(tmp_path / "buf")]
    result = await asyncio.to_thread(CliRunner().invoke, _cli(), args)
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["read"]["plate"] for x in result.stdout.splitlines()] == ["ABC1234", "XYZ987"]
    row = await _device(center, "cam-hb")
    assert row.status == "online" and row.last_seen_at is not None
