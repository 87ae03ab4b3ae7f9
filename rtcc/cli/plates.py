"""``rtcc plates read IMAGE...`` — the licence-plate recognition contract.

One JSON object per line per image, in argument order::

    {"file": "a.jpg", "plates": [{"text": "ABC123", "confidence": 0.97, "box": [x, y, w, h], "region": "TX",
                                  "char_confidences": [0.99, 0.97, 0.98, 0.95, 0.99, 0.96]}]}

best plate first. Two extra fields: ``region`` is the US state or EU country when told, else
``null``; ``char_confidences`` is the probability of each character of ``text``. A file that
cannot be read as an image, or whose header declares more than ``--max-pixels`` pixels, is named on
stderr and skipped; the command goes on with the others and exits 2 at the end.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape

from rtcc.cli.output import err, fail
from rtcc.settings import PlatesSettings

if TYPE_CHECKING:
    from rtcc.plates.gps_live import GpsdTrack
    from rtcc.plates.gps_track import GpsTrack
    from rtcc.plates.recognize import PlateReader
    from rtcc.plates.track import Pass
    from rtcc.plates.video import StreamState
    from rtcc.plates.watch import CameraConfig

MAX_FILE_BYTES = 64 * 2**20
"""Larger files are refused unread (a camera frame is a few MB)."""

MAX_PIXELS: int = PlatesSettings.model_fields["max_image_pixels"].default
"""Default ``--max-pixels``: the center's own default limit (``plates.max_image_pixels``)."""


def _skip(path: Path, why: str) -> None:
    err.print(f"[bold red]error:[/] {escape(str(path))}: {why}", highlight=False)


