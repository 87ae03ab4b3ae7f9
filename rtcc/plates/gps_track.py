"""A moving camera's GPS track: read a GPX, NMEA 0183 or CSV log and tell where the car was at a time.

``rtcc plates video --moving --gps-track FILE`` gives each vehicle pass the camera's position at
the wall-clock time of the pass's best frame (:meth:`GpsTrack.at`). Three formats are read
(:func:`load_track` tells them apart by their content):

* **GPX** 1.0 / 1.1: every ``<trkpt lat= lon=>`` with a ``<time>`` (ISO 8601 with zone); the
  GPX 1.0 ``<course>`` element is the heading when present. Points without a time are skipped
  and counted.
* **NMEA 0183** log: ``$GPRMC`` / ``$GNRMC`` (any talker) sentences with date, time, position and
  course over ground. The checksum is verified; a line that fails it, or an RMC sentence that
  cannot be parsed, is counted as bad and skipped; a void fix (status ``V``) is skipped; other
  sentences (GGA, GSV, …) are ignored.
* **CSV** ``time,lat,lon[,heading_deg]`` (a header line with these names is optional), the time
  ISO 8601 with a zone.

A file that gives no fix, a time without a zone, or a number out of range is refused as a whole
(:class:`TrackError`), before any video is read.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtcc.geo import bearing_deg, distance_m

MAX_TRACK_BYTES = 256 * 2**20
"""Larger track files are refused unread (a day of 10 Hz NMEA is ~70 MB)."""

MIN_SEGMENT_M = 2.0
"""Fixes closer than this give no bearing (a stopped car's GPS jitter)."""


class TrackError(ValueError):
    """The file is not a readable GPS track (the message says why, with the line when known)."""


@dataclass(frozen=True)
class Fix:
    """One GPS fix: UNIX time (s), WGS84 latitude and longitude (degrees), course (degrees) or None."""

    t: float
    lat: float
    lon: float
    course_deg: float | None = None


@dataclass(frozen=True)
class TrackPosition:
    """Where the camera was at a time: position, heading (or None) and the distance to the nearest fix (s)."""

    lat: float
    lon: float
    heading_deg: float | None
    gap_s: float


def _check(lat: float, lon: float, course: float | None, where: str) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise TrackError(f"{where}: latitude {lat} is out of range [-90, 90]")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise TrackError(f"{where}: longitude {lon} is out of range [-180, 180]")
    if course is not None and not (math.isfinite(course) and 0.0 <= course <= 360.0):
        raise TrackError(f"{where}: heading {course} is out of range [0, 360]")


def _iso_time(text: str, where: str) -> float:
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TrackError(f"{where}: time {text.strip()!r} is not ISO 8601") from None
    if at.tzinfo is None:
        raise TrackError(f"{where}: time {text.strip()!r} has no time zone (e.g. 2026-11-22T14:30:00Z)")
    return at.timestamp()


def interpolate_heading(a_deg: float, b_deg: float, w: float) -> float:
    """Heading a fraction ``w`` of the way from ``a_deg`` to ``b_deg`` along the shorter arc.

    Parameters
    ----------
    a_deg, b_deg : float
        Headings, degrees clockwise from north.
    w : float
        Fraction in ``[0, 1]``.

    Returns
    -------
    float
        ``(a + w * d) mod 360`` where ``d = ((b - a + 180) mod 360) - 180`` is the signed shortest
        turn from ``a`` to ``b`` (so 350° → 10° passes through 0°, not 180°).
    """
    d = ((b_deg - a_deg + 180.0) % 360.0) - 180.0
    return (a_deg + w * d) % 360.0


class GpsTrack:
    """Fixes in time order, and the position at any time between them.

    Parameters
    ----------
    fixes : list of Fix
        In any order; sorted by time, a fix at the same time as an earlier one is dropped.
    skipped : int
        Lines or points the reader counted as bad and skipped (reported to the user).
    """

    def __init__(self, fixes: list[Fix], skipped: int = 0) -> None:
        ordered: list[Fix] = []
        for f in sorted(fixes, key=lambda f: f.t):
            if ordered and f.t == ordered[-1].t:
                continue
            ordered.append(f)
        if not ordered:
            raise TrackError("no GPS fix with a time in the file")
        self.fixes = ordered
        self.times = [f.t for f in ordered]
        self.skipped = skipped

    def __len__(self) -> int:
        return len(self.fixes)

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.times[0], UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.times[-1], UTC)

    def _bearing(self, i: int, j: int) -> float | None:
        """Bearing of the segment from fix ``i`` to fix ``j`` (None when shorter than MIN_SEGMENT_M)."""
        a, b = self.fixes[i], self.fixes[j]
        if distance_m(a.lat, a.lon, b.lat, b.lon) < MIN_SEGMENT_M:
            return None
        return bearing_deg(a.lat, a.lon, b.lat, b.lon)

    def at(self, when: datetime, max_gap_s: float) -> TrackPosition | None:
        """The camera's position and heading at ``when``, or None when no fix is within ``max_gap_s``.

        Parameters
        ----------
        when : datetime
            A time with zone.
        max_gap_s : float
            The nearest fix must be at most this many seconds from ``when``.

        Returns
        -------
        TrackPosition or None
            Between fixes ``a`` (time ``ta``) and ``b`` (``tb``), with ``w = (t - ta) / (tb - ta)``:
            ``lat = lat_a + w (lat_b - lat_a)`` and the same for ``lon`` (linear in degrees: the
            fixes of a car log are metres apart, where this equals the great-circle path to well
            under a centimetre). Before the first fix or after the last, the end fix itself (no
            extrapolation). The heading is the fixes' course, interpolated on the shorter arc
            (:func:`interpolate_heading`), when both give one; else the initial great-circle bearing
            (:func:`rtcc.geo.bearing_deg`) of the segment from ``a`` to ``b`` (at the ends, the
            first or last segment), None when that segment is shorter than :data:`MIN_SEGMENT_M`.
        """
        t = when.timestamp()
        k = bisect_left(self.times, t)
        n = len(self.fixes)
        gap = min(abs(self.times[i] - t) for i in (k - 1, k) if 0 <= i < n)
        if gap > max_gap_s:
            return None
        if k < n and self.times[k] == t:
            i = j = k
        elif k == 0:
            i = j = 0
        elif k == n:
            i = j = n - 1
        else:
            i, j = k - 1, k
        a, b = self.fixes[i], self.fixes[j]
        w = 0.0 if j == i else (t - a.t) / (b.t - a.t)
        lat = a.lat + w * (b.lat - a.lat)
        lon = a.lon + w * (b.lon - a.lon)
        heading: float | None
        if a.course_deg is not None and b.course_deg is not None:
            heading = interpolate_heading(a.course_deg, b.course_deg, w)
        elif (a if w < 0.5 else b).course_deg is not None:
            heading = (a if w < 0.5 else b).course_deg
        elif n < 2:
            heading = None
        elif j != i:
            heading = self._bearing(i, j)
        else:  # on a fix: the segment it starts, or the one it ends for the last fix
            heading = self._bearing(i, i + 1) if i + 1 < n else self._bearing(i - 1, i)
        if heading is not None:
            heading %= 360.0
        return TrackPosition(lat=lat, lon=lon, heading_deg=heading, gap_s=gap)


