"""``rtcc plates read IMAGE...`` — the licence-plate recognition contract.

One JSON object per line per image, in argument order::

    {"file": "a.jpg", "plates": [{"text": "ABC123", "confidence": 0.97, "box": [x, y, w, h], "region": "TX",
                                  "char_confidences": [0.99, 0.97, 0.98, 0.95, 0.99, 0.96]}]}

best plate first. Two extra fields: ``region`` is the US state or EU country when told, else
``null``; ``char_confidences`` is the probability of each character of ``text``. A file that
cannot be read as an image is named on stderr and skipped; the command goes on with the others and
exits 2 at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rtcc.cli.output import err, fail

MAX_FILE_BYTES = 64 * 2**20
"""Larger files are refused unread (a camera frame is a few MB)."""


def _skip(path: Path, why: str) -> None:
    err.print(f"[bold red]error:[/] {escape(str(path))}: {why}", highlight=False)


def read(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, …).", show_default=False)],
    threads: Annotated[int, typer.Option(min=1, max=64, help="ONNX Runtime threads per model.")] = 1,
) -> None:
    """Detect and read the licence plates in each image; one JSON line per image."""
    import cv2
    import numpy as np

    from rtcc.plates.recognize import PlateReader

    reader = PlateReader.load(threads=threads)
    bad = 0
    for path in images:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                _skip(path, f"larger than {MAX_FILE_BYTES >> 20} MiB, skipped")
                bad += 1
                continue
            data = np.fromfile(path, dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        except OSError as exc:
            _skip(path, f"cannot read: {exc.strerror or exc}")
            bad += 1
            continue
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
) -> None:
    """Upload the images dropped in FOLDER to the center (then moved to done/ or failed/).

    A sidecar <stem>.json (time, lat, lon, heading_deg), written first, wins over file time and options.
    """
    import httpx

    from rtcc.plates.watch import CameraConfig, FolderWatcher, KeyRefused

    if not folder.is_dir():
        fail(f"{escape(str(folder))} is not a folder", 2)
    if (lat is None) != (lon is None):
        fail("give both --lat and --lon, or neither", 2)

    def report(name: str, outcome: str, detail: str) -> None:
        line = {"file": name, "outcome": outcome, "detail": detail}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    cfg = CameraConfig(center=center, camera=camera, key=key, lat=lat, lon=lon, heading_deg=heading)
    with httpx.Client(timeout=60) as client:
        watcher = FolderWatcher(folder, cfg, client, report)
        try:
            totals = watcher.run(poll_s=poll, once=once)
        except KeyRefused as exc:
            fail(f"the center refused the camera key: {escape(str(exc))}", 2)
        except KeyboardInterrupt:
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
    start: Annotated[
        str | None,
        typer.Option(help="Wall-clock time of the first frame of a file, ISO 8601 (default: now)."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, max=64, help="ONNX Runtime threads per model.")] = 1,
) -> None:
    """Read the plates in a video or RTSP stream: one read per vehicle pass (JSON line per pass)."""
    from datetime import UTC, datetime, timedelta

    from rtcc.errors import ValidationFailed
    from rtcc.plates.recognize import PlateReader
    from rtcc.plates.video import is_stream, passes

    if (center is None) != (key is None):
        fail("give both --center and --key to send reads, or neither to print them", 2)
    if (lat is None) != (lon is None):
        fail("give both --lat and --lon, or neither", 2)
    t0 = datetime.now(UTC)
    if start is not None:
        try:
            t0 = datetime.fromisoformat(start)
        except ValueError:
            fail(f"--start {escape(start)!r} is not an ISO 8601 time", 2)
        if t0.tzinfo is None:
            fail("--start needs a time zone (e.g. 2026-11-21T12:00:00Z)", 2)
    if not is_stream(source) and not Path(source).is_file():
        fail(f"{escape(source)} is not a file nor an rtsp:// URL", 2)
    # most sampled frames hold no plate: the tiled rescue pass (~0.5 s on such a frame) is for stills
    reader = PlateReader.load(threads=threads, rescue=False)
    sender = None
    if center is not None and key is not None:
        from rtcc.plates.watch import CameraConfig

        # a fixed camera's heading is where it looks: the direction comes from tracking instead
        sender = CameraConfig(
            center=center, camera=camera, key=key, lat=lat, lon=lon, heading_deg=heading if moving else None
        )
    import httpx

    with httpx.Client(timeout=60) as client:
        try:
            for p in passes(source, reader, every_n=every_n, camera_heading=heading, moving=moving):
                at = t0 + timedelta(seconds=p.best.t)
                line = {"camera": camera, "time": at.isoformat(), **p.to_json()}
                if sender is not None:
                    line["read"] = _send_pass(client, sender, p, at)
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
        except ValidationFailed as exc:
            fail(escape(exc.message), 2)
        except KeyboardInterrupt:
            return


def _send_pass(client: Any, cfg: Any, p: Any, at: Any) -> Any:
    """Upload a pass's best frame with its voted plate; the stored read, or fail."""
    import cv2
    import httpx

    from rtcc.plates.watch import post_image

    ok, buf = cv2.imencode(".jpg", p.best.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        fail("could not encode the frame as JPEG", 3)
    extra = {
        "plate": p.plate,
        "box": ",".join(str(int(v)) for v in p.best.box),
        "confidence": repr(round(float(p.confidence), 4)),
    }
    if p.direction is not None:
        extra["direction"] = p.direction
    if p.region is not None:
        extra["region"] = p.region
    try:
        resp = post_image(client, cfg, bytes(buf), "frame.jpg", at, extra)
    except httpx.HTTPError as exc:
        fail(f"center not reachable: {escape(str(exc))}", 3)
    if resp.status_code not in (200, 201):
        fail(f"the center refused the read: {resp.status_code} {escape(resp.text[:300])}", 2)
    reads = resp.json()["reads"]
    return reads[0] if reads else None


def register(app: typer.Typer) -> None:
    """Add the ``plates`` command group (``plates read``, ``watch``, ``video``) to ``app``."""
    plates_app = typer.Typer(help="Licence plates: read plates in images.", no_args_is_help=True)
    plates_app.command("read")(read)
    plates_app.command("watch")(watch)
    plates_app.command("video")(video)
    app.add_typer(plates_app, name="plates")
