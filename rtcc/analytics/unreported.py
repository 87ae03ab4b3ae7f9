"""Unreported gunfire: the share of gunshot incidents no 911/CAD call reported.

An incident counts as *reported* when at least one call (of the chosen call types) lies within
``radius_m`` metres and ``window_min`` minutes before or after it. Incidents outside the period
the call records cover (first call − window … last call + window) cannot be judged and are left
out (counted as ``outside_coverage``).

Files
-----
Calls (CSV, header required): ``time`` (ISO 8601), ``lat``, ``lon`` (degrees), optional
``call_type``. Incidents: the same columns without ``call_type``, or one of the ShotSpotter record
files (San Francisco / Oakland) as they are; from those, rows outside the city's bounding box
(geocoding failures) and unreadable rows are dropped and counted, as ``records.load_city`` does.
Both files must use the same clock: both with UTC offsets, or both local wall-clock times.
Malformed rows are reported with their line numbers. Spaces around the header's names are ignored.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rtcc.errors import NotFound, ValidationFailed

from .records import CITIES, FloatArray, Incidents, _parse_oakland, _parse_sf, in_box

MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class Calls:
    """911/CAD calls as parallel arrays sorted by time (naive, one clock)."""

    t: npt.NDArray[np.datetime64]
    lat: FloatArray
    lon: FloatArray
    call_type: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.t.shape[0])


def _parse_time(text: str) -> tuple[datetime, bool]:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        return t, False
    return t.astimezone(UTC).replace(tzinfo=None), True


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file") from exc
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot read ({exc.strerror})") from exc
    with fh:
        reader = csv.DictReader(fh)
        try:
            if not reader.fieldnames:
                raise ValidationFailed(f"{path}: empty file (a header line is needed)")
            # rows are keyed by the stripped names, as the header check reads them ("time, lat")
            reader.fieldnames = [h.strip() for h in reader.fieldnames]
            for row in reader:
                yield reader.line_num, row
        # a bad byte past the header's read block only shows up here, while reading on
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"{path}: cannot read as UTF-8 CSV ({exc.reason})") from None
        except csv.Error as exc:
            raise ValidationFailed(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
    except FileNotFoundError as exc:
        raise NotFound(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path}: cannot read as UTF-8 CSV ({exc})") from exc
    # e.g. a quote that never closes, or a header field over the csv module's field size limit
    except csv.Error as exc:
        raise ValidationFailed(f"{path}: line 1: not readable as CSV ({exc})") from None


def _point(row: dict[str, str]) -> tuple[datetime, bool, float, float]:
    for col in ("time", "lat", "lon"):
        if not (row.get(col) or "").strip():
            raise ValueError(f"empty {col!r}")
    try:
        t, aware = _parse_time(row["time"])
    except ValueError as exc:
        raise ValueError(f"bad time {row['time']!r} (ISO 8601 expected, e.g. 2024-07-04T23:10:00)") from exc
    try:
        lat, lon = float(row["lat"]), float(row["lon"])
    except ValueError as exc:
        raise ValueError(f"bad lat/lon {row['lat']!r}, {row['lon']!r} (decimal degrees expected)") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (np.isfinite(lat) and np.isfinite(lon)):
        raise ValueError(f"lat/lon {lat}, {lon} out of range")
    return t, aware, lat, lon


def _read_points(path: Path, what: str, *, skip_bad: bool, extra: str | None = None) -> tuple[Any, ...]:
    header = _header(path)
    missing = {"time", "lat", "lon"} - set(header)
    if missing:
        raise ValidationFailed(
            f"{path}: {what} file needs the columns time, lat, lon"
            + (", call_type" if extra else "")
            + f"; missing {', '.join(sorted(missing))} (header: {', '.join(header) or 'none'})"
        )
    times: list[datetime] = []
    lats: list[float] = []
    lons: list[float] = []
    extras: list[str] = []
    errors: list[str] = []
    clocks: set[bool] = set()
    for line, row in _rows(path):
        if None in row or any(v is None for v in row.values()):
            errors.append(f"line {line}: {len(header)} fields expected")
            continue
        try:
            t, aware, lat, lon = _point(row)
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        clocks.add(aware)
        times.append(t)
        lats.append(lat)
        lons.append(lon)
        if extra:
            extras.append((row.get(extra) or "").strip())
    if len(clocks) > 1:
        raise ValidationFailed(f"{path}: some times have a UTC offset and some not; use one clock")
    if errors and not skip_bad:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise ValidationFailed(
            f"{path}: {len(errors)} malformed {what} row(s){more}; fix them or pass --skip-bad:\n  "
            + "\n  ".join(shown),
            details={"errors": shown, "count": len(errors)},
        )
    return times, lats, lons, extras, errors, (clocks.pop() if clocks else None)


def read_calls(path: Path, *, skip_bad: bool = False) -> tuple[Calls, bool | None]:
    """Read a CAD/911 calls CSV; returns the calls and whether their times carried UTC offsets."""
    times, lats, lons, types, errors, aware = _read_points(path, "call", skip_bad=skip_bad, extra="call_type")
    t = np.asarray(times, dtype="datetime64[s]")
    order = np.argsort(t, kind="stable")
    return (
        Calls(
            t[order],
            np.asarray(lats, dtype=np.float64)[order],
            np.asarray(lons, dtype=np.float64)[order],
            [types[i] for i in order],
            errors,
        ),
        aware,
    )


def read_incidents(path: Path, *, skip_bad: bool = False) -> tuple[Incidents, bool | None]:
    """Read gunshot incidents: a ``time,lat,lon`` CSV or a ShotSpotter record file as published.

    From a ShotSpotter file, rows with an unreadable time or position and rows outside the city's
    bounding box (:data:`records.CITIES`) are left out and counted in ``dropped``.
    """
    header = set(_header(path))
    layout = "sf" if {"Date", "Time", "Latitude"} <= header else None
    layout = "oakland" if {"DATE___TIM", "XCOORD", "YCOORD"} <= header else layout
    if layout is None:
        times, lats, lons, _, errors, aware = _read_points(path, "incident", skip_bad=skip_bad)
        return Incidents.build(times, lats, lons, dropped=len(errors)), aware
    parse = _parse_sf if layout == "sf" else _parse_oakland
    box = CITIES[layout]
    out_t: list[datetime] = []
    out_la: list[float] = []
    out_lo: list[float] = []
    dropped = 0
    for _, row in _rows(path):
        try:
            t, la, lo = parse(row)
        except (ValueError, TypeError, KeyError):
            dropped += 1
            continue
        if not in_box(box, la, lo):  # geocoding failures, as load_city drops them
            dropped += 1
            continue
        out_t.append(t)
        out_la.append(la)
        out_lo.append(lo)
    return Incidents.build(out_t, out_la, out_lo, dropped), False


def _haversine_m(lat1: float, lon1: float, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(a, 1.0))), dtype=np.float64)


@dataclass
class UnreportedResult:
    """The estimate: incidents judged, those with and without a matching call, and the share."""

    incidents: int
    judged: int
    reported: int
    unreported: int
    share_unreported: float | None
    outside_coverage: int
    calls: int
    calls_used: int
    radius_m: float
    window_min: float
    call_types: list[str] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unreported_share(
    incidents: Incidents,
    calls: Calls,
    *,
    radius_m: float = 250.0,
    window_min: float = 15.0,
    call_types: list[str] | None = None,
) -> UnreportedResult:
    """Share of ``incidents`` with no call within ``radius_m`` and ±``window_min`` (module docstring).

    Parameters
    ----------
    radius_m
        Distance limit between the incident and the caller's geocoded position, metres (> 0).
    window_min
        Time limit either side of the incident, minutes (> 0).
    call_types
        Only calls of these types count (case-insensitive); None: every call.
    """
    if not radius_m > 0 or not window_min > 0:
        raise ValidationFailed("radius and time window must be positive")
    keep = np.ones(len(calls), dtype=bool)
    if call_types:
        wanted = {c.strip().lower() for c in call_types}
        keep = np.array([c.lower() in wanted for c in calls.call_type], dtype=bool)
    ct, clat, clon = calls.t[keep], calls.lat[keep], calls.lon[keep]
    win = np.timedelta64(round(window_min * 60), "s")
    reported = unreported = outside = 0
    if len(ct) == 0:
        outside = len(incidents)
    else:
        first, last = ct[0] - win, ct[-1] + win
        for t, la, lo in zip(incidents.t, incidents.lat, incidents.lon, strict=True):
            if t < first or t > last:
                outside += 1
                continue
            a = int(np.searchsorted(ct, t - win, side="left"))
            b = int(np.searchsorted(ct, t + win, side="right"))
            if b > a and bool(np.any(_haversine_m(float(la), float(lo), clat[a:b], clon[a:b]) <= radius_m)):
                reported += 1
            else:
                unreported += 1
    judged = reported + unreported
    return UnreportedResult(
        incidents=len(incidents),
        judged=judged,
        reported=reported,
        unreported=unreported,
        share_unreported=round(unreported / judged, 4) if judged else None,
        outside_coverage=outside,
        calls=len(calls),
        calls_used=int(np.count_nonzero(keep)),
        radius_m=radius_m,
        window_min=window_min,
        call_types=call_types,
    )
