"""Frame sources for live view: RTSP/HTTP through PyAV (FFmpeg), and a synthetic demo source.

:func:`open_source` opens a URL and returns a :class:`FrameSource` whose
blocking :meth:`~FrameSource.read` gives the next decoded frame (BGR,
``uint8``, shape ``(h, w, 3)``) or None at the end of the stream.

* ``rtsp://`` / ``rtsps://`` — over TCP, with FFmpeg's low-delay flags;
* ``http(s)://`` — an MJPEG (``multipart/x-mixed-replace``) stream or a
  single JPEG (which ends after one frame; the reader polls it again);
* ``synthetic://<name>?fps=10&size=320x240`` — frames drawn in process (a
  moving marker, the camera's name and the UTC time), so the demo shows a
  live camera without any network or device.

Failures are :class:`StreamUnreachable` (502) or :class:`StreamTimeout`
(504), both :class:`rtcc.errors.RtccError`, so the API answers with the one
error envelope.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from rtcc.errors import RtccError

MAX_BAD_PACKETS = 300
"""Consecutive undecodable packets tolerated (waiting for a key frame) before a stream counts as broken."""


class StreamUnreachable(RtccError):
    """The camera's stream could not be opened or stopped sending (502)."""

    status = 502
    code = "stream_unreachable"


class StreamTimeout(RtccError):
    """The camera's stream did not answer in time (504)."""

    status = 504
    code = "stream_timeout"


class FrameSource(Protocol):
    """A live source of decoded frames."""

    def read(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        """The next frame (blocking), or None when the stream ended."""
        ...

    def close(self) -> None: ...


class BadStreamUrl(StreamUnreachable):
    """A stored stream URL that cannot be parsed (502 when opened; refused with 422 when given)."""

    code = "bad_stream_url"


_CREDENTIALS = re.compile(r"//[^/@]*@")

SYNTHETIC_MAX_SIDE = 4096
"""Largest synthetic frame side, pixels."""


def redact(url: str) -> str:
    """The URL without credentials (for messages and logs); never raises, even for a malformed URL."""
    try:
        parts = urlsplit(url)
        if parts.username or parts.password:
            host = parts.hostname or ""
            if parts.port:
                host += f":{parts.port}"
            return parts._replace(netloc=f"***@{host}").geturl()
    except ValueError:
        # a malformed URL still must not leak a password into a message or log
        return _CREDENTIALS.sub("//***@", url, count=1)
    return url


def parse_synthetic(url: str) -> tuple[str, float, tuple[int, int]]:
    """(name, fps, (width, height)) of a ``synthetic://`` URL.

    Raises
    ------
    ValueError
        With a message saying what is wrong (callers turn it into the project's error).
    """
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    try:
        fps = float(q.get("fps", ["10"])[0])
    except ValueError:
        raise ValueError(f"fps {q['fps'][0]!r} is not a number") from None
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps {fps:g} must be a positive number")
    size = q.get("size", ["320x240"])[0]
    w, _, h = size.partition("x")
    if not (
        w.isdigit()
        and h.isdigit()
        and 16 <= int(w) <= SYNTHETIC_MAX_SIDE
        and 16 <= int(h) <= SYNTHETIC_MAX_SIDE
    ):
        raise ValueError(f"size {size!r} is not WIDTHxHEIGHT with sides 16..{SYNTHETIC_MAX_SIDE}")
    return parts.netloc or "synthetic", max(0.5, min(fps, 60.0)), (int(w), int(h))


def check_stream_url(url: str) -> str:
    """Check a stream URL can be opened as given: scheme, host, port, synthetic parameters.

    Returns
    -------
    str
        The URL, unchanged.

    Raises
    ------
    ValueError
        Saying what is wrong, with the credentials redacted (pydantic validators and
        :func:`open_source` turn it into a 422 or a :class:`BadStreamUrl`).
    """
    shown = redact(url)
    try:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"unsupported scheme {parts.scheme!r} (rtsp, rtsps, http, https, synthetic)")
        if parts.scheme == "synthetic":
            parse_synthetic(url)
        else:
            if not parts.hostname:
                raise ValueError("no host")
            _ = parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValueError(f"stream URL {shown} is malformed: {exc}") from None
    return url


