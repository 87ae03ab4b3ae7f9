"""The camera registry: adding, registering, verifying, deciding on and withdrawing cameras.

Every function takes an open SQLAlchemy session (run it through
``store.write``/``store.read``). Secrets handed to owners (the
verification token and code, the manage token) are stored as SHA-256 only.

A community camera goes ``pending_verification`` (the owner must prove the
email is theirs: link or code) → ``pending_approval`` (an admin approves or
rejects) → ``active``. Withdrawal deletes the row, its footage requests
and their clips; only a count is kept (:class:`CameraWithdrawalRow`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rtcc.cameras.models import CameraIn, CameraOut, CameraPatch, RegistrationIn
from rtcc.errors import Conflict, NotFound, RateLimited, ValidationFailed
from rtcc.store.tables import Device
from rtcc.store.tables_cameras import CameraRow, CameraWithdrawalRow, FootageRequestRow
from rtcc.store.tables_ops import Case, CaseLink

OPEN_STATES = ("pending_verification", "pending_approval")
"""A community registration still waiting: for its contact's verification, then for approval."""
WITHDRAWN = "withdrawn"
"""Status of a withdrawn camera kept only for a clip linked to an open case (no contact, unreachable)."""


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a token or code."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    """A URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def new_code() -> str:
    """A 6-digit one-time code."""
    return f"{secrets.randbelow(1_000_000):06d}"


def check_position(
    lat: float | None, lon: float | None, area: tuple[float, float, float, float] | None
) -> None:
    """Refuse a position that is missing its pair, at 0,0, or outside the service area.

    Raises
    ------
    rtcc.errors.ValidationFailed
        With a message that says what is wrong and what is accepted.
    """
    if (lat is None) != (lon is None):
        raise ValidationFailed("give both lat and lon, or neither")
    if lat is None or lon is None:
        return
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        raise ValidationFailed(
            "position 0,0 is not a camera location (an unset GPS); pick the camera's place on the map",
            details={"field": "lat/lon"},
        )
    if area is not None:
        south, west, north, east = area
        if not (south <= lat <= north and west <= lon <= east):
            raise ValidationFailed(
                f"position {lat:.6f},{lon:.6f} is outside the center's service area "
                f"(south {south}, west {west}, north {north}, east {east}; setting cameras.service_area)",
                details={"field": "lat/lon", "service_area": [south, west, north, east]},
            )


def _check_range(range_m: float | None, max_range_m: float) -> None:
    if range_m is not None and range_m > max_range_m:
        raise ValidationFailed(
            f"range_m {range_m:g} is over the largest accepted, {max_range_m:g} m "
            "(setting cameras.max_range_m)",
            details={"field": "range_m"},
        )


def get_camera(s: Session, camera_id: UUID) -> CameraRow:
    row = s.get(CameraRow, camera_id)
    if row is None:
        raise NotFound(f"no camera {camera_id}")
    return row


def is_live(row: CameraRow) -> bool:
    """Whether the camera has a live source operators may view."""
    return (
        row.status == "active" and bool(row.stream_url) and (row.kind == "city" or row.level == "integrated")
    )


def device_positions(s: Session, rows: list[CameraRow]) -> dict[str, Device]:
    """The devices in-car cameras follow, by id (their last known position and heading)."""
    ids = {r.device_id for r in rows if r.kind == "in_car" and r.device_id}
    if not ids:
        return {}
    return {d.id: d for d in s.scalars(select(Device).where(Device.id.in_(ids)))}


def camera_out(
    row: CameraRow, *, contact: bool, stream: bool, devices: dict[str, Device] | None = None
) -> CameraOut:
    """The API view of a camera; ``contact``/``stream`` include personal data / the source URL.

    A resident's street address is contact data (their home): shown with ``contact`` only, as the
    owner's name, email and phone. The camera's position stays (the map and ``/cameras/visible``
    need it).
    """
    lat, lon, heading, at = row.lat, row.lon, None, None
    dev = (devices or {}).get(row.device_id or "")
    if row.kind == "in_car" and dev is not None:
        lat, lon, heading, at = dev.lat, dev.lon, dev.heading_deg, dev.last_seen_at
    return CameraOut(
        id=row.id,
        kind=row.kind,
        name=row.name,
        level=row.level,
        status=row.status,
        owner_type=row.owner_type,
        # a resident's street address is their home: contact data (a business's is public)
        address=row.address if contact or row.owner_type != "resident" else None,
        lat=lat,
        lon=lon,
        heading_deg=heading,
        position_at=at,
        bearing_deg=row.bearing_deg,
        fov_deg=row.fov_deg,
        range_m=row.range_m,
        device_id=row.device_id,
        live=is_live(row),
        online=row.online,
        created_at=row.created_at,
        verified_at=row.verified_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        owner_name=row.owner_name if contact else None,
        email=row.contact_email if contact else None,
        phone=row.contact_phone if contact else None,
        stream_url=row.stream_url if stream else None,
    )


