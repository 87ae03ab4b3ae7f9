"""Plate reads: camera image upload; one read and its images.

* ``POST /plates/images`` — a plate camera uploads an image (multipart:
  ``image``, ``time``, and for moving cameras ``lat``/``lon``/``heading_deg``),
  authenticated by its device key exactly like ``POST /ingest/events``
  (``Authorization: Device <key>``). The plates are recognized, stored with
  their crops and the vehicle image, and published as ``plate_read`` events;
  the answer lists the reads (201; 200 with ``duplicate: true`` when the same
  upload was accepted before). See :mod:`rtcc.plates.ingest`.
* ``GET /plates/reads/{read_id}`` and ``GET /plates/reads/{read_id}/image``
  (``kind=crop|vehicle``) — admin, supervisor, analyst. Looking at a stored read
  is a search of the reads: like ``GET /plates/search`` it is **refused without a
  purpose and a case number** (the refusal is audited as ``plate_search_refused``)
  and every access is audited with them (``case`` is still accepted as a
  deprecated alias of ``case_number``). A read that hit a hotlist is shown for
  hit review through its hit instead (``GET /hits/{hit_id}`` and
  ``GET /hits/{hit_id}/image``, operations roles), audited with the hit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from rtcc.api.deps import Allow, CtxDep, Principal, Public
from rtcc.api.routes.plate_search import Accountability, check_accountability
from rtcc.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from rtcc.plates.transparency import PurposeCategory
from rtcc.roles import DeviceType, Role

router = APIRouter(prefix="/plates", tags=["plates"])

ReadViewers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]
"""Who may look at a stored read: the roles that may search the reads (with a purpose and a case)."""


class PlateReadOut(BaseModel):
    id: UUID = Field(description="The read's id (its plate_read event id).")
    read_at: datetime
    device_id: str
    lat: float | None
    lon: float | None
    heading_deg: float | None
    direction: str | None = Field(description="Compass point of travel (N … NW), when known.")
    plate: str = Field(description="Normalized plate text.")
    plate_key: str = Field(description="Plate with look-alike characters folded.")
    region: str | None
    confidence: float
    has_crop: bool
    has_image: bool
    hit: bool


class UploadOut(BaseModel):
    duplicate: bool = Field(description="The same upload (camera, image, time) was accepted before.")
    published: int = Field(description="plate_read events published by this request.")
    reads: list[PlateReadOut]


def _out(row: object) -> PlateReadOut:
    from rtcc.store.tables_plates import PlateReadRow

    assert isinstance(row, PlateReadRow)
    return PlateReadOut(
        id=row.id,
        read_at=row.read_at,
        device_id=row.device_id,
        lat=row.lat,
        lon=row.lon,
        heading_deg=row.heading_deg,
        direction=row.direction,
        plate=row.plate,
        plate_key=row.plate_key,
        region=row.region,
        confidence=row.confidence,
        has_crop=row.crop_ref is not None,
        has_image=row.image_ref is not None,
        hit=row.hit,
    )


def _box(raw: str | None) -> tuple[int, int, int, int] | None:
    if raw is None:
        return None
    try:
        x, y, w, h = (int(v) for v in raw.split(","))
    except ValueError:
        raise ValidationFailed(f"box must be 'x,y,w,h' (4 integers), got {raw[:64]!r}") from None
    return x, y, w, h


def _device_key(authorization: str | None, x_device_key: str | None) -> str | None:
    if authorization and authorization.lower().startswith("device "):
        return authorization[7:].strip() or None
    return x_device_key


@router.post(
    "/images",
    status_code=201,
    summary="A plate camera uploads an image (authenticated by its device key)",
    response_model=UploadOut,
    responses={
        200: {"description": "the same upload was accepted before: its reads", "model": UploadOut},
        401: {"description": "missing, unknown or revoked device key"},
        413: {"description": "image over plates.max_image_bytes / max_image_pixels"},
        422: {"description": "empty or corrupt image, bad time or position"},
        503: {"description": "recognition busy: retry"},
    },
)
async def upload_image(
    ctx: CtxDep,
    _: Public,
    image: Annotated[UploadFile, File(description="JPEG, PNG or WebP image from the camera.")],
    time: Annotated[
        datetime | None,
        Form(description="When the camera took the image, ISO 8601 with time zone (default: now)."),
    ] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90, description="GPS latitude (moving cameras).")] = None,
    lon: Annotated[float | None, Form(ge=-180, le=180, description="GPS longitude (moving cameras).")] = None,
    heading_deg: Annotated[
        float | None, Form(ge=0, lt=360, description="Travel heading of a moving camera, degrees.")
    ] = None,
    plate: Annotated[
        str | None,
        Form(max_length=32, description="A plate the camera read itself (edge recognition): not read again."),
    ] = None,
    box: Annotated[
        str | None, Form(max_length=64, description="With plate: its box 'x,y,w,h' in image pixels.")
    ] = None,
    confidence: Annotated[
        float | None, Form(ge=0, le=1, description="With plate: the camera's confidence, 0-1.")
    ] = None,
    direction: Annotated[
        Literal["N", "NE", "E", "SE", "S", "SW", "W", "NW"] | None,
        Form(description="Direction of travel the camera worked out itself (e.g. by tracking)."),
    ] = None,
    region: Annotated[
        str | None,
        Form(max_length=16, description="With plate: the state or region the camera told (e.g. TX)."),
    ] = None,
    authorization: str | None = Header(None),
    x_device_key: str | None = Header(None),
    x_device_id: str | None = Header(None, max_length=128),
) -> JSONResponse:
    from rtcc.events import utcnow
    from rtcc.plates.ingest import Upload, service_of

    ident = await ctx.ingest.authenticate(_device_key(authorization, x_device_key), x_device_id, "http")
    if ident.type != DeviceType.plate_camera:
        raise Forbidden(f"a {ident.type.value} may not upload plate images; only a plate_camera")
    svc = service_of(ctx)
    data = await image.read(svc.max_bytes + 1)
    if len(data) > svc.max_bytes:
        raise PayloadTooLarge(f"the image is over {svc.max_bytes} bytes (setting plates.max_image_bytes)")
    if time is not None and time.tzinfo is None:
        raise ValidationFailed("time needs a time zone (e.g. 2026-11-21T12:00:00Z)")
    upload = Upload(
        data=data,
        at=time or utcnow(),
        timed=time is not None,  # untimed: a retried upload of the same bytes is a duplicate
        lat=lat,
        lon=lon,
        heading_deg=heading_deg,
        plate=plate,
        box=_box(box),
        confidence=confidence,
        direction=direction,
        region=region,
    )
    result = await svc.accept(ident, upload)
    ctx.metrics.inc("plate_images", duplicate=str(result.duplicate).lower())
    body = UploadOut(
        duplicate=result.duplicate, published=result.published, reads=[_out(r) for r in result.reads]
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.duplicate else 201)


async def _load(ctx: CtxDep, read_id: UUID) -> object:
    from rtcc.plates.reads import get_read

    def load(s: object) -> object:
        row = get_read(s, read_id)  # type: ignore[arg-type]
        if row is None:
            raise NotFound(f"no plate read {read_id}")
        s.expunge(row)  # type: ignore[attr-defined]
        return row

    return await ctx.store.read(load)


def _case_number(
    case_number: Annotated[
        str | None, Query(description="The case this look-up is for (required, at most 64 characters).")
    ] = None,
    case: Annotated[
        str | None,
        Query(deprecated=True, description="Deprecated alias of case_number."),
    ] = None,
) -> str | None:
    """``case_number``, or the deprecated ``case`` of older clients (both: they must agree)."""
    if case_number is not None and case is not None and case_number != case:
        raise ValidationFailed("give case_number only (case is its deprecated alias), not two different ones")
    return case_number if case_number is not None else case


async def _why(
    request: Request,
    ctx: CtxDep,
    case_number: Annotated[str | None, Depends(_case_number)],
    purpose: Annotated[
        str | None,
        Query(description="Why you look at the read (required, at most 1000 characters; audited)."),
    ] = None,
    purpose_category: Annotated[
        PurposeCategory, Query(description="Kind of purpose, as in a plate search.")
    ] = PurposeCategory.criminal_investigation,
) -> Accountability:
    """The purpose and case number of a look at a read, checked exactly as a plate search's."""
    return await check_accountability(request, ctx, purpose, case_number, purpose_category)


