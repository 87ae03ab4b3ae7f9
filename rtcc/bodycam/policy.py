"""The automatic activation policy: on/off, triggers and radius (one stored row).

Off until an admin turns it on (``PUT /api/v1/bodycams/policy``); every
change is audited. When on, each trigger event (a gunshot incident, a hotlist
hit) makes every body cam whose latest heartbeat puts it within ``radius_m``
of it start recording: only units online and heard from count
(:func:`rtcc.bodycam.registry.units_near`), never a registration position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from rtcc.store.tables_bodycams import BodycamPolicy

Trigger = Literal["gunshot_incident", "hotlist_hit"]
TRIGGERS: tuple[Trigger, ...] = ("gunshot_incident", "hotlist_hit")

DEFAULT_RADIUS_M = 300.0


@dataclass(frozen=True)
class Policy:
    """The policy in force."""

    enabled: bool
    triggers: list[str]
    radius_m: float
    updated_by: str | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Policy(
    enabled=False, triggers=list(TRIGGERS), radius_m=DEFAULT_RADIUS_M, updated_by=None, updated_at=None
)


def get_policy(session: Session) -> Policy:
    """The stored policy, or the default (off, both triggers, 300 m) when none was set."""
    row = session.get(BodycamPolicy, 1)
    if row is None:
        return DEFAULT
    return Policy(
        enabled=row.enabled,
        triggers=[t for t in (row.triggers or []) if t in TRIGGERS],
        radius_m=row.radius_m,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def put_policy(
    session: Session, *, enabled: bool, triggers: list[str], radius_m: float, by: str, now: datetime
) -> tuple[Policy, Policy]:
    """Store a new policy; returns (before, after)."""
    before = get_policy(session)
    row = session.get(BodycamPolicy, 1)
    if row is None:
        row = BodycamPolicy(id=1)
        session.add(row)
    row.enabled = enabled
    row.triggers = sorted(set(triggers))
    row.radius_m = float(radius_m)
    row.updated_by = by
    row.updated_at = now
    session.flush()
    return before, get_policy(session)