def add_camera(s: Session, body: CameraIn, *, max_range_m: float) -> CameraRow:
    """Add a city or in-car camera (active at once)."""
    _check_range(body.range_m, max_range_m)
    if body.kind == "city":
        if body.lat is None or body.lon is None:
            raise ValidationFailed("a city camera needs lat and lon", details={"field": "lat/lon"})
        check_position(body.lat, body.lon, None)
    else:
        if not body.device_id:
            raise ValidationFailed(
                "an in-car camera needs device_id: its position comes from that device's heartbeats",
                details={"field": "device_id"},
            )
        if body.lat is not None or body.lon is not None:
            raise ValidationFailed("an in-car camera has no fixed position; leave lat/lon out")
        if s.get(Device, body.device_id) is None:
            # a camera following an unknown device would never have a position: refuse it now
            raise ValidationFailed(
                f"no device {body.device_id!r}: register the body cam or car device first (POST /devices), "
                "then add its camera",
                details={"field": "device_id"},
            )
    if body.level == "integrated" and not body.stream_url and body.kind == "in_car":
        raise ValidationFailed("an integrated camera needs stream_url", details={"field": "stream_url"})
    row = CameraRow(
        id=uuid4(),
        kind=body.kind,
        name=body.name,
        address=body.address,
        lat=body.lat,
        lon=body.lon,
        bearing_deg=body.bearing_deg,
        fov_deg=body.fov_deg,
        range_m=body.range_m,
        level=body.level,
        status="active",
        stream_url=body.stream_url,
        device_id=body.device_id,
        verify_attempts=0,
    )
    s.add(row)
    s.flush()
    return row


def patch_camera(s: Session, camera_id: UUID, body: CameraPatch, *, max_range_m: float) -> CameraRow:
    row = get_camera(s, camera_id)
    changes = body.model_dump(exclude_unset=True)
    _check_range(changes.get("range_m"), max_range_m)
    for k, v in changes.items():
        if v is None and k != "stream_url":
            continue
        setattr(row, k, v)
    if row.level == "integrated" and not row.stream_url and row.kind == "community":
        raise ValidationFailed("an integrated camera needs stream_url", details={"field": "stream_url"})
    s.flush()
    return row


@dataclass(frozen=True)
class Deletion:
    """What an admin's deletion did: clips deleted, and clips kept as evidence of open cases."""

    camera_id: UUID
    clips_deleted: int
    clips_kept: int


def delete_camera(s: Session, camera_id: UUID, media_dir: Path) -> Deletion:
    """Delete a camera and its footage (files too), except clips that are evidence of an open case.

    As with the owner's withdrawal (:func:`withdraw`), a delivered clip linked to an
    open case is kept: the camera stays only as that clip's record (marked
    ``withdrawn``, without contact, stream or links; not listed, not live, no new
    requests) and retention deletes both once no open case links the clip
    (:func:`purge_withdrawn`).
    """
    row = get_camera(s, camera_id)
    keep = _evidence_of_open_cases(s, row.id)
    n = _delete_footage(s, row, media_dir, keep)
    if keep:
        _keep_for_evidence(s, row, keep)
    else:
        s.delete(row)
    s.flush()
    return Deletion(camera_id, n, len(keep))


@dataclass(frozen=True)
class Registration:
    """A new registration and the secrets to send its owner (never stored in clear)."""

    camera: CameraRow
    token: str
    code: str


def client_key(secret: str, client: str) -> str:
    """The keyed hash of a client IP kept with an unverified registration (never the address itself:
    HMAC-SHA256 with the center's secret, so the small IPv4 space cannot be hashed through)."""
    return hmac.new(secret.encode(), b"camera-registration-client:" + client.encode(), "sha256").hexdigest()


def check_registration(
    body: RegistrationIn, *, area: tuple[float, float, float, float] | None, max_range_m: float
) -> None:
    """The checks of a registration that need no database (position, range, live feed).

    The registration route runs them before it takes a slot of the per-IP
    limit, so a request refused by them never holds one, even for a moment.

    Raises
    ------
    rtcc.errors.ValidationFailed
        What is wrong, with the field in ``details``.
    """
    check_position(body.lat, body.lon, area)
    _check_range(body.range_m, max_range_m)
    if body.level == "integrated" and not body.stream_url:
        raise ValidationFailed(
            "an integrated camera shares a live feed: give its stream_url (rtsp:// or http://), "
            "or choose level 'registered'",
            details={"field": "stream_url"},
        )


