"""Footage requests for community cameras: request → owner notified → clip uploaded (or declined/expired).

Clips are files under the media folder (``data_dir/media/footage``) at
``<camera_id>/<request_id>.<ext>``, with their size and SHA-256 in the row;
they are attached to the request's ``incident_ref``. A request the owner has
not answered by ``expires_at`` becomes ``expired`` (checked whenever
requests are read, and by the cameras processor).
"""

from __future__ import annotations

import hashlib
import io
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rtcc.cameras.models import FootageRequestIn, FootageRequestOut, OwnerRequestOut
from rtcc.cameras.registry import get_camera, hash_secret, new_token
from rtcc.errors import Conflict, NotFound, ValidationFailed
from rtcc.store.tables import AuditEntry
from rtcc.store.tables_cameras import CameraRow, FootageRequestRow

CLIP_TYPES: dict[str, str] = {
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "image/jpeg": "jpg",
}
"""Content types accepted for clips, and the file extension each is stored with."""

OPEN = ("requested", "notified")


def media_dir(data_dir: Path) -> Path:
    """Where footage clips live."""
    return data_dir / "media" / "footage"


def request_out(row: FootageRequestRow, camera_name: str) -> FootageRequestOut:
    return FootageRequestOut(
        id=row.id,
        camera_id=row.camera_id,
        camera_name=camera_name,
        incident_ref=row.incident_ref,
        window_start=row.window_start,
        window_end=row.window_end,
        reason=row.reason,
        requested_by=row.requested_by,
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        notified_at=row.notified_at,
        responded_at=row.responded_at,
        owner_note=row.owner_note,
        clip_bytes=row.clip_bytes,
        clip_sha256=row.clip_sha256,
        clip_content_type=row.clip_content_type,
    )


def owner_request_out(row: FootageRequestRow) -> OwnerRequestOut:
    return OwnerRequestOut(
        id=row.id,
        window_start=row.window_start,
        window_end=row.window_end,
        reason=row.reason,
        status=row.status,
        expires_at=row.expires_at,
    )


def create_request(
    s: Session, body: FootageRequestIn, *, who: str, now: datetime, ttl: timedelta, max_window: timedelta
) -> tuple[FootageRequestRow, CameraRow, str]:
    """Record a request for an active community camera's footage; returns it, its camera, its upload token."""
    for dt in (body.window_start, body.window_end):
        if dt.tzinfo is None:
            raise ValidationFailed("window_start/window_end need a timezone (e.g. 2026-01-01T00:00:00Z)")
    if body.window_end <= body.window_start:
        raise ValidationFailed("window_end must be after window_start")
    if body.window_end - body.window_start > max_window:
        raise ValidationFailed(f"the window is longer than {max_window}; ask for the part you need")
    if body.window_start > now:
        raise ValidationFailed("the window starts in the future")
    cam = get_camera(s, body.camera_id)
    if cam.kind != "community":
        raise Conflict(f"camera {cam.id} is a {cam.kind} camera; footage requests are for community cameras")
    if cam.status != "active":
        raise Conflict(f"camera {cam.id} is {cam.status}; footage can be requested from active cameras only")
    if body.window_end < cam.created_at:
        raise ValidationFailed(
            f"camera {cam.id} was registered at {cam.created_at:%Y-%m-%d %H:%M:%S} UTC, after the window "
            "asked for: it has no footage of that time",
            details={"field": "window_end", "camera_created_at": cam.created_at.isoformat()},
        )
    token = new_token()
    row = FootageRequestRow(
        id=uuid4(),
        camera_id=cam.id,
        incident_ref=body.incident_ref,
        window_start=body.window_start,
        window_end=body.window_end,
        reason=body.reason,
        requested_by=who,
        upload_token_hash=hash_secret(token),
        status="requested",
        expires_at=now + ttl,
        created_at=now,
    )
    s.add(row)
    s.flush()
    return row, cam, token


