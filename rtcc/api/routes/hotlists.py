"""Hotlists, hits ("verify before action") and accountable plate search.

Hotlists
    ``GET /hotlists`` — sources and counts; ``POST /hotlists/{source}/import?format=ncic|csv``
    — replace a source atomically from an uploaded file (answers counts and the
    bad lines by number); ``GET/POST /hotlists/entries``, ``DELETE
    /hotlists/entries/{entry_id}`` — BOLO entries (adding, removing and listing them are audited:
    a list names wanted and missing people's plates).
Hits
    ``GET /hits?status=``, ``GET /hits/{hit_id}`` (the read's photo refs beside
    the entry; audited), ``GET /hits/{hit_id}/image?kind=crop|vehicle`` (the
    read's photos for hit review: no case number needed, audited with the hit
    id) and ``POST /hits/{hit_id}/decision`` — confirm, or reject (e.g. as a
    misread), always with a reason (audited). Operations roles, the officer too.
Search
    ``GET /plates/search``, ``GET /plates/track``, ``GET /plates/cotravel`` —
    see :mod:`rtcc.api.routes.plate_search`, whose routes this router carries.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rtcc.api.deps import Allow, CtxDep, Operations, Principal
from rtcc.api.routes import plate_search
from rtcc.api.routes.alerts import settle_alerts
from rtcc.api.routes.plate_search import aware, read_out
from rtcc.api.text import Reason, Reason2000
from rtcc.errors import NotFound, ValidationFailed
from rtcc.events import HitDecision
from rtcc.plates.hotlist_import import Category
from rtcc.plates.hotlists import SOURCE_NAME_PATTERN
from rtcc.roles import Role

router = APIRouter(tags=["hotlists"])

ListKeepers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]

MAX_ERRORS_SHOWN = 1000


# --- models -------------------------------------------------------------------


class SourceOut(BaseModel):
    name: str
    kind: str
    imported_at: datetime
    imported_by: str
    entries: int
    active: int = Field(description="Entries not expired now.")
    errors: int = Field(description="Bad lines at the last import.")


class SourceList(BaseModel):
    items: list[SourceOut]


class LineErrorOut(BaseModel):
    line: int
    reason: str


class DuplicateOut(BaseModel):
    line: int
    first_line: int = Field(description="The earlier line with the same plate and state (kept).")
    plate: str
    state: str | None


class ImportOut(BaseModel):
    source: str
    kind: str
    imported: int
    active: int
    error_count: int
    errors: list[LineErrorOut] = Field(description=f"Bad lines (at most {MAX_ERRORS_SHOWN} shown).")
    duplicate_count: int = Field(0, description="Lines that repeat an earlier line's plate and state.")
    duplicates: list[DuplicateOut] = Field(
        default_factory=list,
        description=f"Those lines, not imported (at most {MAX_ERRORS_SHOWN} shown); "
        "they do not fail the import.",
    )


class EntryOut(BaseModel):
    id: UUID
    source: str
    plate: str = Field(description="Normalized plate; '?' one unknown character, '*' any run.")
    category: str
    state: str | None
    reason: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime


class EntryList(BaseModel):
    items: list[EntryOut]


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=1, max_length=24, description="Plate; wildcards '?' and '*' allowed.")
    category: Category
    reason: Reason2000 = Field(description="Why the vehicle is wanted.")
    expires_at: AwareDatetime | None = Field(None, description="When the entry stops matching.")
    state: str | None = Field(None, min_length=2, max_length=4, pattern=r"^[A-Za-z]{2,4}$")


class HitOut(BaseModel):
    id: UUID
    read_id: UUID
    entry_id: UUID
    read_at: datetime
    device: str
    lat: float
    lon: float
    plate: str
    confidence: float | None
    image_ref: str | None = Field(description="Media ref of the vehicle image.")
    crop_ref: str | None = Field(description="Media ref of the plate crop.")
    match: Literal["exact", "lookalike", "partial"]
    distance: int
    entry_plate: str
    entry_source: str
    category: str
    reason: str
    status: Literal["verify", "confirmed", "rejected"] = Field(
        description="'verify' = verify before action; then confirmed or rejected."
    )
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    entry_state: str | None = Field(
        description="The hotlist entry's state (None: not given, or entry removed)."
    )
    read_region: str | None = Field(
        description="The state/region the camera read on the plate (None: unknown)."
    )
    state_mismatch: bool = Field(
        description="Both states known and different: the same number from another state, likely another car."
    )
    entry_removed: bool = Field(
        False,
        description=(
            "The hotlist entry has left the list since the hit (removed, or not in a re-import): the "
            "vehicle is no longer wanted there, so the hit cannot be confirmed, only rejected."
        ),
    )


class HitList(BaseModel):
    items: list[HitOut]


class HitDetail(HitOut):
    entry: EntryOut | None = Field(description="The hotlist entry now (None when removed since).")
    read: dict[str, Any] | None = Field(description="The stored read (None when no longer stored).")
    photos: dict[str, str] = Field(
        default_factory=dict,
        description="API paths of the read's plate crop and vehicle image for hit review "
        "(GET /hits/{hit_id}/image; each fetch is audited with the hit).",
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "rejected"]
    reason: Reason = Field(description="Why (e.g. 'misread: plate is 8BC1234'); audited.")


# --- helpers ----------------------------------------------------------------------


def _entry_out(row: Any) -> EntryOut:
    return EntryOut(
        id=row.id,
        source=row.source,
        plate=row.plate,
        category=row.category,
        state=row.state,
        reason=row.reason,
        expires_at=row.expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def _refresh_matcher(ctx: Any) -> None:
    svc = ctx.services.get("plates")
    if svc is not None:
        await svc.refresh()


# --- hotlists ---------------------------------------------------------------------


@router.get("/hotlists", summary="Hotlist sources and their entry counts")
async def list_hotlists(ctx: CtxDep, who: Operations) -> SourceList:
    from rtcc.plates.hotlists import list_sources

    rows = await ctx.store.read(list_sources)
    return SourceList(items=[SourceOut(**vars(r)) for r in rows])


@router.post(
    "/hotlists/{source}/import",
    summary="Replace a hotlist source from a file, atomically (bad lines reported by number)",
)
async def import_hotlist(
    ctx: CtxDep,
    who: ListKeepers,
    source: Annotated[str, Path(pattern=SOURCE_NAME_PATTERN, description="Source name, e.g. 'ncic'.")],
    file: Annotated[
        UploadFile, File(description="The hotlist file (NCIC fixed width, or CSV with a header).")
    ],
    fmt: Literal["ncic", "csv"] = Query(alias="format", description="File layout."),
) -> ImportOut:
    from rtcc.plates.hotlist_import import HotlistRefused, parse_file
    from rtcc.plates.hotlists import replace_source

    raw = await file.read()
    try:
        report = await asyncio.to_thread(parse_file, raw, fmt)
    except HotlistRefused as exc:
        # the whole file is untrustworthy (binary, or a quote that swallows the lines after it)
        await ctx.audit(
            who,
            "hotlist_import",
            "hotlist",
            record_id=source,
            outcome="refused",
            details={"format": fmt, "entries": 0, "refused_line": exc.line},
        )
        where = f"line {exc.line}: " if exc.line is not None else ""
        raise ValidationFailed(
            f"{where}{exc.reason}; source {source!r} was left as it was",
            details={"line": exc.line, "reason": exc.reason},
        ) from None
    errors = [LineErrorOut(line=e.line, reason=e.reason) for e in report.errors[:MAX_ERRORS_SHOWN]]
    duplicates = [
        DuplicateOut(line=d.line, first_line=d.first_line, plate=d.plate, state=d.state)
        for d in report.duplicates[:MAX_ERRORS_SHOWN]
    ]
    if not report.entries:
        await ctx.audit(
            who,
            "hotlist_import",
            "hotlist",
            record_id=source,
            outcome="refused",
            details={"format": fmt, "entries": 0, "bad_lines": len(report.errors)},
        )
        raise ValidationFailed(
            f"no usable entry in the file; source {source!r} was left as it was",
            details={"errors": [e.model_dump() for e in errors]},
        )
    kind: Literal["ncic", "state_csv"] = "ncic" if fmt == "ncic" else "state_csv"
    summary = await ctx.store.write(
        lambda s: replace_source(s, source, kind, report.entries, errors=len(report.errors), by=who.username)
    )
    await ctx.audit(
        who,
        "hotlist_import",
        "hotlist",
        record_id=source,
        details={
            "format": fmt,
            "entries": summary.entries,
            "bad_lines": len(report.errors),
            "duplicate_lines": len(report.duplicates),
        },
    )
    await _refresh_matcher(ctx)
    return ImportOut(
        source=source,
        kind=kind,
        imported=summary.entries,
        active=summary.active,
        error_count=len(report.errors),
        errors=errors,
        duplicate_count=len(report.duplicates),
        duplicates=duplicates,
    )


@router.get("/hotlists/entries", summary="Hotlist entries, newest first")
async def list_hotlist_entries(
    ctx: CtxDep,
    who: Operations,
    source: str | None = Query(None, pattern=SOURCE_NAME_PATTERN),
    plate: str | None = Query(None, max_length=24, description="Prefix of the plate."),
    include_expired: bool = False,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**62),
) -> EntryList:
    from rtcc.plates.hotlists import list_entries

    rows = await ctx.store.read(
        lambda s: list_entries(
            s, source=source, plate=plate, include_expired=include_expired, limit=limit, offset=offset
        )
    )
    if rows:  # plates wanted or missing, with why: a read of them is audited, as a hit's
        details: dict[str, Any] = {"count": len(rows), "source": source, "plate": plate}
        await ctx.audit(who, "read_hotlist_entries", "hotlist_entries", details=details)
    return EntryList(items=[_entry_out(r) for r in rows])


@router.post(
    "/hotlists/entries",
    status_code=201,
    summary="Add a BOLO entry (audited)",
    responses={409: {"description": "an active BOLO entry for the same plate and state exists (named)"}},
)
async def create_hotlist_entry(body: EntryIn, ctx: CtxDep, who: ListKeepers) -> EntryOut:
    from rtcc.plates.hotlists import add_entry

    row = await ctx.store.write(
        lambda s: add_entry(
            s,
            body.plate,
            body.category,
            reason=body.reason,
            created_by=who.username,
            expires_at=body.expires_at,
            state=body.state.upper() if body.state else None,
        )
    )
    await ctx.audit(
        who,
        "hotlist_entry_create",
        "hotlist_entry",
        record_id=str(row.id),
        purpose=body.reason,
        details={
            "category": row.category,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        },
    )
    await _refresh_matcher(ctx)
    return _entry_out(row)


@router.delete("/hotlists/entries/{entry_id}", summary="Remove a hotlist entry (audited)")
async def delete_hotlist_entry(entry_id: UUID, ctx: CtxDep, who: ListKeepers) -> EntryOut:
    from rtcc.plates.hotlists import delete_entry

    row = await ctx.store.write(lambda s: delete_entry(s, entry_id))
    await ctx.audit(
        who, "hotlist_entry_delete", "hotlist_entry", record_id=str(entry_id), details={"source": row.source}
    )
    await _refresh_matcher(ctx)
    return _entry_out(row)


# --- hits ---------------------------------------------------------------------------


@router.get("/hits", summary="Hotlist hits, newest first (audited: they hold plates)")
async def list_hits(
    ctx: CtxDep,
    who: Operations,
    status: list[Literal["verify", "confirmed", "rejected"]] | None = Query(None),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> HitList:
    from rtcc.plates.hits import hit_view
    from rtcc.plates.hits import list_hits as _list

    since, until = aware(since, "since"), aware(until, "until")
    rows = await ctx.store.read(
        lambda s: [
            hit_view(s, r) for r in _list(s, status=list(status or []), since=since, until=until, limit=limit)
        ]
    )
    await ctx.audit(
        who, "list_hits", "hotlist_hit", details={"status": list(status or []), "count": len(rows)}
    )
    return HitList(items=[HitOut(**r) for r in rows])


@router.get("/hits/{hit_id}", summary="One hit: the read's photos beside the entry (audited)")
async def get_hit(hit_id: UUID, ctx: CtxDep, who: Operations) -> HitDetail:
    from rtcc.plates.hits import get_hit as _get
    from rtcc.plates.hits import hit_dict
    from rtcc.plates.hotlists import get_entry
    from rtcc.plates.reads import get_read

    def _load(s: Any) -> HitDetail:
        row = _get(s, hit_id)
        entry = get_entry(s, row.entry_id)
        read = get_read(s, row.read_id)
        base = f"/api/v1/hits/{hit_id}/image?kind="
        photos = {kind: base + kind for kind in ("crop", "vehicle") if _hit_photo_ref(row, read, kind)}
        return HitDetail(
            **hit_dict(
                row,
                entry_state=entry.state if entry is not None else None,
                read_region=read.region if read is not None else None,
                entry_removed=entry is None,
            ),
            entry=_entry_out(entry) if entry is not None else None,
            read=read_out(read).model_dump(mode="json") if read is not None else None,
            photos=photos,
        )

    out = await ctx.store.read(_load)
    await ctx.audit(who, "read_hit", "hotlist_hit", record_id=str(hit_id), details={"plate": out.plate})
    return out


def _hit_photo_ref(hit: Any, read: Any, kind: str) -> str | None:
    """The media ref of the ``kind`` photo (crop or vehicle) of a hit's read, or None."""
    field = "crop_ref" if kind == "crop" else "image_ref"
    ref = getattr(hit, field) or (getattr(read, field) if read is not None else None)
    return str(ref) if ref else None


