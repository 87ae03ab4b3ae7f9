"""Session 9: a live stream in a moving car takes its position from gpsd (``plates video --gpsd``).

A real RTSP server, a real TCP server speaking gpsd's JSON lines (``?WATCH``, then a ``TPV``
report five times a second of a car driving north at 0.0001° a second), the real center and
the real ``rtcc`` command: the read of a car seen on the stream carries the gpsd position at its
best frame's time, and the camera's heartbeat moves the device to where gpsd says it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cameras.rtsp_relay import RtspTestStream
from rtcc.plates.gps_live import GpsdTrack
from rtcc.plates.reads import search_reads
from rtcc.roles import DeviceType
from rtcc.store.tables import Device
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate
from tests.plates.test_s9_rtsp_reconnect import SIZE, Feeder, _small
from tests.plates.test_video import _cli

RTCC = str(Path(sys.executable).parent / "rtcc")
LAT0, LON0, RATE = 41.9, -87.65, 0.0001  # north at ~11 m/s


class Gpsd:
    """gpsd's JSON protocol over TCP: after ``?WATCH`` a TPV report every 0.2 s, time = now."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(0.2)
        self.port = int(self.srv.getsockname()[1])
        self.watched = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def lat_at(self, t: float) -> float:
        return LAT0 + RATE * (t - self.t0)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                if b"?WATCH" in conn.recv(1024):
                    self.watched.set()
                conn.sendall(b'{"class":"VERSION","release":"3.25","proto_major":3,"proto_minor":15}\n')
                while not self._stop.is_set():
                    now = time.time()
                    tpv = {
                        "class": "TPV",
                        "mode": 3,
                        "time": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
                        "lat": self.lat_at(now),
                        "lon": LON0,
                        "track": 0.0,
                        "speed": 11.1,
                    }
                    conn.sendall((json.dumps(tpv) + "\n").encode())
                    time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.srv.close()


def test_gpsd_reports_become_a_rolling_track() -> None:
    gpsd = Gpsd()
    track = GpsdTrack(f"127.0.0.1:{gpsd.port}", keep_s=2.0)
    track.start()
    try:
        deadline = time.monotonic() + 10
        while len(track) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(track) >= 4 and gpsd.watched.is_set()
        time.sleep(3.0)
        assert len(track) <= 12  # only the last 2 s are kept (a report every 0.2 s)
        when = datetime.now(UTC) - timedelta(seconds=0.5)  # between two reports: interpolated
        at = track.at(when, max_gap_s=1.0)
        assert at is not None and at.heading_deg == 0.0 and at.lon == LON0
        assert at.lat == pytest.approx(gpsd.lat_at(when.timestamp()), abs=RATE * 0.01)
        assert track.quality == "gps"  # the sensor clock's handling: the time reports count too
    finally:
        track.stop()
        gpsd.close()


def test_gpsd_is_for_live_streams(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00")
    r = CliRunner().invoke(
        _cli(), ["plates", "video", str(video), "--camera", "c", "--gpsd", "127.0.0.1:2947"]
    )
    assert r.exit_code == 2 and "--gpsd is for a live rtsp:// stream" in r.stderr
    r = CliRunner().invoke(_cli(), ["plates", "video", "rtsp://cam/x", "--camera", "c", "--gpsd", "gpsd"])
    assert r.exit_code == 2 and "is not HOST:PORT" in r.stderr


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_live_pass_is_placed_by_gpsd(center: Running, tmp_path: Path) -> None:
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    key = await center.center.provision_device("car-g", DeviceType.plate_camera, "patrol car", 41.0, -87.0)
    store = center.center.store
    assert store is not None
    gpsd = Gpsd()
    rtsp = RtspTestStream(size=SIZE, fps=10, source="pipe", path="car")
    url = await rtsp.start()
    feeder = Feeder(rtsp)
    feeder.start()
    proc = subprocess.Popen(
        [
            RTCC, "plates", "video", url, "--camera", "car-g", "--center", center.url, "--key", key,
            "--buffer", str(tmp_path / "buf"), "--every-n", "2", "--gpsd", f"127.0.0.1:{gpsd.port}",
            "--heartbeat-s", "0.5",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    err = ""
    try:
        deadline = time.monotonic() + 90
        while not rtsp.playing:
            assert proc.poll() is None and time.monotonic() < deadline, "the agent never played the stream"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # past a key frame
        await feeder.show(
            [_small(car_with_plate("7KDR582", seed=k, shift=(-200 + 40 * k, 0))) for k in range(8)]
        )
        rows = []
        while not rows:
            assert proc.poll() is None and time.monotonic() < deadline, "the pass never reached the center"
            await feeder.show([feeder.road[0]] * 5)  # the pass ends
            rows = await store.read(lambda s: search_reads(s, plate="7KDR582", mode="exact", limit=5))
        [row] = rows
        # the gpsd position at the read's own time (its best frame), heading north
        assert row.lat == pytest.approx(gpsd.lat_at(row.read_at.timestamp()), abs=RATE * 0.05)
        assert row.lon == pytest.approx(LON0) and row.direction == "N"
        # the heartbeat moved the camera to where gpsd says it is (it was registered at 41.0, -87.0)
        dev = await store.read(lambda s: s.get(Device, "car-g"))
        assert dev is not None and dev.status == "online"
        assert dev.lat == pytest.approx(gpsd.lat_at(time.time()), abs=RATE * 20) and dev.lon == pytest.approx(
            LON0
        )
        assert (dev.attributes or {}).get("gps_lock") is True and dev.heading_deg == 0.0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            _out, err = await asyncio.to_thread(proc.communicate, timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        await feeder.stop()
        await rtsp.stop()
        gpsd.close()
    assert proc.returncode == 0, err