def by_upload_token(s: Session, token: str) -> tuple[FootageRequestRow, CameraRow]:
    """The request (and its camera) behind the link mailed to the owner."""
    row = s.scalars(
        select(FootageRequestRow).where(FootageRequestRow.upload_token_hash == hash_secret(token))
    ).first()
    if row is None:
        raise NotFound("this footage link is unknown (or the camera was withdrawn)")
    cam = s.get(CameraRow, row.camera_id)
    assert cam is not None
    return row, cam


def mark_notified(s: Session, request_id: UUID, now: datetime) -> None:
    row = s.get(FootageRequestRow, request_id)
    if row is not None and row.status == "requested":
        row.status, row.notified_at = "notified", now
        s.flush()


def expire_due(s: Session, now: datetime) -> int:
    """Mark unanswered requests past their deadline ``expired``; returns how many."""
    res: Any = s.execute(
        update(FootageRequestRow)
        .where(FootageRequestRow.status.in_(OPEN), FootageRequestRow.expires_at < now)
        .values(status="expired")
    )
    return int(res.rowcount or 0)


def list_requests(
    s: Session,
    *,
    now: datetime,
    incident_ref: str | None = None,
    camera_id: UUID | None = None,
    statuses: list[str] | None = None,
    limit: int = 200,
) -> list[tuple[FootageRequestRow, str]]:
    """Requests (newest first) with their camera's name; expires due ones first."""
    expire_due(s, now)
    q: Any = select(FootageRequestRow, CameraRow.name).join(
        CameraRow, CameraRow.id == FootageRequestRow.camera_id
    )
    if incident_ref:
        q = q.where(FootageRequestRow.incident_ref == incident_ref)
    if camera_id:
        q = q.where(FootageRequestRow.camera_id == camera_id)
    if statuses:
        q = q.where(FootageRequestRow.status.in_(statuses))
    q = q.order_by(FootageRequestRow.created_at.desc(), FootageRequestRow.id).limit(limit)
    return [(r, n) for r, n in s.execute(q).all()]


def owner_requests(s: Session, camera_id: UUID, now: datetime) -> list[FootageRequestRow]:
    expire_due(s, now)
    q = (
        select(FootageRequestRow)
        .where(FootageRequestRow.camera_id == camera_id)
        .order_by(FootageRequestRow.created_at.desc())
    )
    return list(s.scalars(q))


def _open_request(s: Session, camera_id: UUID, request_id: UUID, now: datetime) -> FootageRequestRow:
    expire_due(s, now)
    row = s.get(FootageRequestRow, request_id)
    if row is None or row.camera_id != camera_id:
        raise NotFound(f"no footage request {request_id} for this camera")
    if row.status not in OPEN:
        raise Conflict(f"footage request {request_id} is {row.status}; it can no longer be answered")
    return row


MAX_PROBE_PACKETS = 500
"""Packets of a clip's video stream read, at most, to find its first decodable frame."""


def check_clip(data: bytes, content_type: str) -> None:
    """Refuse bytes that are not what they claim: a video with a decodable frame, or a JPEG picture.

    Only the container's header and the packets up to the first frame are decoded
    (at most :data:`MAX_PROBE_PACKETS`), so the check stays cheap for a long clip.

    Raises
    ------
    rtcc.errors.ValidationFailed
        The bytes are not a video (or JPEG) that can be decoded.
    """
    if content_type == "image/jpeg":
        import cv2
        import numpy as np

        img = None
        if data[:3] == b"\xff\xd8\xff":  # a JPEG's start-of-image marker (not a PNG or GIF)
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValidationFailed(
                "the clip was sent as image/jpeg but is not a JPEG picture that can be decoded; "
                "send the camera's video file (or a JPEG still) as it was saved",
                details={"content_type": content_type},
            )
        return
    if not _has_video_frame(data):
        raise ValidationFailed(
            f"the clip was sent as {content_type} but is not a video that can be played (no video "
            "stream with a decodable frame); send the camera's video file as it was saved",
            details={"content_type": content_type},
        )


