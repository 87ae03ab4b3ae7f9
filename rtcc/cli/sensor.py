"""``rtcc sensor`` — the acoustic sensor agent: audio in, pulses out to the center, nothing lost.

::

    rtcc sensor --device-id ac-0001 --key KEY --lat 33.52 --lon -86.81 --file clip.flac
    arecord -f S16_LE -r 12000 -t raw | rtcc sensor --device-id ac-0001 --stdin --rate 12000 ...
    ffmpeg -i rec.wav -ac 1 -ar 12000 -f s16le - | rtcc sensor ... --stdin --rate 12000 \
        --as-fast-as-possible --start-utc 2024-05-01T22:14:03.25Z

``--stdin`` is live audio (stamped by the clock as it arrives) unless ``--as-fast-as-possible``
says it is a recording: then, as for ``--file``, samples are stamped by their count from the
start, which is ``--start-utc`` when given (else the clock when the first audio arrives).

Exit codes: 0 input read and every pulse delivered; 2 bad input or options (the message names
the option), a sound card that stopped delivering audio, a device key the center refused (every
pulse stays spooled), pulses the center refused for good (kept in ``<spool-dir>/refused/``
with its reason), or pulses the spool could not store (``--spool-max-mb`` reached, a full or
failing disk: each was sent directly, and those the center did not take then are lost; the
summary counts both); 3 the input ended while pulses were still spooled because the center was
unreachable, or sent over MQTT without a key check over HTTPS confirming them (they are sent
again on the next start with the same ``--spool-dir``; the center drops duplicates).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from rtcc.acoustic.agent import (
    PCM_FORMATS,
    AudioSource,
    FileSource,
    PcmSource,
    SensorAgent,
    SoundDeviceSource,
    Uplink,
    stdin_binary,
)
from rtcc.acoustic.clock import SensorClock
from rtcc.acoustic.detect import AudioError
from rtcc.devices.buffer import Spool
from rtcc.events import Position

_err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the top-level ``sensor`` command to ``app``."""

    @app.command("sensor")
    def sensor(
        device_id: Annotated[str, typer.Option("--device-id", help="The sensor's registered device id.")],
        lat: Annotated[float, typer.Option("--lat", help="Microphone latitude, degrees.")],
        lon: Annotated[float, typer.Option("--lon", help="Microphone longitude, degrees.")],
        key: Annotated[
            str | None,
            typer.Option("--key", help="Device key (default: $RTCC_SENSOR_KEY).", show_default=False),
        ] = None,
        alt: Annotated[float | None, typer.Option("--alt", help="Microphone height, m (WGS84).")] = None,
        center: Annotated[str, typer.Option("--center", help="Center base URL (HTTPS ingest).")] = (
            "http://127.0.0.1:8470"
        ),
        mqtt: Annotated[
            str | None, typer.Option("--mqtt", help="MQTT listener host:port (NATS); tried before HTTPS.")
        ] = None,
        spool_dir: Annotated[Path, typer.Option("--spool-dir", help="Folder of the on-disk outbox.")] = Path(
            "sensor-spool"
        ),
        file: Annotated[Path | None, typer.Option("--file", help="Read audio from a file.")] = None,
        stdin: Annotated[bool, typer.Option("--stdin", help="Read raw PCM from standard input.")] = False,
        sound_device: Annotated[
            str | None,
            typer.Option("--sound-device", help="Read a sound card (name or 'default'; needs rtcc[sound])."),
        ] = None,
        rate: Annotated[int, typer.Option("--rate", help="Sample rate of stdin / sound card, Hz.")] = 12000,
        fmt: Annotated[str, typer.Option("--format", help=f"stdin PCM: {', '.join(PCM_FORMATS)}.")] = "s16le",
        channels: Annotated[int, typer.Option("--channels", help="Channels of stdin / sound card.")] = 1,
        fast: Annotated[
            bool,
            typer.Option(
                "--as-fast-as-possible",
                help="--file / --stdin is a recording: read it without real-time pacing, stamped by "
                "sample count from its start.",
            ),
        ] = False,
        start_utc: Annotated[
            str | None,
            typer.Option(
                "--start-utc",
                help="With --as-fast-as-possible: UTC of the recording's first sample, ISO 8601 "
                "(default: the clock when the first audio arrives).",
                show_default=False,
            ),
        ] = None,
        heartbeat_s: Annotated[
            float, typer.Option("--heartbeat-s", min=1.0, help="Seconds between heartbeats (≥ 1).")
        ] = 30.0,
        spool_max_mb: Annotated[
            float,
            typer.Option(
                "--spool-max-mb",
                min=0.1,
                help="Most MB the spool may hold; a pulse past it is sent directly, not stored.",
            ),
        ] = 1024.0,
        gpsd: Annotated[
            str, typer.Option("--gpsd", help="gpsd host:port for GPS time ('none' disables).")
        ] = "127.0.0.1:2947",
        clock_offset_s: Annotated[
            float, typer.Option("--clock-offset-s", help="UTC minus system clock without GPS, s.")
        ] = 0.0,
        threshold_db: Annotated[
            float | None, typer.Option("--threshold-db", help="Trigger level over the noise floor, dB.")
        ] = None,
        drain_timeout_s: Annotated[
            float, typer.Option("--drain-timeout-s", help="After the input ends, wait this long to deliver.")
        ] = 30.0,
        stall_s: Annotated[
            float,
            typer.Option(
                "--audio-stall-s",
                min=0.5,
                help="--sound-device: stop with an error after this long without audio, s.",
            ),
        ] = 10.0,
    ) -> None:
        """Run the acoustic sensor agent: detect pulses, stamp them with GPS time, deliver them."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        key = key or os.environ.get("RTCC_SENSOR_KEY")
        if not key:
            raise _fail("no device key: pass --key or set RTCC_SENSOR_KEY (issued by `rtcc devices add`)")
        if sum([file is not None, stdin, sound_device is not None]) != 1:
            raise _fail("choose exactly one input: --file PATH, --stdin or --sound-device NAME")
        try:
            pos = Position(lat=lat, lon=lon, alt_m=alt)
        except ValidationError as exc:
            raise _fail(f"--lat/--lon/--alt: {exc.errors()[0]['msg']}") from None
        if lat == 0.0 and lon == 0.0:
            raise _fail("--lat/--lon (0, 0) is not a real position; the center refuses it")
        if file is None and rate <= 0:
            raise _fail(f"--rate {rate}: the sample rate must be a positive number of Hz (e.g. 12000)")
        if file is None and channels < 1:
            raise _fail(f"--channels {channels}: at least 1")
        start: float | None = None
        if start_utc is not None:
            if not fast or sound_device is not None:
                raise _fail(
                    "--start-utc stamps a recording: use it with --as-fast-as-possible and --file or --stdin"
                )
            try:
                when = datetime.fromisoformat(start_utc)
            except ValueError:
                raise _fail(
                    f"--start-utc {start_utc!r}: not an ISO 8601 time (e.g. 2024-05-01T22:14:03.25Z)"
                ) from None
            start = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()
        try:
            source: AudioSource
            if file is not None:
                source = FileSource(file, fast=fast)
            elif stdin:
                source = PcmSource(stdin_binary(), rate_hz=rate, fmt=fmt, channels=channels, live=not fast)
            else:
                dev = None if sound_device in (None, "default") else sound_device
                source = SoundDeviceSource(rate_hz=rate, device=dev, channels=channels, stall_s=stall_s)
        except AudioError as exc:
            raise _fail(exc.message) from None
        try:
            spool = Spool(spool_dir, max_bytes=round(spool_max_mb * 1e6))
        except (OSError, sqlite3.Error) as exc:
            raise _fail(f"--spool-dir: cannot open the spool {spool_dir}: {exc}") from None
        clock = SensorClock(clock_offset_s, None if gpsd.lower() == "none" else gpsd)
        uplink = Uplink(device_id, key, center, mqtt=mqtt)
        opts = {} if threshold_db is None else {"threshold_db": threshold_db}
        agent = SensorAgent(
            device_id, pos, uplink, spool, clock, heartbeat_s=heartbeat_s, detector_options=opts
        )
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: agent.stop())
        failure: AudioError | None = None
        try:
            stats = agent.run(source, drain_timeout_s=drain_timeout_s, start_utc=start)
        except AudioError as exc:
            failure, stats = exc, agent.stats
        except KeyboardInterrupt:
            agent.stop()
            stats = agent.stats
        finally:
            uplink.close()
            try:
                left = len(spool)
            except sqlite3.Error:  # a failing disk: what the agent counted last
                left = agent.stats.spooled_left
            refused_dir = spool.refused_dir
            with contextlib.suppress(sqlite3.Error):
                spool.close()
        # a source whose rate the detector refused must not hide that error behind a division by zero
        seconds = stats.samples / source.rate_hz if source.rate_hz > 0 else 0.0
        _err.print(
            f"{seconds:.1f} s of audio, {stats.pulses} pulse(s), "
            f"{stats.delivered} delivered, {stats.refused} refused, {left} kept in {spool_dir}"
            + (f", {stats.unspooled} could not be stored ({stats.lost} lost)" if stats.unspooled else ""),
            highlight=False,
        )
        if failure is not None:
            raise _fail(
                f"{failure.message} ({left} pulse(s) kept in {spool_dir})" if left else failure.message
            )
        if stats.key_refused is not None:
            raise _fail(
                f"the center refused the device key ({stats.key_refused}); {left} pulse(s) kept in "
                f"{spool_dir}, delivered on the next start with a valid --key"
            )
        if stats.refused:
            _err.print(
                f"[bold red]error:[/] the center refused {stats.refused} pulse(s) for good; they are kept "
                f"with the reason in {refused_dir}",
                highlight=False,
            )
        if stats.unspooled:
            _err.print(
                f"[bold red]error:[/] {stats.unspooled} pulse(s) could not be stored in {spool_dir} "
                f"(--spool-max-mb reached, or a full or failing disk): {stats.unspooled - stats.lost} "
                f"delivered directly, {stats.lost} lost (see the log)",
                highlight=False,
            )
        if left:
            whys = []
            if stats.unforgotten:
                whys.append(f"{stats.unforgotten} delivered but the spool could not remove them")
            if stats.pending:
                whys.append(f"{stats.pending} sent over MQTT but not confirmed by a key check over HTTPS")
            if left > stats.unforgotten + stats.pending or not whys:
                whys.append("center unreachable")
            why = "; ".join(whys)
            raise _fail(
                f"{left} pulse(s) not delivered yet ({why}); they stay spooled", 2 if stats.unspooled else 3
            )
        if stats.refused or stats.unspooled:
            raise typer.Exit(2)
