"""Plate reads: camera image upload; one read and its images.

* ``POST /plates/images`` — a plate camera uploads an image (multipart:
  ``image``, ``time``, and for moving cameras ``lat``/``lon``/``heading_deg``),
  authenticated by its device key exactly like ``POST /ingest/events``
  (``Authorization: Device <key>``). The plates are recognized, stored with
  their crops and the vehicle image, and published as ``plate_read`` events;
  the answer lists the reads (201; 200 with ``duplicate: true`` when the same
  upload was accepted before). See :mod:`rtcc.plates.ingest`.
* ``GET /plates/reads/{read_id}`` and ``GET /plates/reads/{read_id}/image``
  (``kind=crop|vehicle``) — admin, supervisor, analyst, officer. Reads are
  personal data: every access is audited (with the optional ``purpose`` and
  ``case_number``, named as in every plate search; ``case`` is still accepted as
  a deprecated alias).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Header, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from rtcc.api.deps import Allow, CtxDep, Principal, Public
from rtcc.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from rtcc.roles import DeviceType, Role

router = APIRouter(prefix="/plates", tags=["plates"])

ReadViewers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst, Role.officer))]


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


Purpose = Annotated[str | None, Query(max_length=500, description="Why the read is looked at (audited).")]


def _case_number(
    case_number: Annotated[str | None, Query(max_length=64, description="Case number (audited).")] = None,
    case: Annotated[
        str | None,
        Query(max_length=64, deprecated=True, description="Deprecated alias of case_number."),
    ] = None,
) -> str | None:
    """``case_number``, or the deprecated ``case`` of older clients (both: they must agree)."""
    if case_number is not None and case is not None and case_number != case:
        raise ValidationFailed("give case_number only (case is its deprecated alias), not two different ones")
    return case_number if case_number is not None else case


CaseNumber = Annotated[str | None, Depends(_case_number)]


@router.get(
    "/reads/{read_id}",
    summary="One plate read (personal data: audited)",
    response_model=PlateReadOut,
)
async def get_plate_read(
    read_id: UUID, ctx: CtxDep, who: ReadViewers, case_number: CaseNumber, purpose: Purpose = None
) -> PlateReadOut:
    row = await _load(ctx, read_id)
    await ctx.audit(
        who,
        "read_plate_read",
        "plate_read",
        record_id=str(read_id),
        purpose=purpose,
        details={"case_number": case_number},
    )
    return _out(row)


@router.get(
    "/reads/{read_id}/image",
    summary="The plate crop or the vehicle image of a read (personal data: audited)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image."}},
)
async def get_plate_read_image(
    read_id: UUID,
    ctx: CtxDep,
    who: ReadViewers,
    case_number: CaseNumber,
    kind: Literal["crop", "vehicle"] = Query(
        "crop", description="crop: the plate; vehicle: the whole image."
    ),
    purpose: Purpose = None,
) -> Response:
    from rtcc.plates.ingest import service_of
    from rtcc.plates.media import media_type
    from rtcc.store.tables_plates import PlateReadRow

    row = await _load(ctx, read_id)
    assert isinstance(row, PlateReadRow)
    ref = row.crop_ref if kind == "crop" else row.image_ref
    data = service_of(ctx).media.get(ref) if ref else None
    if ref is None or data is None:
        raise NotFound(f"no {kind} image stored for plate read {read_id}")
    await ctx.audit(
        who,
        "read_plate_image",
        "plate_read",
        record_id=str(read_id),
        purpose=purpose,
        details={"kind": kind, "case_number": case_number},
    )
    return Response(data, media_type=media_type(ref), headers={"cache-control": "no-store"})