def register(
    s: Session,
    body: RegistrationIn,
    *,
    now: datetime,
    ttl: timedelta,
    area: tuple[float, float, float, float] | None,
    max_range_m: float,
    per_contact: int,
    client: str | None = None,
) -> Registration:
    """Record a community registration waiting for contact verification.

    The per-email quota (``per_contact``) against mail bombing counts the
    unverified registrations naming this email *from the same client*
    (``client``: :func:`client_key` of its IP; None: from anyone). Counting
    every client's would let a stranger lock a resident out by registering
    cameras in their email's name, and the refusal would tell the stranger
    that the email has registrations. One client can still mail an address at
    most ``per_contact`` verification links at a time (and only
    ``cameras.register_per_ip_per_hour`` mails in all); the verified
    registrations an email holds are limited at verification
    (:func:`verify`), which only the mailbox's owner can reach. The refusal
    names no count.
    """
    check_registration(body, area=area, max_range_m=max_range_m)
    email = body.email.strip().lower()
    # this resident's expired, unverified registrations: nothing is kept without confirmation
    purge_expired_registrations(s, now, email=email)
    mine = (CameraRow.contact_email == email) & (CameraRow.status == "pending_verification")
    if client is not None:
        mine = mine & (CameraRow.register_client == client)
    if int(s.scalar(select(func.count()).select_from(CameraRow).where(mine)) or 0) >= per_contact:
        raise RateLimited(
            "you registered cameras for this email that wait for its confirmation; confirm them "
            "with the emailed link or code, or try again later (setting cameras.register_per_contact)",
            details={"reason": "per_contact"},
        )
    token, code = new_token(), new_code()
    row = CameraRow(
        id=uuid4(),
        kind="community",
        name=body.name.strip(),
        owner_type=body.owner_type,
        owner_name=body.owner_name.strip(),
        contact_email=email,
        contact_phone=body.phone,
        address=body.address,
        lat=body.lat,
        lon=body.lon,
        bearing_deg=body.bearing_deg,
        fov_deg=body.fov_deg,
        range_m=body.range_m,
        level=body.level,
        status="pending_verification",
        stream_url=body.stream_url if body.level == "integrated" else None,
        verify_token_hash=hash_secret(token),
        verify_code_hash=hash_secret(code),
        verify_attempts=0,
        verify_expires_at=now + ttl,
        register_client=client,
    )
    s.add(row)
    s.flush()
    return Registration(row, token, code)


def expired_registrations(now: datetime) -> Any:
    """The condition for registrations whose verification link and code expired unused."""
    return (
        (CameraRow.kind == "community")
        & (CameraRow.status == "pending_verification")
        & CameraRow.verify_expires_at.is_not(None)
        & (CameraRow.verify_expires_at < now)
    )


def purge_expired_registrations(s: Session, now: datetime, *, email: str | None = None) -> int:
    """Delete unverified registrations past their deadline (all, or one email's); returns how many.

    The verification mail promises that nothing is kept without confirmation,
    and an expired one must not hold the resident's per-email quota.
    """
    cond = expired_registrations(now)
    if email is not None:
        cond = cond & (CameraRow.contact_email == email)
    ids = list(s.scalars(select(CameraRow.id).where(cond)))
    if ids:
        # no footage can exist for an unverified camera; delete its requests anyway for the FK
        s.execute(delete(FootageRequestRow).where(FootageRequestRow.camera_id.in_(ids)))
        s.execute(delete(CameraRow).where(CameraRow.id.in_(ids)))
        s.flush()
    return len(ids)


