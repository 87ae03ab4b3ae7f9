"""The alert queue: store alerts once, move them through their states.

States::

    new ──► acknowledged ──► assigned ──► closed
     │            │             │
     └────────────┴─────────────┴──► dismissed (with a reason)

An alert may be assigned straight from ``new`` and reassigned while
``assigned``; ``closed`` and ``dismissed`` are final. Every step records who
and when (columns, and one entry in ``history``).

``updated_at`` is when the row last changed *in the center*: a new alert's is the time it was
stored, not when it occurred (a hit on a plate read uploaded late occurred minutes before it was
stored; with the occurrence time the dispatch feed, which polls by ``updated_at``, had already
moved past it). The queue sorts by ``occurred_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, NotFound
from rtcc.events import ALERT_KIND_ROLES, PLATE_ALERT_KINDS, Alert
from rtcc.roles import Role
from rtcc.store.tables_ops import AlertRow

STATUSES = ("new", "acknowledged", "assigned", "closed", "dismissed")
Action = Literal["acknowledge", "assign", "close", "dismiss"]

_FROM: dict[str, tuple[str, ...]] = {
    "acknowledge": ("new",),
    "assign": ("new", "acknowledged", "assigned"),
    "close": ("new", "acknowledged", "assigned"),
    "dismiss": ("new", "acknowledged", "assigned"),
}
_OPEN = ("new", "acknowledged", "assigned")
"""States of an alert that is still work."""
_TO = {"acknowledge": "acknowledged", "assign": "assigned", "close": "closed", "dismiss": "dismissed"}


def store_alert(session: Session, alert: Alert, *, now: datetime | None = None) -> bool:
    """Insert ``alert`` unless its ``alert_id`` is known; True when it was new (idempotent).

    ``created_at`` and ``updated_at`` are ``now`` (default: the clock), the time it was stored.
    """
    if session.get(AlertRow, alert.alert_id) is not None:
        return False
    stored = now or datetime.now(UTC)
    pos = alert.position
    session.add(
        AlertRow(
            id=alert.alert_id,
            event_id=alert.event_id,
            occurred_at=alert.occurred_at,
            source=alert.source,
            kind=alert.kind,
            severity=alert.severity.value,
            title=alert.title,
            lat=pos.lat if pos else None,
            lon=pos.lon if pos else None,
            ref_id=str(alert.ref_event_id) if alert.ref_event_id else None,
            status="new",
            history=[{"status": "new", "at": alert.occurred_at.isoformat(), "by": alert.source}],
            created_at=stored,
            updated_at=stored,
        )
    )
    session.flush()
    return True


def visible_kinds_filter(role: Role) -> list[str]:
    """Alert kinds ``role`` may not see (narrower kinds of :data:`ALERT_KIND_ROLES`)."""
    return [kind for kind, roles in ALERT_KIND_ROLES.items() if role not in roles]


def may_see(role: Role, kind: str) -> bool:
    roles = ALERT_KIND_ROLES.get(kind)
    return roles is None or role in roles


def list_alerts(
    session: Session,
    *,
    role: Role,
    status: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AlertRow]:
    """Alerts ``role`` may see, newest first."""
    q = select(AlertRow)
    hidden = visible_kinds_filter(role)
    if hidden:
        q = q.where(AlertRow.kind.not_in(hidden))
    wanted = list(status)
    if wanted:
        q = q.where(AlertRow.status.in_(wanted))
    if since is not None:
        q = q.where(AlertRow.occurred_at >= since)
    if until is not None:
        q = q.where(AlertRow.occurred_at < until)
    return list(session.scalars(q.order_by(AlertRow.occurred_at.desc()).limit(limit)))


def get_alert(session: Session, alert_id: UUID, *, role: Role, lock: bool = False) -> AlertRow:
    """One alert; :class:`NotFound` also when ``role`` may not see its kind (no hint it exists).

    ``lock`` takes a row lock (PostgreSQL) so two people cannot move the same alert at once.
    """
    row = session.get(AlertRow, alert_id, with_for_update=lock)
    if row is None or not may_see(role, row.kind):
        raise NotFound(f"no alert {alert_id}")
    return row


def transition(
    session: Session,
    alert_id: UUID,
    action: Action,
    *,
    role: Role,
    by: str,
    at: datetime,
    unit: str | None = None,
    reason: str | None = None,
) -> tuple[AlertRow, str]:
    """Apply ``action``; returns the row and the status before.

    Raises
    ------
    NotFound
        No such alert (or one ``role`` may not see).
    Conflict
        The alert's state does not allow ``action`` (e.g. it is closed).
    """
    row = get_alert(session, alert_id, role=role, lock=True)
    before = row.status
    if before not in _FROM[action]:
        raise Conflict(
            f"alert {alert_id} is {before}: it cannot be {_TO[action]} "
            f"(allowed from: {', '.join(_FROM[action])})",
            details={"status": before},
        )
    _apply(row, action, by=by, at=at, unit=unit, reason=reason)
    session.flush()
    return row, before


OPEN = ("new", "acknowledged", "assigned")
"""States in which an alert still asks for work."""


def settle_linked(
    session: Session,
    ref_id: UUID,
    kinds: Iterable[str],
    action: Literal["acknowledge", "close", "dismiss"],
    *,
    by: str,
    at: datetime,
    reason: str | None = None,
    title: str | None = None,
) -> list[AlertRow]:
    """Move the alerts of ``kinds`` that announce ``ref_id`` (a hit or an incident) after a decision.

    A decision on what an alert announces settles the alert: a hit rejected as a misread, an
    incident dismissed in review, a review done (close or dismiss), or a hit confirmed (acknowledged,
    and ``title`` replaces the "verify before action" one). Without this the queue kept showing
    them as new work. ``title`` replaces the title of every open alert of ``ref_id``, also one
    already past ``action`` (a hit alert a unit was assigned to before the hit was confirmed).
    Returns the alerts moved or retitled (others are left as they are).
    """
    states = set(_FROM[action]) | (set(_OPEN) if title is not None else set())
    rows = session.scalars(
        select(AlertRow)
        .where(
            AlertRow.ref_id == str(ref_id),
            AlertRow.kind.in_(list(kinds)),
            AlertRow.status.in_(sorted(states)),
        )
        .with_for_update()
    ).all()
    for row in rows:
        if row.status in _FROM[action]:
            _apply(row, action, by=by, at=at, reason=reason)
        if title is not None and row.title != title[:300]:
            row.title = title[:300]
            # a new title is a change dispatch must see: the feed polls by updated_at (an alert already
            # assigned is not moved by _apply, so nothing else would mark it changed)
            row.updated_at = max(row.updated_at, at)
    session.flush()
    return list(rows)


def _apply(
    row: AlertRow,
    action: Action,
    *,
    by: str,
    at: datetime,
    unit: str | None = None,
    reason: str | None = None,
) -> None:
    new = _TO[action]
    step: dict[str, Any] = {"status": new, "at": at.isoformat(), "by": by}
    if action == "acknowledge":
        row.acknowledged_by, row.acknowledged_at = by, at
    elif action == "assign":
        row.assigned_by, row.assigned_at, row.assigned_unit = by, at, unit
        step["unit"] = unit
    elif action == "close":
        row.closed_by, row.closed_at = by, at
    else:
        row.dismissed_by, row.dismissed_at, row.dismiss_reason = by, at, reason
        step["reason"] = reason
    if action in ("acknowledge", "close") and reason:
        step["reason"] = reason
    row.status = new
    row.updated_at = at
    row.history = [*(row.history or []), step]


def naming_plates(rows: Iterable[AlertRow]) -> list[str]:
    """Ids of the alerts among ``rows`` whose title names a plate (:data:`PLATE_ALERT_KINDS`).

    Serving them is a read of personal data: the caller audits it with these ids.
    """
    return sorted({str(r.id) for r in rows if r.kind in PLATE_ALERT_KINDS})


def awaiting_decision(session: Session, rows: Iterable[AlertRow]) -> dict[str, str]:
    """Open alerts among ``rows`` whose subject still waits for a decision: alert id -> what.

    ``"hit"``: a hotlist hit alert whose hit still says ``verify`` (confirm it or reject it as a
    misread); ``"review"``: a gunshot review alert whose incident is ``pending_review``. Such an
    alert is settled by that decision, not dismissed or closed (the API refuses: 409). Two queries
    for any number of alerts.
    """
    from rtcc.store.tables import GunshotIncidentRow
    from rtcc.store.tables_hotlists import HitRow

    hits: dict[UUID, str] = {}
    reviews: dict[UUID, str] = {}
    for r in rows:
        if r.status in ("closed", "dismissed") or not r.ref_id:
            continue
        try:
            ref = UUID(r.ref_id)
        except ValueError:
            continue
        if r.kind == "hotlist_hit":
            hits[ref] = str(r.id)
        elif r.kind == "gunshot_review":
            reviews[ref] = str(r.id)
    out: dict[str, str] = {}
    if hits:
        for ref in session.scalars(select(HitRow.id).where(HitRow.id.in_(hits), HitRow.status == "verify")):
            out[hits[ref]] = "hit"
    if reviews:
        q = select(GunshotIncidentRow.id).where(
            GunshotIncidentRow.id.in_(reviews), GunshotIncidentRow.status == "pending_review"
        )
        for ref in session.scalars(q):
            out[reviews[ref]] = "review"
    return out


def alert_dict(row: AlertRow, awaits: str | None = None) -> dict[str, Any]:
    """An alert as plain data (the API's shape); ``awaits`` from :func:`awaiting_decision`."""
    return {
        "id": row.id,
        "occurred_at": row.occurred_at,
        "source": row.source,
        "kind": row.kind,
        "severity": row.severity,
        "title": row.title,
        "lat": row.lat,
        "lon": row.lon,
        "ref_id": row.ref_id,
        "status": row.status,
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": row.acknowledged_at,
        "assigned_by": row.assigned_by,
        "assigned_at": row.assigned_at,
        "assigned_unit": row.assigned_unit,
        "closed_by": row.closed_by,
        "closed_at": row.closed_at,
        "dismissed_by": row.dismissed_by,
        "dismissed_at": row.dismissed_at,
        "dismiss_reason": row.dismiss_reason,
        "history": list(row.history or []),
        "awaits_decision": awaits,
    }
