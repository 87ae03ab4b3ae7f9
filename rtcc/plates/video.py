"""Plates in video files and RTSP streams (PyAV): sample, read, track, one read per pass.

:func:`frames` decodes every ``every_n``-th frame of a file or an
``rtsp://`` URL (RTSP over TCP); :func:`passes` reads the plates of each
sampled frame with a :class:`~rtcc.plates.recognize.PlateReader` and tracks
them with a :class:`~rtcc.plates.track.PlateTracker`, yielding one
:class:`~rtcc.plates.track.Pass` per vehicle pass as soon as it ends.

A live stream (``rtsp://``, ``rtsps://``) reconnects (:func:`live_frames`): when it errors, ends,
or stalls past its timeout, the tracker is flushed (a vehicle pass in progress is emitted, not
lost), the stream is closed and opened again with back-off (1, 2, 4 … 30 s) until stopped. Frame
times stay wall-clock right across a reconnect: the reconnected stream's own clock restarts, so
its first frame is re-anchored to the wall-clock time it was decoded at.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rtcc.errors import ValidationFailed
from rtcc.plates.track import MAX_TRACK_S, Pass, PlateTracker, Sighting

if TYPE_CHECKING:
    from rtcc.plates.recognize import PlateReader


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its index in the stream, its seconds since the first frame, its BGR pixels."""

    index: int
    t: float
    image: npt.NDArray[np.uint8]
    wall: float | None = None
    """A live frame's UNIX time of decoding (the anchor of its stream time; None: when handed over)."""


def is_stream(source: str) -> bool:
    return source.lower().startswith(("rtsp://", "rtsps://"))


RECONNECT_START_S = 1.0
RECONNECT_MAX_S = 30.0
PASS_END_GRACE_S = 10.0
"""A stop asked "at the end of the passes in progress" stops anyway after this many stream seconds."""


class StopReading(threading.Event):
    """Set to stop :func:`passes`: at once (the passes in progress are flushed), or with
    :meth:`at_pass_end` once no pass is in progress, so every pass kept is a whole one."""

    at_pass_end_only = False

    def at_pass_end(self) -> None:
        self.at_pass_end_only = True
        self.set()


@dataclass
class StreamState:
    """What a video source is doing now (read by the heartbeat thread).

    ``recording`` is None before the first frame or failure, True while frames decode, False
    while a stream is down; ``last_t`` is the time (seconds since the first frame, wall-clock across
    reconnects) of the last sampled frame.
    """

    recording: bool | None = None
    epoch: float | None = None
    """UNIX time of t = 0 (the very first frame), set by :func:`live_frames`."""
    last_t: float | None = None
    last_frame_mono: float | None = None
    connections: int = 0
    drops: int = 0
    last_index: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def frame(self, t: float) -> None:
        with self.lock:
            self.recording, self.last_t, self.last_frame_mono = True, t, time.monotonic()

    def down(self) -> None:
        with self.lock:
            self.recording = False

    def anchor(self, wall: float) -> float:
        """A connection's stream time 0 is UNIX time ``wall``: its offset from the epoch (the first's)."""
        with self.lock:
            if self.epoch is None:
                self.epoch = wall
            return wall - self.epoch

    def emit(self, f: Frame, base: int, offset: float) -> Frame:
        """A connection's frame with the index counted on from ``base`` and its time re-anchored."""
        out = Frame(base + f.index, max(0.0, offset + f.t), f.image)
        self.last_index = out.index
        self.frame(out.t)
        return out

    def next_index(self, every_n: int) -> int:
        """Where the next connection's indexes start."""
        return 0 if self.last_index is None else self.last_index + every_n

    def decoding(self, stale_s: float) -> bool | None:
        """``recording``, false too when no frame came for ``stale_s`` seconds (a stalled stream)."""
        with self.lock:
            if self.recording and self.last_frame_mono is not None:
                return time.monotonic() - self.last_frame_mono < stale_s
            return self.recording


