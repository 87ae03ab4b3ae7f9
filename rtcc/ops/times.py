"""Times the operations routes take (``since``, ``until``, ``start``, ``end``): aware, in a sane range.

A well-formed, timezone-aware time such as ``0001-01-01T00:00:00+01:00`` or
``9999-12-31T23:59:59-01:00`` has no UTC equivalent (``astimezone`` overflows), and one near the
ends of the calendar overflows as soon as a range is computed from it (30 days before, a day
after): every such time was a 500. :func:`checked_time` refuses it with the 422
``validation_failed`` envelope instead, the same way as a time without a timezone (like
:func:`rtcc.api.routes.plate_search.aware`, which checks only the timezone).
"""

from __future__ import annotations

from datetime import UTC, datetime

from rtcc.errors import ValidationFailed

MIN_YEAR = 1970
MAX_YEAR = 9998
"""Times outside these UTC years are refused (room for a range's arithmetic at either end)."""


def checked_time(dt: datetime | None, name: str) -> datetime | None:
    """``dt`` unchanged, or None; a 422 naming ``name`` when it has no timezone or is out of range.

    Raises
    ------
    ValidationFailed
        No timezone, or its UTC year outside :data:`MIN_YEAR` … :data:`MAX_YEAR`.
    """
    if dt is None:
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValidationFailed(
            f"{name} needs a timezone (e.g. 2026-01-01T00:00:00Z)", details={name: str(dt)}
        )
    try:
        utc = dt.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValidationFailed(
            f"{name} ({dt.isoformat()}) is out of range: give a time between "
            f"{MIN_YEAR}-01-01T00:00:00Z and {MAX_YEAR}-12-31T23:59:59Z",
            details={name: dt.isoformat()},
        )
    return dt


def checked_times(**times: datetime | None) -> list[datetime | None]:
    """:func:`checked_time` of each keyword argument (its name in the message), in order."""
    return [checked_time(dt, name) for name, dt in times.items()]
