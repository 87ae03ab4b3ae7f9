"""Plates in video files and RTSP streams (PyAV): sample, read, track, one read per pass.

:func:`frames` decodes every ``every_n``-th frame of a file or an
``rtsp://`` URL (RTSP over TCP); :func:`passes` reads the plates of each
sampled frame with a :class:`~rtcc.plates.recognize.PlateReader` and tracks
them with a :class:`~rtcc.plates.track.PlateTracker`, yielding one
:class:`~rtcc.plates.track.Pass` per vehicle pass as soon as it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rtcc.errors import ValidationFailed
from rtcc.plates.track import Pass, PlateTracker, Sighting

if TYPE_CHECKING:
    from rtcc.plates.recognize import PlateReader


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its index in the stream, its seconds since the first frame, its BGR pixels."""

    index: int
    t: float
    image: npt.NDArray[np.uint8]


def is_stream(source: str) -> bool:
    return source.lower().startswith(("rtsp://", "rtsps://"))


def frames(source: str, every_n: int = 3, *, timeout_s: float = 10.0) -> Iterator[Frame]:
    """Every ``every_n``-th frame of a video file or RTSP stream, as BGR arrays.

    Times count from the first decoded frame: a stream's own timestamps need not start at 0
    (MPEG-TS, DVR exports and RTSP streams start anywhere), so a frame's wall-clock time is the
    first frame's time plus :attr:`Frame.t`.

    Raises
    ------
    ValidationFailed
        When the source cannot be opened or holds no video.
    """
    import av

    if every_n < 1:
        raise ValidationFailed("every_n must be >= 1")
    options = {"rtsp_transport": "tcp"} if is_stream(source) else {}
    try:
        container = av.open(source, options=options, timeout=timeout_s)
    except (av.error.FFmpegError, OSError) as exc:
        raise ValidationFailed(f"cannot open video {source!r}: {exc}") from None
    try:
        if not container.streams.video:
            raise ValidationFailed(f"{source!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        origin: float | None = None  # the stream time of frame 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                if origin is None and frame.time is not None:
                    origin = float(frame.time) - i / rate
                if i % every_n:
                    continue
                t = float(frame.time) - origin if frame.time is not None and origin is not None else i / rate
                t = max(0.0, t)
                yield Frame(i, t, np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
        except av.error.FFmpegError as exc:
            raise ValidationFailed(f"video {source!r} is corrupt or ended badly: {exc}") from None
    finally:
        container.close()


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
) -> Iterator[Pass]:
    """One :class:`Pass` per vehicle pass in ``source``, in the order the passes end.

    Pass times are seconds since the first frame; ``on_first_frame`` is called when that frame has
    been decoded (a live stream's clock starts there).
    """
    tracker: PlateTracker | None = None
    for f in frames(source, every_n):
        if tracker is None:
            if on_first_frame is not None:
                on_first_frame()
            tracker = PlateTracker(
                frame_width=f.image.shape[1], camera_heading=camera_heading, moving=moving, max_gap=max_gap
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
    if tracker is not None:
        yield from tracker.flush()
