"""Public community-camera registration (no account).

The flow, for the registration page:

1. ``POST /community/registrations`` — the camera and its owner's contact;
   the owner gets an email with a one-time link
   (``community.html?verify=<token>``) and a 6-digit code. Rate-limited per
   client IP (``cameras.register_per_ip_per_hour``; only registrations
   accepted count, requests refused as invalid do not; the slot is taken
   before anything is awaited, so concurrent requests cannot overrun it) and
   per email (``cameras.register_per_contact``: unverified registrations from
   the same client, and verified ones waiting for approval, see
   :func:`rtcc.cameras.registry.register`); positions at 0,0 or outside
   ``cameras.service_area`` are refused. The verification mail quotes
   nothing the registrant typed (it goes to an address nobody has proven
   yet): it names the camera's position only.
2. ``POST /community/verify`` — ``{"token"}`` from the link, or
   ``{"registration_id", "code"}``; answers the owner's manage token, also
   emailed as a link (``community.html?manage=<token>``). An admin then
   approves or rejects (``POST /cameras/{id}/approve|reject``).
3. ``GET /community/manage/{token}`` — the owner's registration and the
   footage requested from it; ``DELETE /community/manage/{token}`` —
   withdraw at any time: the camera, its contact, requests and clips are
   deleted, except clips already delivered for an open case (kept as
   evidence, without the contact, until the case closes; the answer says so).
4. Footage: ``GET /community/footage/{token}`` (the link mailed with a
   request), ``POST /community/footage/{token}/clip`` (the clip as the raw
   body with its video ``Content-Type``) or ``.../decline``; the same by
   request id under the manage link.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request

from rtcc.api.deps import CtxDep, Public
from rtcc.cameras.models import (
    DeclineIn,
    OwnerRequestOut,
    OwnerView,
    RegistrationIn,
    RegistrationOut,
    VerifyIn,
    VerifyOut,
    WithdrawOut,
)
from rtcc.cameras.notify import Message
from rtcc.cameras.service import CameraService, service_of
from rtcc.errors import RateLimited, RtccError
from rtcc.store.tables_cameras import CameraRow

router = APIRouter(prefix="/community", tags=["community"])
log = logging.getLogger(__name__)

TOKEN = r"^[A-Za-z0-9_\-]{16,128}$"


def _svc(ctx: Any) -> CameraService:
    return service_of(ctx.services, ctx.settings.cameras)


def _base(request: Request, ctx: Any) -> str:
    url = ctx.settings.server.public_url or str(request.base_url)
    return url if url.endswith("/") else url + "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/registrations", status_code=201, summary="Register a home or business camera (no account)")
async def register_camera(
    request: Request, body: RegistrationIn, ctx: CtxDep, who: Public
) -> RegistrationOut:
    from rtcc.cameras.registry import check_registration, client_key, register

    svc = _svc(ctx)
    cs = ctx.settings.cameras
    client = _client(request)
    # refused without the database: never holds a slot, so it cannot crowd out a valid request
    check_registration(body, area=cs.service_area, max_range_m=cs.max_range_m)
    # take the slot now, before any await: a peek here and a hit after the write let every
    # concurrent request through
    wait = svc.per_ip.hit(client)
    if wait is not None:
        raise RateLimited(
            f"too many registrations from this address; try again in {int(wait) + 1} s "
            "(setting cameras.register_per_ip_per_hour)",
            details={"reason": "per_ip", "retry_after_s": int(wait) + 1},
        )
    now = datetime.now(UTC)
    key = client_key(ctx.settings.security.secret_key, client)
    try:
        reg = await ctx.store.write(
            lambda s: register(
                s,
                body,
                now=now,
                ttl=timedelta(minutes=cs.verify_ttl_min),
                area=cs.service_area,
                max_range_m=cs.max_range_m,
                per_contact=cs.register_per_contact,
                client=key,
            )
        )
    except RtccError:
        # a refused request (out of the area, over the per-email limit, ...) stores nothing and
        # sends no mail, so it gives its slot back; one whose mail failed keeps it (a mail may
        # have been attempted)
        svc.per_ip.release(client)
        raise
    cam = reg.camera
    link = f"{_base(request, ctx)}community.html?verify={reg.token}"
    try:
        await _send_verification(svc, cam, link, reg.code, cs.verify_ttl_min)
    except RtccError:
        await ctx.store.write(lambda s: s.delete(s.get(CameraRow, cam.id)))  # nothing kept unverified
        raise
    await ctx.audit(who, "register_camera", "camera", record_id=str(cam.id), details={"client": client})
    return RegistrationOut(
        registration_id=cam.id,
        status="pending_verification",
        message="We emailed you a link and a code: open the link or enter the code to confirm your address.",
    )


async def _send_verification(
    svc: CameraService, cam: CameraRow, link: str, code: str, ttl_min: float
) -> None:
    """Mail the verification link and code.

    The address is not proven yet, so anyone can have this sent to anyone, from the center's own
    address: it quotes nothing the registrant typed (name, owner, street address), only the
    position they chose on the map, which cannot carry a message.
    """
    await svc.notifier.send(
        Message(
            str(cam.contact_email),
            "Confirm your camera registration",
            (
                "You (or someone using this address) registered a camera at "
                f"{cam.lat:.5f}, {cam.lon:.5f} (latitude, longitude) with the "
                f"Real-Time Crime Center.\n\nConfirm it with this link: {link}\n\nor enter the code "
                f"{code} on the registration page.\n\nThe link and code expire in "
                f"{ttl_min:g} minutes. If this was not you, ignore this message: nothing "
                "is kept without confirmation."
            ),
        )
    )


@router.post("/verify", summary="Verify a registration's contact (link token, or id and code)")
async def verify_registration(request: Request, body: VerifyIn, ctx: CtxDep, who: Public) -> VerifyOut:
    from rtcc.cameras.registry import verify, wrong_code

    svc = _svc(ctx)
    cs = ctx.settings.cameras
    now = datetime.now(UTC)
    row, manage = await ctx.store.write(
        lambda s: verify(
            s,
            token=body.token,
            registration_id=body.registration_id,
            code=body.code,
            now=now,
            max_attempts=cs.verify_max_attempts,
            per_contact=cs.register_per_contact,
        )
    )
    if manage is None:
        await ctx.audit(who, "verify_camera_contact", "camera", record_id=str(row.id), outcome="wrong_code")
        raise wrong_code(row, cs.verify_max_attempts)
    url = f"{_base(request, ctx)}community.html?manage={manage}"
    await ctx.audit(who, "verify_camera_contact", "camera", record_id=str(row.id))
    await svc.notifier.send(
        Message(
            str(row.contact_email),
            "Your camera registration: manage link",
            (
                "Thank you: your address is confirmed and your camera waits for approval.\n\n"
                f"Keep this link: with it you can see your registration, answer footage requests, "
                f"and withdraw at any time (which deletes your data): {url}"
            ),
        )
    )
    return VerifyOut(registration_id=row.id, status="pending_approval", manage_token=manage, manage_url=url)


@router.get("/manage/{token}", summary="The owner's view of their registration")
async def manage_view(token: str, ctx: CtxDep, who: Public) -> OwnerView:
    from rtcc.cameras.footage import owner_request_out, owner_requests
    from rtcc.cameras.registry import by_manage_token

    now = datetime.now(UTC)

    def _load(s: Any) -> OwnerView:
        row = by_manage_token(s, token)
        reqs = owner_requests(s, row.id, now)
        return OwnerView(
            registration_id=row.id,
            name=row.name,
            status=row.status,
            level=row.level,
            owner_type=row.owner_type,
            owner_name=row.owner_name,
            email=row.contact_email,
            phone=row.contact_phone,
            address=row.address,
            lat=row.lat,
            lon=row.lon,
            bearing_deg=row.bearing_deg,
            fov_deg=row.fov_deg,
            range_m=row.range_m,
            requests=[owner_request_out(r) for r in reqs],
        )

    return await ctx.store.write(_load)


@router.delete("/manage/{token}", summary="Withdraw the camera: deletes the registration, contact and clips")
async def withdraw_camera(token: str, ctx: CtxDep, who: Public) -> WithdrawOut:
    from rtcc.cameras.footage import media_dir
    from rtcc.cameras.registry import withdraw

    media = media_dir(ctx.settings.data_dir)
    now = datetime.now(UTC)
    w = await ctx.store.write(lambda s: withdraw(s, token, media, now=now))
    await _svc(ctx).live.drop(w.camera_id, "the owner withdrew the camera")  # open live views end now
    await ctx.audit(
        who,
        "withdraw_camera",
        "camera",
        record_id=str(w.camera_id),
        details={"clips_deleted": w.clips_deleted, "clips_kept": w.clips_kept},
    )
    message = "Your camera, contact details and clips were deleted."
    if w.clips_kept:
        message = (
            "Your camera and contact details were deleted, and the center can no longer view or ask "
            f"your camera for anything. {w.clips_kept} clip(s) you already gave for an open "
            "investigation are kept as evidence until that case is closed, then deleted; "
            "the rest were deleted."
        )
    return WithdrawOut(
        withdrawn=True, clips_deleted=w.clips_deleted, clips_kept=w.clips_kept, message=message
    )


async def _upload(
    request: Request, ctx: Any, who: Any, camera_id: UUID, request_id: UUID, note: str | None
) -> OwnerRequestOut:
    from rtcc.cameras.footage import media_dir, owner_request_out, store_clip

    data = await request.body()
    ctype = request.headers.get("content-type", "")
    media = media_dir(ctx.settings.data_dir)
    now = datetime.now(UTC)
    row = await ctx.store.write(
        lambda s: store_clip(s, camera_id, request_id, data, ctype, media, now=now, note=note)
    )
    await ctx.audit(
        who,
        "upload_footage_clip",
        "footage_request",
        record_id=str(request_id),
        details={"bytes": len(data), "incident_ref": row.incident_ref},
    )
    await _announce_answer(ctx, row, camera_id, "uploaded")
    return owner_request_out(row)


async def _decline(ctx: Any, who: Any, camera_id: UUID, request_id: UUID, note: str) -> OwnerRequestOut:
    from rtcc.cameras.footage import decline, owner_request_out

    now = datetime.now(UTC)
    row = await ctx.store.write(lambda s: decline(s, camera_id, request_id, note, now=now))
    await ctx.audit(who, "decline_footage_request", "footage_request", record_id=str(request_id))
    await _announce_answer(ctx, row, camera_id, "declined")
    return owner_request_out(row)


async def _announce_answer(
    ctx: Any, row: Any, camera_id: UUID, status: Literal["uploaded", "declined"]
) -> None:
    """Tell the center's dashboards an owner answered (they re-read the list); the answer is stored
    already, so a bus failure is logged, not the owner's error."""
    from rtcc.events import FootageRequestUpdated

    ev = FootageRequestUpdated(
        source="community",
        request_id=row.id,
        camera_id=camera_id,
        status=status,
        incident_ref=row.incident_ref,
    )
    try:
        await ctx.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    except Exception:
        log.warning("could not announce the answer to footage request %s", row.id, exc_info=True)