@router.get(
    "/hits/{hit_id}/image",
    summary="The plate crop or vehicle image of a hit's read, for hit review (audited with the hit)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."}},
)
async def get_hit_image(
    hit_id: UUID,
    ctx: CtxDep,
    who: Operations,
    kind: Literal["crop", "vehicle"] = Query(
        "crop", description="crop: the plate; vehicle: the whole image."
    ),
) -> Response:
    """The photo an operator compares with the hotlist entry before acting on a hit.

    A read that hit a hotlist is an alert the operations roles act on: its photos are served
    for that review without a case number, and each fetch is audited on the read with the
    hit as its reason. Any other read is only shown to a search with a purpose and a case
    number (``GET /plates/reads/{read_id}/image``).
    """
    from rtcc.api.routes.plates import read_image
    from rtcc.plates.hits import get_hit as _get
    from rtcc.plates.reads import get_read

    def _ref(s: Any) -> tuple[UUID, str | None]:
        row = _get(s, hit_id)
        return row.read_id, _hit_photo_ref(row, get_read(s, row.read_id), kind)

    read_id, ref = await ctx.store.read(_ref)
    data, media = read_image(ctx, ref)
    if data is None:
        raise NotFound(f"no {kind} image stored for the read of hit {hit_id}")
    await ctx.audit(
        who,
        "read_plate_image",
        "plate_read",
        record_id=str(read_id),
        purpose=f"hit review: hit {hit_id}",
        details={"kind": kind, "hit_id": str(hit_id)},
    )
    return Response(data, media_type=media, headers={"cache-control": "no-store"})