Why = Annotated[Accountability, Depends(_why)]


async def _audit_read(
    ctx: CtxDep, who: Principal, why: Accountability, action: str, read_id: UUID, **details: str
) -> None:
    await ctx.audit(
        who,
        action,
        "plate_read",
        record_id=str(read_id),
        purpose=f"{why.purpose_category.value}: {why.purpose}",
        details={"case_number": why.case_number, **details},
    )


@router.get(
    "/reads/{read_id}",
    summary="One plate read (purpose and case number required; audited)",
    response_model=PlateReadOut,
)
async def get_plate_read(read_id: UUID, ctx: CtxDep, who: ReadViewers, why: Why) -> PlateReadOut:
    row = await _load(ctx, read_id)
    await _audit_read(ctx, who, why, "read_plate_read", read_id)
    return _out(row)


@router.get(
    "/reads/{read_id}/image",
    summary="The plate crop or the vehicle image of a read (purpose and case number required; audited)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."}},
)
async def get_plate_read_image(
    read_id: UUID,
    ctx: CtxDep,
    who: ReadViewers,
    why: Why,
    kind: Literal["crop", "vehicle"] = Query(
        "crop", description="crop: the plate; vehicle: the whole image."
    ),
) -> Response:
    from rtcc.store.tables_plates import PlateReadRow

    row = await _load(ctx, read_id)
    assert isinstance(row, PlateReadRow)
    data, media = read_image(ctx, row.crop_ref if kind == "crop" else row.image_ref)
    if data is None:
        raise NotFound(f"no {kind} image stored for plate read {read_id}")
    await _audit_read(ctx, who, why, "read_plate_image", read_id, kind=kind)
    return Response(data, media_type=media, headers={"cache-control": "no-store"})


def read_image(ctx: CtxDep, ref: str | None) -> tuple[bytes | None, str]:
    """The stored image ``ref`` and its media type; (None, "") when there is none."""
    from rtcc.plates.ingest import service_of
    from rtcc.plates.media import media_type

    data = service_of(ctx).media.get(ref) if ref else None
    if ref is None or data is None:
        return None, ""
    return data, media_type(ref)