# -- readers -------------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_gpx(text: str) -> GpsTrack:
    """The ``trkpt`` fixes of a GPX document (see the module docstring).

    Raises
    ------
    TrackError
        Not XML, or a point with a time without zone or a number out of range.
    """
    if "<!ENTITY" in text or "<!DOCTYPE" in text:
        raise TrackError("GPX: a DOCTYPE or ENTITY declaration is not allowed in a track")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TrackError(f"GPX: not well-formed XML: {exc}") from None
    fixes: list[Fix] = []
    skipped = 0
    for n, pt in enumerate((e for e in root.iter() if _local(e.tag) == "trkpt"), start=1):
        where = f"GPX trkpt {n}"
        try:
            lat, lon = float(pt.attrib["lat"]), float(pt.attrib["lon"])
        except (KeyError, ValueError):
            raise TrackError(f"{where}: lat and lon attributes must be numbers") from None
        children = {_local(c.tag): (c.text or "").strip() for c in pt}
        if not children.get("time"):
            skipped += 1
            continue
        course: float | None = None
        if children.get("course"):
            try:
                course = float(children["course"])
            except ValueError:
                raise TrackError(f"{where}: course {children['course']!r} is not a number") from None
        _check(lat, lon, course, where)
        fixes.append(Fix(_iso_time(children["time"], where), lat, lon, course))
    return GpsTrack(fixes, skipped)


_NMEA = re.compile(r"^\$(?P<body>[^*]*)\*(?P<sum>[0-9A-Fa-f]{2})\s*$")


