"""Accountable plate search: ``GET /plates/search``, ``/plates/track``, ``/plates/cotravel``.

Analysts, supervisors and admins only. Every search is **refused without a
purpose and a case number** (the refusal is audited too), is audited with its
terms and result count, and is written to the search ledger
(``plate_searches``) the transparency page counts by purpose. Mounted by
:mod:`rtcc.api.routes.hotlists`.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from rtcc.api.deps import Allow, CtxDep, Principal
from rtcc.errors import ValidationFailed
from rtcc.plates.transparency import PurposeCategory
from rtcc.roles import Role

router = APIRouter(tags=["plates"])

Searchers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]


class ReadOut(BaseModel):
    id: UUID
    read_at: datetime
    device: str
    lat: float | None
    lon: float | None
    plate: str
    confidence: float
    heading_deg: float | None
    direction: str | None
    region: str | None
    image_ref: str | None
    crop_ref: str | None
    hit: bool


class SearchOut(BaseModel):
    search_id: int = Field(description="Entry in the search ledger.")
    count: int
    items: list[ReadOut]


class TrackOut(BaseModel):
    search_id: int
    plate: str
    count: int
    items: list[ReadOut] = Field(description="The vehicle's reads, oldest first.")
    geojson: dict[str, Any] = Field(description="Points and the path between them (lon/lat), for the map.")


class CoTravellerOut(BaseModel):
    plate: str
    cameras: list[str]
    sightings: int
    first_at: datetime | None
    last_at: datetime | None


class CoTravelOut(BaseModel):
    search_id: int
    plate: str
    target_reads: int
    count: int
    items: list[CoTravellerOut]


def read_out(row: Any) -> ReadOut:
    """The API view of a ``plate_reads`` row."""
    return ReadOut(
        id=row.id,
        read_at=row.read_at,
        device=row.device_id,
        lat=row.lat,
        lon=row.lon,
        plate=row.plate,
        confidence=row.confidence,
        heading_deg=row.heading_deg,
        direction=row.direction,
        region=row.region,
        image_ref=row.image_ref,
        crop_ref=row.crop_ref,
        hit=bool(row.hit),
    )


def aware(dt: datetime | None, name: str) -> datetime | None:
    """``dt`` unchanged, or a 422 naming ``name`` when it has no timezone."""
    if dt is not None and dt.tzinfo is None:
        raise ValidationFailed(f"{name} needs a timezone (e.g. 2026-01-01T00:00:00Z)")
    return dt


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``start`` and ``end`` checked: each with a timezone, and ``start`` before ``end``.

    A reversed range finds nothing, yet would be recorded (and counted on the transparency page)
    as a real search: it is a 422 before anything is recorded.
    """
    start, end = aware(start, "start"), aware(end, "end")
    if start is not None and end is not None and start >= end:
        raise ValidationFailed(
            f"start ({start.isoformat()}) must be before end ({end.isoformat()})",
            details={"start": start.isoformat(), "end": end.isoformat()},
        )
    return start, end


PLACEHOLDERS = frozenset({"na", "none", "null", "nil", "unknown", "tbd", "test", "xxx", "pending", "various"})
"""Case numbers and purposes that say nothing (compared without case, spaces and punctuation)."""


MAX_PURPOSE_CHARS = 1000
MAX_CASE_NUMBER_CHARS = 64


def hidden_characters(text: str) -> bool:
    """Whether ``text`` holds control or invisible format characters (NUL, zero-width spaces...).

    They make a purpose read as something else than what is stored, or break the audit log.
    """
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def case_number_problem(case_number: str) -> str | None:
    """Why ``case_number`` is no case number, or None.

    A case number names one case: it holds at least one ASCII digit other than 0 (``2026-001234``,
    ``BPD-26-77``, ``C-1``; not ``0``, ``000`` or a superscript ``²``), is not a placeholder such
    as ``n/a`` or ``-``, and holds no control or invisible characters. The center does not hold the
    agency's case register, so the number itself is not looked up; it is audited with the search.
    """
    text = case_number.strip()
    folded = "".join(c for c in text.lower() if c.isalnum())
    if hidden_characters(text):
        return f"case_number {text!r} holds control or invisible characters; type the case's number"
    if not any(c in "123456789" for c in text) or folded in PLACEHOLDERS:
        return (
            f"case_number {text!r} names no case: give the case's number (it holds a digit, e.g. "
            "2026-001234); searches without a case are refused and audited"
        )
    return None


def purpose_problem(purpose: str) -> str | None:
    """Why ``purpose`` states no purpose, or None: it needs a word of three letters or more that is
    not a placeholder, and not one character repeated (``aaaaa``), and no control or invisible
    characters (a zero-width space between letters would make ``a b c`` pass as a word)."""
    if hidden_characters(purpose):
        return (
            f"purpose {purpose.strip()!r} holds control or invisible characters (e.g. NUL, zero-width "
            "spaces); state the purpose in plain text"
        )
    words = ["".join(c for c in w.lower() if c.isalpha()) for w in purpose.split()]
    real = [w for w in words if len(w) >= 3 and len(set(w)) > 1 and w not in PLACEHOLDERS]
    if not real:
        return (
            f"purpose {purpose.strip()!r} states no purpose: say why you search (e.g. 'stolen vehicle "
            "report 2026-001234'); it is kept in the audit log and counted on the transparency page"
        )
    return None


