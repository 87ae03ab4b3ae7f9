"""Cases, incident packets and the outcome ledger.

* ``POST /cases``, ``GET /cases``, ``GET /cases/{case_id}``,
  ``POST /cases/{case_id}/links``, ``POST /cases/{case_id}/close`` —
  operations roles; every change is audited.
* ``POST /outcomes`` (JSON list) and ``POST /outcomes/import`` (CSV body,
  ``text/csv``) — all rows or none; errors name the item or CSV line. A
  success category on an alert dismissed, a hit rejected as a misread or an
  incident dismissed in review is refused (409 ``conflict``): only
  ``no_evidence_found`` may be recorded on those.
* A UUID ``ref_id`` (links and outcomes) may be sent in any spelling (upper
  case, no hyphens, ``urn:uuid:``); it is stored and answered in canonical
  form.
* ``GET /stats/outcomes?since=`` — the seed's table: success in N cases,
  count per category, share of alerts with no outcome / no evidence found.
* ``GET /packets/{kind}/{ref_id}`` — an incident packet (hotlist hits nearby,
  officer positions): operations roles, every read audited. It lists only the
  plate reads that hit a hotlist and counts the others: those are found by a
  search with a purpose and a case number (``GET /plates/search``), not here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from rtcc.api.deps import Allow, AnyStaff, CtxDep, Operations, Principal
from rtcc.api.text import Reason
from rtcc.errors import NotFound, ValidationFailed
from rtcc.ops.ledger import LINK_TYPES, OUTCOME_CATEGORIES, OUTCOME_REF_TYPES
from rtcc.roles import Role

router = APIRouter(tags=["cases"])

Analysts = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]
LinkType = Literal["alert", "gunshot", "hit", "plate_read", "footage"]
OutcomeRefType = Literal["alert", "gunshot", "hit"]
Category = Literal[
    "assisted_on_scene",
    "vehicle_info",
    "suspect_info",
    "recovered_vehicle",
    "recovered_property",
    "recovered_gun",
    "recovered_drugs",
    "case_info",
    "located_missing_person",
    "arrest",
    "assisted_other_agency",
    "no_evidence_found",
]
assert set(LINK_TYPES) == set(LinkType.__args__)  # type: ignore[attr-defined]
assert set(OUTCOME_REF_TYPES) == set(OutcomeRefType.__args__)  # type: ignore[attr-defined]
assert set(OUTCOME_CATEGORIES) == set(Category.__args__)  # type: ignore[attr-defined]


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(
        None, min_length=1, max_length=64, description="Case number; the next YYYY-NNNNN when left out."
    )
    title: str = Field(min_length=3, max_length=300)
    description: str = Field("", max_length=5000)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref_type: LinkType
    ref_id: str = Field(min_length=1, max_length=64)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="Why the case is closed (audited).")


class LinkOut(BaseModel):
    ref_type: str
    ref_id: str
    linked_by: str
    linked_at: datetime


class OutcomeOut(BaseModel):
    id: int
    case_id: UUID
    ref_type: str
    ref_id: str
    category: str
    note: str
    recorded_by: str
    recorded_at: datetime


class CaseOut(BaseModel):
    id: UUID
    number: str
    title: str
    description: str
    status: Literal["open", "closed"]
    opened_by: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    close_reason: str | None
    links: list[LinkOut] = Field(default_factory=list)
    outcomes: list[OutcomeOut] = Field(default_factory=list)


class CaseList(BaseModel):
    items: list[CaseOut]


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_number: str = Field(min_length=1, max_length=64)
    ref_type: OutcomeRefType
    ref_id: str = Field(min_length=1, max_length=64)
    category: Category
    note: str = Field("", max_length=2000)


class OutcomesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OutcomeIn] = Field(min_length=1, max_length=1000)


class OutcomesOut(BaseModel):
    recorded: int
    items: list[OutcomeOut]


class OutcomeStats(BaseModel):
    since: datetime | None
    success_cases: int = Field(description="Cases with at least one outcome other than no_evidence_found.")
    summary: str = Field(description='E.g. "success in 12 cases since 2026-01-01".')
    per_category: dict[str, int]
    alerts: int
    alerts_no_outcome: int
    alerts_no_evidence: int
    share_no_outcome: float | None
    share_no_evidence: float | None


class PacketSection(BaseModel):
    items: list[dict[str, Any]]
    note: str | None


class PlateReadsSection(PacketSection):
    items: list[dict[str, Any]] = Field(description="Reads nearby that hit a hotlist (alerts already).")
    others: int | None = Field(
        None, description="How many other reads are nearby in the window (not listed; None: unknown)."
    )
    hint: str | None = Field(
        None, description="How to see the other reads: a search with a purpose and a case number."
    )


class PacketOut(BaseModel):
    kind: Literal["gunshot", "hit"]
    ref_id: str
    version: int
    built_at: datetime
    at: datetime
    pos: dict[str, float]
    params: dict[str, float]
    cameras: PacketSection
    plate_reads: PlateReadsSection
    bodycams: PacketSection
    earlier_incidents: PacketSection


def _case_out(s: Session, case: Any, full: bool = True) -> CaseOut:
    from rtcc.ops.ledger import case_links, case_outcomes

    out = CaseOut.model_validate(case, from_attributes=True)
    if full:
        out.links = [LinkOut.model_validate(x, from_attributes=True) for x in case_links(s, case.id)]
        out.outcomes = [OutcomeOut.model_validate(x, from_attributes=True) for x in case_outcomes(s, case.id)]
    return out


@router.post("/cases", summary="Open a case", status_code=201)
async def create_case(body: CaseIn, ctx: CtxDep, who: Operations) -> CaseOut:
    from rtcc.ops.ledger import create_case, next_case_number

    now = datetime.now(UTC)

    def _do(s: Session) -> CaseOut:
        number = body.number.strip() if body.number else next_case_number(s, now)
        return _case_out(s, create_case(s, number, body.title.strip(), body.description, who.username, now))

    out = await ctx.store.write(_do)
    await ctx.audit(who, "case_open", "case", record_id=str(out.id), details={"number": out.number})
    return out


@router.get("/cases", summary="Cases, newest first")
async def list_cases(
    ctx: CtxDep,
    who: Operations,
    status: Literal["open", "closed"] | None = Query(None),
    limit: int = Query(200, ge=1, le=1000),
) -> CaseList:
    from rtcc.ops.ledger import list_cases

    return CaseList(
        items=await ctx.store.read(
            lambda s: [_case_out(s, c, full=False) for c in list_cases(s, status=status, limit=limit)]
        )
    )


@router.get("/cases/{case_id}", summary="A case with its links and outcomes")
async def get_case(case_id: UUID, ctx: CtxDep, who: Operations) -> CaseOut:
    from rtcc.ops.ledger import get_case

    return await ctx.store.read(lambda s: _case_out(s, get_case(s, case_id)))


@router.post(
    "/cases/{case_id}/links", summary="Link an alert, incident, hit, plate read or footage to a case"
)
async def link_case(case_id: UUID, body: LinkIn, ctx: CtxDep, who: Operations) -> CaseOut:
    from rtcc.ops.ledger import add_link, get_case

    now = datetime.now(UTC)

    def _do(s: Session) -> tuple[CaseOut, str]:
        case = get_case(s, case_id, lock=True)
        link = add_link(s, case, body.ref_type, body.ref_id.strip(), who.username, now)
        return _case_out(s, case), link.ref_id

    out, ref_id = await ctx.store.write(_do)
    await ctx.audit(
        who,
        "case_link",
        "case",
        record_id=str(case_id),
        details={"ref_type": body.ref_type, "ref_id": ref_id},
    )
    return out


@router.post("/cases/{case_id}/close", summary="Close a case, with a reason")
async def close_case(case_id: UUID, body: CloseIn, ctx: CtxDep, who: Operations) -> CaseOut:
    from rtcc.ops.ledger import close_case

    now = datetime.now(UTC)
    out = await ctx.store.write(
        lambda s: _case_out(s, close_case(s, case_id, who.username, now, body.reason))
    )
    await ctx.audit(who, "case_close", "case", record_id=str(case_id), purpose=body.reason)
    return out


async def _record(
    ctx: Any, who: Principal, items: list[Any], lines: list[int] | None, via: str
) -> OutcomesOut:
    from rtcc.ops.ledger import record_outcomes

    now = datetime.now(UTC)

    def _do(s: Session) -> list[OutcomeOut]:
        rows = record_outcomes(s, items, who.username, now, lines=lines)
        return [OutcomeOut.model_validate(r, from_attributes=True) for r in rows]

    rows = await ctx.store.write(_do)
    await ctx.audit(
        who,
        "outcomes_record",
        "outcome",
        details={"via": via, "count": len(rows), "cases": sorted({str(r.case_id) for r in rows})[:50]},
    )
    return OutcomesOut(recorded=len(rows), items=rows)


@router.post("/outcomes", summary="Record outcomes (all or none)", status_code=201)
async def record_outcomes(body: OutcomesIn, ctx: CtxDep, who: Operations) -> OutcomesOut:
    from rtcc.ops.ledger import OutcomeInput

    items = [
        OutcomeInput(i.case_number.strip(), i.ref_type, i.ref_id.strip(), i.category, i.note)
        for i in body.items
    ]
    return await _record(ctx, who, items, None, "json")


@router.post(
    "/outcomes/import",
    summary="Import outcomes from CSV (all rows or none; errors name their line)",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "case_number,ref_type,ref_id,category,note\n",
                }
            },
        }
    },
)
async def import_outcomes(request: Request, ctx: CtxDep, who: Analysts) -> OutcomesOut:
    from rtcc.ops.ledger import parse_outcome_csv

    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"the CSV is not UTF-8 (byte {exc.start})") from exc
    if "\x00" in text:
        raise ValidationFailed("the CSV holds NUL bytes: is it a binary file?")
    items, lines = parse_outcome_csv(text, max_rows=ctx.settings.operations.outcome_import_max_rows)
    return await _record(ctx, who, items, lines, "csv")


@router.get("/stats/outcomes", summary="The outcome ledger's table (success in N cases, per category)")
async def outcome_stats(
    ctx: CtxDep,
    who: AnyStaff,
    since: datetime | None = Query(None, description="From this time (with a timezone); default: opening."),
) -> OutcomeStats:
    from rtcc.ops.ledger import outcome_stats
    from rtcc.ops.times import checked_time

    checked_time(since, "since")
    return OutcomeStats.model_validate(await ctx.store.read(lambda s: outcome_stats(s, since)))


@router.get("/packets/{kind}/{ref_id}", summary="An incident packet (audited: plates and officer positions)")
async def get_packet(kind: str, ref_id: str, ctx: CtxDep, who: Operations) -> PacketOut:
    from rtcc.ops.packets import PACKET_KINDS, get_packet, served_plate_reads

    if kind not in PACKET_KINDS:
        raise NotFound(f"no packet kind {kind!r}; kinds: {', '.join(PACKET_KINDS)}")
    row = await ctx.store.read(lambda s: get_packet(s, kind, ref_id))
    if row is None:
        raise NotFound(f"no packet for {kind} {ref_id} (packets are built when the incident or hit arrives)")
    body = served_plate_reads(dict(row.body))
    await ctx.audit(
        who,
        "read_packet",
        "packet",
        record_id=f"{kind}:{ref_id}",
        details={
            "version": row.version,
            "hit_reads": len(body["plate_reads"]["items"]),
            "other_reads_counted": body["plate_reads"]["others"],
        },
    )
    return PacketOut.model_validate(body)