@dataclass
class Damage:
    """What a damaged source lost: packets that would not decode, and frames declared but not decoded.

    A file's damage is told at the end of its reading (:func:`passes` raises
    :class:`~rtcc.errors.ValidationFailed` after its passes) so that a partial read never looks like
    a clean one; a live stream's bad packets are only counted (the next key frame repairs it).
    """

    bad_packets: int = 0
    declared_frames: int = 0
    decoded_frames: int = 0
    read_error: str | None = None

    def summary(self) -> str | None:
        """Why the reading was partial, or None when nothing was lost."""
        why: list[str] = []
        if self.bad_packets:
            why.append(f"{self.bad_packets} damaged packet(s) skipped")
        if self.read_error is not None:
            why.append(f"reading stopped early ({self.read_error})")
        if self.declared_frames and self.decoded_frames < self.declared_frames:
            why.append(f"{self.decoded_frames} of the {self.declared_frames} frames it declares decoded")
        return "; ".join(why) or None


def _declared_frames(stream: Any) -> int:
    """The frames a file's container declares (its frame count, else duration x rate; 0 when unknown)."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and stream.average_rate:
        return round(float(stream.duration * stream.time_base) * float(stream.average_rate))
    return 0


def _decoded(container: Any, stream: Any, damage: Damage) -> Iterator[Any]:
    """Every frame of ``stream`` that decodes, packet by packet: a packet that will not decode is
    counted in ``damage`` and skipped, so a file damaged in the middle is read on past the damage
    (the decoder recovers at the next key frame) instead of ending there."""
    import av

    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:  # the container itself cannot be read further
            damage.read_error = str(exc)
            return
        try:
            got = packet.decode()
        except av.error.InvalidDataError:
            damage.bad_packets += 1
            continue
        except av.error.FFmpegError as exc:
            damage.bad_packets += 1
            damage.read_error = str(exc)
            continue
        for frame in got:
            damage.decoded_frames += 1
            yield frame


def frames(
    source: str,
    every_n: int = 3,
    *,
    timeout_s: float = 10.0,
    max_fps: float | None = None,
    damage: Damage | None = None,
) -> Iterator[Frame]:
    """Every ``every_n``-th frame of a video file or RTSP stream, as BGR arrays.

    Times count from the first decoded frame: a stream's own timestamps need not start at 0
    (MPEG-TS, DVR exports and RTSP streams start anywhere), so a frame's wall-clock time is the
    first frame's time plus :attr:`Frame.t`.

    A file is read whole and deterministically: every ``every_n``-th decoded frame, packets that
    will not decode skipped and counted in ``damage`` with the frames the file declares. A live
    stream is read by :func:`_live_connection` (a decoder thread keeping only the newest frame, at
    most ``max_fps`` a second, a stall noticed after ``timeout_s`` wall-clock seconds).

    Raises
    ------
    ValidationFailed
        When the source cannot be opened or holds no video, or a stream stalls or fails.
    """
    import av

    if every_n < 1:
        raise ValidationFailed("every_n must be >= 1")
    if is_stream(source) and max_fps is not None:
        yield from _live_connection(source, every_n, timeout_s=timeout_s, max_fps=max_fps, damage=damage)
        return
    damage = damage if damage is not None else Damage()
    live = is_stream(source)
    options = {"rtsp_transport": "tcp"} if live else {}
    try:
        # a live stream's read timeout is half the stall timeout: FFmpeg notices no data only
        # about twice its read timeout after the last packet
        container = av.open(
            source, options=options, timeout=(timeout_s, timeout_s / 2) if live else timeout_s
        )
    except (av.error.FFmpegError, OSError) as exc:
        raise ValidationFailed(f"cannot open video {source!r}: {exc}") from None
    try:
        if not container.streams.video:
            raise ValidationFailed(f"{source!r} has no video stream")
        stream = container.streams.video[0]
        # no frame threading: it hides a decoding error (the frames in flight are dropped silently)
        damage.declared_frames = _declared_frames(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        origin: float | None = None  # the stream time of frame 0
        for i, frame in enumerate(_decoded(container, stream, damage)):
            if origin is None and frame.time is not None:
                origin = float(frame.time) - i / rate
            if i % every_n:
                continue
            t = float(frame.time) - origin if frame.time is not None and origin is not None else i / rate
            t = max(0.0, t)
            yield Frame(i, t, np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
    finally:
        container.close()


def _live_connection(
    source: str,
    every_n: int,
    *,
    timeout_s: float,
    max_fps: float | None,
    damage: Damage | None = None,
) -> Iterator[Frame]:
    """One connection to a live stream: the newest decoded frame, at most ``max_fps`` a second.

    A decoder thread reads the stream as fast as it comes (so the server never has to drop data
    for a slow reader) and keeps only the newest ``every_n``-th frame; this generator hands that
    frame over when asked, at most ``max_fps`` times a (wall-clock) second. A reader that is behind
    therefore skips to the newest frame instead of working through a growing backlog. Each frame
    carries :attr:`Frame.wall`, the UNIX time it was decoded at (for :func:`live_frames`' anchor).

    Stalls are timed on the wall clock here (a watchdog): no new frame for ``timeout_s`` seconds
    raises :class:`ValidationFailed` at once. FFmpeg's own read timeout (``timeout_s / 2``) then
    ends the decoder thread, which closes the connection.
    """
    import av

    damage = damage if damage is not None else Damage()
    try:
        container = av.open(
            source, options={"rtsp_transport": "tcp"}, timeout=(timeout_s, max(0.5, timeout_s / 2))
        )
    except (av.error.FFmpegError, OSError) as exc:
        raise ValidationFailed(f"cannot open video {source!r}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise ValidationFailed(f"{source!r} has no video stream")
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    cond = threading.Condition()
    newest: list[tuple[int, float | None, Any, float]] = []  # (index, stream time, av frame, wall)
    ended: list[str | None] = []  # set when the decoder thread ends: why (None: the stream ended)
    quit_ = threading.Event()
    last_frame_mono = [time.monotonic()]

    def decode() -> None:
        why: str | None = None
        try:
            for i, frame in enumerate(_decoded(container, stream, damage)):
                if quit_.is_set():
                    return
                now, mono = time.time(), time.monotonic()
                with cond:
                    last_frame_mono[0] = mono
                    if i % every_n == 0:
                        newest[:] = [(i, None if frame.time is None else float(frame.time), frame, now)]
                    cond.notify_all()
            why = damage.read_error
        except Exception as exc:  # told to the reading thread, which raises it
            why = str(exc) or type(exc).__name__
        finally:
            with contextlib.suppress(Exception):
                container.close()
            with cond:
                ended.append(why)
                cond.notify_all()

    thread = threading.Thread(target=decode, name="rtcc-video-decode", daemon=True)
    thread.start()
    period = 1.0 / max_fps if max_fps else 0.0
    origin: float | None = None
    next_at = 0.0
    last_index = -1
    try:
        while True:
            if period:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            with cond:
                while not newest or newest[0][0] == last_index:
                    if ended:
                        if ended[0] is not None:
                            raise ValidationFailed(f"video {source!r} is corrupt or ended badly: {ended[0]}")
                        return
                    quiet = time.monotonic() - last_frame_mono[0]
                    if quiet >= timeout_s:
                        raise ValidationFailed(f"no frame from {source!r} for {timeout_s:g} s (stalled)")
                    cond.wait(min(0.25, timeout_s - quiet))
                i, ft, frame, wall = newest[0]
                newest.clear()
            last_index = i
            next_at = time.monotonic() + period
            if origin is None and ft is not None:
                origin = ft - i / rate
            t = ft - origin if ft is not None and origin is not None else i / rate
            image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
            yield Frame(i, max(0.0, t), image, wall)
    finally:
        quit_.set()


def _anchor(burst: list[tuple[Frame, float]]) -> float:
    """The wall-clock time of a connection's stream time 0, from frames and when each was decoded.

    Parameters
    ----------
    burst : list of (Frame, float)
        The first frames of a connection with the UNIX time each was decoded, until decoding
        caught up with the live stream.

    Returns
    -------
    float
        ``min_k (w_k - t_k)``. A frame is never decoded before it was sent, so each ``w_k - t_k``
        is the true anchor plus that frame's delay (network, and the seconds FFmpeg buffers while
        it probes a new stream, decoded at once afterwards); the least delayed frame gives the
        tightest value (the network latency of a caught-up frame).
    """
    return min(w - f.t for f, w in burst)


CATCH_UP_MAX_FRAMES = 64
"""At most this many frames of a new connection are held while it catches up with the live stream."""

REANCHOR_S = 1.0
"""A live frame decoded this many seconds later than its stream time says re-anchors the connection:
the camera's clock stood still (an encoder that stamps frames by their count, paused) and its times
would otherwise run that far early from then on."""


def live_frames(
    source: str,
    every_n: int = 3,
    *,
    timeout_s: float = 10.0,
    stop: threading.Event | None = None,
    state: StreamState | None = None,
    say: Callable[[str], None] = lambda line: None,
    open_frames: Callable[[str, int, float], Iterator[Frame]] | None = None,
    max_fps: float | None = None,
) -> Iterator[Frame | None]:
    """The frames of a live stream across reconnects; ``None`` where the stream dropped.

    Each connection's frames come from :func:`frames` (``open_frames`` in tests). When a
    connection errors (cannot open, corrupt, or no data for ``timeout_s`` — PyAV's read timeout), or
    ends, ``None`` is yielded if it gave frames (the caller flushes its tracker), the drop is said
    once through ``say``, and the stream is opened again after 1, 2, 4 … :data:`RECONNECT_MAX_S`
    seconds (back to 1 s after a connection that gave frames) until ``stop`` is set. The first
    reconnected frame is said once too.

    Times: ``t`` counts wall-clock seconds from the very first frame (``state.epoch``, UNIX time).
    A connection's own times restart at 0, so each connection is re-anchored to the wall clock:
    its first frames are decoded as fast as they come (up to :data:`CATCH_UP_MAX_FRAMES`), until a
    frame had to be waited for (decoding has caught up with the live stream), and the connection's
    anchor is :func:`_anchor` of them; its frames get ``t = anchor - epoch + own t``. Indexes go
    on counting across connections. After the anchor, each frame tightens it (``min``) or, when it
    was decoded more than :data:`REANCHOR_S` later than the anchor says (the stream's clock stood
    still through a gap), re-anchors it to that frame: times stay on the wall clock after a gap.
    Frames are read at most ``max_fps`` a second, always the newest (:func:`_live_connection`).
    """
    opener = (
        open_frames
        if open_frames is not None
        else (lambda src, n, tmo: frames(src, n, timeout_s=tmo, max_fps=max_fps))
    )
    stop = stop if stop is not None else threading.Event()
    state = state if state is not None else StreamState()
    next_index = 0
    backoff = RECONNECT_START_S
    down_since: float | None = None
    while not stop.is_set():
        got = 0
        why = "the stream ended"
        offset: float | None = None
        anchor_wall = 0.0
        burst: list[tuple[Frame, float]] = []
        base = next_index
        it = opener(source, every_n, timeout_s)
        try:
            last = time.time()
            for f in it:
                if stop.is_set():  # stopped: the frames still coming are not waited for
                    break
                now = f.wall if f.wall is not None else time.time()
                if got == 0:
                    with state.lock:
                        state.connections += 1
                    if down_since is not None:
                        say(f"stream back after {time.monotonic() - down_since:.0f} s: reading again")
                        down_since = None
                got += 1
                if offset is None:  # still catching up with the live stream
                    waited = bool(burst) and now - last >= 0.5 * max(f.t - burst[-1][0].t, 1e-3)
                    burst.append((f, now))
                    last = now
                    if not waited and len(burst) < CATCH_UP_MAX_FRAMES:
                        continue
                    anchor_wall = _anchor(burst)
                    offset = state.anchor(anchor_wall)
                    for held, _ in burst:
                        yield state.emit(held, base, offset)
                    burst.clear()
                    continue
                here = now - f.t
                # only a decoding time tells a gap: a hand-over time also holds the reader's backlog
                if f.wall is not None and (here < anchor_wall or here - anchor_wall > REANCHOR_S):
                    anchor_wall = here
                    offset = state.anchor(anchor_wall)
                yield state.emit(f, base, offset)
        except ValidationFailed as exc:
            why = exc.message
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        if burst:  # ended while catching up: what came is still read
            offset = state.anchor(_anchor(burst))
            for held, _ in burst:
                yield state.emit(held, base, offset)
        next_index = state.next_index(every_n)
        state.down()
        if stop.is_set():  # stopped: not a drop
            return
        if got:
            backoff = RECONNECT_START_S
            with state.lock:
                state.drops += 1
            yield None
        if down_since is None:
            down_since = time.monotonic()
            say(
                f"stream down ({why}); reconnecting (back-off {RECONNECT_START_S:g} to {RECONNECT_MAX_S:g} s)"
            )
        if stop.wait(backoff):
            return
        backoff = min(backoff * 2, RECONNECT_MAX_S)


def passes(
    source: str,
    reader: PlateReader,
    *,
    every_n: int = 3,
    camera_heading: float | None = None,
    moving: bool = False,
    max_gap: int = 3,
    keep_frames: bool = True,
    on_first_frame: Callable[[], None] | None = None,
    reconnect: bool = False,
    stop: threading.Event | None = None,
    state: StreamState | None = None,
    say: Callable[[str], None] = lambda line: None,
    timeout_s: float = 10.0,
    max_fps: float | None = None,
    max_track_s: float | None = MAX_TRACK_S,
) -> Iterator[Pass]:
    """One :class:`Pass` per vehicle pass in ``source``, in the order the passes end.

    Pass times are seconds since the first frame; ``on_first_frame`` is called when that frame has
    been decoded (a live stream's clock starts there). With ``reconnect`` (live streams) the source
    is read with :func:`live_frames`: a drop flushes the tracker. ``stop`` ends the reading at the
    next frame, the passes in progress flushed; a :class:`StopReading` set with
    :meth:`~StopReading.at_pass_end` ends it at the first frame with no pass in progress (at most
    :data:`PASS_END_GRACE_S` later). The passes in progress are flushed too when the reading ends
    with an error or a ``KeyboardInterrupt`` (which is raised again after them).

    A live stream is read at most ``max_fps`` frames a second, always the newest. A vehicle in view
    longer than ``max_track_s`` (stream seconds) is read then, while it is still in view (a car
    stopped at a light is alerted on at once), and once only (:class:`PlateTracker`). A file that
    was read only in part (damaged packets skipped, fewer frames than it declares) raises
    :class:`ValidationFailed` after its passes, so a partial read never looks like a clean one.
    """
    state = state if state is not None else StreamState()
    damage = Damage()
    source_frames: Iterator[Frame | None]
    if reconnect:
        source_frames = live_frames(
            source, every_n, timeout_s=timeout_s, stop=stop, state=state, say=say, max_fps=max_fps
        )
    else:
        source_frames = frames(source, every_n, timeout_s=timeout_s, max_fps=max_fps, damage=damage)
    tracker: PlateTracker | None = None
    started = False
    stop_t: float | None = None
    failure: BaseException | None = None
    try:
        for f in source_frames:
            if f is None:  # the stream dropped: the passes in progress end here
                if tracker is not None:
                    yield from tracker.flush()
                tracker = None
                continue
            if not reconnect:
                state.frame(f.t)
            if not started:
                started = True
                if on_first_frame is not None:
                    on_first_frame()
            if tracker is None:
                tracker = PlateTracker(
                    frame_width=f.image.shape[1],
                    camera_heading=camera_heading,
                    moving=moving,
                    max_gap=max_gap,
                    max_track_s=max_track_s,
                )
            seen = [
                Sighting(
                    f.index,
                    f.t,
                    p.text,
                    p.confidence,
                    p.char_confidences,
                    p.box,
                    f.image if keep_frames else None,
                    p.region,
                )
                for p in reader.read(f.image)
            ]
            yield from tracker.update(seen)
            if stop is not None and stop.is_set():
                if stop_t is None:
                    stop_t = f.t
                idle = tracker.in_progress == 0 or f.t - stop_t >= PASS_END_GRACE_S
                if idle or not getattr(stop, "at_pass_end_only", False):
                    break
    except (ValidationFailed, KeyboardInterrupt) as exc:
        failure = exc
    finally:
        close = getattr(source_frames, "close", None)
        if close is not None:
            close()
        state.down()
    if tracker is not None:
        yield from tracker.flush()
    if failure is not None:
        raise failure
    lost = None if is_stream(source) or (stop is not None and stop.is_set()) else damage.summary()
    if lost is not None:
        raise ValidationFailed(f"video {source!r} is damaged and was read only in part: {lost}")
