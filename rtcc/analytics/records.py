"""Incident records for analytics: positions and local times, from the center or from CSV files.

Two real record sets are read (never copied into the repository):

* San Francisco ShotSpotter alerts (``San_Francisco_ShotSpotter.csv``: ``Date`` d-Mon-yy, ``Time``
  H:MM:SS, ``Latitude``, ``Longitude``), 2013-01 … 2015-06;
* Oakland ShotSpotter dispatches (``OakShots_latlong.csv``: ``DATE___TIM`` m/d/yy H:MM, ``XCOORD`` lon,
  ``YCOORD`` lat), 2008-01 … 2013-10.

Both are local (Pacific) wall-clock times, which is what hour-of-week and shifts need. Rows whose
position falls outside the city's bounding box (geocoding failures such as lat 30.0, lon -141.2 in
the Oakland file) are dropped and counted, as are rows with an unreadable time or position
(including short, truncated rows: a missing field reads as empty).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rtcc.errors import NotFound, ValidationFailed

DEFAULT_DIR = Path("../shared/data/incidents")
ENV_DIR = "RTCC_INCIDENTS_DIR"

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class City:
    """Where a city's file is and the box its positions must fall in (degrees)."""

    name: str
    filename: str
    lat_range: tuple[float, float]
    lon_range: tuple[float, float]


CITIES: dict[str, City] = {
    "sf": City("San Francisco", "San_Francisco_ShotSpotter.csv", (37.60, 37.84), (-122.53, -122.35)),
    "oakland": City("Oakland", "OakShots_latlong.csv", (37.68, 37.89), (-122.36, -122.10)),
}


@dataclass(frozen=True)
class Incidents:
    """Incidents as parallel arrays, sorted by time.

    Attributes
    ----------
    t : ndarray of datetime64[s], shape (n,)
        Local wall-clock time of each incident.
    lat, lon : ndarray of float, shape (n,)
        Position, degrees (WGS 84).
    dropped : int
        Rows read but left out (position outside the city box, unreadable time).
    """

    t: TimeArray
    lat: FloatArray
    lon: FloatArray
    dropped: int = 0

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @classmethod
    def build(
        cls,
        times: list[datetime] | TimeArray,
        lat: list[float] | FloatArray,
        lon: list[float] | FloatArray,
        dropped: int = 0,
    ) -> Incidents:
        """Incidents from unsorted sequences (naive local datetimes)."""
        t = np.asarray(times, dtype="datetime64[s]")
        la = np.asarray(lat, dtype=np.float64)
        lo = np.asarray(lon, dtype=np.float64)
        if not (t.shape == la.shape == lo.shape):
            raise ValueError("times, lat and lon must have the same length")
        order = np.argsort(t, kind="stable")
        return cls(t[order], la[order], lo[order], dropped)

    def between(self, start: np.datetime64, end: np.datetime64) -> Incidents:
        """The incidents with ``start <= t < end``."""
        lo, hi = np.searchsorted(self.t, [start, end], side="left")
        return Incidents(self.t[lo:hi], self.lat[lo:hi], self.lon[lo:hi])

    def mask(self, keep: npt.NDArray[np.bool_]) -> Incidents:
        return Incidents(self.t[keep], self.lat[keep], self.lon[keep], self.dropped)

    def hour_of_week(self) -> npt.NDArray[np.int64]:
        """Hour of the week of each incident, 0 = Monday 00:00–00:59 … 167 = Sunday 23:00."""
        days = self.t.astype("datetime64[D]")
        # 1970-01-01 was a Thursday (weekday 3 with Monday = 0)
        weekday = (days.astype(np.int64) + 3) % 7
        hour = (self.t - days).astype("timedelta64[h]").astype(np.int64)
        return np.asarray(weekday * 24 + hour, dtype=np.int64)


def incidents_dir(option: str | Path | None = None) -> Path:
    """The folder of incident records: ``option``, else ``$RTCC_INCIDENTS_DIR``, else the default."""
    if option:
        return Path(option)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else DEFAULT_DIR


def find_city_file(data_dir: Path, city: str) -> Path:
    """The CSV file of ``city`` ("sf" or "oakland") anywhere under ``data_dir``."""
    if city not in CITIES:
        raise ValidationFailed(f"unknown city {city!r}; choose one of: {', '.join(CITIES)}")
    if not data_dir.is_dir():
        raise NotFound(
            f"incident records folder {str(data_dir)!r} does not exist: pass --data DIR or set {ENV_DIR}"
        )
    name = CITIES[city].filename
    found = sorted(data_dir.rglob(name))
    if not found:
        raise NotFound(f"no {name} under {str(data_dir)!r} (the {CITIES[city].name} ShotSpotter records)")
    return found[0]


def _field(row: Mapping[str, str | None], name: str) -> str:
    """A row's field as stripped text; a field missing from a short (truncated) row reads as ""."""
    return (row.get(name) or "").strip()


def _parse_sf(row: Mapping[str, str | None]) -> tuple[datetime, float, float]:
    t = datetime.strptime(f"{_field(row, 'Date')} {_field(row, 'Time')}", "%d-%b-%y %H:%M:%S")
    return t, float(_field(row, "Latitude")), float(_field(row, "Longitude"))


def _parse_oakland(row: Mapping[str, str | None]) -> tuple[datetime, float, float]:
    t = datetime.strptime(_field(row, "DATE___TIM"), "%m/%d/%y %H:%M")
    return t, float(_field(row, "YCOORD")), float(_field(row, "XCOORD"))


def in_box(city: City, lat: float, lon: float) -> bool:
    """Whether a position lies in ``city``'s bounding box (NaN does not)."""
    return city.lat_range[0] <= lat <= city.lat_range[1] and city.lon_range[0] <= lon <= city.lon_range[1]


def load_city(data_dir: Path, city: str) -> Incidents:
    """Read one city's ShotSpotter records (see the module docstring for the columns).

    Raises
    ------
    NotFound
        The folder or the city's file is missing.
    ValidationFailed
        The file lacks the expected columns.
    """
    path = find_city_file(data_dir, city)
    spec = CITIES[city]
    parse = _parse_sf if city == "sf" else _parse_oakland
    needed = {"Date", "Time", "Latitude", "Longitude"} if city == "sf" else {"DATE___TIM", "XCOORD", "YCOORD"}
    times: list[datetime] = []
    lats: list[float] = []
    lons: list[float] = []
    dropped = 0
    reader: Any = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = needed - set(reader.fieldnames or [])
            if missing:
                raise ValidationFailed(f"{path}: missing columns {sorted(missing)}")
            for row in reader:
                try:
                    t, la, lo = parse(row)
                except (ValueError, TypeError):
                    dropped += 1
                    continue
                if not in_box(spec, la, lo):
                    dropped += 1
                    continue
                times.append(t)
                lats.append(la)
                lons.append(lo)
    # a bad byte or line can sit anywhere in the file: the reading fails there, not at the open
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8 CSV") from None
    except csv.Error as exc:
        where = f"line {reader.line_num}: " if reader is not None else ""
        raise ValidationFailed(f"{path}: not a readable CSV file ({where}{exc})") from None
    except OSError as exc:
        raise ValidationFailed(f"{path}: cannot read ({exc.strerror or exc})") from None
    return Incidents.build(times, lats, lons, dropped)
