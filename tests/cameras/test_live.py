"""Live view through the center: a real RTSP stream on loopback (FFmpeg encodes, a small relay serves),
one upstream reader shared by every viewer, closed when the last leaves; snapshots; unreachable sources;
edge-triggered health events."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import cv2
import httpx
import numpy as np
import pytest

from rtcc.cameras.processor import build
from rtcc.cameras.rtsp_relay import RtspTestStream
from rtcc.cameras.service import service_of
from rtcc.events import CameraStatus, parse_event
from rtcc.roles import Role
from tests.cameras.conftest import free_port
from tests.cameras.helpers import signed_in
from tests.conftest import StartCenter
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LIVE = {"open_timeout_s": 5.0, "open_retries": 1, "live_fps": 10.0}


@pytest.fixture
async def rtsp() -> AsyncIterator[RtspTestStream]:
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    stream = RtspTestStream(size=(320, 240), fps=10)
    await stream.start()
    try:
        yield stream
    finally:
        await stream.stop()


async def _camera(admin: httpx.AsyncClient, name: str, url: str | None, **extra: Any) -> str:
    body = {"kind": "city", "name": name, "lat": 33.52, "lon": -86.81, "stream_url": url, **extra}
    r = await admin.post("/api/v1/cameras", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class PartReader:
    """Reads the parts of one multipart/x-mixed-replace response.

    It keeps its one body iterator: an abandoned iterator is finalized by the
    garbage collector, which closes the response (the server then sees the
    viewer leave).
    """

    def __init__(self, resp: httpx.Response) -> None:
        self.it = resp.aiter_raw()
        self.buf = b""

    async def _more(self) -> None:
        self.buf += await self.it.__anext__()

    async def read(self, n: int) -> list[tuple[dict[str, str], bytes]]:
        parts: list[tuple[dict[str, str], bytes]] = []
        while len(parts) < n:
            while b"\r\n\r\n" not in self.buf:
                await self._more()
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            assert lines[0] == "--rtccframe", lines
            hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            size = int(hdrs["content-length"])
            while len(self.buf) < size + 2:
                await self._more()
            parts.append((hdrs, self.buf[:size]))
            self.buf = self.buf[size + 2 :]
        return parts


_READERS: weakref.WeakKeyDictionary[httpx.Response, PartReader] = weakref.WeakKeyDictionary()


async def read_parts(resp: httpx.Response, n: int) -> list[tuple[dict[str, str], bytes]]:
    """The next ``n`` parts of ``resp`` (one :class:`PartReader` per response, kept alive)."""
    reader = _READERS.get(resp)
    if reader is None:
        reader = _READERS[resp] = PartReader(resp)
    return await reader.read(n)


def decode(jpeg: bytes) -> np.ndarray[Any, Any]:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


async def test_rtsp_live_view_is_shared_and_closed_with_the_last_viewer(
    start_center: StartCenter, rtsp: RtspTestStream
) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with (
        signed_in(center) as admin,
        signed_in(center, "officer1", Role.officer) as officer,
        signed_in(center, "auditor1", Role.auditor) as auditor,
    ):
        cam = await _camera(admin, "5th Ave & 20th St", rtsp.url)
        url = f"/api/v1/cameras/{cam}/live.mjpeg"
        assert (await auditor.get(url)).status_code == 403
        async with contextlib.AsyncExitStack() as stack:
            r1 = await stack.enter_async_context(officer.stream("GET", url))
            assert r1.status_code == 200
            assert r1.headers["content-type"].startswith("multipart/x-mixed-replace; boundary=rtccframe")
            r2 = await stack.enter_async_context(admin.stream("GET", url))
            assert r2.status_code == 200
            p1, p2 = await read_parts(r1, 3), await read_parts(r2, 3)
            for hdrs, jpeg in p1 + p2:
                assert hdrs["content-type"] == "image/jpeg" and decode(jpeg).shape == (240, 320, 3)
            times = [float(h["x-frame-time"]) for h, _ in p1]
            assert times == sorted(times) and len(set(times)) == 3  # new frames, in order
            # two viewers, one upstream connection
            svc = service_of(center.center.services, center.settings.cameras)
            assert svc.live.streams[UUID(cam)].viewers == 2
            assert rtsp.sessions_total == 1 and len(rtsp.playing) == 1
        # the last viewer left: the reader stops and hangs up
        await eventually(lambda: _true(not svc.live.streams and not rtsp.playing), what="upstream closed")
        audit = (await admin.get("/api/v1/audit", params={"action": "view_camera_live"})).json()["items"]
        assert sorted(a["actor"] for a in audit) == ["admin", "officer1"]

        # a snapshot opens its own short connection
        r = await officer.get(f"/api/v1/cameras/{cam}/snapshot.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert decode(r.content).shape == (240, 320, 3)
        await eventually(lambda: _true(not svc.live.streams and not rtsp.playing), what="snapshot closed")
        assert rtsp.sessions_total == 2


async def _true(v: bool) -> bool:
    return v


async def test_unreachable_and_non_live_cameras(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras={**LIVE, "open_timeout_s": 2.0})
    async with signed_in(center) as admin:
        dead = await _camera(admin, "dead", f"rtsp://127.0.0.1:{free_port()}/cam")
        r = await admin.get(f"/api/v1/cameras/{dead}/live.mjpeg")
        assert r.status_code == 502, r.text
        err = r.json()["error"]
        assert err["code"] == "stream_unreachable" and "rtsp://127.0.0.1" in err["message"]
        r = await admin.get(f"/api/v1/cameras/{dead}/snapshot.jpg")
        assert r.status_code == 502
        audit = (await admin.get("/api/v1/audit", params={"action": "view_camera_live"})).json()["items"]
        assert [a["outcome"] for a in audit] == ["stream_unreachable"]
        # credentials in a source URL never leak into errors
        secret = await _camera(admin, "secret", f"rtsp://user:hunter2@127.0.0.1:{free_port()}/cam")
        r = await admin.get(f"/api/v1/cameras/{secret}/snapshot.jpg")
        assert r.status_code == 502 and "hunter2" not in r.text
        # no live source: 404
        none = await _camera(admin, "no stream", None, level="registered")
        r = await admin.get(f"/api/v1/cameras/{none}/live.mjpeg")
        assert r.status_code == 404 and "no live view" in r.json()["error"]["message"]
        # the demo's synthetic source
        synth = await _camera(admin, "demo", "synthetic://demo?fps=5")
        r = await admin.get(f"/api/v1/cameras/{synth}/snapshot.jpg")
        assert r.status_code == 200 and decode(r.content).shape == (240, 320, 3)


async def test_health_events_are_edge_triggered(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",), cameras={**LIVE, "open_timeout_s": 2.0, "open_retries": 0}
    )
    events: list[CameraStatus] = []
    assert center.center.bus is not None
    await center.center.bus.subscribe(
        "rtcc.events.camera_status", _handler(events), group="test-camera-status"
    )
    async with signed_in(center) as admin:
        cam = await _camera(admin, "flaky", f"rtsp://127.0.0.1:{free_port()}/cam")
        proc = build(center.center)  # not started: rounds are run by hand
        first = await proc.probe_all()
        assert [(e.status, str(e.camera_id)) for e in first] == [("offline", cam)]
        assert "unreachable" in first[0].reason or "answer" in first[0].reason
        assert await proc.probe_all() == []  # still offline: no second event
        r = await admin.patch(f"/api/v1/cameras/{cam}", json={"stream_url": "synthetic://flaky"})
        assert r.status_code == 200
        back = await proc.probe_all()
        assert [e.status for e in back] == ["online"]
        assert await proc.probe_all() == []
        assert (await admin.get(f"/api/v1/cameras/{cam}")).json()["online"] is True
        await eventually(lambda: _true(len(events) == 2), what="two camera_status events on the bus")
        assert [e.status for e in events] == ["offline", "online"]
        await proc.service.live.close()


def _handler(events: list[CameraStatus]) -> Any:
    async def handle(subject: str, data: bytes) -> None:
        ev = parse_event(data)
        assert isinstance(ev, CameraStatus)
        events.append(ev)

    return handle


async def test_center_stops_while_someone_watches(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder", "cameras"), cameras=LIVE)
    async with signed_in(center) as admin:
        cam = await _camera(admin, "demo", "synthetic://demo?fps=10")
        async with admin.stream("GET", f"/api/v1/cameras/{cam}/live.mjpeg") as r:
            assert r.status_code == 200
            await read_parts(r, 2)
            # generous bound: stopping must not wait for the viewer to hang up
            await asyncio.wait_for(center.center.stop(), 60)


@pytest.fixture
def silent_server() -> Any:
    """A TCP port that accepts connections and never says a word (a hung camera)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conns.append(srv.accept()[0])

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


