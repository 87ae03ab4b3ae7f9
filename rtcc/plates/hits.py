"""Hotlist hits: recorded once per read × entry, then confirmed or rejected by a person.

A hit starts as ``verify`` — "verify before action": a read can be a misread,
and the entry is shown beside the read's photo so an officer or analyst can
check before anyone acts. :func:`decide` moves it to ``confirmed`` or
``rejected`` once, with the decider and the reason.

A hit carries the entry's state and the read's region (the state the camera
read on the plate): the same number in another state is the classic
wrong-car stop, so when both are known and differ the hit says so
(``state_mismatch``). Matching itself ignores the region (a read's region is
often unknown).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rtcc.errors import Conflict, NotFound
from rtcc.events import PlateRead
from rtcc.plates.matching import Match
from rtcc.store.tables_hotlists import HitRow, HotlistEntryRow

HitStatus = Literal["verify", "confirmed", "rejected"]
HIT_STATUSES: tuple[str, ...] = ("verify", "confirmed", "rejected")

_NS = uuid.UUID("5d8d7f0e-4a53-4d0c-9b8e-8c1f3a2b6e11")


def hit_id_for(read_id: uuid.UUID, entry_id: str | uuid.UUID) -> uuid.UUID:
    """The hit's id, a function of read and entry (the same under any redelivery)."""
    return uuid.uuid5(_NS, f"{read_id}:{entry_id}")


@dataclass(frozen=True)
class NewHit:
    """A hit row and whether this call created it."""

    row: HitRow
    created: bool


def record_hit(session: Session, read: PlateRead, match: Match, now: datetime | None = None) -> NewHit | None:
    """Store the hit of ``read`` on ``match.entry`` once; None when the entry is gone.

    Idempotent: a second call for the same read and entry returns the row
    already stored (``created=False``).
    """
    entry_uuid = uuid.UUID(match.entry.entry_id)
    hid = hit_id_for(read.event_id, entry_uuid)
    old = session.get(HitRow, hid)
    if old is not None:
        return NewHit(old, False)
    entry = session.get(HotlistEntryRow, entry_uuid)
    if entry is None:
        return None
    row = HitRow(
        id=hid,
        read_id=read.event_id,
        entry_id=entry_uuid,
        read_at=read.occurred_at,
        device=read.device,
        lat=read.pos.lat,
        lon=read.pos.lon,
        plate=read.plate,
        confidence=read.confidence,
        image_ref=read.image_ref,
        crop_ref=read.crop_ref,
        match=match.kind,
        distance=match.distance,
        entry_plate=entry.plate,
        entry_source=entry.source,
        category=entry.category,
        reason=entry.reason,
        status="verify",
        created_at=now or datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another member of the queue group stored it first
        found = session.get(HitRow, hid)
        if found is None:
            raise
        return NewHit(found, False)
    return NewHit(row, True)


def get_hit(session: Session, hit_id: uuid.UUID) -> HitRow:
    """The hit ``hit_id``.

    Raises
    ------
    NotFound
        When there is no such hit.
    """
    row = session.get(HitRow, hit_id)
    if row is None:
        raise NotFound(f"no hotlist hit {hit_id}")
    return row


def list_hits(
    session: Session,
    *,
    status: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[HitRow]:
    """Hits, newest read first."""
    q = select(HitRow)
    if status:
        q = q.where(HitRow.status.in_(status))
    if since is not None:
        q = q.where(HitRow.read_at >= since)
    if until is not None:
        q = q.where(HitRow.read_at < until)
    return list(session.scalars(q.order_by(HitRow.read_at.desc(), HitRow.id).limit(limit)))


def decide(
    session: Session,
    hit_id: uuid.UUID,
    *,
    decision: Literal["confirmed", "rejected"],
    by: str,
    reason: str,
    now: datetime | None = None,
) -> HitRow:
    """Confirm or reject a hit still waiting for verification.

    Raises
    ------
    NotFound
        When there is no such hit.
    Conflict
        When someone already decided it, or (confirming) when its hotlist entry has left the list.
    """
    row = session.get(HitRow, hit_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no hotlist hit {hit_id}")
    if row.status != "verify":
        raise Conflict(
            f"hit {hit_id} was already {row.status} by {row.decided_by}",
            details={"status": row.status, "decided_by": row.decided_by},
        )
    if decision == "confirmed" and session.get(HotlistEntryRow, row.entry_id) is None:
        raise Conflict(
            f"the hotlist entry hit {hit_id} matched ({row.entry_plate}, source {row.entry_source}) has "
            "left the list since (removed, or not in a re-import): the vehicle is no longer wanted "
            "there. It cannot be confirmed; reject the hit with a reason",
            details={"status": row.status, "entry_removed": True},
        )
    row.status = decision
    row.decided_by = by
    row.decided_at = now or datetime.now(UTC)
    row.decision_reason = reason
    session.flush()
    return row


def _region_code(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    if code.startswith("US-"):  # ISO 3166-2 form of a US state: US-TX is TX
        code = code[3:]
    return code or None


def state_mismatch(entry_state: str | None, read_region: str | None) -> bool:
    """True when the entry's state and the read's region are both known and differ."""
    a, b = _region_code(entry_state), _region_code(read_region)
    return a is not None and b is not None and a != b


def hit_view(session: Session, row: HitRow) -> dict[str, Any]:
    """:func:`hit_dict` with the entry's state and the read's region looked up (None when gone)."""
    from rtcc.plates.reads import get_read

    entry = session.get(HotlistEntryRow, row.entry_id)
    read = get_read(session, row.read_id)
    return hit_dict(
        row,
        entry_state=entry.state if entry is not None else None,
        read_region=read.region if read is not None else None,
        entry_removed=entry is None,
    )


def hit_dict(
    row: HitRow,
    *,
    entry_state: str | None = None,
    read_region: str | None = None,
    entry_removed: bool = False,
) -> dict[str, Any]:
    """A JSON-ready view of a hit row, with the entry's state and the read's region when known, and
    whether the entry has left the list since (``entry_removed``)."""
    return {
        "id": row.id,
        "read_id": row.read_id,
        "entry_id": row.entry_id,
        "read_at": row.read_at,
        "device": row.device,
        "lat": row.lat,
        "lon": row.lon,
        "plate": row.plate,
        "confidence": row.confidence,
        "image_ref": row.image_ref,
        "crop_ref": row.crop_ref,
        "match": row.match,
        "distance": row.distance,
        "entry_plate": row.entry_plate,
        "entry_source": row.entry_source,
        "category": row.category,
        "reason": row.reason,
        "status": row.status,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
        "decision_reason": row.decision_reason,
        "entry_state": entry_state,
        "read_region": read_region,
        "state_mismatch": state_mismatch(entry_state, read_region),
        "entry_removed": entry_removed,
    }


def hit_read_ids(session: Session) -> set[uuid.UUID]:
    """Ids of every read that hit something (retention keeps them)."""
    return set(session.scalars(select(HitRow.read_id).distinct()))
