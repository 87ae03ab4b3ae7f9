"""Body-cam commands in the store: issue, deliver, retry, time out, acknowledge.

A command is a row in ``bodycam_commands`` with status

``sent``
    published (attempt 1, or a later attempt after a silent deadline);
``acked`` / ``failed``
    the device acknowledged it (``ok`` true / false) before it timed out;
``timeout``
    no acknowledgement after ``max_attempts`` attempts (attempt *n* waits
    ``ack_timeout_s * 2**(n-1)``), or the command expired first;
``cancelled``
    the body cam's key was revoked (or the device removed) while the command
    was ``sent``: it is not sent again.

Every transition is a conditional update (``WHERE status = 'sent'`` …), so
with several ``bodycam`` workers each one happens once. Acknowledgements for
unknown commands, of another device, without the command's exact nonce
(a wrong, empty or missing one), repeated, or after the timeout or a
cancellation change nothing (:class:`AckOutcome` says which).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rtcc.bodycam.protocol import sign
from rtcc.errors import NotFound, ValidationFailed
from rtcc.events import DeviceCommand, DeviceCommandAck
from rtcc.roles import DeviceType
from rtcc.store.tables import Device
from rtcc.store.tables_bodycams import BodycamCommand

STATUSES = ("sent", "acked", "failed", "timeout", "cancelled")

AckResult = Literal["acked", "failed", "duplicate", "late", "unknown", "mismatch"]


@dataclass(frozen=True)
class Issued:
    """A command just written, with what its signature needs.

    ``warning`` says why the unit may not get it soon (offline, never heard
    from; :func:`unit_warning`), for the person who issued it.
    """

    row: BodycamCommand
    key_hash: str
    warning: str | None = None


def unit_warning(dev: Device) -> str | None:
    """Why a command to ``dev`` may not be obeyed soon, or None when the unit is online.

    Returns
    -------
    str or None
        ``"unit never heard from"`` (no heartbeat since it was registered),
        ``"unit offline since <last seen, ISO 8601 UTC>"`` (the health
        processor marked it offline), or None.
    """
    if dev.last_seen_at is None:
        return "unit never heard from"
    if dev.status == "offline":
        return f"unit offline since {dev.last_seen_at.astimezone(UTC).isoformat()}"
    return None


@dataclass(frozen=True)
class AckOutcome:
    """What an acknowledgement did: ``acked``/``failed`` change the command; the rest are ignored."""

    result: AckResult
    command: BodycamCommand | None

    @property
    def applied(self) -> bool:
        return self.result in ("acked", "failed")


def _bodycam(session: Session, device_id: str) -> Device:
    dev = session.get(Device, device_id)
    if dev is None or dev.type != DeviceType.bodycam.value:
        raise NotFound(f"no body cam {device_id!r} (see GET /api/v1/bodycams)")
    if dev.revoked_at is not None or dev.key_hash is None:
        raise ValidationFailed(f"body cam {device_id!r} has no valid key (revoked): it cannot be commanded")
    return dev


def issue_command(
    session: Session,
    *,
    device_id: str,
    command: str,
    reason: str,
    issued_by: str,
    now: datetime,
    ack_timeout_s: float,
    ttl_s: float,
    automatic: bool = False,
    trigger_ref: str | None = None,
) -> Issued | None:
    """Write a new command (attempt 1); None when ``trigger_ref`` already commanded this device.

    Raises
    ------
    NotFound
        No such body cam.
    ValidationFailed
        The body cam's key is revoked, or the command is unknown.
    """
    if command not in ("start_recording", "stop_recording"):
        raise ValidationFailed(f"unknown command {command!r}; use start_recording or stop_recording")
    dev = _bodycam(session, device_id)
    if trigger_ref is not None:
        dup = session.scalars(
            select(BodycamCommand.id).where(
                BodycamCommand.device_id == device_id, BodycamCommand.trigger_ref == trigger_ref
            )
        ).first()
        if dup is not None:
            return None
    row = BodycamCommand(
        id=uuid4(),
        device_id=device_id,
        command=command,
        reason=reason,
        issued_by=issued_by,
        automatic=automatic,
        trigger_ref=trigger_ref,
        nonce=secrets.token_hex(16),
        status="sent",
        attempts=1,
        created_at=now,
        sent_at=now,
        deadline_at=now + timedelta(seconds=ack_timeout_s),
        expires_at=now + timedelta(seconds=ttl_s),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # another worker commanded this unit for this trigger first
    assert dev.key_hash is not None
    return Issued(row, dev.key_hash, unit_warning(dev))


def command_event(row: BodycamCommand, key_hash: str, *, source: str = "bodycam") -> DeviceCommand:
    """The signed event for the current attempt of ``row``.

    ``expires_at`` is in UTC, so its JSON form (and the signed string,
    :func:`rtcc.bodycam.protocol.wire_time`) ends in ``Z``.
    """
    ev = DeviceCommand(
        source=source,
        device=row.device_id,
        command=row.command,
        reason=row.reason[:500],
        issued_by=row.issued_by,
        automatic=row.automatic,
        command_id=row.id,
        nonce=row.nonce,
        expires_at=row.expires_at.astimezone(UTC),
        attempt=row.attempts,
    )
    return ev.model_copy(update={"signature": sign(key_hash, ev)})


@dataclass(frozen=True)
class Due:
    """What a retry check did: re-sent commands (with their key hash), timed-out and cancelled ones."""

    retried: list[Issued]
    timed_out: list[BodycamCommand]
    cancelled: list[BodycamCommand] = field(default_factory=list)


def cancel_revoked(session: Session, *, limit: int = 500) -> list[BodycamCommand]:
    """Cancel every ``sent`` command of a body cam whose key is revoked (or that is gone).

    Whatever its deadline: a revoked unit cannot fetch or check its commands
    any more, so retrying them only ends in a timeout. Each row is cancelled
    once (a conditional update), ``ack_detail`` says why.
    """
    rows = list(
        session.scalars(
            select(BodycamCommand)
            .outerjoin(Device, Device.id == BodycamCommand.device_id)
            .where(
                BodycamCommand.status == "sent",
                or_(Device.id.is_(None), Device.revoked_at.is_not(None), Device.key_hash.is_(None)),
            )
            .order_by(BodycamCommand.created_at)
            .limit(limit)
        )
    )
    cancelled: list[BodycamCommand] = []
    for row in rows:
        done = session.execute(
            update(BodycamCommand)
            .where(BodycamCommand.id == row.id, BodycamCommand.status == "sent")
            .values(
                status="cancelled",
                ack_detail=f"cancelled: device key revoked (after {row.attempts} attempt(s))",
            )
            .returning(BodycamCommand.id)
        ).first()
        if done is not None:
            session.refresh(row)
            cancelled.append(row)
    return cancelled


def process_due(
    session: Session, *, now: datetime, max_attempts: int, ack_timeout_s: float, limit: int = 500
) -> Due:
    """Cancel the commands of revoked body cams, then retry or time out every ``sent`` one past its deadline.

    Each transition happens once (conditional updates), whatever the number of workers.
    """
    cancelled = cancel_revoked(session, limit=limit)
    rows = list(
        session.scalars(
            select(BodycamCommand)
            .where(BodycamCommand.status == "sent", BodycamCommand.deadline_at <= now)
            .order_by(BodycamCommand.deadline_at)
            .limit(limit)
        )
    )
    retried: list[Issued] = []
    timed_out: list[BodycamCommand] = []
    for row in rows:
        if row.attempts < max_attempts and row.expires_at > now:
            done = session.execute(
                update(BodycamCommand)
                .where(
                    BodycamCommand.id == row.id,
                    BodycamCommand.status == "sent",
                    BodycamCommand.attempts == row.attempts,
                )
                .values(
                    attempts=row.attempts + 1,
                    sent_at=now,
                    # attempt n waits ack_timeout_s * 2**(n-1): a busy center is not answered by a retry storm
                    deadline_at=now + timedelta(seconds=ack_timeout_s * 2**row.attempts),
                )
                .returning(BodycamCommand.id)
            ).first()
            if done is not None:
                session.refresh(row)
                dev = session.get(Device, row.device_id)
                if dev is not None and dev.key_hash is not None:
                    retried.append(Issued(row, dev.key_hash))
        else:
            done = session.execute(
                update(BodycamCommand)
                .where(BodycamCommand.id == row.id, BodycamCommand.status == "sent")
                .values(status="timeout", ack_detail=f"no acknowledgement after {row.attempts} attempt(s)")
                .returning(BodycamCommand.id)
            ).first()
            if done is not None:
                session.refresh(row)
                timed_out.append(row)
    return Due(retried, timed_out, cancelled)


def waiting_for_device(
    session: Session,
    device_id: str,
    now: datetime,
    received: set[tuple[UUID, int]] | frozenset[tuple[UUID, int]] = frozenset(),
) -> list[DeviceCommand]:
    """Unacknowledged, unexpired commands for ``device_id`` (HTTPS path; a read only).

    Parameters
    ----------
    received : set of (command id, attempt)
        Attempts the device says it already has (sent with its poll): left out,
        so a long-poll does not return the same attempt again and again. A
        retry (a higher attempt) is returned again.
    """
    rows = [
        row
        for row in session.scalars(
            select(BodycamCommand)
            .where(
                BodycamCommand.device_id == device_id,
                BodycamCommand.status == "sent",
                BodycamCommand.expires_at > now,
            )
            .order_by(BodycamCommand.created_at)
        )
        if (row.id, row.attempts) not in received
    ]
    if not rows:
        return []
    dev = session.get(Device, device_id)
    if dev is None or dev.key_hash is None:
        return []
    return [command_event(row, dev.key_hash) for row in rows]


def apply_ack(session: Session, ack: DeviceCommandAck, now: datetime) -> AckOutcome:
    """Apply a device's acknowledgement; ignored (and said why) unless it ends a ``sent`` command."""
    row = session.get(BodycamCommand, ack.command_id)
    if row is None:
        return AckOutcome("unknown", None)
    # only the command's exact nonce: an empty or missing one proves nothing (it is the device's
    # echo of the signed command), so it is a mismatch like a wrong one
    if row.device_id != ack.device or not ack.nonce or ack.nonce != row.nonce:
        return AckOutcome("mismatch", row)
    if row.status in ("acked", "failed"):
        return AckOutcome("duplicate", row)
    if row.status in ("timeout", "cancelled"):
        return AckOutcome("late", row)
    status = "acked" if ack.ok else "failed"
    done = session.execute(
        update(BodycamCommand)
        .where(BodycamCommand.id == row.id, BodycamCommand.status == "sent")
        .values(
            status=status,
            acked_at=now,
            ack_detail=ack.detail[:1000] or None,
            latency_s=max(0.0, (now - row.created_at).total_seconds()),
        )
        .returning(BodycamCommand.id)
    ).first()
    if done is None:
        return AckOutcome("duplicate", row)
    session.refresh(row)
    if ack.ok:
        recording = ack.recording if ack.recording is not None else row.command == "start_recording"
        dev = session.get(Device, row.device_id)
        if dev is not None:
            dev.attributes = {**(dev.attributes or {}), "recording": recording}
    return AckOutcome(status, row)  # type: ignore[arg-type]