def read(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, …).", show_default=False)],
    threads: Annotated[int, typer.Option(min=1, max=64, help="ONNX Runtime threads per model.")] = 1,
    backend: Annotated[
        str,
        typer.Option(help="Detector runtime: auto (openvino if the CPU has bf16), onnxruntime, openvino."),
    ] = "auto",
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels",
            min=10_000,
            max=178_000_000,
            help="Larger images (width x height, read from the header) are skipped undecoded "
            "(at most 178 million: the decoder's own limit).",
        ),
    ] = MAX_PIXELS,
) -> None:
    """Detect and read the licence plates in each image; one JSON line per image."""
    import cv2
    import numpy as np

    from rtcc.errors import PayloadTooLarge, ValidationFailed
    from rtcc.plates.ingest import image_header
    from rtcc.plates.recognize import PlateReader

    if backend not in ("auto", "onnxruntime", "openvino"):
        fail(f"--backend {backend!r}: choose auto, onnxruntime or openvino")
    try:
        reader = PlateReader.load(threads=threads, backend=cast(Any, backend))
    except RuntimeError as exc:  # openvino asked of a CPU or an install without it
        fail(str(exc))
    bad = 0
    for path in images:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                _skip(path, f"larger than {MAX_FILE_BYTES >> 20} MiB, skipped")
                bad += 1
                continue
            raw = path.read_bytes()
        except OSError as exc:
            _skip(path, f"cannot read: {exc.strerror or exc}")
            bad += 1
            continue
        try:  # the pixel count from the header, before any pixel buffer is allocated
            image_header(raw, max_pixels=max_pixels, limit_name="option --max-pixels")
        except PayloadTooLarge as exc:
            _skip(path, f"{escape(exc.message)}; skipped")
            bad += 1
            continue
        except ValidationFailed:
            _skip(path, "not a readable image (corrupt, empty or unknown format)")
            bad += 1
            continue
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            _skip(path, "not a readable image (corrupt, empty or unknown format)")
            bad += 1
            continue
        plates = reader.read(np.asarray(image, dtype=np.uint8))
        line = {
            "file": str(path),
            "plates": [
                {
                    "text": p.text,
                    "confidence": round(p.confidence, 4),
                    "box": list(p.box),
                    "region": p.region,
                    "char_confidences": [round(c, 4) for c in p.char_confidences],
                }
                for p in plates
            ],
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    if bad:
        fail(f"{bad} of {len(images)} file(s) could not be read", 2)


CameraOpt = Annotated[str, typer.Option("--camera", help="The camera's device id.", show_default=False)]
CenterOpt = Annotated[
    str, typer.Option("--center", help="The center's base URL, e.g. https://rtcc.example.org")
]
KeyOpt = Annotated[str, typer.Option("--key", help="The camera's device key.", show_default=False)]
LatOpt = Annotated[float | None, typer.Option(min=-90, max=90, help="Latitude (moving camera).")]
LonOpt = Annotated[float | None, typer.Option(min=-180, max=180, help="Longitude (moving camera).")]
HeartbeatOpt = Annotated[
    float,
    typer.Option(
        "--heartbeat-s",
        min=0.5,
        max=3600,
        help="Seconds between the camera's heartbeats to the center (it shows the camera offline "
        "after 60 s without one).",
    ),
]


def _say(line: str) -> None:
    err.print(escape(line), highlight=False)


@contextlib.contextmanager
def _on_sigterm(handler: Callable[[], None]) -> Iterator[None]:
    """Run ``handler`` on SIGTERM (a service manager's stop) while in the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, lambda signum, frame: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _interrupt() -> None:
    raise KeyboardInterrupt


def watch(
    folder: Annotated[Path, typer.Argument(help="Folder the camera drops images in.", show_default=False)],
    camera: CameraOpt,
    center: CenterOpt,
    key: KeyOpt,
    lat: LatOpt = None,
    lon: LonOpt = None,
    heading: Annotated[
        float | None, typer.Option(min=0, max=359.999, help="Travel heading of a moving camera, degrees.")
    ] = None,
    poll: Annotated[float, typer.Option(min=0.05, max=3600, help="Seconds between folder scans.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Upload what is there, then exit.")] = False,
    heartbeat_s: HeartbeatOpt = 20.0,
    settle_s: Annotated[
        float,
        typer.Option(
            "--settle-s",
            min=0,
            max=3600,
            help="A file is sent once unchanged for this many seconds (a copy still being written waits).",
        ),
    ] = 2.0,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            min=1,
            help="Larger files are not read nor sent but moved to failed/ "
            "(default: the settings' server.max_upload_bytes, which the center refuses beyond).",
            show_default=False,
        ),
    ] = None,
    keep_done_h: Annotated[
        float,
        typer.Option(
            "--keep-done-h",
            min=0,
            help="Hours a sent image stays in done/ before it is deleted (0: deleted once the center "
            "has it). Plate photos are personal data: keep this short.",
        ),
    ] = 24.0,
    keep_failed_days: Annotated[
        float,
        typer.Option(
            "--keep-failed-days",
            min=0.01,
            help="Days a refused image stays in failed/ (with its reason) for a person to look at, "
            "then deleted.",
        ),
    ] = 30.0,
) -> None:
    """Upload the images dropped in FOLDER to the center (then moved to done/ or failed/).

    A sidecar <stem>.json (time, lat, lon, heading_deg), written first, wins over file time and options.
    The camera sends a heartbeat at start and every --heartbeat-s (recording: the folder is
    readable; its last position), so the center shows it online while this runs. A folder that goes
    away is waited for (said once). A refused key (to an upload or a heartbeat) stops it: exit 2,
    files left in place. SIGTERM stops it cleanly after the file in hand. One file never stops it:
    a file it cannot read is tried a few times then moved to failed/; a center that is down is
    said once and retried with a growing pause. done/ and failed/ are emptied of files older than
    --keep-done-h and --keep-failed-days.
    """
    import httpx

    from rtcc.errors import ConfigError
    from rtcc.plates.agent_health import BeatState, CameraHeartbeat
    from rtcc.plates.watch import CameraConfig, FolderUnreadable, FolderWatcher, KeyRefused
    from rtcc.settings import load_settings

    if not folder.is_dir():
        fail(f"{escape(str(folder))} is not a folder", 2)
    if (lat is None) != (lon is None):
        fail("give both --lat and --lon, or neither", 2)
    if max_bytes is None:
        try:
            max_bytes = load_settings().server.max_upload_bytes
        except ConfigError as exc:
            fail(f"{escape(exc.message)} (or give --max-bytes)", 2)

    def report(name: str, outcome: str, detail: str) -> None:
        line = {"file": name, "outcome": outcome, "detail": detail}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    def on_folder(readable: bool, why: str) -> None:
        if readable:
            _say(f"{folder} is readable again: watching it")
        else:
            _say(f"cannot read {folder} ({why}); waiting for it (heartbeat: recording false)")

    def on_center(answers: bool, why: str) -> None:
        if answers:
            _say(f"the center answers again: sending the images waiting in {folder}")
        else:
            _say(f"the center does not take images now ({why}); files wait, retrying with a growing pause")

    cfg = CameraConfig(center=center, camera=camera, key=key, lat=lat, lon=lon, heading_deg=heading)
    with httpx.Client(timeout=60) as client:
        watcher = FolderWatcher(
            folder,
            cfg,
            client,
            report,
            on_folder=on_folder,
            on_center=on_center,
            warn=_say,
            settle_s=settle_s,
            max_bytes=max_bytes,
            keep_done_s=keep_done_h * 3600.0,
            keep_failed_s=keep_failed_days * 86400.0,
        )

        def state() -> BeatState:
            where = watcher.last_position
            return BeatState(
                recording=watcher.readable(),
                lat=None if where is None else where[0],
                lon=None if where is None else where[1],
                heading_deg=None if where is None else where[2],
            )

        beat = CameraHeartbeat(
            center, camera, key, state, interval_s=heartbeat_s, say=_say, on_key_refused=watcher.refuse_key
        )
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            watcher.stop()

        try:
            with _on_sigterm(stop):
                beat.start()
                totals = watcher.run(poll_s=poll, once=once)
        except KeyRefused as exc:
            fail(f"the center refused the camera key: {escape(str(exc))}", 2)
        except FolderUnreadable as exc:  # --once and the folder cannot be listed
            fail(f"cannot read {escape(str(folder))}: {escape(exc.strerror or str(exc))}", 2)
        except OSError as exc:  # not expected (files are handled one by one): a message, not a traceback
            fail(f"the watcher stopped: {escape(str(exc))}", 2)
        except KeyboardInterrupt:
            return
        finally:
            beat.stop()
    if stopped:
        err.print(
            f"stopped; done: {totals['done']}, failed: {totals['failed']}, "
            f"left in the folder: {totals['retry']}"
        )
        return
    err.print(f"done: {totals['done']}, failed: {totals['failed']}, left to retry: {totals['retry']}")
    if totals["retry"]:
        raise typer.Exit(3)


def video(
    source: Annotated[str, typer.Argument(help="A video file or an rtsp:// URL.", show_default=False)],
    camera: CameraOpt,
    center: Annotated[
        str | None, typer.Option("--center", help="Send each pass to this center (else print it).")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="The camera's device key (with --center).")] = None,
    buffer: Annotated[
        Path | None,
        typer.Option(
            "--buffer",
            help="With --center: folder of the on-disk buffer of passes not delivered yet "
            "(default: ~/.local/state/rtcc/plates-buffer/CAMERA).",
            show_default=False,
        ),
    ] = None,
    drain_s: Annotated[
        float,
        typer.Option(
            "--drain-s", min=0, max=86400, help="At the end, seconds to keep retrying buffered passes."
        ),
    ] = 60.0,
    every_n: Annotated[int, typer.Option("--every-n", min=1, max=1000, help="Read every n-th frame.")] = 3,
    heading: Annotated[
        float | None,
        typer.Option(
            min=0, max=359.999, help="Where the camera looks (fixed) or travels (--moving), degrees."
        ),
    ] = None,
    moving: Annotated[bool, typer.Option("--moving", help="The camera is on a moving vehicle.")] = False,
    lat: LatOpt = None,
    lon: LonOpt = None,
    gps_track: Annotated[
        Path | None,
        typer.Option(
            "--gps-track",
            help="A moving camera's GPS log: GPX (trkpt with time), NMEA 0183 ($GPRMC/$GNRMC) or CSV "
            "time,lat,lon[,heading_deg]. Each pass gets the position at its best frame's time "
            "(implies --moving; a video file needs --start).",
            show_default=False,
        ),
    ] = None,
    gpsd: Annotated[
        str | None,
        typer.Option(
            "--gpsd",
            help="A live stream in a moving car: its position from gpsd at HOST:PORT (TPV reports), as "
            "with --gps-track (implies --moving).",
            show_default=False,
        ),
    ] = None,
    gps_max_gap_s: Annotated[
        float,
        typer.Option(
            "--gps-max-gap-s",
            min=0,
            max=86400,
            help="A pass further than this from any GPS fix gets no track position (--lat/--lon if given).",
        ),
    ] = 10.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="Wall-clock time of the first frame, ISO 8601 (default: when the first frame is decoded)."
        ),
    ] = None,
    reconnect: Annotated[
        bool,
        typer.Option(
            "--reconnect/--no-reconnect",
            help="rtsp:// streams: when the stream errors, ends or stalls, reconnect with back-off "
            "(1 s doubling to 30 s) until stopped. Files always end at their end.",
        ),
    ] = True,
    stall_s: Annotated[
        float,
        typer.Option(
            "--stall-s", min=1, max=600, help="Seconds without data before a stream counts as stalled."
        ),
    ] = 10.0,
    heartbeat_s: HeartbeatOpt = 20.0,
    threads: Annotated[int, typer.Option(min=1, max=64, help="ONNX Runtime threads per model.")] = 1,
) -> None:
    """Read the plates in a video or RTSP stream: one read per vehicle pass (JSON line per pass).

    With --center each pass is written to the --buffer folder first and uploaded from there, oldest
    first, while the video goes on; a center that cannot be reached (or answers 5xx) is retried with
    back-off, and passes still buffered after --drain-s at the end are delivered on the next run
    (exit 3). A pass the center refuses as bad is reported and kept with the reason in the buffer's
    refused/ folder (exit 2 at the end); a refused
    key stops the command (exit 2), keeping the buffer. With --center the camera also sends a
    heartbeat at start and every --heartbeat-s (recording: frames are decoding; a moving camera's
    last position), so the center shows it online while this runs. An rtsp:// stream that drops
    is reconnected (the pass in progress is sent first). Ctrl-C or SIGTERM stop cleanly: the pass
    in progress is kept, buffered passes stay buffered.
    """
    from rtcc.plates.gps_live import GpsdTrack
    from rtcc.plates.gps_track import TrackError, load_track
    from rtcc.plates.recognize import PlateReader
    from rtcc.plates.video import is_stream

    if (center is None) != (key is None):
        fail("give both --center and --key to send reads, or neither to print them", 2)
    if buffer is not None and center is None:
        fail("--buffer goes with --center (only passes sent to a center are buffered)", 2)
    if (lat is None) != (lon is None):
        fail("give both --lat and --lon, or neither", 2)
    t0: datetime | None = None
    if start is not None:
        try:
            t0 = datetime.fromisoformat(start)
        except ValueError:
            fail(f"--start {escape(start)!r} is not an ISO 8601 time", 2)
        if t0.tzinfo is None:
            fail("--start needs a time zone (e.g. 2026-11-21T12:00:00Z)", 2)
    stream = is_stream(source)
    if not stream and not Path(source).is_file():
        fail(f"{escape(source)} is not a file nor an rtsp:// URL", 2)
    track: GpsTrack | GpsdTrack | None = None
    if gps_track is not None and gpsd is not None:
        fail("give --gps-track (a recorded log) or --gpsd (live), not both", 2)
    if gpsd is not None:
        if not stream:
            fail("--gpsd is for a live rtsp:// stream; a recorded video takes --gps-track", 2)
        host, _, port = gpsd.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            fail(f"--gpsd {escape(gpsd)!r} is not HOST:PORT (gpsd listens on 2947)", 2)
        track = GpsdTrack(gpsd)
        moving = True
    if gps_track is not None:
        try:
            track = load_track(gps_track)
        except TrackError as exc:
            fail(f"--gps-track {escape(str(gps_track))} is not a readable GPS track: {escape(str(exc))}", 2)
        if not stream and t0 is None:
            fail(
                "--gps-track with a video file needs --start (the wall-clock time of its first frame) "
                f"to find each pass on the track ({track.start.isoformat()} to {track.end.isoformat()})",
                2,
            )
        moving = True
        if track.skipped:
            _say(f"--gps-track: {track.skipped} bad line(s) or point(s) without a time skipped")
    if isinstance(track, GpsdTrack):
        track.start()
    # most sampled frames hold no plate: the tiled rescue pass (~0.5 s on such a frame) is for stills
    reader = PlateReader.load(threads=threads, rescue=False)
    placer = _Placer(track, gps_max_gap_s, lat, lon, heading if moving else None)
    try:
        _read_video(
            source, camera, center, key, reader, placer, buffer, drain_s, t0,
            every_n=every_n, moving=moving, heading=heading, lat=lat, lon=lon,
            live=stream and reconnect, stall_s=stall_s, heartbeat_s=heartbeat_s,
        )  # fmt: skip
    finally:
        if isinstance(track, GpsdTrack):
            track.stop()


def _read_video(
    source: str,
    camera: str,
    center: str | None,
    key: str | None,
    reader: PlateReader,
    placer: _Placer,
    buffer: Path | None,
    drain_s: float,
    t0: datetime | None,
    *,
    every_n: int,
    moving: bool,
    heading: float | None,
    lat: float | None,
    lon: float | None,
    live: bool,
    stall_s: float,
    heartbeat_s: float,
) -> None:
    """Print the passes (no center) or send them (exit codes: ``video``)."""
    from rtcc.errors import ValidationFailed
    from rtcc.plates.video import StreamState, passes

    state = StreamState()
    read_passes = partial(
        passes,
        source,
        reader,
        every_n=every_n,
        camera_heading=heading,
        moving=moving,
        reconnect=live,
        state=state,
        say=_say,
        timeout_s=stall_s,
    )
    if center is None or key is None:
        origin = _Origin(t0, state)
        try:
            with _on_sigterm(_interrupt):
                for p in read_passes(on_first_frame=origin.first_frame):
                    at = origin.time(p.best.t)
                    place = placer.place(at, p)
                    _print_line({"camera": camera, "time": at.isoformat(), **p.to_json(), **place})
        except ValidationFailed as exc:
            placer.summary()
            fail(escape(exc.message), 2)
        except KeyboardInterrupt:
            pass
        placer.summary()
        return
    from rtcc.plates.watch import CameraConfig

    # a fixed camera's heading is where it looks: the direction comes from tracking instead
    cfg = CameraConfig(
        center=center, camera=camera, key=key, lat=lat, lon=lon, heading_deg=heading if moving else None
    )
    _video_to_center(
        source,
        read_passes,
        cfg,
        buffer,
        drain_s,
        t0,
        moving=moving,
        placer=placer,
        state=state,
        stall_s=stall_s,
        heartbeat_s=heartbeat_s,
    )


class _Placer:
    """Where a moving camera was for each pass: its GPS track, else ``--lat/--lon``; counts the misses."""

    def __init__(
        self,
        track: GpsTrack | GpsdTrack | None,
        max_gap_s: float,
        lat: float | None,
        lon: float | None,
        heading: float | None,
    ) -> None:
        self.track = track
        self.max_gap_s = max_gap_s
        self.lat, self.lon, self.heading = lat, lon, heading
        self.n_passes = 0
        self.n_no_fix = 0

    def now(self, at: datetime | None) -> tuple[float | None, float | None, float | None, bool | None]:
        """(lat, lon, heading, gps_lock) at ``at`` (None: now) for the heartbeat."""
        if self.track is not None:
            tp = self.track.at(at or datetime.now(UTC), self.max_gap_s)
            if tp is not None:
                return tp.lat, tp.lon, tp.heading_deg if tp.heading_deg is not None else self.heading, True
            return self.lat, self.lon, self.heading, False
        return self.lat, self.lon, self.heading, None

    def place(self, at: datetime, p: Pass) -> dict[str, Any]:
        """The pass's position fields (none without a track).

        A track heading also sets the pass's direction (a moving camera's passes go its way).
        """
        if self.track is None:
            return {}
        from rtcc.plates.ingest import compass

        self.n_passes += 1
        tp = self.track.at(at, self.max_gap_s)
        if tp is None:
            self.n_no_fix += 1
            return {"lat": self.lat, "lon": self.lon, "heading_deg": self.heading, "gps_fix": False}
        heading = tp.heading_deg if tp.heading_deg is not None else self.heading
        if heading is not None:
            p.direction = compass(heading)  # as travel() does with --heading for a moving camera
        return {
            "lat": round(tp.lat, 7),
            "lon": round(tp.lon, 7),
            "heading_deg": None if heading is None else round(heading, 2),
            "gps_fix": True,
        }

    def summary(self) -> None:
        if self.track is not None and self.n_no_fix:
            fallback = "--lat/--lon used" if self.lat is not None else "no position sent"
            _say(
                f"{self.n_no_fix} of {self.n_passes} pass(es) more than {self.max_gap_s:g} s from any GPS "
                f"fix of the track: no track position ({fallback})"
            )


class _Origin:
    """The wall-clock time of a video's first frame: ``--start``, else when that frame was decoded.

    Pass times are seconds since the first frame (:func:`rtcc.plates.video.frames`), whatever the
    stream's own timestamps start at. A reconnecting stream tells its own anchor (``state.epoch``,
    :func:`rtcc.plates.video.live_frames`: when the first frame arrived, not when the decoder
    handed it over after probing) and its times go on counting wall-clock seconds across
    reconnects.
    """

    def __init__(self, start: datetime | None, state: StreamState | None = None) -> None:
        self.start = start
        self.state = state
        self.at = start if start is not None else datetime.now(UTC)

    def first_frame(self) -> None:
        if self.start is None:
            epoch = None if self.state is None else self.state.epoch
            self.at = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)

    def time(self, t: float) -> datetime:
        return self.at + timedelta(seconds=t)


_print_lock = threading.Lock()


def _print_line(line: dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def _video_to_center(
    source: str,
    read_passes: Callable[..., Iterator[Pass]],
    cfg: CameraConfig,
    buffer: Path | None,
    drain_s: float,
    t0: datetime | None,
    *,
    moving: bool,
    placer: _Placer,
    state: StreamState,
    stall_s: float,
    heartbeat_s: float,
) -> None:
    """Read the passes (``read_passes``: :func:`rtcc.plates.video.passes` with the source and its
    options bound) into the on-disk buffer while a sender thread delivers them (exit codes: video)."""
    import cv2
    import httpx

    from rtcc.devices.buffer import Spool
    from rtcc.errors import ValidationFailed
    from rtcc.plates.agent_health import BeatState, CameraHeartbeat
    from rtcc.plates.outbox import PassOutbox, default_buffer, pass_item
    from rtcc.plates.video import StopReading

    folder = buffer if buffer is not None else default_buffer(cfg.camera)
    try:
        spool = Spool(folder)
    except (OSError, sqlite3.Error) as exc:
        fail(f"cannot open the buffer {escape(str(folder))}: {escape(str(exc))}", 2)
    where = escape(str(folder))

    def health(ok: bool, why: str) -> None:
        if ok:
            err.print(f"center reachable again; delivering {len(spool)} buffered pass(es)", highlight=False)
        else:
            err.print(f"center not reachable ({escape(why)}); passes are kept in {where}", highlight=False)

    def refused(line: dict[str, Any], why: str) -> None:
        _skip(
            Path(source),
            f"the center refused the pass {line['plate']} at {line['time']}: {escape(why)}; "
            f"kept in {escape(str(spool.refused_dir))}",
        )

    backlog = len(spool)
    if backlog:
        err.print(
            f"{backlog} pass(es) buffered by an earlier run in {where}: delivered first", highlight=False
        )
    origin = _Origin(t0, state)
    stop = StopReading()

    def beat_state() -> BeatState:
        last_t = state.last_t
        b_lat, b_lon, b_heading, lock = placer.now(None if last_t is None else origin.time(last_t))
        return BeatState(
            recording=state.decoding(stall_s),
            lat=b_lat,
            lon=b_lon,
            heading_deg=b_heading if moving else None,
            gps_lock=lock,
        )

    beat = CameraHeartbeat(
        cfg.center,
        cfg.camera,
        cfg.key,
        beat_state,
        interval_s=heartbeat_s,
        say=_say,
        on_key_refused=lambda why: stop.at_pass_end(),  # the passes in progress are kept whole
    )
    bad_video: str | None = None
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
        outbox = PassOutbox(
            spool,
            client,
            cfg,
            delivered=lambda ln, r: _print_line({**ln, "read": r}),
            refused=refused,
            health=health,
        )
        interrupted = False
        try:
            with _on_sigterm(_interrupt):
                # the first beat goes with the reading: a refused key stops it once the passes in
                # progress have ended, and they stay buffered (as with a refused upload)
                beat.start(wait_first=False)
                outbox.start()
                for p in read_passes(on_first_frame=origin.first_frame, stop=stop):
                    at = origin.time(p.best.t)
                    place = placer.place(at, p)
                    ok, jpeg = cv2.imencode(".jpg", p.best.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    if not ok:
                        _skip(Path(source), f"could not encode the frame of pass {p.plate} as JPEG; skipped")
                        continue
                    outbox.put(*pass_item(cfg.camera, at, p, bytes(jpeg), place))
                    if outbox.key_refused is not None:
                        break
        except ValidationFailed as exc:
            bad_video = exc.message  # the passes read before it are still delivered
        except KeyboardInterrupt:
            interrupted = True
        key_refused = outbox.key_refused or beat.key_refused
        try:  # the heartbeat goes on while the buffer drains (recording: false)
            left = outbox.finish(0.0 if interrupted or key_refused else drain_s)
        except KeyboardInterrupt:  # no more waiting: what is left stays buffered
            left = outbox.finish(0.0)
        finally:
            beat.stop()
        key_refused = outbox.key_refused or beat.key_refused
        if not outbox.sending:
            spool.close()
    placer.summary()
    if key_refused is not None:
        fail(
            f"the center refused the camera key: {escape(key_refused)}; {left} pass(es) kept in {where}",
            2,
        )
    if bad_video is not None:
        fail(
            f"{escape(bad_video)} ({left} pass(es) still buffered in {where})" if left else escape(bad_video),
            2,
        )
    if left:
        fail(
            f"{left} pass(es) not delivered yet (center unreachable): kept in {where}, "
            "delivered on the next run",
            3,
        )
    if outbox.n_refused:
        fail(
            f"the center refused {outbox.n_refused} pass(es) (see above); they are kept with the reason "
            f"in {escape(str(spool.refused_dir))}",
            2,
        )


def register(app: typer.Typer) -> None:
    """Add the ``plates`` command group (``plates read``, ``watch``, ``video``) to ``app``."""
    plates_app = typer.Typer(help="Licence plates: read plates in images.", no_args_is_help=True)
    plates_app.command("read")(read)
    plates_app.command("watch")(watch)
    plates_app.command("video")(video)
    app.add_typer(plates_app, name="plates")