def nmea_checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*`` (NMEA 0183)."""
    x = 0
    for ch in body.encode("ascii", "replace"):
        x ^= ch
    return x


def _dm(value: str, hemi: str, degree_digits: int) -> float:
    """``ddmm.mmmm`` (or ``dddmm.mmmm``) and its hemisphere as signed decimal degrees."""
    deg, minutes = int(value[:degree_digits]), float(value[degree_digits:])
    if not 0.0 <= minutes < 60.0 or len(value) < degree_digits + 2:
        raise ValueError(value)
    out = deg + minutes / 60.0
    if hemi in ("S", "W"):
        return -out
    if hemi not in ("N", "E"):
        raise ValueError(hemi)
    return out


def _rmc(fields: list[str]) -> Fix | None:
    """A fix from the fields of an RMC sentence; None for a void fix. Raises ValueError when malformed."""
    if len(fields) < 10:
        raise ValueError("too few fields")
    hhmmss, status, lat, ns, lon, ew, _speed, course, ddmmyy = fields[1:10]
    if status != "A":
        return None
    if len(ddmmyy) != 6 or len(hhmmss) < 6:
        raise ValueError("bad date or time")
    day, month, yy = int(ddmmyy[0:2]), int(ddmmyy[2:4]), int(ddmmyy[4:6])
    hh, mm, ss = int(hhmmss[0:2]), int(hhmmss[2:4]), float(hhmmss[4:])
    year = 2000 + yy if yy < 80 else 1900 + yy
    at = datetime(year, month, day, hh, mm, int(ss), round((ss % 1) * 1e6), tzinfo=UTC)
    la, lo = _dm(lat, ns, 2), _dm(lon, ew, 3)
    cog = float(course) if course else None
    if not (-90 <= la <= 90 and -180 <= lo <= 180) or (cog is not None and not 0 <= cog <= 360):
        raise ValueError("out of range")
    return Fix(at.timestamp(), la, lo, cog)


def parse_nmea(text: str) -> GpsTrack:
    """The RMC fixes of an NMEA 0183 log (see the module docstring)."""
    fixes: list[Fix] = []
    bad = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _NMEA.match(line)
        if m is None or nmea_checksum(m["body"]) != int(m["sum"], 16):
            bad += 1
            continue
        fields = m["body"].split(",")
        if len(fields[0]) != 5 or not fields[0].endswith("RMC"):
            continue  # another sentence: not a position with date and course
        try:
            fix = _rmc(fields)
        except (ValueError, IndexError):
            bad += 1
            continue
        if fix is not None:
            fixes.append(fix)
    if not fixes:
        raise TrackError(f"NMEA: no valid RMC fix in the log ({bad} bad line(s))")
    return GpsTrack(fixes, bad)


CSV_COLUMNS = ("time", "lat", "lon", "heading_deg")


def parse_csv(text: str) -> GpsTrack:
    """The fixes of a ``time,lat,lon[,heading_deg]`` CSV (see the module docstring)."""
    fixes: list[Fix] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if n == 1 and cells[0].lower() == "time":
            if tuple(c.lower() for c in cells) not in (CSV_COLUMNS[:3], CSV_COLUMNS):
                raise TrackError(
                    f"CSV line 1: the columns must be {','.join(CSV_COLUMNS)} (heading optional)"
                )
            continue
        where = f"CSV line {n}"
        if len(cells) not in (3, 4):
            raise TrackError(f"{where}: expected time,lat,lon[,heading_deg], got {len(cells)} field(s)")
        try:
            lat, lon = float(cells[1]), float(cells[2])
            course = float(cells[3]) if len(cells) == 4 and cells[3] else None
        except ValueError:
            raise TrackError(f"{where}: lat, lon and heading_deg must be numbers") from None
        _check(lat, lon, course, where)
        fixes.append(Fix(_iso_time(cells[0], where), lat, lon, course))
    return GpsTrack(fixes)


def parse_track(text: str) -> GpsTrack:
    """Parse a track, telling GPX (XML), NMEA (lines starting with ``$``) and CSV apart by content."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("<"):
        return parse_gpx(head)
    if head.startswith("$"):
        return parse_nmea(head)
    return parse_csv(head)


def load_track(path: Path) -> GpsTrack:
    """Read and parse a track file.

    Raises
    ------
    TrackError
        The file cannot be read, is too large, is not text, or is not a readable track.
    """
    try:
        if path.stat().st_size > MAX_TRACK_BYTES:
            raise TrackError(f"larger than {MAX_TRACK_BYTES >> 20} MiB")
        raw = path.read_bytes()
    except OSError as exc:
        raise TrackError(f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TrackError("not a text file (GPX, NMEA 0183 or CSV)") from None
    return parse_track(text)
