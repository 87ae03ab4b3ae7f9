"""The alert queue.

* ``GET /alerts?status=`` and ``GET /alerts/{alert_id}`` — operations roles;
  alert kinds narrower than the alert audience (``ALERT_KIND_ROLES``, e.g.
  ``gunshot_review``) are shown only to their roles.
* ``POST /alerts/{alert_id}/acknowledge|assign|dismiss|close`` — move the
  alert (``assign`` names a unit, ``dismiss`` needs a reason); every step is
  audited and published as an ``alert_updated`` event. A review alert whose
  incident waits for review, or a hit alert whose hit still says "verify", is
  not dismissed or closed (409): the decision on the incident or hit settles it.

A hit alert's title names the plate: serving one (the queue, one alert, the dispatch feed, CAP) is
audited as ``read_hit_alerts`` with the alerts' ids (:func:`audit_plate_alerts`). The moves are
audited by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rtcc.api.deps import Context, CtxDep, Operations, Principal
from rtcc.api.text import Reason
from rtcc.errors import Conflict
from rtcc.events import AlertUpdated

router = APIRouter(prefix="/alerts", tags=["alerts"])

Status = Literal["new", "acknowledged", "assigned", "closed", "dismissed"]


class AlertOut(BaseModel):
    id: UUID
    occurred_at: datetime
    source: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    title: str
    lat: float | None
    lon: float | None
    ref_id: str | None = Field(description="The record the alert is about (e.g. a gunshot incident id).")
    status: Status
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    assigned_by: str | None
    assigned_at: datetime | None
    assigned_unit: str | None
    closed_by: str | None
    closed_at: datetime | None
    dismissed_by: str | None
    dismissed_at: datetime | None
    dismiss_reason: str | None
    history: list[dict[str, str | None]] = Field(description="Every step: status, at, by (unit, reason).")
    awaits_decision: Literal["hit", "review"] | None = Field(
        None,
        description="What this open alert waits for before it can be dismissed or closed: 'hit' (its "
        "hotlist hit still says verify: confirm or reject it), 'review' (its gunshot incident waits "
        "for review). Null when nothing.",
    )


class AlertList(BaseModel):
    items: list[AlertOut]


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # stripped before the length check: a call sign of spaces names no unit (422, not an empty unit)
    unit: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\- ]+$"),
    ] = Field(description="Unit call sign (surrounding spaces are dropped; not blank).")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why (kept in the audit log).")


def _check_tz(since: datetime | None, until: datetime | None) -> None:
    """Each with a timezone and within 1970-9998 UTC (:func:`rtcc.ops.times.checked_time`): 422 otherwise."""
    from rtcc.ops.times import checked_times

    checked_times(since=since, until=until)


@router.get("", summary="The alert queue, newest first")
async def list_alerts(
    ctx: CtxDep,
    who: Operations,
    status: list[Status] | None = Query(None, description="Only these states."),
    since: datetime | None = Query(None, description="From this time (with a timezone)."),
    until: datetime | None = Query(None, description="Before this time (with a timezone)."),
    limit: int = Query(200, ge=1, le=1000),
) -> AlertList:
    from rtcc.ops.alerts import alert_dict, awaiting_decision, list_alerts

    _check_tz(since, until)

    def _read(s: Any) -> tuple[list[Any], list[dict[str, Any]]]:
        rows = list_alerts(s, role=who.role, status=status or [], since=since, until=until, limit=limit)
        awaits = awaiting_decision(s, rows)
        return rows, [alert_dict(r, awaits.get(str(r.id))) for r in rows]

    rows, items = await ctx.store.read(_read)
    await audit_plate_alerts(ctx, who, rows, "/api/v1/alerts")
    return AlertList(items=[AlertOut.model_validate(i) for i in items])


@router.get("/{alert_id}", summary="One alert and its history (audited when it names a plate)")
async def get_alert(alert_id: UUID, ctx: CtxDep, who: Operations) -> AlertOut:
    from rtcc.ops.alerts import alert_dict, awaiting_decision, get_alert

    def _read(s: Any) -> tuple[Any, dict[str, Any]]:
        row = get_alert(s, alert_id, role=who.role)
        return row, alert_dict(row, awaiting_decision(s, [row]).get(str(row.id)))

    row, data = await ctx.store.read(_read)
    await audit_plate_alerts(ctx, who, [row], f"/api/v1/alerts/{alert_id}")
    return AlertOut.model_validate(data)


async def audit_plate_alerts(ctx: Context, who: Principal, rows: Iterable[Any], path: str) -> None:
    """Audit serving ``rows`` when some name a plate (a hit alert's title does): who read which alerts.

    Used by every route that serves alert titles (the queue, the dispatch feed, CAP), so that no plate
    leaves the center without an entry, like ``GET /hits``.
    """
    from rtcc.ops.alerts import naming_plates

    ids = naming_plates(rows)
    if ids:
        await ctx.audit(
            who,
            "read_hit_alerts",
            "alert",
            record_id=ids[0] if len(ids) == 1 else None,
            details={"alerts": ids, "count": len(ids), "path": path},
        )


async def _move(
    ctx: Context,
    who: Principal,
    alert_id: UUID,
    action: Literal["acknowledge", "assign", "close", "dismiss"],
    *,
    unit: str | None = None,
    reason: str | None = None,
) -> AlertOut:
    from rtcc.ops.alerts import alert_dict, awaiting_decision, transition

    now = datetime.now(UTC)

    def _do(s: object) -> tuple[dict[str, object], str]:
        row, before = transition(
            s,  # type: ignore[arg-type]
            alert_id,
            action,
            role=who.role,
            by=who.username,
            at=now,
            unit=unit,
            reason=reason,
        )
        return alert_dict(row, awaiting_decision(s, [row]).get(str(row.id))), before  # type: ignore[arg-type]

    data, before = await ctx.store.write(_do)
    out = AlertOut.model_validate(data)
    await ctx.audit(
        who,
        f"alert_{action}",
        "alert",
        record_id=str(alert_id),
        purpose=reason,
        details={"status_before": before, "status": out.status, "unit": unit, "reason": reason},
    )
    ev = AlertUpdated(
        source="operations",
        alert_id=alert_id,
        kind=out.kind,
        status=out.status,
        by=who.username,
        unit=unit,
        reason=reason,
    )
    await ctx.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    return out


@router.post("/{alert_id}/acknowledge", summary="Acknowledge a new alert")
async def acknowledge(alert_id: UUID, ctx: CtxDep, who: Operations) -> AlertOut:
    return await _move(ctx, who, alert_id, "acknowledge")


@router.post("/{alert_id}/assign", summary="Assign an alert to a unit")
async def assign(alert_id: UUID, body: AssignIn, ctx: CtxDep, who: Operations) -> AlertOut:
    return await _move(ctx, who, alert_id, "assign", unit=body.unit)


def _undecided(s: Any, alert_id: UUID, role: Any) -> Conflict | None:
    """Why the alert may not be dismissed or closed yet: what it announces still waits for a decision.

    A review alert (``gunshot_review``) whose incident is still ``pending_review`` is settled by
    reviewing the incident; a hit alert (``hotlist_hit``) whose hit still says ``verify`` by
    confirming the hit or rejecting it as a misread. Dismissing or closing the alert instead would
    take it off the queue with nobody having decided (and, for a hit, leave a later confirmation
    with no open alert for dispatch).
    """
    from rtcc.ops.alerts import get_alert
    from rtcc.store.tables import GunshotIncidentRow
    from rtcc.store.tables_hotlists import HitRow

    row = get_alert(s, alert_id, role=role)
    if not row.ref_id or row.kind not in ("gunshot_review", "hotlist_hit"):
        return None
    try:
        ref = UUID(row.ref_id)
    except ValueError:
        return None
    if row.kind == "gunshot_review":
        inc = s.get(GunshotIncidentRow, ref)
        if inc is None or inc.status != "pending_review":
            return None
        return Conflict(
            "a review alert is settled by reviewing its incident: POST /api/v1/gunshots/"
            f"{ref}/review with decision 'confirm' or 'dismiss' and the reason",
            details={"incident_id": str(ref)},
        )
    hit = s.get(HitRow, ref)
    if hit is None or hit.status != "verify":
        return None
    return Conflict(
        "a hit alert is settled by deciding the hit: POST /api/v1/hits/"
        f"{ref}/decision with decision 'confirmed' or 'rejected' (a misread) and the reason",
        details={"hit_id": str(ref)},
    )


async def _check_decided(ctx: Context, who: Principal, alert_id: UUID) -> None:
    refusal = await ctx.store.read(lambda s: _undecided(s, alert_id, who.role))
    if refusal is not None:
        raise refusal


@router.post("/{alert_id}/dismiss", summary="Dismiss an alert, with a reason")
async def dismiss(alert_id: UUID, body: DismissIn, ctx: CtxDep, who: Operations) -> AlertOut:
    await _check_decided(ctx, who, alert_id)
    return await _move(ctx, who, alert_id, "dismiss", reason=body.reason)


async def settle_alerts(
    ctx: Context,
    who: Principal,
    ref_id: UUID,
    kinds: tuple[str, ...],
    action: Literal["acknowledge", "close", "dismiss"],
    reason: str,
    title: str | None = None,
) -> int:
    """Close or dismiss the open alerts announcing ``ref_id`` after a decision on it
    (:func:`rtcc.ops.alerts.settle_linked`), and tell open dashboards; returns how many moved."""
    from rtcc.ops.alerts import settle_linked

    now = datetime.now(UTC)
    moved = await ctx.store.write(
        lambda s: [
            (r.id, r.kind, r.status)
            for r in settle_linked(
                s, ref_id, kinds, action, by=who.username, at=now, reason=reason, title=title
            )
        ]
    )
    for alert_id, kind, status in moved:
        ev = AlertUpdated(
            source="operations", alert_id=alert_id, kind=kind, status=status, by=who.username, reason=reason
        )
        await ctx.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    return len(moved)


@router.post("/{alert_id}/close", summary="Close an alert that was handled")
async def close(alert_id: UUID, ctx: CtxDep, who: Operations) -> AlertOut:
    await _check_decided(ctx, who, alert_id)
    return await _move(ctx, who, alert_id, "close")
