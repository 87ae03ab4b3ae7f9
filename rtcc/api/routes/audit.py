"""The audit log: list, verify the chain, export CSV (admins and auditors)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from rtcc.api.deps import CtxDep, Oversight
from rtcc.errors import ValidationFailed

router = APIRouter(prefix="/audit", tags=["oversight"])


@router.get("", summary="Audit entries, newest first")
async def list_audit(
    ctx: CtxDep,
    who: Oversight,
    actor: str | None = Query(None, max_length=128),
    action: str | None = Query(None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**62),
    before_seq: int | None = Query(
        None,
        ge=1,
        le=2**62,
        description="Only entries older than this seq. Give a page's `next_before_seq` to get the "
        "next page: unlike `offset` it does not shift as entries are added (every read adds one).",
    ),
) -> dict[str, Any]:
    from rtcc.oversight.audit import iter_audit

    if since and until and since.tzinfo and until.tzinfo and until <= since:
        # an empty period is a mistake in the filter, not "no entries" (naive times: iter_audit says)
        raise ValidationFailed("until must be after since: the period 'since <= at < until' is empty")
    rows = await ctx.store.read(
        lambda s: list(
            iter_audit(
                s,
                actor=actor,
                action=action,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
                before_seq=before_seq,
            )
        )
    )
    await ctx.audit(who, "read_audit", "audit", details={"count": len(rows)})
    return {
        "items": [
            {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "role": r.role,
                "action": r.action,
                "resource": r.resource,
                "record_id": r.record_id,
                "outcome": r.outcome,
                "purpose": r.purpose,
                "details": r.details,
                "hash": r.hash,
            }
            for r in rows
        ],
        "next_before_seq": rows[-1].seq if len(rows) == limit else None,
    }


@router.get("/verify", summary="Check the hash chain; reports the first broken entry")
async def verify(ctx: CtxDep, who: Oversight) -> dict[str, Any]:
    from rtcc.oversight.audit import verify_chain

    secret = ctx.settings.security.secret_key.encode()
    report = await ctx.store.read(lambda s: verify_chain(s, secret))
    await ctx.audit(who, "verify_audit", "audit", outcome="ok" if report.ok else "broken")
    return {
        "ok": report.ok,
        "entries": report.checked,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.kind,
        "message": report.message,
    }


@router.get("/export.csv", summary="The audit log as CSV", response_class=Response)
async def export(ctx: CtxDep, who: Oversight) -> Response:
    from rtcc.oversight.audit import export_csv

    def _do(s: Any) -> str:
        buf = io.StringIO()
        export_csv(s, buf)
        return buf.getvalue()

    text = await ctx.store.read(_do)
    await ctx.audit(who, "export_audit", "audit")
    return Response(
        text,
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="rtcc-audit.csv"'},
    )
