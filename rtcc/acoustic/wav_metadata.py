"""Sensor metadata embedded in a ShotSpotter WAV file (the ``smj0`` RIFF chunk).

ShotSpotter's sensor recordings (e.g. the Chicago 2022 examples released with Plett et al.,
"Determining the Source Location of Gunshots From Digital Recordings") carry a RIFF chunk ``smj0``
holding zlib-compressed JSON: the sensor's ``serialNumber``, ``startTimeUTC`` (the first sample),
``geolocation`` {latitude, longitude, elevation} and the weather. :func:`read_smj0` returns the
parts ``rtcc acoustic detect`` uses, with the position in UTM metres (the zone of the sensor's
longitude), so the pulses of several sensors of one city feed ``rtcc acoustic locate`` directly.

:func:`wav_shortfall` tells a truncated WAV file (its ``data`` chunk size promises more bytes than the
file holds), which libsndfile reads without complaint as a shorter recording.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyproj import Transformer

MAX_CHUNK = 1 << 20
"""A metadata chunk larger than this (1 MiB) is not read."""


@cache
def _utm(zone: int, north: bool) -> Transformer:
    from pyproj import Transformer  # here: importing it costs 0.1 s, and only smj0 positions need it

    epsg = (32600 if north else 32700) + zone
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


def utm_xy(lat: float, lon: float) -> tuple[float, float]:
    """Easting and northing (m) of a WGS84 point in the UTM zone of its own longitude."""
    zone = min(60, max(1, int((lon + 180.0) // 6.0) + 1))
    x, y = _utm(zone, lat >= 0.0).transform(lon, lat)
    return float(x), float(y)


def _chunk(path: Path, wanted: bytes) -> bytes | None:
    """The payload of the first RIFF chunk ``wanted`` of a WAV file, or None."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == wanted:
                if size > MAX_CHUNK:
                    raise ValueError(f"{path}: {wanted.decode()} chunk of {size} bytes is too large")
                data = f.read(size)
                if len(data) < size:
                    raise ValueError(f"{path}: {wanted.decode()} chunk is truncated")
                return data
            f.seek(size + (size & 1), 1)


def wav_shortfall(path: Path) -> tuple[int, int, int] | None:
    """How much audio a truncated WAV file lacks (None for a complete file or another format).

    A WAV file's ``data`` chunk header gives the size of the audio; a file cut short (an interrupted
    copy or download) holds fewer bytes than that. A size of 0 or 0xFFFFFFFF (written by streaming
    recorders, and by RF64 files) promises nothing and is not checked.

    Parameters
    ----------
    path : pathlib.Path
        Any file; only a RIFF/RIFX ``WAVE`` file is examined.

    Returns
    -------
    tuple of int or None
        ``(promised, present, byte_rate)``: the audio bytes the header promises, those the file
        holds, and the bytes per second of the ``fmt`` chunk (0 when it is not known); None when
        the file is not a WAV file, its header cannot be followed, or nothing is missing.

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        order = "<" if head[:4] == b"RIFF" else ">"
        file_size = path.stat().st_size
        byte_rate = 0
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, size = hdr[:4], struct.unpack(order + "I", hdr[4:])[0]
            if cid == b"data":
                present = max(0, file_size - f.tell())
                if size in (0, 0xFFFFFFFF) or present >= size:
                    return None
                return size, present, byte_rate
            if cid == b"fmt " and size >= 12:
                fmt = f.read(12)
                if len(fmt) < 12:
                    return None
                byte_rate = struct.unpack(order + "I", fmt[8:12])[0]
                size -= 12
            f.seek(size + (size & 1), 1)


def read_smj0(path: Path) -> dict[str, Any]:
    """Sensor id, start time and position from a ShotSpotter WAV's ``smj0`` chunk (``{}`` if none).

    Returns
    -------
    dict
        Any of ``sensor_id`` (str), ``start`` (aware datetime, UTC), ``x``, ``y`` (UTM easting and
        northing, m), ``z`` (elevation, m), ``temperature_c`` (float).

    Raises
    ------
    ValueError
        The chunk is there but cannot be decompressed or parsed, or holds a bad value.
    """
    if path.suffix.lower() not in (".wav", ".wave"):
        return {}
    try:
        raw = _chunk(path, b"smj0")
    except OSError:  # missing or unreadable: reading the audio says so, with the file's name
        return {}
    if raw is None:
        return {}
    try:
        meta = json.loads(zlib.decompress(raw))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the smj0 metadata chunk is not zlib-compressed JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the smj0 metadata is not a JSON object")
    out: dict[str, Any] = {}
    if meta.get("serialNumber"):
        out["sensor_id"] = str(meta["serialNumber"])
    if meta.get("startTimeUTC"):
        text = str(meta["startTimeUTC"])
        try:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{path}: smj0 startTimeUTC {text!r} is not an ISO 8601 time") from exc
        out["start"] = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    geo = meta.get("geolocation")
    if isinstance(geo, dict) and geo.get("latitude") is not None and geo.get("longitude") is not None:
        try:
            lat, lon = float(geo["latitude"]), float(geo["longitude"])
            elev = float(geo.get("elevation") or 0.0)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: smj0 geolocation {geo!r} is not numeric") from exc
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and math.isfinite(elev)):
            raise ValueError(f"{path}: smj0 geolocation {geo!r} is out of range")
        out["x"], out["y"] = utm_xy(lat, lon)
        out["z"] = elev
    weather = meta.get("weather")
    if isinstance(weather, dict) and isinstance(weather.get("temperature"), int | float):
        out["temperature_c"] = float(weather["temperature"])
    return out