async def test_silent_source_times_out_and_viewers_are_capped(
    start_center: StartCenter, silent_server: int
) -> None:
    center = await start_center(
        processors=("recorder",),
        cameras={**LIVE, "open_timeout_s": 1.0, "open_retries": 1, "max_viewers_per_camera": 1},
    )
    async with signed_in(center) as admin:
        hung = await _camera(admin, "hung", f"rtsp://127.0.0.1:{silent_server}/cam")
        r = await admin.get(f"/api/v1/cameras/{hung}/snapshot.jpg")
        assert r.status_code == 504, r.text
        assert r.json()["error"]["code"] == "stream_timeout"
        assert "cameras.open_timeout_s" in r.json()["error"]["message"]
        demo = await _camera(admin, "demo", "synthetic://demo?fps=10")
        async with admin.stream("GET", f"/api/v1/cameras/{demo}/live.mjpeg") as first:
            assert first.status_code == 200
            await read_parts(first, 1)
            second = await admin.get(f"/api/v1/cameras/{demo}/live.mjpeg")
            assert second.status_code == 429 and "cameras.max_viewers_per_camera" in second.text
            # a snapshot takes the running stream's frame: no extra viewer, no extra upstream
            snap = await admin.get(f"/api/v1/cameras/{demo}/snapshot.jpg")
            assert snap.status_code == 200 and decode(snap.content).shape == (240, 320, 3)