@router.post("/hits/{hit_id}/decision", summary="Confirm a hit or reject it (e.g. misread), with a reason")
async def decide_hit(hit_id: UUID, body: DecisionIn, ctx: CtxDep, who: Operations) -> HitOut:
    from rtcc.plates.hits import decide, hit_view

    d = await ctx.store.write(
        lambda s: hit_view(s, decide(s, hit_id, decision=body.decision, by=who.username, reason=body.reason))
    )
    await ctx.audit(
        who,
        f"hit_{body.decision}",
        "hotlist_hit",
        record_id=str(hit_id),
        purpose=body.reason,
        details={"decision": body.decision, "reason": body.reason, "match": d["match"]},
    )
    ev = HitDecision(
        source="api", hit_id=hit_id, decision=body.decision, reason=body.reason, decided_by=who.username
    )
    await ctx.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    # the decision settles the hit's alert: a misread is dismissed; a confirmed hit stays open for
    # dispatch, acknowledged, and no longer says "verify before action"
    if body.decision == "rejected":
        await settle_alerts(ctx, who, hit_id, ("hotlist_hit",), "dismiss", f"hit rejected: {body.reason}")
    else:
        title = (
            f"CONFIRMED hotlist hit {d['plate']} ({str(d['category']).replace('_', ' ')}) at {d['device']}"
        )
        await settle_alerts(
            ctx, who, hit_id, ("hotlist_hit",), "acknowledge", f"hit confirmed: {body.reason}", title
        )
    return HitOut(**d)


# The search routes live in their own module; they are carried here as plain routes (ROUTERS and the
# route x role walk list this router's APIRoutes).
router.routes.extend(plate_search.router.routes)
