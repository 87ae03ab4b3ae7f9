"""Gunshot incidents in the store: record once, list, review.

Plain functions taking a :class:`sqlalchemy.orm.Session`; they never commit
(the caller's transaction does, e.g. :meth:`rtcc.store.db.Store.write`).

Review states
-------------
::

    alerted ──────────┐
    pending_review ───┼──▶ confirmed | dismissed   (a reviewer, with a reason)
    below_threshold ──┘

An incident is recorded once per id (:func:`record_incident` is a no-op for
an id already stored, so a redelivered cluster of pulses is harmless). A
review is a conditional update, so two reviewers racing on one incident get
one success and one :class:`~rtcc.errors.Conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, NotFound
from rtcc.store.tables import GunshotIncidentRow

Status = Literal["alerted", "pending_review", "confirmed", "dismissed", "below_threshold"]
STATUSES: tuple[str, ...] = ("alerted", "pending_review", "confirmed", "dismissed", "below_threshold")
REVIEWABLE: frozenset[str] = frozenset({"alerted", "pending_review", "below_threshold"})
"""States a reviewer may confirm or dismiss from."""
DECIDED: frozenset[str] = frozenset({"confirmed", "dismissed"})
"""States a reviewer set: later rounds never change them (nor raise a new alert)."""


@dataclass
class IncidentRecord:
    """What the pipeline stores about one incident (see :class:`GunshotIncidentRow`)."""

    id: UUID
    occurred_at: datetime
    lat: float
    lon: float
    ellipse_major_m: float
    ellipse_minor_m: float
    ellipse_angle_deg: float
    rounds: int
    label: str
    confidence: float
    status: Status
    sensors: list[str] = field(default_factory=list)
    pulses: dict[str, str] = field(default_factory=dict)
    """Sensor → event id of its first pulse (kept for compatibility; see ``round_pulses``)."""
    round_pulses: dict[str, list[str | None]] = field(default_factory=dict)
    """Sensor → event id of its pulse of each round, in time order (None: it did not hear that round)."""
    round_audio: dict[str, list[int]] = field(default_factory=dict)
    """Sensor → the 1-based rounds whose pulse came with audio (what a reviewer can play)."""
    intervals_s: list[float] = field(default_factory=list)
    automatic: bool = False
    multiple_shooters: bool = False
    location_quality: Literal["good", "poor"] = "good"
    """``poor``: every round's fix was flagged for poor sensor geometry (the ellipse may understate it)."""
    temperature_c: float | None = None
    """Air temperature behind the speed of sound of the location, °C."""
    temperature_source: str | None = None
    """Where it came from: ``feed`` (:mod:`rtcc.acoustic.weather`) or ``settings``."""


def record_incident(session: Session, rec: IncidentRecord) -> bool:
    """Store ``rec`` unless its id is already stored; True when it was new."""
    if session.get(GunshotIncidentRow, rec.id) is not None:
        return False
    with session.begin_nested():
        session.add(
            GunshotIncidentRow(
                id=rec.id,
                occurred_at=rec.occurred_at,
                lat=rec.lat,
                lon=rec.lon,
                ellipse_major_m=rec.ellipse_major_m,
                ellipse_minor_m=rec.ellipse_minor_m,
                ellipse_angle_deg=rec.ellipse_angle_deg,
                rounds=rec.rounds,
                intervals_s=list(rec.intervals_s),
                automatic=rec.automatic,
                multiple_shooters=rec.multiple_shooters,
                location_quality=rec.location_quality,
                temperature_c=rec.temperature_c,
                temperature_source=rec.temperature_source,
                label=rec.label,
                confidence=rec.confidence,
                sensors=list(rec.sensors),
                pulses=dict(rec.pulses),
                round_pulses={k: list(v) for k, v in rec.round_pulses.items()},
                round_audio={k: list(v) for k, v in rec.round_audio.items()},
                status=rec.status,
            )
        )
    return True


@dataclass(frozen=True)
class StoredState:
    """An incident's review state as stored (a reviewer may have changed it since it was recorded)."""

    status: Status
    label: str
    confidence: float


def update_rounds(session: Session, rec: IncidentRecord) -> StoredState | None:
    """Store later rounds of an incident: rounds, intervals, flags, contributing sensors and pulses.

    Returns the incident's stored status, label and confidence (a reviewer may have confirmed or
    dismissed it meanwhile: what is announced next must say so), or None when it is not stored.
    """
    row = session.execute(
        update(GunshotIncidentRow)
        .where(GunshotIncidentRow.id == rec.id)
        .values(
            rounds=rec.rounds,
            intervals_s=list(rec.intervals_s),
            automatic=rec.automatic,
            multiple_shooters=rec.multiple_shooters,
            location_quality=rec.location_quality,
            sensors=list(rec.sensors),
            pulses=dict(rec.pulses),
            round_pulses={k: list(v) for k, v in rec.round_pulses.items()},
            round_audio={k: list(v) for k, v in rec.round_audio.items()},
        )
        .returning(GunshotIncidentRow.status, GunshotIncidentRow.label, GunshotIncidentRow.confidence)
    ).first()
    if row is None:
        return None
    status, label, confidence = row
    return StoredState(status=cast(Status, status), label=str(label), confidence=float(confidence))


