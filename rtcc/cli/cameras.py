"""``rtcc cameras``: the camera registry from the command line.

* ``rtcc cameras list [--kind K] [--status S]`` — a table (no owner contact);
* ``rtcc cameras stats`` — the transparency counts as JSON;
* ``rtcc cameras visible LAT LON [--at TIME]`` — cameras that could see a point
  (negative coordinates work as they are: ``visible 33.515 -86.805``; a time
  outside 1970–9998 UTC exits 2);
* ``rtcc cameras probe URL`` — open a live source and read one frame
  (exit 3 when it is unreachable);
* ``rtcc cameras test-stream [--size WxH]`` — serve FFmpeg's test picture as an
  RTSP stream on loopback (to try live view without a camera; even sides
  16–4096, exit 2 otherwise, exit 3 when FFmpeg cannot start it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from rtcc.cli.output import fail, out

if TYPE_CHECKING:
    from rtcc.store.db import Store

MIN_SIDE, MAX_SIDE = 16, 4096
"""Accepted width and height of ``test-stream`` (even: H.264 with 4:2:0 colour needs it)."""

cameras_app = typer.Typer(help="Cameras: registry, visibility, live sources.", no_args_is_help=True)


def _store(config: Path | None) -> Store:
    from rtcc.cli.main import settings_or_exit
    from rtcc.errors import RtccError
    from rtcc.store.db import Store
    from rtcc.store.migrate import check_current

    settings = settings_or_exit(config)
    try:
        check_current(settings.database_url)
    except RtccError as exc:
        fail(exc.message, 3)
    return Store(settings.database_url)


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False),
]


@cameras_app.command("list")
def list_cmd(
    kind: Annotated[list[str] | None, typer.Option(help="city, in_car or community (repeatable).")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            help="pending_verification, pending_approval, active, rejected or withdrawn (repeatable)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """The registered cameras (no owner contact)."""
    from typing import get_args

    from rtcc.cameras.models import CameraStatus
    from rtcc.cameras.registry import list_cameras

    bad = set(kind or []) - {"city", "in_car", "community"}
    if bad:
        fail(f"unknown kind(s) {sorted(bad)}; use city, in_car or community")
    statuses = get_args(CameraStatus)
    bad = set(status or []) - set(statuses)
    if bad:
        fail(f"unknown status(es) {sorted(bad)}; use {', '.join(statuses)}")
    store = _store(config)
    try:
        rows = store.run(lambda s: list_cameras(s, kinds=kind, statuses=status))
    finally:
        store.close()
    table = Table("id", "kind", "name", "level", "status", "position", "view", "live")
    for r in rows:
        pos = f"{r.lat:.5f},{r.lon:.5f}" if r.lat is not None else f"device {r.device_id}"
        view = f"{r.bearing_deg:g}°±{r.fov_deg / 2:g}° {r.range_m:g} m"
        table.add_row(str(r.id), r.kind, r.name, r.level, r.status, pos, view, "yes" if r.stream_url else "")
    out.print(table)


@cameras_app.command("stats")
def stats_cmd(config: ConfigOpt = None) -> None:
    """Camera and footage-request counts (the transparency page's), as JSON."""
    from rtcc.cameras.transparency import stats

    store = _store(config)
    try:
        out.print_json(json.dumps(store.run(stats)))
    finally:
        store.close()


# ignore_unknown_options: a western longitude such as -86.805 is an argument, not an option
@cameras_app.command("visible", context_settings={"ignore_unknown_options": True})
def visible_cmd(
    lat: Annotated[float, typer.Argument(min=-90, max=90, help="Latitude, degrees.")],
    lon: Annotated[float, typer.Argument(min=-180, max=180, help="Longitude, degrees.")],
    at: Annotated[str | None, typer.Option(help="ISO time with a timezone (default now).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Cameras that could see a point at a time: integrated first, then by distance."""
    from rtcc.cameras.visibility import cameras_seeing, check_at
    from rtcc.errors import ValidationFailed

    when = datetime.now(UTC)
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at {at!r} is not an ISO time (e.g. 2026-11-01T12:00:00Z)")
        if when.tzinfo is None:
            fail("--at needs a timezone (e.g. 2026-11-01T12:00:00Z)")
        try:
            when = check_at(when)
        except ValidationFailed as exc:
            fail("--" + exc.message)
    store = _store(config)
    try:
        found = store.run(lambda s: cameras_seeing(s, lat, lon, when))
    finally:
        store.close()
    for v in found:
        out.print(
            f"{v.camera_id}  {v.kind:<9} {v.level:<10} {v.distance_m:7.1f} m  {v.bearing_deg:5.1f}°  "
            f"{'live ' if v.live else ''}{v.name}",
            highlight=False,
        )
    if not found:
        out.print("no camera can see that point then")


@cameras_app.command("probe")
def probe_cmd(
    url: Annotated[str, typer.Argument(help="rtsp://, http(s):// or synthetic:// source.")],
    timeout: Annotated[float, typer.Option(min=0.5, max=60, help="Seconds to wait.")] = 5.0,
) -> None:
    """Open a live source and read one frame."""
    from rtcc.cameras.sources import check_stream_url, open_source, redact
    from rtcc.errors import RtccError

    if "://" not in url:
        fail(f"{url!r} is not a URL (rtsp://, http(s)://, synthetic://)")
    try:
        check_stream_url(url)
    except ValueError as exc:
        fail(str(exc))
    try:
        src = open_source(url, timeout_s=timeout)
        try:
            frame = src.read()
        finally:
            src.close()
    except RtccError as exc:
        fail(exc.message, 3)
    if frame is None:
        fail(f"{redact(url)} ended without a frame", 3)
    h, w = frame.shape[:2]
    out.print(f"{redact(url)}: ok, {w}x{h}")


@cameras_app.command("test-stream")
def test_stream_cmd(
    fps: Annotated[float, typer.Option(min=1, max=60, help="Frames per second.")] = 10.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "640x360",
) -> None:
    """Serve FFmpeg's test picture as an RTSP stream on loopback until Ctrl-C."""
    import asyncio
    import contextlib

    from rtcc.cameras.rtsp_relay import RtspTestStream

    w, _, h = size.partition("x")
    if not (w.isdigit() and h.isdigit()):
        fail(f"--size {size!r} is not WIDTHxHEIGHT")
    width, height = int(w), int(h)
    if not all(MIN_SIDE <= n <= MAX_SIDE and n % 2 == 0 for n in (width, height)):
        fail(
            f"--size {size} is not accepted: width and height must be even numbers from {MIN_SIDE} "
            f"to {MAX_SIDE} (H.264 needs even sides), e.g. 640x360"
        )
    if not RtspTestStream.available():
        fail("ffmpeg is not installed", 3)

    async def _run() -> None:
        stream = RtspTestStream(size=(width, height), fps=fps)
        try:
            try:
                url = await stream.start()
            except (RuntimeError, OSError) as exc:
                fail(f"the test stream did not start: {exc}", 3)
            out.print(f"serving {url} (Ctrl-C stops)")
            await asyncio.Event().wait()
        finally:
            await stream.stop()  # FFmpeg, the server and the temporary folder, however it ends

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run())


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(cameras_app, name="cameras")