SCHEMES = ("rtsp", "rtsps", "http", "https", "synthetic")


class SyntheticSource:
    """Frames drawn in process at ``fps``: a gradient, a circling marker, the name and the UTC time."""

    def __init__(self, name: str, fps: float = 10.0, size: tuple[int, int] = (320, 240)) -> None:
        self.name, self.fps, self.size = name, fps, size
        self._next = time.monotonic()
        self._n = 0
        w, h = size
        xs = np.linspace(40, 120, w, dtype=np.float32)
        self._bg = np.repeat(np.tile(xs, (h, 1))[:, :, None], 3, axis=2).astype(np.uint8)
        self._bg[:, :, 0] = 90

    def read(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + 1.0 / self.fps, time.monotonic() - 1.0)
        self._n += 1
        w, h = self.size
        img = self._bg.copy()
        a = self._n / self.fps * 0.8
        cx, cy = int(w / 2 + w / 3 * math.cos(a)), int(h / 2 + h / 3 * math.sin(a))
        cv2.circle(img, (cx, cy), max(4, h // 16), (40, 200, 255), -1)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
        cv2.putText(img, self.name[:32], (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        cv2.putText(img, now, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        return img

    def close(self) -> None:
        return None


class AvSource:
    """An RTSP or HTTP source decoded by PyAV (FFmpeg)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import av

        options = {"flags": "low_delay", "analyzeduration": "1000000", "probesize": "262144"}
        if url.startswith(("rtsp://", "rtsps://")):
            # nobuffer drops the probe's packets: fine for a live stream, fatal for a single JPEG
            options.update(rtsp_transport="tcp", fflags="nobuffer")
        t0 = time.monotonic()
        try:
            self._container: Any = av.open(url, options=options, timeout=(timeout_s, timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            # PyAV's timeout interrupts FFmpeg, which then reports whatever it was reading
            timed_out = time.monotonic() - t0 >= 0.9 * timeout_s
            raise _map_av_error(url, exc, timed_out=timed_out, timeout_s=timeout_s) from exc
        if not self._container.streams.video:
            self._container.close()
            raise StreamUnreachable(f"camera stream {redact(url)} has no video")
        self.url = url
        self._stream = self._container.streams.video[0]
        self._packets = self._container.demux(self._stream)
        self._ready: list[Any] = []

    def read(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        import av

        bad = 0
        while not self._ready:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.error.FFmpegError as exc:
                raise _map_av_error(self.url, exc) from exc
            try:
                self._ready.extend(packet.decode())
                bad = 0
            except av.error.InvalidDataError:
                # joined mid-stream (no key frame yet) or a lost packet: skip, within reason
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise StreamUnreachable(
                        f"camera stream {redact(self.url)} sends undecodable video"
                    ) from None
        frame = self._ready.pop(0)
        return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)

    def close(self) -> None:
        self._container.close()


def _map_av_error(url: str, exc: Exception, *, timed_out: bool = False, timeout_s: float = 0.0) -> RtccError:
    text = str(exc).replace(url, redact(url))
    errno = getattr(exc, "errno", None)
    if timed_out or errno in (110, 60) or "timed out" in text.lower():
        return StreamTimeout(
            f"camera stream {redact(url)} did not answer within {timeout_s:g} s "
            f"(setting cameras.open_timeout_s): {text}"
        )
    return StreamUnreachable(f"camera stream {redact(url)} is unreachable: {text}")


def open_source(url: str, *, timeout_s: float) -> FrameSource:
    """Open a live source (see the module docstring for the URL schemes).

    Raises
    ------
    BadStreamUrl
        The URL is malformed (a row stored before URLs were checked): never a bare ValueError,
        so one bad camera cannot break the health round or a request for the others.
    StreamUnreachable, StreamTimeout
        The source could not be opened.
    """
    try:
        check_stream_url(url)
    except ValueError as exc:
        raise BadStreamUrl(str(exc)) from None
    if urlsplit(url).scheme == "synthetic":
        name, fps, size = parse_synthetic(url)
        return SyntheticSource(name, fps, size)
    return AvSource(url, timeout_s)
