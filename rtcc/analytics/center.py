"""The center's own gunshot incidents as analytics records (local wall-clock times).

Incidents a reviewer dismissed and those below the alert threshold are left out: hotspots are
computed from incidents that alerted, await review or were confirmed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.errors import ValidationFailed
from rtcc.store.tables import GunshotIncidentRow

from .records import Incidents

COUNTED_STATUSES = ("alerted", "pending_review", "confirmed")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``America/Los_Angeles``) or a clear error."""
    try:
        return ZoneInfo(name)
    # OSError: a name that is a folder of the zone database ("America", "__pycache__") or unreadable
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationFailed(
            f"unknown time zone {name!r}: give an IANA name such as 'America/Los_Angeles' or 'UTC'"
        ) from exc


def load_incidents(s: Session, *, since: datetime, until: datetime, tz: ZoneInfo) -> Incidents:
    """Gunshot incidents with ``since <= occurred_at < until`` (aware datetimes), in local time ``tz``."""
    rows = s.execute(
        select(GunshotIncidentRow.occurred_at, GunshotIncidentRow.lat, GunshotIncidentRow.lon).where(
            GunshotIncidentRow.occurred_at >= since,
            GunshotIncidentRow.occurred_at < until,
            GunshotIncidentRow.status.in_(COUNTED_STATUSES),
        )
    ).all()
    times = [r[0].astimezone(tz).replace(tzinfo=None) for r in rows]
    return Incidents.build(times, [float(r[1]) for r in rows], [float(r[2]) for r in rows])


def local_now(now: datetime, tz: ZoneInfo) -> datetime:
    """``now`` (aware) as a naive local time."""
    return now.astimezone(tz).replace(tzinfo=None)


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The ``days`` before ``now`` (aware), as ``(since, until)``."""
    return now - timedelta(days=days), now + timedelta(seconds=1)