def _has_video_frame(data: bytes) -> bool:
    """Whether ``data`` is a container with a video stream whose first frame decodes."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                return False
            stream = container.streams.video[0]
            for n, packet in enumerate(container.demux(stream)):
                if n >= MAX_PROBE_PACKETS:
                    return False
                try:
                    if packet.decode():
                        return True
                except av.error.InvalidDataError:
                    continue  # a damaged packet: a later one may decode
            return False
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False


def store_clip(
    s: Session,
    camera_id: UUID,
    request_id: UUID,
    data: bytes,
    content_type: str,
    media: Path,
    *,
    now: datetime,
    note: str | None = None,
) -> FootageRequestRow:
    """Save the owner's clip for an open request and mark it ``uploaded``.

    The request is answered once: the row moves to ``uploaded`` only if it is
    still open at the moment of the update (a conditional ``UPDATE``: of two
    uploads at once, one wins and the other gets a 409), and the clip file is
    put in place only after that update succeeded (each upload writes its own
    temporary file first, removed when the upload fails).

    Raises
    ------
    rtcc.errors.ValidationFailed
        A content type not accepted, an empty body, or bytes that are not a
        video (or JPEG) that can be decoded (:func:`check_clip`).
    rtcc.errors.Conflict
        The request is no longer open (answered, expired).
    """
    ctype = content_type.split(";")[0].strip().lower()
    ext = CLIP_TYPES.get(ctype)
    if ext is None:
        raise ValidationFailed(
            f"clips of type {ctype or '(none)'} are not accepted; send one of "
            f"{', '.join(sorted(CLIP_TYPES))} as the Content-Type",
            details={"accepted": sorted(CLIP_TYPES)},
        )
    if not data:
        raise ValidationFailed("the clip is empty")
    row = _open_request(s, camera_id, request_id, now)
    check_clip(data, ctype)
    rel = f"{camera_id}/{request_id}.{ext}"
    path = media / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(data).hexdigest()
    tmp = path.with_name(f".{path.name}.{uuid4().hex}.part")  # this upload's own temporary file
    try:
        tmp.write_bytes(data)
        res: Any = s.execute(
            update(FootageRequestRow)
            .where(FootageRequestRow.id == request_id, FootageRequestRow.status.in_(OPEN))
            .values(
                status="uploaded",
                responded_at=now,
                owner_note=note,
                clip_path=rel,
                clip_bytes=len(data),
                clip_sha256=sha,
                clip_content_type=ctype,
            )
            .execution_options(synchronize_session=False)
        )
        if int(res.rowcount or 0) != 1:
            raise Conflict(
                f"footage request {request_id} was answered meanwhile; it can no longer be answered"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    s.refresh(row)
    return row


def decline(s: Session, camera_id: UUID, request_id: UUID, note: str, *, now: datetime) -> FootageRequestRow:
    row = _open_request(s, camera_id, request_id, now)
    row.status, row.responded_at, row.owner_note = "declined", now, note.strip() or None
    s.flush()
    return row


def clip_of(s: Session, request_id: UUID, media: Path) -> tuple[FootageRequestRow, Path]:
    """The request and its clip file."""
    row = s.get(FootageRequestRow, request_id)
    if row is None:
        raise NotFound(f"no footage request {request_id}")
    if row.status != "uploaded" or not row.clip_path:
        raise NotFound(f"footage request {request_id} has no clip (status {row.status})")
    path = media / row.clip_path
    if not path.is_file():
        raise NotFound(f"the clip of footage request {request_id} is missing from the media folder")
    return row, path


def clip_read_audited_since(s: Session, actor: str, request_id: UUID, since: datetime) -> bool:
    """Whether ``actor`` has a ``read_footage_clip`` audit entry for this request at or after ``since``.

    Read from the audit log itself (not process memory) so that coalescing a player's Range
    requests into one entry holds across API processes and restarts.
    """
    found = s.scalar(
        select(AuditEntry.seq)
        .where(
            AuditEntry.actor == actor,
            AuditEntry.action == "read_footage_clip",
            AuditEntry.record_id == str(request_id),
            AuditEntry.outcome == "ok",
            AuditEntry.at >= since,
        )
        .limit(1)
    )
    return found is not None
