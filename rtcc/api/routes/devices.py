"""The device registry: list devices and their health; admins add, rotate and revoke keys.

A fixed device's registered position (acoustic sensors: surveyed at install) is the
reference the center checks it against; only an admin sets it (``POST /devices``,
``PUT /devices/{id}/position``), heartbeats never move it (:mod:`rtcc.ingest.health`).
Its health shows the last GPS position it reported (``attributes.reported_lat`` /
``reported_lon``), ``position_error_m`` (distance of that report from the registered
position) and ``position_mismatch`` (its pulses report a position further than
``acoustic.position_tolerance_m`` away: they are located at the registered position).

The position of a device that moves with an officer (body cams, in-car and plate cameras:
:func:`rtcc.events.locates_officer`) is personal data: ``GET /devices`` and ``GET /devices/{id}``
audit the read (``read_unit_locations``, with the units whose locations were shown).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from rtcc.api.deps import Admin, CtxDep, Operations
from rtcc.api.text import Reason500
from rtcc.errors import NotFound, ValidationFailed
from rtcc.events import DevicePosition, Position, locates_officer
from rtcc.roles import DeviceType
from rtcc.store.tables import Device

router = APIRouter(prefix="/devices", tags=["devices"])

DevicePath = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$")


class DeviceOut(BaseModel):
    id: str
    type: str
    name: str
    status: str
    lat: float | None
    lon: float | None
    heading_deg: float | None
    last_seen_at: datetime | None
    revoked: bool
    rejected_count: int
    position_mismatch: bool = Field(
        description=(
            "The device reports a position further than acoustic.position_tolerance_m from its "
            "registered one (its pulses are located at the registered position)."
        )
    )
    position_error_m: float | None = Field(
        description="Distance of the last reported GPS position from the registered one, metres."
    )
    attributes: dict[str, Any]


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    alt_m: float | None = Field(None, ge=-500, le=10_000, allow_inf_nan=False)
    reason: Reason500 = Field(description="Why the position changes (audited).")


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$")
    type: DeviceType
    name: str = Field("", max_length=200)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    alt_m: float | None = Field(None, ge=-500, le=10_000, allow_inf_nan=False)
    attributes: dict[str, Any] = Field(default_factory=dict)


class KeyOut(BaseModel):
    device: DeviceOut
    key: str = Field(description="The device key: shown once, stored only as a hash.")


def _out(d: Device) -> DeviceOut:
    attrs = d.attributes or {}
    err = attrs.get("position_error_m")
    return DeviceOut(
        id=d.id,
        type=d.type,
        name=d.name,
        status=d.status,
        lat=d.lat,
        lon=d.lon,
        heading_deg=d.heading_deg,
        last_seen_at=d.last_seen_at,
        revoked=d.revoked_at is not None,
        rejected_count=d.rejected_count,
        position_mismatch=attrs.get("position_mismatch") is True,
        position_error_m=float(err) if isinstance(err, int | float) and not isinstance(err, bool) else None,
        attributes=attrs,
    )


@router.get("", summary="Every device with its position and health")
async def list_devices(ctx: CtxDep, who: Operations) -> dict[str, list[DeviceOut]]:
    rows = await ctx.store.read(lambda s: list(s.scalars(select(Device).order_by(Device.id))))
    units = [r.id for r in rows if locates_officer(r.type)]
    if units:
        # the position of a body cam or an in-car device is an officer's location
        await ctx.audit(who, "read_unit_locations", "devices", details={"count": len(rows), "units": units})
    return {"items": [_out(r) for r in rows]}


@router.get("/{device_id}", summary="One device (audited when it moves with an officer)")
async def get_device(ctx: CtxDep, who: Operations, device_id: str = DevicePath) -> DeviceOut:
    row = await ctx.store.read(lambda s: s.get(Device, device_id))
    if row is None:
        raise NotFound(f"no device {device_id!r}")
    if locates_officer(row.type):
        # as the list: a body cam's or an in-car device's position is an officer's location
        await ctx.audit(
            who,
            "read_unit_locations",
            "devices",
            record_id=device_id,
            details={"count": 1, "units": [row.id]},
        )
    return _out(row)


@router.post("", status_code=201, summary="Register a device and issue its key")
async def add_device(body: DeviceIn, ctx: CtxDep, who: Admin) -> KeyOut:
    from rtcc.oversight.device_keys import register_device

    dev, key = await ctx.store.write(
        lambda s: register_device(
            s, body.id, body.type, body.name, body.lat, body.lon, body.alt_m, body.attributes
        )
    )
    await ctx.audit(who, "add_device", "device", record_id=body.id, details={"type": body.type})
    return KeyOut(device=_out(dev), key=key)


@router.put("/{device_id}/position", summary="Set the registered (surveyed) position of a device")
async def set_position(body: PositionIn, ctx: CtxDep, who: Admin, device_id: str = DevicePath) -> DeviceOut:
    """The new reference position; clears the position-mismatch flag (the next pulses re-check it)."""

    def _do(s: Any) -> tuple[Device, dict[str, Any]]:
        dev: Device | None = s.get(Device, device_id, with_for_update=True)
        if dev is None:
            raise NotFound(f"no device {device_id!r}")
        if locates_officer(dev.type):
            # a body cam, in-car or plate camera may move with a person: its position is its last
            # heartbeat's (an officer's location), never one typed here (it would steer activations)
            raise ValidationFailed(
                f"{device_id!r} is a {dev.type}, which may move: its position comes from its heartbeats; "
                "only fixed sensors have a registered position"
            )
        before = {"lat": dev.lat, "lon": dev.lon, "alt_m": dev.alt_m}
        dev.lat, dev.lon, dev.alt_m = body.lat, body.lon, body.alt_m
        attrs = {k: v for k, v in (dev.attributes or {}).items() if k != "position_error_m"}
        if attrs.get("position_mismatch") is True:
            attrs["position_mismatch"] = False
        dev.attributes = attrs
        s.flush()
        return dev, before

    dev, before = await ctx.store.write(_do)
    ev = DevicePosition(
        source="api",
        device=device_id,
        device_type=DeviceType(dev.type),
        pos=Position(lat=body.lat, lon=body.lon, alt_m=body.alt_m),
        mismatch=False,
        reason=f"registered position set by {who.username}",
    )
    await ctx.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
    await ctx.audit(
        who,
        "set_device_position",
        "device",
        record_id=device_id,
        details={
            "reason": body.reason,
            "before": before,
            "after": {"lat": body.lat, "lon": body.lon, "alt_m": body.alt_m},
        },
    )
    return _out(dev)


@router.post("/{device_id}/rotate-key", summary="Issue a new key (the old one stops working)")
async def rotate_key(ctx: CtxDep, who: Admin, device_id: str = DevicePath) -> KeyOut:
    from rtcc.oversight.device_keys import issue_key

    def _do(s: Any) -> tuple[Device, str]:
        key = issue_key(s, device_id)
        dev = s.get(Device, device_id)
        assert dev is not None
        return dev, key

    dev, key = await ctx.store.write(_do)
    ctx.ingest.forget_keys(device_id)
    await ctx.audit(who, "rotate_device_key", "device", record_id=device_id)
    return KeyOut(device=_out(dev), key=key)


@router.post("/{device_id}/revoke", summary="Revoke the device's key")
async def revoke(ctx: CtxDep, who: Admin, device_id: str = DevicePath) -> DeviceOut:
    from rtcc.oversight.device_keys import revoke_key

    def _do(s: Any) -> Device:
        revoke_key(s, device_id)
        dev: Device | None = s.get(Device, device_id)
        assert dev is not None
        return dev

    dev = await ctx.store.write(_do)
    ctx.ingest.forget_keys(device_id)
    await ctx.audit(who, "revoke_device_key", "device", record_id=device_id)
    return _out(dev)
