"""``rtcc acoustic detect AUDIO...`` — impulsive onsets in audio files, one JSON object per pulse.

Contract (independent evaluations use it)::

    rtcc acoustic detect AUDIO... [--sensor-id ID] [--start-utc ISO] [--x M --y M --z M]

prints one line per detected pulse::

    {"sensor_id": ..., "arrival_utc": "2018-12-19T00:49:28.544123Z", "peak_db": ..., "snr_db": ...,
     "duration_ms": ...}

plus ``x_m``, ``y_m``, ``z_m`` when the sensor position is known (so the lines feed
``rtcc acoustic locate`` directly). A sibling JSON file (``clip.json`` beside ``clip.flac``, as in
ShotSpotter's data) supplies ``serial_number`` (or ``sensor_id``), ``timestamp`` (UTC of the
first sample: ISO 8601, or Unix epoch seconds) and ``location`` {x, y, z} in metres; without one, a
ShotSpotter WAV's own ``smj0`` metadata chunk supplies the serial number, start time and position
(UTM metres, :mod:`rtcc.acoustic.wav_metadata`); command-line options override both. Without a start
time the arrival counts from 1970-01-01T00:00:00Z (a warning says so). A position with x and y but
no z takes z = 0 m, and one missing x or y is not printed; a warning says so.

Of a multichannel file the channel with the most energy is used
(:func:`rtcc.acoustic.detect.to_mono_float`). A WAV file shorter than its header says (cut short) is
a bad file, as a FLAC file whose decoder loses sync is.

Exit codes: 0 all files read; 2 a file (or option) was bad — the other files are still processed
and the message names the file that failed (also a file whose start time puts a pulse past the end
of year 9999, or whose sibling JSON gives a time with no UTC equivalent in years 1–9999). A
non-finite option (``--x nan``) or a ``--threshold-db`` outside 3–90 dB is a usage error (2) before
any file is read.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rtcc.acoustic.detect import AudioError, detect_file
from rtcc.acoustic.wav_metadata import read_smj0

_err = Console(stderr=True, soft_wrap=True)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time as aware UTC (a naive time is taken as UTC).

    Raises
    ------
    ValueError
        Not an ISO 8601 time, or one with no UTC equivalent in years 1–9999 (e.g.
        ``0001-01-01T00:00:00+01:00``; the message says "out of the supported date range").
    """
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text.strip()!r} is out of the supported date range") from None