def verify(
    s: Session,
    *,
    token: str | None,
    registration_id: UUID | None,
    code: str | None,
    now: datetime,
    max_attempts: int,
    per_contact: int | None = None,
) -> tuple[CameraRow, str | None]:
    """Verify a registration's contact by link token or (id, code); returns it and a new manage token.

    A wrong code returns the registration and None, with ``verify_attempts``
    counted (commit, then refuse with :func:`wrong_code`). With
    ``per_contact``, an email may hold at most that many verified
    registrations waiting for approval: checked here, where only the
    mailbox's owner gets (the registration stays unverified meanwhile), so a
    refusal tells nobody else anything about the email.

    Raises
    ------
    rtcc.errors.ValidationFailed
        Neither a token nor an id with a code was given.
    rtcc.errors.NotFound
        Unknown or already used token, unknown id.
    rtcc.errors.Conflict
        Expired, too many wrong codes, or not waiting for verification.
    rtcc.errors.RateLimited
        The email already holds ``per_contact`` registrations waiting for approval.
    """
    if token:
        row = s.scalars(select(CameraRow).where(CameraRow.verify_token_hash == hash_secret(token))).first()
        if row is None:
            raise NotFound("this verification link is unknown or was already used")
    elif registration_id is not None and code:
        row = s.get(CameraRow, registration_id)
        if row is None or row.kind != "community":
            raise NotFound(f"no registration {registration_id}")
    else:
        raise ValidationFailed("give the token from the link, or registration_id and the 6-digit code")
    if row.status != "pending_verification":
        raise Conflict(f"registration {row.id} is {row.status}, not waiting for verification")
    if row.verify_expires_at is not None and now > row.verify_expires_at:
        raise Conflict("the verification link or code has expired; please register again")
    if not token:
        assert code is not None
        if row.verify_attempts >= max_attempts:
            raise Conflict("too many wrong codes; please register again")
        if not hmac.compare_digest(row.verify_code_hash or "", hash_secret(code)):
            row.verify_attempts += 1  # kept: the caller commits, then refuses
            s.flush()
            return row, None
    if per_contact is not None and row.contact_email is not None:
        waiting = s.scalar(
            select(func.count())
            .select_from(CameraRow)
            .where(CameraRow.contact_email == row.contact_email, CameraRow.status == "pending_approval")
        )
        if int(waiting or 0) >= per_contact:
            raise RateLimited(
                "this email already has as many cameras waiting for the center's approval as it may; "
                "confirm this one once the center has decided on one of them "
                "(setting cameras.register_per_contact)",
                details={"reason": "per_contact"},
            )
    manage = new_token()
    row.status = "pending_approval"
    row.verified_at = now
    row.verify_token_hash = None
    row.verify_code_hash = None
    row.register_client = None  # only counted while unverified
    row.manage_token_hash = hash_secret(manage)
    s.flush()
    return row, manage


def wrong_code(row: CameraRow, max_attempts: int) -> ValidationFailed:
    """The error for a wrong code, with the attempts left."""
    left = max(0, max_attempts - row.verify_attempts)
    return ValidationFailed(f"wrong code ({left} attempts left)", details={"attempts_left": left})


def decide(s: Session, camera_id: UUID, *, approve: bool, who: str, reason: str, now: datetime) -> CameraRow:
    """Approve or reject a verified community registration."""
    row = get_camera(s, camera_id)
    if row.kind != "community":
        raise Conflict(
            f"camera {camera_id} is a {row.kind} camera; only community registrations need approval"
        )
    if row.status != "pending_approval":
        raise Conflict(f"camera {camera_id} is {row.status}; only verified registrations can be decided")
    if not approve and len(reason.strip()) < 3:
        raise ValidationFailed(
            "a rejection needs a reason (at least 3 characters)", details={"field": "reason"}
        )
    row.status = "active" if approve else "rejected"
    row.decided_by, row.decided_at, row.decision_reason = who, now, reason.strip() or None
    s.flush()
    return row


def by_manage_token(s: Session, token: str) -> CameraRow:
    row = s.scalars(select(CameraRow).where(CameraRow.manage_token_hash == hash_secret(token))).first()
    if row is None:
        raise NotFound("this manage link is unknown (or the camera was withdrawn)")
    return row


def open_case_footage(s: Session, request_ids: list[UUID]) -> set[UUID]:
    """The footage requests among ``request_ids`` linked to an open case."""
    if not request_ids:
        return set()
    refs = s.scalars(
        select(CaseLink.ref_id)
        .join(Case, Case.id == CaseLink.case_id)
        .where(
            CaseLink.ref_type == "footage",
            Case.status == "open",
            CaseLink.ref_id.in_([str(i) for i in request_ids]),
        )
    )
    return {UUID(r) for r in refs}


