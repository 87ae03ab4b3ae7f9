"""Analysis of stored reads: a vehicle's track, and vehicles travelling with it.

Co-travel
---------
A plate ``P`` co-travels with the target when it was read by at least
``min_cameras`` distinct cameras each within ``window_s`` seconds (either
side) of a read of the target by the *same* camera. Counting distinct
cameras, not reads, keeps a car parked beside one camera from qualifying.

Method: the target's reads are grouped by camera and sorted by time; each
candidate read is kept when a binary search finds a target read at its camera
within the window — O((n + m) log n) for n target reads and m candidates. The
candidates come from one query per chunk of cameras' merged time windows
(:func:`cotravel_candidates`), so the database never scans other cameras or
other times.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rtcc.plates.reads import SearchMode, search_reads
from rtcc.store.tables_plates import PlateReadRow

_OR_CHUNK = 200


@dataclass(frozen=True)
class Sighting:
    """One read as the analysis sees it."""

    plate: str
    device: str
    at: datetime
    read_id: str = ""


@dataclass
class CoTraveller:
    """A plate seen with the target: at which cameras, how often, when."""

    plate: str
    cameras: list[str] = field(default_factory=list)
    sightings: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    read_ids: list[str] = field(default_factory=list)


def sighting(row: Any) -> Sighting:
    """A :class:`Sighting` of a ``plate_reads`` row."""
    return Sighting(row.plate, row.device_id, row.read_at, str(row.id))


def cotravel(
    target: Sequence[Sighting],
    others: Iterable[Sighting],
    *,
    window_s: float,
    min_cameras: int,
) -> list[CoTraveller]:
    """Plates seen near the target's reads at ``min_cameras`` or more distinct cameras.

    Parameters
    ----------
    target
        The target vehicle's reads.
    others
        Candidate reads (reads of the target's own plate are ignored).
    window_s
        Largest time difference, seconds, between a candidate's read and the
        target's read at the same camera.
    min_cameras
        Distinct cameras needed to count as co-travelling (>= 1).

    Returns
    -------
    list of CoTraveller
        Most cameras first, then most sightings, then plate.
    """
    if window_s < 0 or min_cameras < 1:
        raise ValueError("window_s must be >= 0 and min_cameras >= 1")
    own = {t.plate for t in target}
    times: dict[str, list[datetime]] = defaultdict(list)
    for t in target:
        times[t.device].append(t.at)
    for v in times.values():
        v.sort()
    win = timedelta(seconds=window_s)
    found: dict[str, CoTraveller] = {}
    seen: dict[str, set[str]] = defaultdict(set)
    counted: set[str] = set()
    for o in others:
        if o.plate in own:
            continue
        ts = times.get(o.device)
        if not ts:
            continue
        i = bisect.bisect_left(ts, o.at - win)
        if i == len(ts) or ts[i] > o.at + win:
            continue
        if o.read_id:
            if o.read_id in counted:
                continue
            counted.add(o.read_id)
        c = found.get(o.plate)
        if c is None:
            c = found[o.plate] = CoTraveller(o.plate)
        seen[o.plate].add(o.device)
        c.sightings += 1
        c.first_at = o.at if c.first_at is None else min(c.first_at, o.at)
        c.last_at = o.at if c.last_at is None else max(c.last_at, o.at)
        if o.read_id:
            c.read_ids.append(o.read_id)
    out = []
    for plate, c in found.items():
        c.cameras = sorted(seen[plate])
        if len(c.cameras) >= min_cameras:
            out.append(c)
    return sorted(out, key=lambda c: (-len(c.cameras), -c.sightings, c.plate))


def _merged_windows(target: Sequence[Sighting], window_s: float) -> list[tuple[str, datetime, datetime]]:
    """Per camera, the target's ±window intervals merged where they overlap."""
    win = timedelta(seconds=window_s)
    by_dev: dict[str, list[datetime]] = defaultdict(list)
    for s in target:
        by_dev[s.device].append(s.at)
    out: list[tuple[str, datetime, datetime]] = []
    for dev, ts in sorted(by_dev.items()):
        ts.sort()
        lo, hi = ts[0] - win, ts[0] + win
        for t in ts[1:]:
            if t - win <= hi:
                hi = max(hi, t + win)
            else:
                out.append((dev, lo, hi))
                lo, hi = t - win, t + win
        out.append((dev, lo, hi))
    return out


def cotravel_candidates(
    session: Session, target: Sequence[Sighting], *, window_s: float, limit: int = 100_000
) -> list[Sighting]:
    """Reads at the target's cameras within ``window_s`` of its reads there (target's own included)."""
    windows = _merged_windows(target, window_s)
    out: list[Sighting] = []
    for i in range(0, len(windows), _OR_CHUNK):
        conds = [
            and_(PlateReadRow.device_id == dev, PlateReadRow.read_at >= lo, PlateReadRow.read_at <= hi)
            for dev, lo, hi in windows[i : i + _OR_CHUNK]
        ]
        q = (
            select(PlateReadRow.id, PlateReadRow.plate, PlateReadRow.device_id, PlateReadRow.read_at)
            .where(or_(*conds))
            .limit(limit - len(out))
        )
        out.extend(Sighting(p, d, at, str(rid)) for rid, p, d, at in session.execute(q))
        if len(out) >= limit:
            break
    return out


def track(
    session: Session,
    plate: str,
    *,
    mode: SearchMode = "exact",
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[PlateReadRow]:
    """A vehicle's reads in time order, oldest first (the most recent ``limit`` of them)."""
    rows = search_reads(session, plate=plate, mode=mode, start=start, end=end, limit=limit)
    return sorted(rows, key=lambda r: (r.read_at, str(r.id)))


def find_cotravellers(
    session: Session,
    plate: str,
    *,
    window_s: float,
    min_cameras: int,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> tuple[list[PlateReadRow], list[CoTraveller]]:
    """The target's reads (oldest first) and the plates co-travelling with it."""
    reads = track(session, plate, start=start, end=end, limit=limit)
    target = [sighting(r) for r in reads]
    if not target:
        return reads, []
    cands = cotravel_candidates(session, target, window_s=window_s)
    return reads, cotravel(target, cands, window_s=window_s, min_cameras=min_cameras)
