"""Body cams: units, remote activation, commands, the automatic policy, the HTTPS command poll.

* ``GET /bodycams`` — every body cam with last position, battery, recording
  state and last-seen time. Officer positions are personal: every read is audited.
* ``POST /bodycams/{device_id}/commands`` — start or stop recording, with a
  mandatory reason (``bodycam.command_roles``; audited with the reason).
* ``GET /bodycams/commands`` — commands and their status (sent, acked, failed, timeout, cancelled:
  the device was revoked). A command to a unit offline or never heard from answers with a
  ``warning`` saying so.
* ``GET /bodycams/policy`` / ``PUT /bodycams/policy`` — the automatic
  activation policy (changes audited, admin only).
* ``POST /bodycams/commands/poll`` — a body cam's HTTPS long-poll for its
  commands (device key, like ``/ingest/events``); see docs/bodycam-protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from rtcc.api.deps import Admin, Allow, CtxDep, Operations, Principal, Public
from rtcc.api.text import Reason500
from rtcc.errors import Forbidden
from rtcc.roles import DeviceType, Role

router = APIRouter(prefix="/bodycams", tags=["bodycams"])

Overseers = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.auditor))]
Commanders = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor))]

Status = Literal["sent", "acked", "failed", "timeout", "cancelled"]


class UnitOut(BaseModel):
    device_id: str
    name: str
    unit: str | None
    status: str = Field(description="Device health: online, offline or unknown.")
    lat: float | None
    lon: float | None
    heading_deg: float | None
    battery_pct: float | None
    recording: bool
    last_seen_at: datetime | None


class UnitList(BaseModel):
    items: list[UnitOut]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: Literal["start_recording", "stop_recording"]
    reason: Reason500 = Field(description="Why (kept in the audit log).")


class CommandOut(BaseModel):
    id: UUID
    device_id: str
    command: str
    reason: str
    issued_by: str
    automatic: bool
    trigger_ref: str | None
    status: Status
    attempts: int
    created_at: datetime
    sent_at: datetime
    deadline_at: datetime = Field(description="When the current attempt times out.")
    warning: str | None = Field(
        None, description="Why the unit may not get it soon: 'unit offline since …', 'unit never heard from'."
    )
    expires_at: datetime = Field(description="After this the device ignores the command.")
    acked_at: datetime | None
    ack_detail: str | None
    latency_s: float | None = Field(description="Seconds from issue to acknowledgement.")


class CommandList(BaseModel):
    items: list[CommandOut]


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    triggers: list[Literal["gunshot_incident", "hotlist_hit"]] = Field(max_length=2)
    radius_m: float = Field(300.0, gt=0, le=5000, description="Radius around the trigger, metres.")


class PolicyOut(BaseModel):
    enabled: bool
    triggers: list[str]
    radius_m: float
    updated_by: str | None
    updated_at: datetime | None


class Received(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command_id: UUID
    attempt: int = Field(ge=1, le=100)


class PollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$")
    wait_s: float = Field(20.0, ge=0, le=120, description="Longest wait for a command, seconds.")
    received: list[Received] = Field(
        default_factory=list,
        max_length=200,
        description="Command attempts the device already has (not returned again).",
    )


class PollOut(BaseModel):
    commands: list[dict[str, Any]] = Field(description="Signed DeviceCommand events (see rtcc.events).")


@router.get("", summary="Body cams: last position, battery, recording (audited: officer positions)")
async def list_bodycams(ctx: CtxDep, who: Operations) -> UnitList:
    from rtcc.bodycam.registry import list_units

    rows = await ctx.store.read(list_units)
    await ctx.audit(who, "read_bodycam_units", "bodycam", details={"count": len(rows)})
    return UnitList(items=[UnitOut.model_validate(r) for r in rows])


@router.get("/commands", summary="Body-cam commands and their status, newest first")
async def list_bodycam_commands(
    ctx: CtxDep,
    who: Overseers,
    device_id: str | None = Query(None, max_length=128),
    status: list[Status] | None = Query(None, description="Only these states."),
    automatic: bool | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> CommandList:
    from rtcc.bodycam.commands import command_dict, list_commands

    rows = await ctx.store.read(
        lambda s: list_commands(
            s, device_id=device_id, status=list(status or []), automatic=automatic, limit=limit
        )
    )
    return CommandList(items=[CommandOut.model_validate(command_dict(r)) for r in rows])


@router.get("/policy", summary="The automatic activation policy")
async def get_bodycam_policy(ctx: CtxDep, who: Overseers) -> PolicyOut:
    from rtcc.bodycam.policy import get_policy

    return PolicyOut.model_validate((await ctx.store.read(get_policy)).as_dict())


@router.put("/policy", summary="Change the automatic activation policy (audited)")
async def put_bodycam_policy(body: PolicyIn, ctx: CtxDep, who: Admin) -> PolicyOut:
    from rtcc.bodycam.policy import put_policy

    now = datetime.now(UTC)
    before, after = await ctx.store.write(
        lambda s: put_policy(
            s,
            enabled=body.enabled,
            triggers=list(body.triggers),
            radius_m=body.radius_m,
            by=who.username,
            now=now,
        )
    )
    await ctx.audit(
        who,
        "bodycam_policy_change",
        "bodycam_policy",
        record_id="1",
        details={
            "before": {"enabled": before.enabled, "triggers": before.triggers, "radius_m": before.radius_m},
            "after": {"enabled": after.enabled, "triggers": after.triggers, "radius_m": after.radius_m},
        },
    )
    return PolicyOut.model_validate(after.as_dict())


@router.post(
    "/commands/poll",
    summary="A body cam waits for its commands (HTTPS long-poll, device key)",
    responses={401: {"description": "missing, unknown or revoked device key"}},
)
async def poll_bodycam_commands(
    body: PollIn,
    ctx: CtxDep,
    _: Public,
    authorization: str | None = Header(None),
    x_device_key: str | None = Header(None),
) -> PollOut:
    from rtcc.bodycam.commands import waiting_for_device
    from rtcc.bodycam.service import Mailbox

    key = (
        authorization[7:].strip()
        if authorization and authorization.lower().startswith("device ")
        else x_device_key
    )
    ident = await ctx.ingest.authenticate(key, body.device_id, "http")
    if ident.type is not DeviceType.bodycam:
        raise Forbidden(f"device {ident.id!r} is a {ident.type.value}, not a body cam")
    received = {(r.command_id, r.attempt) for r in body.received}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait_s, ctx.settings.bodycam.poll_max_wait_s)
    mailbox = ctx.services.get("bodycam")
    while True:
        watch = mailbox.watch(ident.id) if isinstance(mailbox, Mailbox) else contextlib.nullcontext(None)
        with watch as wake:
            cmds = await ctx.store.read(
                lambda s: waiting_for_device(s, ident.id, datetime.now(UTC), received)
            )
            left = deadline - loop.time()
            if cmds or left <= 0 or not ctx.ready:
                return PollOut(commands=[c.model_dump(mode="json") for c in cmds])
            if wake is None:  # no bodycam processor in this process: check the store again soon
                await asyncio.sleep(min(1.0, left))
                continue
            # wait for a wake-up; look up once a second whether the center is stopping
            while not wake.is_set() and ctx.ready and loop.time() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(1.0, max(0.0, deadline - loop.time())))


@router.post(
    "/{device_id}/commands",
    status_code=202,
    summary="Start or stop a body cam's recording remotely, with a reason (audited)",
)
async def command_bodycam(device_id: str, body: CommandIn, ctx: CtxDep, who: Commanders) -> CommandOut:
    from rtcc.bodycam.commands import command_dict
    from rtcc.bodycam.service import commander_of

    allowed = ctx.settings.bodycam.command_roles
    if who.role.value not in allowed:
        raise Forbidden(
            f"role {who.role.value!r} may not command body cams here; allowed: {', '.join(allowed)} "
            "(setting bodycam.command_roles)"
        )
    issued = await commander_of(ctx).issue_warned(who, device_id, body.command, body.reason)
    assert issued is not None
    return CommandOut.model_validate({**command_dict(issued.row), "warning": issued.warning})
