"""Live view: one upstream reader per camera, shared by all its viewers.

:class:`LiveManager` keeps a :class:`LiveStream` per camera while anyone
watches. A stream's reader thread opens the source (bounded retries with
doubling backoff), decodes every frame (to stay live) and JPEG-encodes at
most ``fps`` frames per second; viewers await the newest frame. When the
last viewer leaves (:meth:`LiveManager.release`) the reader stops and the
upstream connection closes. A camera that may no longer be viewed (withdrawn,
downgraded, deleted, its source changed) is dropped at once
(:meth:`LiveManager.drop`): its reader stops and every viewer's frame wait
raises :class:`LiveEnded`.

Each frame carries the wall-clock time it was decoded; ``cpu_s`` adds up the
reader thread's CPU time (what one stream costs the center).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import cv2

from rtcc.cameras.sources import FrameSource, StreamTimeout, StreamUnreachable, open_source, redact
from rtcc.errors import NotFound, RateLimited, RtccError

log = logging.getLogger(__name__)


class LiveEnded(NotFound):
    """The camera's live view was ended by the center (withdrawn, downgraded, deleted, new source)."""

    code = "live_ended"


Opener = Callable[[str], FrameSource]


@dataclass(frozen=True)
class Frame:
    """One JPEG frame: its sequence number and the UTC epoch seconds it was decoded."""

    seq: int
    at: float
    jpeg: bytes


