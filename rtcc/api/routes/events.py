"""Recent events from the store, filtered by what the caller's role may see."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from rtcc.api.deps import CtxDep, Operations
from rtcc.errors import Forbidden, ValidationFailed
from rtcc.events import EVENT_TYPES, LIVE_ROLES

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", summary="Recent events, newest first")
async def list_events(
    ctx: CtxDep,
    who: Operations,
    types: list[str] | None = Query(None, description="Event types to include."),
    since: datetime | None = None,
    until: datetime | None = None,
    device_id: str | None = Query(None, max_length=128),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    from rtcc.store.events_repo import list_events as repo_list

    for t in types or []:
        if t not in EVENT_TYPES:
            raise ValidationFailed(f"unknown event type {t!r}", details={"known": sorted(EVENT_TYPES)})
    visible = [t for t in EVENT_TYPES if who.role in LIVE_ROLES.get(t, frozenset())]
    wanted = [t for t in (types or visible) if t in visible]
    if types and not wanted:
        raise Forbidden(f"role {who.role.value!r} may not read events of type(s) {types}")
    for dt in (since, until):
        if dt is not None and dt.tzinfo is None:
            raise ValidationFailed("since/until need a timezone (e.g. 2026-01-01T00:00:00Z)")
    rows = await ctx.store.read(
        lambda s: repo_list(s, types=wanted, since=since, until=until, device_id=device_id, limit=limit)
    )
    personal = sorted({r.type for r in rows if EVENT_TYPES[r.type].personal})
    if personal:
        await ctx.audit(
            who,
            "read_events",
            "events",
            details={"types": personal, "count": len(rows), "device_id": device_id},
        )
    return {"items": [r.payload for r in rows]}
