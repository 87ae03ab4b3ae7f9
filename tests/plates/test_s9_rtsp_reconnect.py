"""Session 9: ``rtcc plates video rtsp://…`` survives a dropped stream.

A real RTSP server (FFmpeg + the loopback relay of :mod:`rtcc.cameras.rtsp_relay`), a real center
(SQLite) and the real ``rtcc`` command in a child process. The stream drops while a car is in
view and the server stays away for a while: the pass in progress reaches the center, the camera's
heartbeat says ``recording: false`` while the stream is down, the agent reconnects by itself, and a
car read after the reconnect is stamped with the wall-clock time it was in view (the reconnected
stream's own clock restarts at zero). SIGTERM then stops the agent cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from rtcc.cameras.rtsp_relay import RtspTestStream
from rtcc.plates.reads import search_reads
from rtcc.plates.video import Frame, StreamState, live_frames
from rtcc.roles import DeviceType
from rtcc.store.tables import Device
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, road

SIZE = (640, 360)
SLACK = timedelta(seconds=1.0)
"""A read's time is its best frame's: within this of when one of the car's frames was fed."""
RTCC = str(Path(sys.executable).parent / "rtcc")


def _small(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA), dtype=np.uint8)


class Feeder:
    """Feeds the encoder at a steady 10 frames per wall-clock second, as a camera does.

    The encoder stamps frames by their count, so a steady rate keeps the stream's clock on the wall
    clock. Road frames fill the time between the frames :meth:`show` queues.
    """

    def __init__(self, rtsp: RtspTestStream) -> None:
        self.rtsp = rtsp
        self.road = [_small(road(seed=300 + k)) for k in range(10)]
        self.queue: deque[npt.NDArray[np.uint8]] = deque()
        self.shown: list[datetime] = []
        self.paused = False
        """While set, nothing is fed (the camera's encoder hangs: the stream stalls)."""
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        t0, wall0 = time.monotonic(), time.time()
        k = 0
        while True:
            if self.paused:
                await asyncio.sleep(0.05)
                t0, wall0, k = time.monotonic(), time.time(), 0
                continue
            if self.queue:
                # the frame's time on the camera's clock (the encoder counts frames at 10 a second):
                # when it was due, even if a busy test process feeds it a little late
                self.shown.append(datetime.fromtimestamp(wall0 + k / 10, UTC))
                img = self.queue.popleft()
            else:
                img = self.road[k % len(self.road)]
            self.rtsp.write_frame(img)
            await self.rtsp.drain()
            k += 1
            await asyncio.sleep(max(0.0, t0 + k / 10 - time.monotonic()))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def show(self, images: list[npt.NDArray[np.uint8]]) -> tuple[datetime, datetime]:
        """Play ``images`` next; returns the wall-clock times the first and the last were due."""
        self.shown = []
        self.queue.extend(images)
        while self.queue:
            await asyncio.sleep(0.05)
        return self.shown[0], self.shown[-1]


async def _device(center: Running, device_id: str) -> Device:
    store = center.center.store
    assert store is not None
    row = await store.read(lambda s: s.get(Device, device_id))
    assert row is not None
    return row