class Accountability(BaseModel):
    """Why a search is made; required for every search of the reads."""

    purpose: str
    purpose_category: PurposeCategory
    case_number: str


async def _refuse(
    request: Request,
    ctx: Any,
    message: str,
    audited: dict[str, Any],
    shown: dict[str, Any] | None = None,
) -> NoReturn:
    """Audit a refused search (``audited`` in its details) and answer 422 with ``message``."""
    who = getattr(request.state, "principal", None)
    if who is not None:
        await ctx.audit(
            who,
            "plate_search_refused",
            "plate_reads",
            outcome="refused",
            details={"path": request.url.path, **audited},
        )
    raise ValidationFailed(message, details=audited if shown is None else shown)


async def accountability(
    request: Request,
    ctx: CtxDep,
    purpose: str | None = Query(
        None, description=f"Why you search (required, at most {MAX_PURPOSE_CHARS} characters; audited)."
    ),
    case_number: str | None = Query(
        None, description=f"The case this search is for (required, at most {MAX_CASE_NUMBER_CHARS} chars)."
    ),
    purpose_category: PurposeCategory = Query(
        PurposeCategory.criminal_investigation,
        description="Kind of purpose (counted on the transparency page).",
    ),
) -> Accountability:
    """The purpose and case number of a search; a clear 422 when either is missing."""
    return await check_accountability(request, ctx, purpose, case_number, purpose_category)


async def check_accountability(
    request: Request,
    ctx: Any,
    purpose: str | None,
    case_number: str | None,
    purpose_category: PurposeCategory,
) -> Accountability:
    """Check the purpose and case number of a search of the reads (a search, a track, one read).

    Parameters
    ----------
    request, ctx
        The request (its principal, set by the route's role check, is named in the audited
        refusal) and the center.
    purpose, case_number, purpose_category
        As the caller gave them.

    Returns
    -------
    Accountability
        The stripped purpose and case number.

    Raises
    ------
    ValidationFailed
        When either is missing or says nothing; the refusal is audited first
        (``plate_search_refused``).
    """
    missing = [
        name
        for name, value, least in (("purpose", purpose, 5), ("case_number", case_number, 1))
        if value is None or len(value.strip()) < least
    ]
    if missing:
        await _refuse(
            request,
            ctx,
            "every plate search needs a purpose (at least 5 characters) and a case number: "
            f"missing {', '.join(missing)}. Add ?purpose=...&case_number=... (searches are audited)",
            {"missing": missing},
        )
    assert purpose is not None and case_number is not None
    too_long = [
        f"{name} is {len(value)} characters (at most {most})"
        for name, value, most in (
            ("purpose", purpose, MAX_PURPOSE_CHARS),
            ("case_number", case_number, MAX_CASE_NUMBER_CHARS),
        )
        if len(value) > most
    ]
    if too_long:  # checked here, not by the query's validation, so the refusal is audited
        await _refuse(request, ctx, "; ".join(too_long), {"too_long": too_long})
    problem = case_number_problem(case_number) or purpose_problem(purpose)
    if problem:
        await _refuse(
            request, ctx, problem, {"problem": problem}, {"case_number": case_number, "purpose": purpose}
        )
    return Accountability(
        purpose=purpose.strip(), purpose_category=purpose_category, case_number=case_number.strip()
    )


Why = Annotated[Accountability, Depends(accountability)]


def _polygon(text: str | None) -> list[tuple[float, float]] | None:
    if text is None:
        return None
    try:
        pts = [tuple(float(x) for x in p.split(",")) for p in text.split(";") if p.strip()]
    except ValueError:
        raise ValidationFailed("polygon is 'lat,lon;lat,lon;lat,lon' (at least 3 corners)") from None
    if len(pts) < 3 or any(len(p) != 2 for p in pts):
        raise ValidationFailed("polygon is 'lat,lon;lat,lon;lat,lon' (at least 3 corners)")
    return [(p[0], p[1]) for p in pts]


async def _ledger(
    ctx: Any, who: Principal, why: Accountability, kind: str, terms: dict[str, Any], count: int
) -> int:
    from rtcc.plates.transparency import record_search

    row = await ctx.store.write(
        lambda s: record_search(
            s,
            username=who.username,
            role=who.role.value,
            kind=kind,
            purpose_category=why.purpose_category,
            purpose=why.purpose,
            case_number=why.case_number,
            terms=terms,
            result_count=count,
        )
    )
    await ctx.audit(
        who,
        f"plate_{kind}",
        "plate_reads",
        purpose=f"{why.purpose_category.value}: {why.purpose}",
        details={"case_number": why.case_number, "terms": terms, "result_count": count, "search_id": row.id},
    )
    return int(row.id)


