"""Camera registry, cameras that can see a point, footage requests, live view.

* ``GET /cameras`` — operations roles; ``?include_contact=true`` (admins and
  supervisors only, audited) adds community owners' contact details (for a resident, the
  street address too: it is their home).
* ``POST /cameras`` — an admin adds a city or in-car camera;
  ``PATCH``/``DELETE /cameras/{id}`` change or remove any camera (a delete keeps
  clips linked to an open case as evidence, as an owner's withdrawal does; open
  live views of a camera that is deleted, no longer live or has a new source end).
* ``POST /cameras/{id}/approve`` / ``reject`` — an admin decides on a
  verified community registration (the owner is told).
* ``GET /cameras/visible?lat=&lon=&at=`` — cameras that could see the point
  at that time (cameras that existed then), integrated first, then by distance.
* In-car cameras carry their body cam's or car's position (an officer's
  location): a read that returns one is audited as ``read_unit_locations``.
* ``GET /cameras/{id}/live.mjpeg`` — the live view (``multipart/x-mixed-replace``
  MJPEG, one upstream reader shared by every viewer); ``GET
  /cameras/{id}/snapshot.jpg`` — its current frame. Video is personal data:
  both are audited. An unreachable source answers 502, a silent one 504. An
  open live view ends when the camera stops being live (withdrawn, downgraded,
  deleted, new source) and when its viewer's session ends (signed out, disabled,
  role changed): at once when this process made the change, else within
  :data:`LIVE_CHECK_S`.
* ``GET /cameras/stats`` — counts for the transparency page (no personal data).
* ``POST /footage-requests`` — analysts, supervisors, admins ask a community
  camera's owner for a clip (audited, owner emailed); ``GET
  /footage-requests`` — their status; ``GET /footage-requests/{id}/clip`` —
  the uploaded clip (audited once per person and clip per :data:`CLIP_AUDIT_WINDOW`: a video
  player fetches one viewing in many Range requests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from rtcc.api.deps import Admin, Allow, AnyStaff, CtxDep, Operations, Principal
from rtcc.api.hub import LiveView
from rtcc.cameras.models import (
    CameraDeleteOut,
    CameraIn,
    CameraKind,
    CameraLevel,
    CameraList,
    CameraOut,
    CameraPatch,
    CameraStatus,
    DecisionIn,
    FootageRequestIn,
    FootageRequestList,
    FootageRequestOut,
    FootageStatus,
    TransparencyOut,
    VisibleList,
    VisibleOut,
)
from rtcc.cameras.notify import Message
from rtcc.cameras.service import CameraService, service_of
from rtcc.errors import Forbidden, NotFound, RtccError
from rtcc.roles import OPERATIONS, Role

router = APIRouter(tags=["cameras"])

Requesters = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]
CONTACT_ROLES = frozenset({Role.admin, Role.supervisor})
MAX_FOOTAGE_WINDOW = timedelta(hours=24)


def _svc(ctx: Any) -> CameraService:
    return service_of(ctx.services, ctx.settings.cameras)


def _base(request: Request, ctx: Any) -> str:
    url = ctx.settings.server.public_url or str(request.base_url)
    return url if url.endswith("/") else url + "/"


def _aware(at: datetime | None) -> datetime:
    from rtcc.cameras.visibility import check_at

    if at is None:
        return datetime.now(UTC)
    return check_at(at)  # a timezone, and a UTC year 1970-9998 (422 otherwise, never an overflow)


async def _contact_check(ctx: Any, who: Principal, include: bool, record_id: str | None) -> bool:
    if not include:
        return False
    if who.role not in CONTACT_ROLES:
        raise Forbidden("only admins and supervisors see camera owners' contact details")
    await ctx.audit(who, "read_camera_contact", "camera", record_id=record_id)
    return True


@router.get("/cameras", summary="Cameras (city, in-car, community), newest first")
async def list_cameras(
    ctx: CtxDep,
    who: Operations,
    kind: list[CameraKind] | None = Query(None, description="Only these kinds."),
    status: list[CameraStatus] | None = Query(None, description="Only these states."),
    level: CameraLevel | None = Query(None, description="Only this level."),
    include_contact: bool = Query(False, description="Owners' contact (admins, supervisors; audited)."),
    limit: int = Query(1000, ge=1, le=10_000),
) -> CameraList:
    from rtcc.cameras.registry import camera_out, device_positions, list_cameras

    contact = await _contact_check(ctx, who, include_contact, None)

    def _load(s: Any) -> tuple[list[Any], dict[str, Any]]:
        rows = list_cameras(s, kinds=list(kind or []), statuses=list(status or []), level=level, limit=limit)
        return rows, device_positions(s, rows)

    rows, devices = await ctx.store.read(_load)
    stream = who.role is Role.admin
    items = [camera_out(r, contact=contact, stream=stream, devices=devices) for r in rows]
    await _audit_unit_locations(ctx, who, items)
    return CameraList(items=items)


async def _audit_unit_locations(
    ctx: Any, who: Principal, items: list[Any], at: datetime | None = None
) -> None:
    """Audit a read of in-car cameras' positions: a body cam's or patrol car's place is an officer's."""
    # items are CameraOut (id) or VisibleCamera (camera_id); only those with a position count
    moving = [
        str(getattr(i, "camera_id", None) or i.id) for i in items if i.kind == "in_car" and i.lat is not None
    ]
    if not moving:
        return
    details: dict[str, Any] = {"count": len(moving), "camera_ids": moving[:100]}
    if at is not None:
        details["at"] = at.isoformat()
    await ctx.audit(who, "read_unit_locations", "cameras", details=details)


@router.post("/cameras", status_code=201, summary="Add a city or in-car camera")
async def add_camera(body: CameraIn, ctx: CtxDep, who: Admin) -> CameraOut:
    from rtcc.cameras.registry import add_camera, camera_out

    max_range = ctx.settings.cameras.max_range_m
    row = await ctx.store.write(lambda s: add_camera(s, body, max_range_m=max_range))
    await ctx.audit(who, "add_camera", "camera", record_id=str(row.id), details={"kind": row.kind})
    return camera_out(row, contact=False, stream=True)


@router.get("/cameras/stats", summary="Camera and footage-request counts (no personal data)")
async def camera_stats(ctx: CtxDep, who: AnyStaff) -> TransparencyOut:
    from rtcc.cameras.transparency import stats

    return TransparencyOut.model_validate(await ctx.store.read(stats))


@router.get("/cameras/visible", summary="Cameras that could see a point at a time")
async def visible_cameras(
    ctx: CtxDep,
    who: Operations,
    lat: float = Query(ge=-90, le=90, description="Latitude, degrees."),
    lon: float = Query(ge=-180, le=180, description="Longitude, degrees."),
    at: datetime | None = Query(None, description="When (with a timezone); default now."),
    limit: int = Query(50, ge=1, le=500),
) -> VisibleList:
    from rtcc.cameras.visibility import cameras_seeing

    when = _aware(at)
    gap = ctx.settings.cameras.in_car_max_gap_s
    found = await ctx.store.read(lambda s: cameras_seeing(s, lat, lon, when, limit=limit, max_gap_s=gap))
    await _audit_unit_locations(ctx, who, found, when)
    return VisibleList(
        at=when,
        items=[
            VisibleOut(
                camera_id=v.camera_id,
                name=v.name,
                kind=v.kind,
                level=v.level,
                distance_m=v.distance_m,
                bearing_deg=v.bearing_deg,
                live=v.live,
                lat=v.lat,
                lon=v.lon,
            )
            for v in found
        ],
    )


@router.get("/cameras/{camera_id}", summary="One camera")
async def get_camera(
    camera_id: UUID,
    ctx: CtxDep,
    who: Operations,
    include_contact: bool = Query(False, description="Owner's contact (admins, supervisors; audited)."),
) -> CameraOut:
    from rtcc.cameras.registry import camera_out, device_positions, get_camera

    def _load(s: Any) -> tuple[Any, dict[str, Any]]:
        row = get_camera(s, camera_id)
        return row, device_positions(s, [row])

    row, devices = await ctx.store.read(_load)
    contact = await _contact_check(ctx, who, include_contact, str(camera_id))
    out = camera_out(row, contact=contact, stream=who.role is Role.admin, devices=devices)
    await _audit_unit_locations(ctx, who, [out])
    return out


@router.patch(
    "/cameras/{camera_id}",
    summary="Change a camera (open live views end when it stops being live or its source changes)",
)
async def patch_camera(camera_id: UUID, body: CameraPatch, ctx: CtxDep, who: Admin) -> CameraOut:
    from rtcc.cameras.registry import camera_out, get_camera, is_live, patch_camera

    max_range = ctx.settings.cameras.max_range_m

    def _do(s: Any) -> tuple[str | None, Any]:
        before = get_camera(s, camera_id).stream_url
        return before, patch_camera(s, camera_id, body, max_range_m=max_range)

    url_before, row = await ctx.store.write(_do)
    if not is_live(row):
        await _svc(ctx).live.drop(camera_id, "the camera has no live view any more")
    elif row.stream_url != url_before:
        await _svc(ctx).live.drop(camera_id, "the camera's source changed")
    await ctx.audit(
        who, "change_camera", "camera", record_id=str(camera_id), details=body.model_dump(exclude_unset=True)
    )
    return camera_out(row, contact=False, stream=True)


@router.delete(
    "/cameras/{camera_id}",
    summary=(
        "Remove a camera and its footage; clips linked to an open case are kept as evidence until it "
        "closes (clips_kept)"
    ),
)
async def delete_camera(camera_id: UUID, ctx: CtxDep, who: Admin) -> CameraDeleteOut:
    from rtcc.cameras.footage import media_dir
    from rtcc.cameras.registry import delete_camera

    media = media_dir(ctx.settings.data_dir)
    d = await ctx.store.write(lambda s: delete_camera(s, camera_id, media))
    await _svc(ctx).live.drop(camera_id, "the camera was deleted")
    await ctx.audit(
        who,
        "delete_camera",
        "camera",
        record_id=str(camera_id),
        details={"clips_deleted": d.clips_deleted, "clips_kept": d.clips_kept},
    )
    message = f"Camera deleted with {d.clips_deleted} clip(s)."
    if d.clips_kept:
        message = (
            f"Camera deleted: {d.clips_deleted} clip(s) deleted; {d.clips_kept} clip(s) linked to an open "
            "case kept as evidence (the camera stays only as their record, marked withdrawn) until no open "
            "case links them, then retention deletes them."
        )
    return CameraDeleteOut(
        deleted=True, clips_deleted=d.clips_deleted, clips_kept=d.clips_kept, message=message
    )


async def _decide(
    request: Request, camera_id: UUID, body: DecisionIn, ctx: Any, who: Principal, approve: bool
) -> CameraOut:
    from rtcc.cameras.registry import camera_out, decide

    now = datetime.now(UTC)
    row = await ctx.store.write(
        lambda s: decide(s, camera_id, approve=approve, who=who.username, reason=body.reason, now=now)
    )
    action = "approve_camera" if approve else "reject_camera"
    await ctx.audit(who, action, "camera", record_id=str(camera_id), purpose=body.reason or None)
    if row.contact_email:
        text = (
            f"Your camera '{row.name}' was approved: thank you for helping your neighbourhood."
            if approve
            else f"Your camera registration '{row.name}' was not accepted. Reason: {body.reason}"
        )
        # the decision stands even when the mail fails; the owner sees it on their manage link
        with contextlib.suppress(RtccError):
            await _svc(ctx).notifier.send(
                Message(
                    row.contact_email,
                    "Camera registration " + ("approved" if approve else "not accepted"),
                    text,
                )
            )
    return camera_out(row, contact=False, stream=False)


@router.post("/cameras/{camera_id}/approve", summary="Approve a verified community registration")
async def approve_camera(
    request: Request, camera_id: UUID, body: DecisionIn, ctx: CtxDep, who: Admin
) -> CameraOut:
    return await _decide(request, camera_id, body, ctx, who, True)


@router.post("/cameras/{camera_id}/reject", summary="Reject a verified community registration, with a reason")
async def reject_camera(
    request: Request, camera_id: UUID, body: DecisionIn, ctx: CtxDep, who: Admin
) -> CameraOut:
    return await _decide(request, camera_id, body, ctx, who, False)


async def _live_source(ctx: Any, camera_id: UUID) -> tuple[str, str]:
    from rtcc.cameras.registry import get_camera, is_live

    row = await ctx.store.read(lambda s: get_camera(s, camera_id))
    if not is_live(row):
        raise NotFound(
            f"camera {camera_id} has no live view (only active city cameras and integrated community "
            "cameras with a stream)"
        )
    return str(row.stream_url), row.name


BOUNDARY = "rtccframe"

LIVE_CHECK_S = 10.0
"""How often an open live view re-checks its camera (still live, same source) and its viewer's
session (alive, role may view live video). Changes made in this process end it at once
(:meth:`LiveManager.drop`, :meth:`LiveHub.end_sessions`); this check catches the rest, e.g. made
by another API process."""


async def _live_view_ended(ctx: Any, camera_id: UUID, url: str, who: Principal) -> str | None:
    """Why an open live view must end now (camera no longer live, session ended), or None."""
    from rtcc.cameras.registry import is_live
    from rtcc.oversight.sessions import session_alive
    from rtcc.store.tables import User, UserSession
    from rtcc.store.tables_cameras import CameraRow

    sec = ctx.settings.security
    now = datetime.now(UTC)
    token_hash = who.token_hash

    def _check(s: Any) -> str | None:
        row = s.get(CameraRow, camera_id)
        if row is None or not is_live(row):
            return "the camera has no live view any more"
        if row.stream_url != url:
            return "the camera's source changed"
        if token_hash is None:
            return None
        alive = session_alive(
            s,
            token_hash=token_hash,
            now=now,
            idle_minutes=sec.session_idle_minutes,
            mfa_default=sec.mfa_required,
        )
        if not alive:
            return "the viewer's session ended"
        sess = s.get(UserSession, token_hash)
        user = s.get(User, sess.user_id) if sess is not None else None
        if user is None or user.role not in {r.value for r in OPERATIONS}:
            return "the viewer's role may not view live video"
        return None

    reason: str | None = await ctx.store.read(_check)
    return reason


@router.get(
    "/cameras/{camera_id}/live.mjpeg",
    summary="Live view as MJPEG (audited: video is personal data)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}},
            "description": "JPEG frames.",
        },
        502: {"description": "The camera's stream is unreachable."},
        504: {"description": "The camera's stream did not answer in time."},
    },
)
async def live_mjpeg(camera_id: UUID, ctx: CtxDep, who: Operations) -> StreamingResponse:
    url, _ = await _live_source(ctx, camera_id)
    live = _svc(ctx).live
    try:
        st = await live.acquire(camera_id, url)
    except RtccError as exc:
        await ctx.audit(who, "view_camera_live", "camera", record_id=str(camera_id), outcome=exc.code)
        raise
    await ctx.audit(who, "view_camera_live", "camera", record_id=str(camera_id))

    async def parts() -> AsyncIterator[bytes]:
        # Registered with the live hub as a view (not a WebSocket client: it is offered no events)
        # so that a sign-out, disable, role change or new password made in this process ends it at
        # once (LiveHub.end_sessions); the periodic check catches changes made by other processes.
        viewer = LiveView(username=who.username, token_hash=who.token_hash)
        ctx.hub.add_view(viewer)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + LIVE_CHECK_S
        try:
            async for frame in live.frames(st):
                if not ctx.ready:
                    return  # the center is stopping: end the response so the server can close
                if viewer.ended.is_set():
                    return  # the viewer's session ended
                if loop.time() >= next_check:
                    if await _live_view_ended(ctx, camera_id, url, who):
                        return
                    next_check = loop.time() + LIVE_CHECK_S
                yield (
                    (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n"
                        f"X-Frame-Time: {frame.at:.6f}\r\n\r\n"
                    ).encode()
                    + frame.jpeg
                    + b"\r\n"
                )
        except RtccError:
            return  # the stream failed after its retries, or was dropped (LiveManager.drop)
        finally:
            ctx.hub.remove_view(viewer)
            await live.release(st)

    return StreamingResponse(
        parts(),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


@router.get(
    "/cameras/{camera_id}/snapshot.jpg",
    summary="The camera's current frame (audited)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "One JPEG frame."}},
)
async def snapshot(camera_id: UUID, ctx: CtxDep, who: Operations) -> Response:
    url, _ = await _live_source(ctx, camera_id)
    try:
        frame = await _svc(ctx).live.snapshot(camera_id, url)
    except RtccError as exc:
        await ctx.audit(who, "view_camera_snapshot", "camera", record_id=str(camera_id), outcome=exc.code)
        raise
    await ctx.audit(who, "view_camera_snapshot", "camera", record_id=str(camera_id))
    return Response(
        frame.jpeg,
        media_type="image/jpeg",
        headers={"cache-control": "no-store", "x-frame-time": f"{frame.at:.6f}"},
    )


# --- footage requests ----------------------------------------------------------


@router.post(
    "/footage-requests", status_code=201, summary="Ask a community camera's owner for a clip (audited)"
)
async def request_footage(
    request: Request, body: FootageRequestIn, ctx: CtxDep, who: Requesters
) -> FootageRequestOut:
    from rtcc.cameras.footage import create_request, mark_notified, request_out

    now = datetime.now(UTC)
    ttl = timedelta(hours=ctx.settings.cameras.footage_request_ttl_h)
    row, cam, token = await ctx.store.write(
        lambda s: create_request(s, body, who=who.username, now=now, ttl=ttl, max_window=MAX_FOOTAGE_WINDOW)
    )
    await ctx.audit(
        who,
        "request_footage",
        "footage_request",
        record_id=str(row.id),
        purpose=body.reason,
        details={"camera_id": str(cam.id), "incident_ref": body.incident_ref},
    )
    link = f"{_base(request, ctx)}community.html?footage={token}"
    msg = Message(
        str(cam.contact_email),
        f"Footage request for your camera '{cam.name}'",
        (
            f"The Real-Time Crime Center asks for footage from your camera '{cam.name}' between "
            f"{body.window_start.astimezone(UTC):%Y-%m-%d %H:%M:%S} and "
            f"{body.window_end.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.\n\nReason: {body.reason}\n\n"
            f"Upload the clip (or decline) here: {link}\n\nAnswering is voluntary. The link expires "
            f"{row.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
    )
    try:
        await _svc(ctx).notifier.send(msg)
    except RtccError:
        return request_out(row, cam.name)  # stays 'requested': the owner was not reached yet
    await ctx.store.write(lambda s: mark_notified(s, row.id, now))
    row.status, row.notified_at = "notified", now
    return request_out(row, cam.name)


@router.get("/footage-requests", summary="Footage requests and their status, newest first")
async def list_footage_requests(
    ctx: CtxDep,
    who: Operations,
    incident_ref: str | None = Query(None, max_length=128, description="Only for this incident."),
    camera_id: UUID | None = Query(None, description="Only for this camera."),
    status: list[FootageStatus] | None = Query(None, description="Only these states."),
    limit: int = Query(200, ge=1, le=1000),
) -> FootageRequestList:
    from rtcc.cameras.footage import list_requests, request_out

    now = datetime.now(UTC)
    rows = await ctx.store.write(
        lambda s: list_requests(
            s,
            now=now,
            incident_ref=incident_ref,
            camera_id=camera_id,
            statuses=list(status or []),
            limit=limit,
        )
    )
    return FootageRequestList(items=[request_out(r, n) for r, n in rows])


CLIP_AUDIT_WINDOW = timedelta(minutes=10)
"""A clip read is audited (``read_footage_clip``) unless the same person already has an entry for
the same clip this recent: a video player fetches one viewing in dozens of Range requests, and one
entry per request would bury the log. The check reads the audit log itself (not this process's
memory), so it holds across API processes and restarts; the first request of any kind in a window
is always audited. Two first requests at the same instant may both be audited (never neither)."""


@router.get(
    "/footage-requests/{request_id}/clip",
    summary="The clip an owner uploaded (audited: video is personal data)",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}}, "description": "The clip."}},
)
async def footage_clip(request_id: UUID, ctx: CtxDep, who: Requesters) -> FileResponse:
    from rtcc.cameras.footage import clip_of, clip_read_audited_since, media_dir

    media = media_dir(ctx.settings.data_dir)
    since = datetime.now(UTC) - CLIP_AUDIT_WINDOW

    def _load(s: Any) -> tuple[Any, Any, bool]:
        row, path = clip_of(s, request_id, media)
        return row, path, clip_read_audited_since(s, who.username, request_id, since)

    row, path, audited = await ctx.store.read(_load)
    if not audited:
        await ctx.audit(
            who,
            "read_footage_clip",
            "footage_request",
            record_id=str(request_id),
            details={"incident_ref": row.incident_ref},
        )
    return FileResponse(
        path, media_type=row.clip_content_type or "application/octet-stream", filename=path.name
    )
