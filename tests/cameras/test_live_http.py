"""Live view of HTTP sources: an MJPEG stream (FFmpeg's HTTP server) and a camera that only
serves single JPEG snapshots (polled at the live frame rate)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import pytest

from tests.cameras.conftest import free_port
from tests.cameras.helpers import signed_in
from tests.cameras.test_live import LIVE, _camera, decode, read_parts
from tests.conftest import StartCenter

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


class _Snapshots(BaseHTTPRequestHandler):
    served = 0

    def do_GET(self) -> None:  # http.server calls it by this name
        type(self).served += 1
        img = np.full((120, 160, 3), (type(self).served * 10) % 256, np.uint8)
        ok, buf = cv2.imencode(".jpg", img)
        assert ok
        self.send_response(200)
        self.send_header("content-type", "image/jpeg")
        self.send_header("content-length", str(len(buf)))
        self.end_headers()
        self.wfile.write(buf.tobytes())

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def snapshot_camera() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Snapshots)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/snapshot.jpg"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def mjpeg_camera() -> AsyncIterator[str]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (CI installs it)")
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "quiet", "-nostdin", "-re", "-f", "lavfi",
        "-i", "testsrc=size=320x240:rate=10", "-c:v", "mjpeg", "-q:v", "5",
        "-f", "mpjpeg", "-listen", "1", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.5)  # FFmpeg binds its listening socket
    try:
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def test_http_mjpeg_source(start_center: StartCenter, mjpeg_camera: str) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin:
        cam = await _camera(admin, "mjpeg", mjpeg_camera)
        async with admin.stream("GET", f"/api/v1/cameras/{cam}/live.mjpeg") as r:
            assert r.status_code == 200
            for _, jpeg in await read_parts(r, 3):
                assert decode(jpeg).shape == (240, 320, 3)


async def test_single_jpeg_source_is_polled(start_center: StartCenter, snapshot_camera: str) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin:
        cam = await _camera(admin, "snapshots only", snapshot_camera)
        before = _Snapshots.served
        async with admin.stream("GET", f"/api/v1/cameras/{cam}/live.mjpeg") as r:
            assert r.status_code == 200
            parts = await read_parts(r, 3)
        assert [decode(j).shape for _, j in parts] == [(120, 160, 3)] * 3
        assert len({decode(j)[60, 80, 0] for _, j in parts}) == 3  # three different pictures
        assert _Snapshots.served - before >= 3
        r2 = await admin.get(f"/api/v1/cameras/{cam}/snapshot.jpg")
        assert r2.status_code == 200 and decode(r2.content).shape == (120, 160, 3)
