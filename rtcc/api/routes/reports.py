"""Reports, exports, CAP and the dispatch feed.

* ``GET /exports/alerts.csv|alerts.geojson?start=&end=`` — analysts,
  supervisors, admins; the range is bounded (``operations.export_max_days``,
  ``operations.export_max_rows``) and every export is audited.
* ``GET /feeds/cap/{alert_id}.xml`` — one alert as OASIS CAP 1.2.
* ``GET /feeds/alerts.json?since=`` — alerts stored or updated since a
  time, oldest first, with ``next_since`` for the next poll. ``next_since``
  is a cursor, ``<updated_at>|<alert id>``: pass it back as ``since`` and
  nothing is skipped, also when several alerts changed at the same instant and
  the page ``limit`` fell between them (``since`` still takes a plain time).
  A new alert's ``updated_at`` is when the center stored it (not when it
  occurred), so an alert about a plate read uploaded late is still served
  after the cursor.

A hit alert's title names the plate: CAP and the feed audit serving one
(``read_hit_alerts``, with the alerts' ids), as ``GET /alerts`` does.

Dispatch (CAD) systems use a service account with an operations role (its
bearer token); there is no separate feed token to leak or rotate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rtcc.api.deps import Allow, Context, CtxDep, Operations, Principal
from rtcc.api.routes.alerts import audit_plate_alerts
from rtcc.errors import ValidationFailed
from rtcc.ops.times import checked_time, checked_times
from rtcc.roles import Role

router = APIRouter(tags=["reports"])

Analysts = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]


def _range(ctx: Context, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    start, end = checked_times(start=start, end=end)
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=30)
    if end <= start:
        raise ValidationFailed("end must be after start")
    most = ctx.settings.operations.export_max_days
    if end - start > timedelta(days=most):
        raise ValidationFailed(
            f"the range is longer than {most} days (setting operations.export_max_days): split the export"
        )
    return start, end


async def _rows(ctx: Context, who: Principal, start: datetime, end: datetime) -> list[Any]:
    from rtcc.ops.alerts import list_alerts

    cap = ctx.settings.operations.export_max_rows
    rows = await ctx.store.read(
        lambda s: list_alerts(s, role=who.role, since=start, until=end, limit=cap + 1)
    )
    if len(rows) > cap:
        raise ValidationFailed(
            f"more than {cap} alerts in the range (setting operations.export_max_rows): narrow start/end"
        )
    return list(reversed(rows))


async def _export(
    ctx: Context,
    who: Principal,
    start: datetime | None,
    end: datetime | None,
    fmt: str,
    render: Callable[[list[Any]], str],
    media_type: str,
) -> Response:
    """The alerts of a range rendered as ``fmt``, as a download; the export is audited with its size."""
    start, end = _range(ctx, start, end)
    rows = await _rows(ctx, who, start, end)
    await ctx.audit(
        who,
        "export_alerts",
        "alert",
        details={"format": fmt, "start": start.isoformat(), "end": end.isoformat(), "rows": len(rows)},
    )
    return Response(
        render(rows),
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="alerts.{fmt}"'},
    )


@router.get(
    "/exports/alerts.csv",
    summary="Alerts in a time range as CSV (audited)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per alert."}},
)
async def export_csv(
    ctx: CtxDep,
    who: Analysts,
    start: datetime | None = Query(None, description="From (with a timezone); default: 30 days before end."),
    end: datetime | None = Query(None, description="Before (with a timezone); default: now."),
) -> Response:
    from rtcc.ops.exports import alerts_csv

    return await _export(ctx, who, start, end, "csv", alerts_csv, "text/csv; charset=utf-8")


@router.get(
    "/exports/alerts.geojson",
    summary="Alerts in a time range as GeoJSON (audited)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}, "description": "A FeatureCollection."}},
)
async def export_geojson(
    ctx: CtxDep,
    who: Analysts,
    start: datetime | None = Query(None, description="From (with a timezone); default: 30 days before end."),
    end: datetime | None = Query(None, description="Before (with a timezone); default: now."),
) -> Response:
    from rtcc.ops.exports import alerts_geojson

    def body(rows: list[Any]) -> str:
        return json.dumps(alerts_geojson(rows), separators=(",", ":"))

    return await _export(ctx, who, start, end, "geojson", body, "application/geo+json")


@router.get(
    "/feeds/cap/{alert_id}.xml",
    summary="One alert as OASIS CAP 1.2",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}, "description": "A CAP 1.2 <alert>."}},
)
async def cap_alert(alert_id: UUID, ctx: CtxDep, who: Operations) -> Response:
    from rtcc.ops.alerts import get_alert
    from rtcc.ops.exports import cap_xml

    row = await ctx.store.read(lambda s: get_alert(s, alert_id, role=who.role))
    await audit_plate_alerts(ctx, who, [row], f"/api/v1/feeds/cap/{alert_id}.xml")
    sender = ctx.settings.operations.cap_sender
    return Response(cap_xml(row, sender=sender), media_type="application/cap+xml")


@router.get(
    "/feeds/alerts.json",
    summary="Alerts created or updated since a time (for dispatch systems), oldest first",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "{items, next_since}."}},
)
async def alerts_feed(
    ctx: CtxDep,
    who: Operations,
    since: str | None = Query(
        None,
        max_length=120,
        description="Changed after this time (with a timezone), or the cursor `next_since` of the "
        "previous poll (`<time>|<alert id>`); default: 1 h ago.",
    ),
    limit: int = Query(500, ge=1, le=5000),
) -> Response:
    from rtcc.ops.alerts import visible_kinds_filter
    from rtcc.ops.exports import feed_cursor, feed_json
    from rtcc.store.tables_ops import AlertRow

    after, after_id = _feed_since(since)
    hidden = visible_kinds_filter(who.role)

    def _q(s: Session) -> list[AlertRow]:
        if after_id is None:
            q = select(AlertRow).where(AlertRow.updated_at > after)
        else:
            q = select(AlertRow).where(
                or_(
                    AlertRow.updated_at > after,
                    and_(AlertRow.updated_at == after, AlertRow.id > after_id),
                )
            )
        if hidden:
            q = q.where(AlertRow.kind.not_in(hidden))
        return list(s.scalars(q.order_by(AlertRow.updated_at, AlertRow.id).limit(limit)))

    rows = await ctx.store.read(_q)
    await audit_plate_alerts(ctx, who, rows, "/api/v1/feeds/alerts.json")
    next_since = feed_cursor(rows[-1].updated_at, rows[-1].id) if rows else feed_cursor(after, after_id)
    return Response(feed_json(rows, next_since=next_since), media_type="application/json")


_TIME = TypeAdapter(datetime)


def _feed_since(since: str | None) -> tuple[datetime, UUID | None]:
    """The feed's ``since``: a time (with a timezone) or a cursor ``<time>|<alert id>``; 422 otherwise."""
    from rtcc.ops.exports import split_feed_cursor

    if since is None or not since.strip():
        return datetime.now(UTC) - timedelta(hours=1), None
    try:
        text, after_id = split_feed_cursor(since)
    except ValueError:
        raise ValidationFailed(
            "since is not a time or a cursor (`next_since` of the previous poll: <time>|<alert id>)",
            details={"since": since},
        ) from None
    try:
        when = _TIME.validate_strings(text)
    except PydanticValidationError:
        raise ValidationFailed(
            f"since {text!r} is not a time (e.g. 2026-01-01T00:00:00Z) or a cursor (<time>|<alert id>)",
            details={"since": since},
        ) from None
    after = checked_time(when, "since")
    assert after is not None
    return after, after_id