async def _cam_of_manage(ctx: Any, token: str) -> UUID:
    from rtcc.cameras.registry import by_manage_token

    cam_id: UUID = await ctx.store.read(lambda s: by_manage_token(s, token).id)
    return cam_id


async def _req_of_upload(ctx: Any, token: str) -> tuple[UUID, UUID]:
    from rtcc.cameras.footage import by_upload_token

    def _ids(s: Any) -> tuple[UUID, UUID]:
        row, cam = by_upload_token(s, token)
        return cam.id, row.id

    ids: tuple[UUID, UUID] = await ctx.store.read(_ids)
    return ids


_CLIP_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in ("video/mp4", "video/webm")
        },
        "description": "The clip as the raw body, with its Content-Type (video/mp4, video/webm, ...).",
    }
}


@router.post(
    "/manage/{token}/requests/{request_id}/clip",
    summary="Upload the clip for a footage request (raw body)",
    openapi_extra=_CLIP_DOC,
)
async def manage_upload(
    request: Request,
    token: str,
    request_id: UUID,
    ctx: CtxDep,
    who: Public,
    note: str | None = Query(None, max_length=1000, description="Optional note to the center."),
) -> OwnerRequestOut:
    cam_id = await _cam_of_manage(ctx, token)
    return await _upload(request, ctx, who, cam_id, request_id, note)