def list_commands(
    session: Session,
    *,
    device_id: str | None = None,
    status: list[str] | None = None,
    automatic: bool | None = None,
    limit: int = 100,
) -> list[BodycamCommand]:
    """Commands, newest first."""
    q = select(BodycamCommand).order_by(BodycamCommand.created_at.desc()).limit(limit)
    if device_id is not None:
        q = q.where(BodycamCommand.device_id == device_id)
    if status:
        q = q.where(BodycamCommand.status.in_(status))
    if automatic is not None:
        q = q.where(BodycamCommand.automatic == automatic)
    return list(session.scalars(q))


def command_dict(row: BodycamCommand) -> dict[str, Any]:
    """A command as the API shows it."""
    return {
        "id": row.id,
        "device_id": row.device_id,
        "command": row.command,
        "reason": row.reason,
        "issued_by": row.issued_by,
        "automatic": row.automatic,
        "trigger_ref": row.trigger_ref,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "deadline_at": row.deadline_at,
        "expires_at": row.expires_at,
        "acked_at": row.acked_at,
        "ack_detail": row.ack_detail,
        "latency_s": row.latency_s,
    }


def get_command(session: Session, command_id: UUID) -> BodycamCommand:
    row = session.get(BodycamCommand, command_id)
    if row is None:
        raise NotFound(f"no body-cam command {command_id}")
    return row
