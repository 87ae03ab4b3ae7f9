"""Generated incident records with planted hotspots (seeded): ground truth for the analytics tests."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

# two planted hotspots in Oakland and a city-wide background
HOT_A = (37.7600, -122.1800)  # busy at night
HOT_B = (37.8050, -122.2700)  # busy in the day
BOX = ((37.74, 37.82), (-122.29, -122.16))
M_PER_DEG_LAT = 111_195.0


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / M_PER_DEG_LAT, lon + east_m / (M_PER_DEG_LAT * np.cos(np.radians(lat)))


def incidents(
    months: int = 18, per_month: int = 60, seed: int = 7, start: datetime = datetime(2020, 1, 1)
) -> list[tuple[datetime, float, float]]:
    """``per_month`` incidents a month: 40 % around A (night), 20 % around B (day), 40 % uniform.

    Clusters have a 60 m spread (well inside one H3 res-9 cell of ~175 m edge).
    """
    rng = np.random.default_rng(seed)
    out = []
    for m in range(months):
        first = datetime(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1, 1)
        for _ in range(per_month):
            day = first + timedelta(days=int(rng.integers(0, 28)))
            u = rng.random()
            if u < 0.4:
                lat, lon = offset(*HOT_A, *rng.normal(0, 60, 2))
                hour = int(rng.choice([23, 0, 1, 2, 3]))
            elif u < 0.6:
                lat, lon = offset(*HOT_B, *rng.normal(0, 60, 2))
                hour = int(rng.integers(8, 14))
            else:
                lat = float(rng.uniform(*BOX[0]))
                lon = float(rng.uniform(*BOX[1]))
                hour = int(rng.integers(0, 24))
            out.append(
                (day + timedelta(hours=hour, minutes=int(rng.integers(0, 60))), float(lat), float(lon))
            )
    return sorted(out)


def write_oakland(path: Path, rows: list[tuple[datetime, float, float]], bad: int = 2) -> Path:
    """Rows in the Oakland layout (m/d/yy H:MM, XCOORD lon, YCOORD lat) + ``bad`` geocoding failures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "OBJECTID",
                "CAD_",
                "BEAT",
                "DATE___TIM",
                "ADDRESS",
                "CALL_ID",
                "DESCRIPTIO",
                "Xrough",
                "Yrough",
                "XCOORD",
                "YCOORD",
            ]
        )
        for i, (t, lat, lon) in enumerate(rows):
            stamp = f"{t.month}/{t.day}/{t.strftime('%y')} {t.hour}:{t.minute:02d}"
            w.writerow(
                [
                    i + 1,
                    f"LOP{i:09d}",
                    "01X",
                    stamp,
                    "1 MAIN ST",
                    "415SS",
                    "415 SHOT SPOTTER GUN",
                    0,
                    0,
                    f"{lon:.6f}",
                    f"{lat:.6f}",
                ]
            )
        for j in range(bad):
            w.writerow(
                [
                    len(rows) + j + 1,
                    "LOPX",
                    "01X",
                    "1/3/20 0:42",
                    "?",
                    "415SS",
                    "415",
                    0,
                    0,
                    "-141.218751",
                    "30.0099",
                ]
            )
    return path


def write_sf(path: Path, rows: list[tuple[datetime, float, float]]) -> Path:
    """Rows in the San Francisco file's layout (UTF-8 with BOM, d-Mon-yy and H:MM:SS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "Type",
                "ID",
                "Date",
                "Time",
                "Rnds",
                "Beat",
                "DISPO",
                "returned address",
                "Latitude",
                "Longitude",
            ]
        )
        for i, (t, lat, lon) in enumerate(rows):
            w.writerow(
                [
                    "Multiple_Gunshots",
                    i,
                    t.strftime("%-d-%b-%y"),
                    t.strftime("%-H:%M:%S"),
                    3,
                    "",
                    "",
                    "x",
                    f"{lat:.8f}",
                    f"{lon:.7f}",
                ]
            )
    return path