def _terms(**kw: Any) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in kw.items() if v not in (None, [])
    }


@router.get("/plates/search", summary="Search plate reads (purpose and case number required; audited)")
async def search_plates(
    ctx: CtxDep,
    who: Searchers,
    why: Why,
    plate: str | None = Query(None, max_length=24, description="Plate; in partial mode '?' and '*' allowed."),
    mode: Literal["exact", "partial", "lookalike"] = "exact",
    start: datetime | None = Query(None, description="From this time (with a timezone)."),
    end: datetime | None = Query(None, description="Before this time (with a timezone)."),
    camera: list[str] | None = Query(None, description="Only these cameras (repeat the parameter)."),
    lat: float | None = Query(None, ge=-90, le=90),
    lon: float | None = Query(None, ge=-180, le=180),
    radius_m: float | None = Query(None, gt=0, le=1_000_000),
    polygon: str | None = Query(None, max_length=20_000, description="'lat,lon;lat,lon;…' (3+ corners)."),
    limit: int | None = Query(None, ge=1, le=100_000),
) -> SearchOut:
    from rtcc.plates.reads import search_reads

    start, end = time_range(start, end)
    area = [lat, lon, radius_m]
    if any(v is not None for v in area) and not all(v is not None for v in area):
        raise ValidationFailed("an area by radius needs lat, lon and radius_m together")
    near = (lat, lon, radius_m) if lat is not None and lon is not None and radius_m is not None else None
    poly = _polygon(polygon)
    if plate is None and near is None and poly is None and not camera and start is None:
        raise ValidationFailed("give a plate, cameras, an area or a time range to search by")
    cap = min(limit or ctx.settings.plates.search_max_results, ctx.settings.plates.search_max_results)
    rows = await ctx.store.read(
        lambda s: search_reads(
            s,
            plate=plate,
            mode=mode,
            start=start,
            end=end,
            device_ids=camera,
            near=near,
            polygon=poly,
            limit=cap,
        )
    )
    terms = _terms(
        plate=plate,
        mode=mode,
        start=start,
        end=end,
        cameras=camera,
        near=list(near) if near else None,
        polygon=[list(p) for p in poly] if poly else None,
        limit=cap,
    )
    sid = await _ledger(ctx, who, why, "search", terms, len(rows))
    return SearchOut(search_id=sid, count=len(rows), items=[read_out(r) for r in rows])


@router.get(
    "/plates/track", summary="A vehicle's reads in time order, for the map (purpose required; audited)"
)
async def track_plate(
    ctx: CtxDep,
    who: Searchers,
    why: Why,
    plate: str = Query(min_length=1, max_length=16),
    start: datetime | None = None,
    end: datetime | None = None,
) -> TrackOut:
    from rtcc.plates.analysis import track

    start, end = time_range(start, end)
    cap = ctx.settings.plates.search_max_results
    rows = await ctx.store.read(lambda s: track(s, plate, start=start, end=end, limit=cap))
    items = [read_out(r) for r in rows]
    coords = [[r.lon, r.lat] for r in items if r.lat is not None and r.lon is not None]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {"read_id": str(r.id), "read_at": r.read_at.isoformat(), "device": r.device},
            "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
        }
        for r in items
        if r.lat is not None and r.lon is not None
    ]
    if len(coords) >= 2:
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "path"},
                "geometry": {"type": "LineString", "coordinates": coords},
            }
        )
    sid = await _ledger(ctx, who, why, "track", _terms(plate=plate, start=start, end=end), len(items))
    return TrackOut(
        search_id=sid,
        plate=plate,
        count=len(items),
        items=items,
        geojson={"type": "FeatureCollection", "features": features},
    )


@router.get(
    "/plates/cotravel",
    summary="Plates seen with a plate at N or more cameras within T seconds (purpose required; audited)",
)
async def cotravel_plates(
    ctx: CtxDep,
    who: Searchers,
    why: Why,
    plate: str = Query(min_length=1, max_length=16),
    min_cameras: int = Query(2, ge=1, le=100, description="Distinct cameras seen together at."),
    window_s: float = Query(60.0, gt=0, le=3600, description="Largest time apart at one camera, s."),
    start: datetime | None = None,
    end: datetime | None = None,
) -> CoTravelOut:
    from rtcc.plates.analysis import find_cotravellers

    start, end = time_range(start, end)
    cap = ctx.settings.plates.search_max_results
    reads, found = await ctx.store.read(
        lambda s: find_cotravellers(
            s, plate, window_s=window_s, min_cameras=min_cameras, start=start, end=end, limit=cap
        )
    )
    items = [
        CoTravellerOut(
            plate=c.plate, cameras=c.cameras, sightings=c.sightings, first_at=c.first_at, last_at=c.last_at
        )
        for c in found
    ]
    terms = _terms(plate=plate, min_cameras=min_cameras, window_s=window_s, start=start, end=end)
    sid = await _ledger(ctx, who, why, "cotravel", terms, len(items))
    return CoTravelOut(search_id=sid, plate=plate, target_reads=len(reads), count=len(items), items=items)