def _delete_footage(s: Session, row: CameraRow, media_dir: Path, keep: set[UUID] | None = None) -> int:
    """Delete the camera's requests and clips except ``keep``; returns the number of clips deleted."""
    keep = keep or set()
    reqs = s.scalars(select(FootageRequestRow).where(FootageRequestRow.camera_id == row.id)).all()
    n = 0
    for r in reqs:
        if r.id in keep:
            continue
        if r.clip_path:
            (media_dir / r.clip_path).unlink(missing_ok=True)
            n += 1
        s.delete(r)
    s.flush()
    if not keep:
        shutil.rmtree(media_dir / str(row.id), ignore_errors=True)
    return n


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal did: clips deleted, and clips kept as evidence of open cases."""

    camera_id: UUID
    clips_deleted: int
    clips_kept: int


def withdraw(s: Session, token: str, media_dir: Path, *, now: datetime) -> Withdrawal:
    """Withdraw the camera behind a manage token: its contact, requests and clips are deleted.

    Clips already delivered and linked to an open case are kept as evidence
    (with the camera's name and position, marked ``withdrawn``) until the case
    closes; the owner's contact, the manage link and any further access to
    the camera end now.
    """
    row = by_manage_token(s, token)
    cam_id = row.id
    keep = _evidence_of_open_cases(s, cam_id)
    n = _delete_footage(s, row, media_dir, keep)
    s.add(CameraWithdrawalRow(withdrawn_at=now, level=row.level, status_before=row.status))
    if keep:
        _keep_for_evidence(s, row, keep)
    else:
        s.delete(row)
    s.flush()
    return Withdrawal(cam_id, n, len(keep))


def _evidence_of_open_cases(s: Session, camera_id: UUID) -> set[UUID]:
    """The camera's delivered clips (their requests) that an open case links."""
    uploaded = list(
        s.scalars(
            select(FootageRequestRow.id).where(
                FootageRequestRow.camera_id == camera_id,
                FootageRequestRow.status == "uploaded",
                FootageRequestRow.clip_path.is_not(None),
            )
        )
    )
    return open_case_footage(s, uploaded)


def _keep_for_evidence(s: Session, row: CameraRow, keep: set[UUID]) -> None:
    """Keep the camera only as the record of clips ``keep`` (evidence of open cases).

    Only what the clip needs stays (name, position, view), never the owner's
    contact; the camera can no longer be viewed, asked or managed.
    """
    row.status = WITHDRAWN
    row.owner_type = row.owner_name = row.contact_email = row.contact_phone = row.address = None
    row.stream_url = row.manage_token_hash = None
    row.verify_token_hash = row.verify_code_hash = None
    row.online = None
    for req in s.scalars(select(FootageRequestRow).where(FootageRequestRow.id.in_(keep))):
        req.upload_token_hash = hash_secret(new_token())  # the mailed link stops working too


@dataclass(frozen=True)
class ClipPurge:
    """What a purge of old delivered clips did (or, dry, would do)."""

    deleted: int
    kept_for_cases: int


def purge_old_clips(s: Session, media_dir: Path, cutoff: datetime, *, dry_run: bool = False) -> ClipPurge:
    """Delete the delivered clips received before ``cutoff`` that no open case links.

    The request stays as the record that footage was asked for and delivered (who asked, why,
    when, the clip's size and SHA-256), with status ``purged`` and no file. A clip an open case
    links is kept until the case closes (then the same rule applies).
    """
    rows = list(
        s.scalars(
            select(FootageRequestRow).where(
                FootageRequestRow.status == "uploaded",
                FootageRequestRow.clip_path.is_not(None),
                FootageRequestRow.responded_at < cutoff,
            )
        )
    )
    keep = open_case_footage(s, [r.id for r in rows])
    gone = [r for r in rows if r.id not in keep]
    if not dry_run:
        for r in gone:
            if r.clip_path:
                (media_dir / r.clip_path).unlink(missing_ok=True)
            r.status, r.clip_path = "purged", None
        s.flush()
    return ClipPurge(deleted=len(gone), kept_for_cases=len(keep))


def purge_withdrawn(s: Session, media_dir: Path) -> int:
    """Delete withdrawn cameras whose kept clips no open case links any more; returns the clips deleted."""
    n = 0
    for row in s.scalars(select(CameraRow).where(CameraRow.status == WITHDRAWN)).all():
        ids = list(s.scalars(select(FootageRequestRow.id).where(FootageRequestRow.camera_id == row.id)))
        keep = open_case_footage(s, ids)
        if keep:
            n += _delete_footage(s, row, media_dir, keep)
            continue
        n += _delete_footage(s, row, media_dir)
        s.delete(row)
    s.flush()
    return n


def list_cameras(
    s: Session,
    *,
    kinds: list[str] | None = None,
    statuses: list[str] | None = None,
    level: str | None = None,
    limit: int = 1000,
) -> list[CameraRow]:
    q: Any = select(CameraRow)
    if kinds:
        q = q.where(CameraRow.kind.in_(kinds))
    # a withdrawn camera is kept only as a clip's evidence, not a camera: listed only when asked for
    q = q.where(CameraRow.status.in_(statuses)) if statuses else q.where(CameraRow.status != WITHDRAWN)
    if level:
        q = q.where(CameraRow.level == level)
    return list(s.scalars(q.order_by(CameraRow.created_at.desc(), CameraRow.id).limit(limit)))
