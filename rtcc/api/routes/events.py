"""Recent events from the store, filtered by what the caller's role may see.

Plate reads are not served here: reading stored reads is a search, and every
search of reads needs a purpose and a case number (``GET /api/v1/plates/search``,
and ``GET /api/v1/plates/reads/{id}`` for one read: both refuse a request without
them). An explicit ``types=plate_read`` is refused (403) and audited as a refused
plate search; the default list leaves plate reads out. The live WebSocket feed
still shows reads as they come (live viewing is not a search). Hotlist hits stay:
they are alerts operators act on (the dashboard's history loads them); their
copies here are deleted with the plate reads after ``retention.plate_reads_days``
(:mod:`rtcc.oversight.retention`).

Events with personal data are audited per request (``read_events``: the types, and which units'
locations or which plate-naming alerts were read): plate hits, heartbeats of devices that move with
an officer (body cams, in-car and plate cameras; a fixed sensor's heartbeat is not personal) and hit
alerts, whose title names the plate.

Pulses are served without their audio (``audio_flac_b64`` is null): street audio can hold
voices, and it is played, role-checked and audited per listen, through the incident it belongs to
(``GET /api/v1/gunshots/{id}/audio``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from rtcc.api.deps import CtxDep, Operations
from rtcc.errors import Forbidden, ValidationFailed
from rtcc.events import ALERT_KIND_ROLES, EVENT_TYPES, LIVE_ROLES
from rtcc.roles import Role

router = APIRouter(prefix="/events", tags=["events"])

NOT_IN_HISTORY: frozenset[str] = frozenset({"plate_read"})
"""Event types this route never serves (searching them needs a purpose and a case number)."""

PLATE_READS_HINT = (
    "plate reads are not served by the event history: searching reads needs a purpose and a case "
    "number. Use GET /api/v1/plates/search?purpose=...&case_number=... (or GET /api/v1/plates/reads/{id} "
    "with the same purpose and case_number); the live feed (WebSocket) still shows new reads"
)


@router.get("", summary="Recent events, newest first (no plate reads: search those with a purpose)")
async def list_events(
    request: Request,
    ctx: CtxDep,
    who: Operations,
    types: list[str] | None = Query(None, description="Event types to include (not plate_read)."),
    since: datetime | None = None,
    until: datetime | None = None,
    device_id: str | None = Query(None, max_length=128),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    from rtcc.store.events_repo import list_events as repo_list

    for t in types or []:
        if t not in EVENT_TYPES:
            raise ValidationFailed(f"unknown event type {t!r}", details={"known": sorted(EVENT_TYPES)})
    refused = sorted(NOT_IN_HISTORY.intersection(types or []))
    if refused:
        await ctx.audit(
            who,
            "plate_search_refused",
            "plate_reads",
            outcome="refused",
            details={"path": request.url.path, "reason": "event_history", "types": refused},
        )
        raise Forbidden(PLATE_READS_HINT, details={"refused_types": refused, "use": "/api/v1/plates/search"})
    visible = [
        t for t in EVENT_TYPES if t not in NOT_IN_HISTORY and who.role in LIVE_ROLES.get(t, frozenset())
    ]
    wanted = [t for t in (types or visible) if t in visible]
    if types and not wanted:
        raise Forbidden(f"role {who.role.value!r} may not read events of type(s) {types}")
    for dt in (since, until):
        if dt is not None and dt.tzinfo is None:
            raise ValidationFailed("since/until need a timezone (e.g. 2026-01-01T00:00:00Z)")
    rows = await ctx.store.read(
        lambda s: repo_list(s, types=wanted, since=since, until=until, device_id=device_id, limit=limit)
    )
    # alert kinds narrower than the alert audience (a gunshot review: the reviewers), as the live feed
    rows = [r for r in rows if who.role in (_narrower(r.type, r.payload) or {who.role})]
    # per event, not per type: a body cam's heartbeat is an officer's position, a fixed sensor's is not
    personal_rows = [r for r in rows if EVENT_TYPES[r.type].is_personal(r.payload)]
    if personal_rows:
        details: dict[str, Any] = {
            "types": sorted({r.type for r in personal_rows}),
            "count": len(rows),
            "device_id": device_id,
        }
        units = sorted({str(r.payload.get("device")) for r in personal_rows if r.type == "device_heartbeat"})
        if units:
            details["units"] = units  # whose locations were read
        alerts = sorted({str(r.payload.get("alert_id")) for r in personal_rows if r.type == "alert"})
        if alerts:
            details["alerts"] = alerts  # which alerts naming a plate were read
        await ctx.audit(who, "read_events", "events", details=details)
    return {"items": [_without_audio(r.payload) if r.type == "pulse" else r.payload for r in rows]}


def _narrower(event_type: str, payload: dict[str, Any]) -> frozenset[Role] | None:
    """The roles an alert of a narrower kind is for (:data:`ALERT_KIND_ROLES`), else None."""
    if event_type not in ("alert", "alert_updated"):
        return None
    return ALERT_KIND_ROLES.get(str(payload.get("kind", "")))


def _without_audio(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "audio_flac_b64": None} if payload.get("audio_flac_b64") else payload