async def _reads(center: Running, plate: str) -> list[datetime]:
    store = center.center.store
    assert store is not None
    rows = await store.read(lambda s: search_reads(s, plate=plate, mode="exact", limit=10))
    return [r.read_at for r in rows]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_dropped_stream_is_reconnected_and_timed_by_the_wall_clock(
    center: Running, tmp_path: Path
) -> None:
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    key = await center.center.provision_device("cam-r", DeviceType.plate_camera, "pole", 41.88, -87.63)
    rtsp = RtspTestStream(size=SIZE, fps=10, source="pipe", path="pole")
    url = await rtsp.start()
    feeder = Feeder(rtsp)
    feeder.start()
    proc = subprocess.Popen(
        [
            RTCC, "plates", "video", url, "--camera", "cam-r", "--center", center.url, "--key", key,
            "--buffer", str(tmp_path / "buf"), "--every-n", "2", "--heading", "0",
            "--heartbeat-s", "0.5", "--stall-s", "3",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    err = ""
    try:

        async def until(ok: Callable[[], Awaitable[bool]], what: str, limit_s: float = 60.0) -> None:
            deadline = time.monotonic() + limit_s
            while not await ok():
                if proc.poll() is not None:
                    raise AssertionError(f"the agent ended ({proc.returncode}) waiting for {what}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}")
                await asyncio.sleep(0.1)

        async def playing() -> bool:
            return bool(rtsp.playing)

        async def recording_is(value: bool) -> bool:
            d = await _device(center, "cam-r")
            return d.status == "online" and (d.attributes or {}).get("recording") is value

        def car(plate: str) -> list[npt.NDArray[np.uint8]]:
            return [_small(car_with_plate(plate, seed=k, shift=(-200 + 40 * k, 0))) for k in range(8)]

        # 1. the agent connects and its heartbeats say it is recording
        await until(playing, "the agent to play the stream", limit_s=90)
        await asyncio.sleep(1.5)  # past a key frame
        await until(lambda: recording_is(True), "recording: true")

        # 2. a car is in view when the stream drops (its pass is still open: 1 s < 3 empty samples)
        first_car = await feeder.show(car("7KDR582"))
        await asyncio.sleep(0.5)  # the last frames reach the agent
        assert rtsp._server is not None
        rtsp._server.close()  # the camera goes away: the connection drops, reconnects are refused
        for w in list(rtsp.playing):
            w.close()
        rtsp.playing.clear()
        await until(lambda: recording_is(False), "recording: false while the stream is down")

        async def stored(plate: str) -> bool:
            return bool(await _reads(center, plate))

        await until(lambda: stored("7KDR582"), "the pass in progress at the drop")
        [at] = await _reads(center, "7KDR582")
        assert first_car[0] - SLACK <= at <= first_car[1] + SLACK, (at, first_car)

        # 3. down for a while, then back on the same port: the agent reconnects by itself
        await asyncio.sleep(5.0)
        rtsp._server = await asyncio.start_server(rtsp._client, "127.0.0.1", rtsp.port)
        await until(playing, "the reconnect")
        assert rtsp.sessions_total == 2
        await asyncio.sleep(1.5)  # past a key frame
        await until(lambda: recording_is(True), "recording: true again")

        # 4. a car after the reconnect is timed by the wall clock, not by the restarted stream clock
        second_car = await feeder.show(car("ABC1234"))
        await until(lambda: stored("ABC1234"), "the pass after the reconnect")
        [at2] = await _reads(center, "ABC1234")
        assert second_car[0] - SLACK <= at2 <= second_car[1] + SLACK, (at2, second_car)
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
    assert proc.returncode == 0, err  # a clean stop: nothing left buffered
    assert err.count("stream down") == 1 and err.count("stream back") == 1, err


async def test_a_stalled_stream_is_reconnected() -> None:
    """No data for the stall timeout (the connection stays open): the reading drops it and reconnects."""
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    rtsp = RtspTestStream(size=SIZE, fps=10, source="pipe", path="stall")
    url = await rtsp.start()
    feeder = Feeder(rtsp)
    feeder.start()
    state = StreamState()
    stop = threading.Event()
    said: list[str] = []
    got: list[Frame | None] = []

    def read() -> None:
        for f in live_frames(url, 2, timeout_s=2.0, stop=stop, state=state, say=said.append):
            got.append(None if f is None else Frame(f.index, f.t, f.image[:1, :1]))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if state.connections == 1 and len(got) > 5:
                break
            await asyncio.sleep(0.1)
        assert state.connections == 1 and None not in got
        feeder.paused = True  # the stream stalls; its TCP connection stays open
        for _ in range(100):
            if state.drops:
                break
            await asyncio.sleep(0.1)
        assert state.drops == 1 and got[-1] is None and state.recording is False
        feeder.paused = False
        for _ in range(300):
            if state.connections == 2 and got[-1] is not None:
                break
            await asyncio.sleep(0.1)
        assert state.connections == 2 and state.recording is True
        frames_after = [f for f in got[got.index(None) + 1 :] if f is not None]
        assert frames_after and frames_after[0].index > max(f.index for f in got[: got.index(None)] if f)
    finally:
        stop.set()
        feeder.paused = False
        await asyncio.to_thread(thread.join, 30)
        await feeder.stop()
        await rtsp.stop()
    assert not thread.is_alive()
    assert [line.split(" ", 2)[:2] for line in said] == [["stream", "down"], ["stream", "back"]], said