def raise_status(session: Session, rec: IncidentRecord, old: Status) -> bool:
    """Store ``rec``'s raised status, confidence and label if the stored status is still ``old``.

    Returns False when it is not (a reviewer decided meanwhile): nothing is changed then.
    """
    done = session.execute(
        update(GunshotIncidentRow)
        .where(GunshotIncidentRow.id == rec.id, GunshotIncidentRow.status == old)
        .values(status=rec.status, confidence=rec.confidence, label=rec.label)
        .returning(GunshotIncidentRow.id)
    ).first()
    return done is not None


def get_incident(session: Session, incident_id: UUID) -> GunshotIncidentRow:
    """One incident.

    Raises
    ------
    NotFound
        When there is no incident with that id.
    """
    row = session.get(GunshotIncidentRow, incident_id)
    if row is None:
        raise NotFound(f"no gunshot incident {incident_id}")
    return row


def list_incidents(
    session: Session,
    *,
    status: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[GunshotIncidentRow]:
    """Incidents, newest first, filtered by status and time (``since`` ≤ t < ``until``)."""
    q = select(GunshotIncidentRow)
    if status:
        q = q.where(GunshotIncidentRow.status.in_(status))
    if since is not None:
        q = q.where(GunshotIncidentRow.occurred_at >= since)
    if until is not None:
        q = q.where(GunshotIncidentRow.occurred_at < until)
    q = q.order_by(GunshotIncidentRow.occurred_at.desc(), GunshotIncidentRow.id).limit(limit)
    return list(session.scalars(q))


def review_incident(
    session: Session,
    incident_id: UUID,
    *,
    decision: Literal["confirm", "dismiss"],
    reviewer: str,
    reason: str,
    at: datetime,
) -> tuple[GunshotIncidentRow, str]:
    """Confirm or dismiss an incident; returns the row and its status before the review.

    Raises
    ------
    NotFound
        No such incident.
    Conflict
        The incident was already reviewed (by someone else, or earlier).
    """
    row = get_incident(session, incident_id)
    before = row.status
    if before not in REVIEWABLE:
        raise Conflict(
            f"gunshot incident {incident_id} was already reviewed ({before} by {row.reviewed_by})",
            details={"status": before, "reviewed_by": row.reviewed_by},
        )
    new = "confirmed" if decision == "confirm" else "dismissed"
    # a reviewer who confirms has heard gunfire: the label says so (a dismissal keeps the
    # classifier's label, since "dismissed" may mean a known range or a duplicate as well)
    label = "gunshot" if decision == "confirm" else row.label
    done = session.execute(
        update(GunshotIncidentRow)
        .where(GunshotIncidentRow.id == incident_id, GunshotIncidentRow.status == before)
        .values(status=new, label=label, reviewed_by=reviewer, review_reason=reason, reviewed_at=at)
        .returning(GunshotIncidentRow.id)
    ).first()
    if done is None:
        raise Conflict(f"gunshot incident {incident_id} was reviewed by someone else just now")
    session.refresh(row)
    return row, before


def sensor_round_pulses(row: GunshotIncidentRow) -> dict[str, list[str | None]]:
    """Sensor → its pulse id of each round (None: not heard); before 0014, ``pulses`` as round 1."""
    if row.round_pulses is not None:
        return {k: list(v) for k, v in row.round_pulses.items()}
    return {k: [v] for k, v in (row.pulses or {}).items()}


def audio_rounds(row: GunshotIncidentRow) -> list[dict[str, Any]]:
    """``[{"sensor", "rounds"}]``: the 1-based rounds of each sensor whose pulse came with audio.

    Before revision 0014 it was not recorded: each sensor's first pulse is offered as round 1.
    """
    if row.round_audio is None:
        return [{"sensor": k, "rounds": [1]} for k in sorted(row.pulses or {})]
    return [{"sensor": k, "rounds": sorted(v)} for k, v in sorted(row.round_audio.items()) if v]


def incident_dict(row: GunshotIncidentRow) -> dict[str, Any]:
    """A JSON-ready view of a row (the API's shape)."""
    return {
        "id": str(row.id),
        "occurred_at": row.occurred_at.isoformat(),
        "lat": row.lat,
        "lon": row.lon,
        "ellipse_major_m": row.ellipse_major_m,
        "ellipse_minor_m": row.ellipse_minor_m,
        "ellipse_angle_deg": row.ellipse_angle_deg,
        "rounds": row.rounds,
        "intervals_s": list(row.intervals_s or []),
        "automatic": row.automatic,
        "multiple_shooters": row.multiple_shooters,
        "location_quality": row.location_quality,
        "temperature_c": row.temperature_c,
        "temperature_source": row.temperature_source,
        "label": row.label,
        "confidence": row.confidence,
        "sensors": list(row.sensors or []),
        "audio": audio_rounds(row),
        "status": row.status,
        "reviewed_by": row.reviewed_by,
        "review_reason": row.review_reason,
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
        "outcome": row.outcome,
    }