@router.post("/manage/{token}/requests/{request_id}/decline", summary="Decline a footage request")
async def manage_decline(
    token: str, request_id: UUID, body: DeclineIn, ctx: CtxDep, who: Public
) -> OwnerRequestOut:
    cam_id = await _cam_of_manage(ctx, token)
    return await _decline(ctx, who, cam_id, request_id, body.note)


@router.get("/footage/{token}", summary="The footage request behind a mailed link")
async def footage_view(token: str, ctx: CtxDep, who: Public) -> OwnerRequestOut:
    from rtcc.cameras.footage import by_upload_token, expire_due, owner_request_out

    now = datetime.now(UTC)

    def _load(s: Any) -> OwnerRequestOut:
        expire_due(s, now)
        row, _ = by_upload_token(s, token)
        return owner_request_out(row)

    return await ctx.store.write(_load)


@router.post(
    "/footage/{token}/clip",
    summary="Upload the requested clip (raw body, mailed link)",
    openapi_extra=_CLIP_DOC,
)
async def footage_upload(
    request: Request,
    token: str,
    ctx: CtxDep,
    who: Public,
    note: str | None = Query(None, max_length=1000, description="Optional note to the center."),
) -> OwnerRequestOut:
    cam_id, req_id = await _req_of_upload(ctx, token)
    return await _upload(request, ctx, who, cam_id, req_id, note)


@router.post("/footage/{token}/decline", summary="Decline the requested clip (mailed link)")
async def footage_decline(token: str, body: DeclineIn, ctx: CtxDep, who: Public) -> OwnerRequestOut:
    cam_id, req_id = await _req_of_upload(ctx, token)
    return await _decline(ctx, who, cam_id, req_id, body.note)