def format_utc(dt: datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch_utc(ts: float) -> datetime:
    """Unix epoch seconds → aware UTC datetime.

    Raises
    ------
    ValueError
        Not finite or out of the datetime range.
    """
    if not math.isfinite(ts):
        raise ValueError(f"{ts!r} is not finite")
    try:
        return EPOCH + timedelta(seconds=ts)
    except OverflowError:
        raise ValueError(f"{ts!r} is out of range") from None


def sidecar(path: Path) -> dict[str, Any]:
    """Sensor metadata from the JSON file beside ``path`` (``{}`` when there is none).

    The file may start with a UTF-8 byte order mark (as the pulses CSV may). ``timestamp`` (or
    ``start_utc``) is an ISO 8601 time (without a zone: UTC) or a number of Unix epoch seconds (UTC).
    The position is ``location`` {x, y, z} or top-level ``x``, ``y``, ``z``, in metres; an axis
    that is missing is left out (:func:`pulse_lines` warns about an incomplete position).

    Returns
    -------
    dict
        Any of ``sensor_id`` (str), ``start`` (datetime), ``x``, ``y``, ``z`` (float, m).

    Raises
    ------
    ValueError
        The sibling JSON exists but cannot be read or holds a bad value (a ``location`` that is not
        an object, a coordinate that is not a finite number — true/false are not numbers).
    """
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return {}
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: not readable JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{meta_path}: expected a JSON object")
    out: dict[str, Any] = {}
    sid = raw.get("sensor_id") or raw.get("serial_number") or raw.get("device_id")
    if sid is not None:
        out["sensor_id"] = str(sid)
    ts = next((v for v in (raw.get("timestamp"), raw.get("start_utc")) if v is not None and v != ""), None)
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        try:
            out["start"] = _epoch_utc(float(ts))
        except ValueError as exc:
            raise ValueError(f"{meta_path}: timestamp {ts!r} is not a usable epoch time ({exc})") from exc
    elif ts is not None:
        try:
            out["start"] = parse_utc(str(ts))
        except ValueError as exc:
            if "out of the supported date range" in str(exc):
                raise ValueError(f"{meta_path}: timestamp {ts!r} is out of the supported date range") from exc
            raise ValueError(
                f"{meta_path}: timestamp {ts!r} is neither an ISO 8601 time nor Unix epoch seconds"
            ) from exc
    loc = raw.get("location")
    if loc is None:
        loc = raw
    elif not isinstance(loc, dict):
        raise ValueError(
            f'{meta_path}: location {loc!r} is not an object; expected {{"x": …, "y": …, "z": …}} in metres'
        )
    for axis in ("x", "y", "z"):
        v = loc.get(axis)
        if v is not None:
            if isinstance(v, bool):
                raise ValueError(f"{meta_path}: location {axis}={v!r} is not a number")
            try:
                f = float(v)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{meta_path}: location {axis}={v!r} is not a number") from exc
            if not math.isfinite(f):
                raise ValueError(f"{meta_path}: location {axis}={v!r} is not finite")
            out[axis] = f
    return out


def pulse_lines(
    path: Path,
    *,
    sensor_id: str | None,
    start: datetime | None,
    xyz: tuple[float | None, float | None, float | None],
    options: dict[str, float],
) -> list[dict[str, Any]]:
    """The pulses of one audio file as contract dicts.

    Raises
    ------
    AudioError
        The audio cannot be read or used.
    ValueError
        The sibling JSON is bad.
    """
    meta = {**read_smj0(path), **sidecar(path)}  # a sibling JSON wins over the WAV's own chunk
    sid = sensor_id or meta.get("sensor_id") or path.stem
    onsets = detect_file(path, **options)
    t0: datetime | None = start or meta.get("start")
    if t0 is None:
        _err.print(
            f"warning: {path}: no start time (no --start-utc, no sibling JSON or smj0 timestamp); "
            "arrival_utc counts from 1970-01-01T00:00:00Z",
            highlight=False,
        )
        t0 = EPOCH
    pos = [v if v is not None else meta.get(axis) for v, axis in zip(xyz, ("x", "y", "z"), strict=True)]
    if pos[0] is not None and pos[1] is not None and pos[2] is None:
        _err.print(
            f"warning: {path}: the sensor position has no z (no --z, sibling JSON or smj0 elevation); "
            "z_m = 0 m is assumed (as for an smj0 position without elevation)",
            highlight=False,
        )
        pos[2] = 0.0
    elif any(v is not None for v in pos) and not all(v is not None for v in pos):
        missing = ", ".join(axis for v, axis in zip(pos, ("x", "y", "z"), strict=True) if v is None)
        _err.print(
            f"warning: {path}: the sensor position is incomplete (no {missing}); the pulses are printed "
            "without x_m, y_m, z_m (give --x --y --z)",
            highlight=False,
        )
    out = []
    for o in onsets:
        try:
            arrival = t0 + timedelta(microseconds=round(o.time_s * 1e6))
        except OverflowError:
            raise ValueError(
                f"{path}: the pulse {o.time_s:.6f} s into the file falls after the end of year 9999 UTC "
                f"(start time {format_utc(t0)}); check the start time"
            ) from None
        line: dict[str, Any] = {
            "sensor_id": sid,
            "arrival_utc": format_utc(arrival),
            "peak_db": round(o.peak_db, 2),
            "snr_db": round(o.snr_db, 2),
            "duration_ms": round(o.duration_ms, 2),
        }
        if all(v is not None for v in pos):
            line.update(x_m=pos[0], y_m=pos[1], z_m=pos[2])
        out.append(line)
    return out


THRESHOLD_DB_RANGE = (3.0, 90.0)
"""Accepted ``--threshold-db``: from 3 dB (the rise over the preceding 50 ms, 3 dB less, is then 0 dB)
to 90 dB (about the whole range of 16-bit audio; the default is 12 dB)."""


def _finite(value: float | None) -> float | None:
    """Typer callback: refuse a non-finite number (``nan``, ``inf``) as a usage error."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _threshold(value: float | None) -> float | None:
    """Typer callback: a finite ``--threshold-db`` within :data:`THRESHOLD_DB_RANGE`."""
    lo, hi = THRESHOLD_DB_RANGE
    if value is not None and not lo <= value <= hi:  # NaN fails both comparisons
        raise typer.BadParameter(f"{value} dB is not a number from {lo:g} to {hi:g} dB (default 12)")
    return value


def register(app: typer.Typer) -> None:
    """Add ``detect`` to the ``rtcc acoustic`` group."""

    @app.command("detect")
    def detect(
        audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, …; any rate ≥ 8 kHz).")],
        sensor_id: Annotated[
            str | None, typer.Option("--sensor-id", help="Sensor id (default: sibling JSON, else file name).")
        ] = None,
        start_utc: Annotated[
            str | None,
            typer.Option("--start-utc", help="UTC of the first sample, ISO 8601 (default: sibling JSON)."),
        ] = None,
        x: Annotated[float | None, typer.Option("--x", help="Sensor x, m.", callback=_finite)] = None,
        y: Annotated[float | None, typer.Option("--y", help="Sensor y, m.", callback=_finite)] = None,
        z: Annotated[float | None, typer.Option("--z", help="Sensor z, m.", callback=_finite)] = None,
        threshold_db: Annotated[
            float | None,
            typer.Option(
                "--threshold-db", help="Trigger level over the noise floor, 3–90 dB.", callback=_threshold
            ),
        ] = None,
    ) -> None:
        """Detect impulsive onsets; print one JSON object per pulse (sub-millisecond arrival times)."""
        start: datetime | None = None
        if start_utc is not None:
            try:
                start = parse_utc(start_utc)
            except ValueError as exc:
                why = (
                    "is out of the supported date range"
                    if "out of the supported date range" in str(exc)
                    else "is not an ISO 8601 time"
                )
                _err.print(f"[bold red]error:[/] --start-utc {start_utc!r} {why}", highlight=False)
                raise typer.Exit(2) from None
        options: dict[str, float] = {} if threshold_db is None else {"threshold_db": threshold_db}
        failed: list[str] = []
        for path in audio:
            try:
                lines = pulse_lines(path, sensor_id=sensor_id, start=start, xyz=(x, y, z), options=options)
            except (AudioError, ValueError, OSError) as exc:
                msg = exc.message if isinstance(exc, AudioError) else str(exc)
                _err.print(f"[bold red]error:[/] {msg}", highlight=False)
                failed.append(str(path))
                continue
            sys.stdout.write("".join(json.dumps(line) + "\n" for line in lines))
            sys.stdout.flush()
        if failed:
            _err.print(
                f"[bold red]error:[/] {len(failed)} of {len(audio)} file(s) failed: {', '.join(failed)}",
                highlight=False,
            )
            raise typer.Exit(2)