class LiveStream:
    """One camera's upstream reader and its latest frame."""

    def __init__(
        self,
        camera_id: UUID,
        url: str,
        *,
        opener: Opener,
        fps: float,
        quality: int,
        retries: int,
        backoff_s: float = 0.5,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.camera_id, self.url = camera_id, url
        self.viewers = 0
        self.latest: Frame | None = None
        self.error: RtccError | None = None
        self.cpu_s = 0.0
        self.frames_decoded = 0
        self._opener, self._fps, self._quality = opener, fps, quality
        self._retries, self._backoff_s = retries, backoff_s
        self._loop = loop
        self._stop = threading.Event()
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-{camera_id}", daemon=True)
        self._source: FrameSource | None = None
        self.ended: RtccError | None = None
        """Set by :meth:`end`: every viewer's next wait raises it, even when a frame is ready."""

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop (it closes the upstream connection)."""
        self._stop.set()

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)

    def end(self, error: RtccError) -> None:
        """Stop the reader and end every viewer with ``error`` now (call on the event loop)."""
        self.ended = error
        self.stop()
        self._changed.set()
        self._changed = asyncio.Event()

    # -- reader thread -----------------------------------------------------------

    def _post(self, frame: Frame | None, error: RtccError | None = None) -> None:
        def apply() -> None:
            if frame is not None:
                self.latest = frame
            if error is not None:
                self.error = error
            self._changed.set()
            self._changed = asyncio.Event()

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is watching
            self._loop.call_soon_threadsafe(apply)

    def _open(self) -> FrameSource:
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            if self._stop.is_set():
                raise StreamUnreachable("stopped")
            try:
                return self._opener(self.url)
            except RtccError as exc:
                if attempt == self._retries:
                    raise
                log.info("camera %s: opening %s failed (%s); retrying", self.camera_id, redact(self.url), exc)
            self._stop.wait(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self) -> None:
        cpu0 = time.thread_time()
        seq = 0
        interval = 1.0 / self._fps
        next_out = 0.0
        try:
            while not self._stop.is_set():
                src = self._source = self._open()
                got = 0
                try:
                    while not self._stop.is_set():
                        try:
                            img = src.read()
                        except RtccError as exc:
                            if got == 0:
                                raise
                            log.info("camera %s: stream broke (%s); reopening", self.camera_id, exc.message)
                            break
                        if img is None:
                            break
                        got += 1
                        self.frames_decoded += 1
                        now = time.monotonic()
                        if now < next_out:
                            continue
                        next_out = max(next_out + interval, now - interval)
                        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
                        if ok:
                            seq += 1
                            self._post(Frame(seq, time.time(), buf.tobytes()))
                        self.cpu_s = time.thread_time() - cpu0
                finally:
                    src.close()
                    self._source = None
                if got == 0:
                    raise StreamUnreachable(f"camera stream {redact(self.url)} ended without a frame")
                # a single image (or a stream that ended): open it again at the frame rate
                self._stop.wait(max(0.0, next_out - time.monotonic()))
        except RtccError as exc:
            log.warning("camera %s: live stream failed: %s", self.camera_id, exc.message)
            self._post(None, exc)
        except Exception as exc:  # decoding errors from FFmpeg or OpenCV
            log.exception("camera %s: live stream failed", self.camera_id)
            self._post(None, StreamUnreachable(f"camera stream {redact(self.url)} failed: {exc}"))
        finally:
            self.cpu_s = time.thread_time() - cpu0

    # -- viewers -------------------------------------------------------------------

    async def next_frame(self, after: int, timeout_s: float) -> Frame:
        """The first frame newer than sequence ``after``.

        Raises
        ------
        StreamUnreachable
            The reader failed (after its retries).
        StreamTimeout
            No new frame within ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.ended is not None:
                raise self.ended
            if self.latest is not None and self.latest.seq > after:
                return self.latest
            if self.error is not None:
                raise self.error
            left = deadline - loop.time()
            if left <= 0:
                raise StreamTimeout(
                    f"camera stream {redact(self.url)} sent no frame within {timeout_s:g} s "
                    "(setting cameras.open_timeout_s)"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


class LiveManager:
    """The center's live streams, one per watched camera.

    Parameters
    ----------
    fps : float
        Most JPEG frames per second per stream.
    quality : int
        JPEG quality (10–100).
    timeout_s : float
        Time to open a source and to wait for a frame, seconds.
    retries : int
        Re-tries when opening fails (backoff 0.5 s, doubling).
    max_viewers : int
        Most viewers of one camera at once.
    opener : callable, optional
        ``opener(url) -> FrameSource`` (default :func:`open_source`).
    """

    def __init__(
        self,
        *,
        fps: float = 5.0,
        quality: int = 75,
        timeout_s: float = 5.0,
        retries: int = 2,
        max_viewers: int = 16,
        opener: Opener | None = None,
    ) -> None:
        self.fps, self.quality, self.timeout_s = fps, quality, timeout_s
        self.retries, self.max_viewers = retries, max_viewers
        self._opener = opener or (lambda url: open_source(url, timeout_s=timeout_s))
        self.streams: dict[UUID, LiveStream] = {}
        self._lock = asyncio.Lock()

    @property
    def wait_s(self) -> float:
        """Longest wait for a first frame: every open attempt, their backoff, one frame."""
        backoff = sum(0.5 * 2.0**i for i in range(self.retries))
        return (self.retries + 1) * self.timeout_s + backoff + self.timeout_s

    async def acquire(self, camera_id: UUID, url: str) -> LiveStream:
        """Join (or start) the camera's stream and wait for its first frame."""
        async with self._lock:
            st = self.streams.get(camera_id)
            if st is not None and (
                st.error is not None or st.ended is not None or st.url != url or not st.running
            ):
                self.streams.pop(camera_id)
                st.stop()
                st = None
            if st is None:
                st = LiveStream(
                    camera_id,
                    url,
                    opener=self._opener,
                    fps=self.fps,
                    quality=self.quality,
                    retries=self.retries,
                    loop=asyncio.get_running_loop(),
                )
                self.streams[camera_id] = st
                st.start()
            if st.viewers >= self.max_viewers:
                raise RateLimited(
                    f"camera {camera_id} already has {st.viewers} viewers "
                    "(setting cameras.max_viewers_per_camera)"
                )
            st.viewers += 1
        try:
            await st.next_frame(0, self.wait_s)
        except BaseException:
            await self.release(st)
            raise
        return st

    async def release(self, st: LiveStream) -> None:
        """Leave a stream; the last viewer out stops its reader."""
        async with self._lock:
            st.viewers -= 1
            if st.viewers <= 0:
                st.stop()
                if self.streams.get(st.camera_id) is st:
                    self.streams.pop(st.camera_id)

    async def drop(self, camera_id: UUID, reason: str = "it may no longer be viewed") -> int:
        """End the camera's live view now: stop its reader and end every viewer's response.

        Called when the camera may no longer be viewed live (withdrawn by its owner,
        downgraded, deleted, or its source changed). Viewers' :meth:`frames` raise
        :class:`LiveEnded`; a new viewer starts a fresh stream (after the route's checks).
        Returns how many viewers were watching.
        """
        async with self._lock:
            st = self.streams.pop(camera_id, None)
        if st is None:
            return 0
        st.end(LiveEnded(f"the live view of camera {camera_id} ended: {reason}"))
        return st.viewers

    async def frames(self, st: LiveStream) -> AsyncIterator[Frame]:
        """Frames of a joined stream, newest each time, until it fails."""
        seq = 0
        while True:
            frame = await st.next_frame(seq, self.wait_s)
            seq = frame.seq
            yield frame

    async def snapshot(self, camera_id: UUID, url: str) -> Frame:
        """The camera's current frame (from the running stream, or a short-lived one)."""
        running = self.streams.get(camera_id)
        if (
            running is not None
            and running.url == url
            and running.error is None
            and running.ended is None
            and running.latest is not None
        ):
            return running.latest  # no second upstream connection, not counted as a viewer
        st = await self.acquire(camera_id, url)
        try:
            assert st.latest is not None
            return st.latest
        finally:
            await self.release(st)

    async def probe(self, url: str) -> str | None:
        """Open a source and read one frame: None when it works, else the reason."""

        def _one() -> str | None:
            try:
                src = self._opener(url)
                try:
                    return None if src.read() is not None else "the stream ended without a frame"
                finally:
                    src.close()
            except RtccError as exc:
                return exc.message
            except Exception as exc:  # a decoder's own error: this source is down, not the prober
                log.warning("probing %s failed unexpectedly: %s", redact(url), exc)
                return f"camera stream {redact(url)} failed: {exc}"

        return await asyncio.to_thread(_one)

    async def close(self) -> None:
        """Stop every stream (shutdown)."""
        async with self._lock:
            streams = list(self.streams.values())
            self.streams.clear()
        for st in streams:
            st.stop()
        for st in streams:
            await asyncio.to_thread(st.join, 10.0)

    def stats(self) -> list[dict[str, Any]]:
        """Per stream: viewers, frames decoded, reader CPU seconds."""
        return [
            {
                "camera_id": str(cid),
                "viewers": st.viewers,
                "frames_decoded": st.frames_decoded,
                "cpu_s": round(st.cpu_s, 3),
            }
            for cid, st in self.streams.items()
        ]
