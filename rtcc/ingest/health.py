"""Device health: edge-triggered online/offline from heartbeats.

A heartbeat updates the device's last-seen time and, for a device that moves,
its position; the first one after silence flips the device ``online`` and publishes one
:class:`~rtcc.events.DeviceStatus`. A periodic sweep flips devices not heard
from for ``offline_after_s`` to ``offline``, again once. Both flips are
conditional updates, so with several worker processes each transition is
announced exactly once.

Whose position a heartbeat sets (:data:`FIXED_TYPES`)
----------------------------------------------------
A device type is *fixed* when it is installed at one surveyed place and its
registered position is the reference the center checks it against: today only
acoustic sensors (the localizer's geometry depends on where they really are;
:mod:`rtcc.acoustic.pipeline` checks every pulse against it). A fixed device's
registered position is set only by an operator (``POST /devices``, ``PUT
/devices/{id}/position``); its heartbeat's GPS fix is kept as the last *reported*
position in ``attributes`` (``reported_lat``, ``reported_lon``, ``reported_alt_m``,
``reported_at`` and ``position_error_m``, the horizontal distance from the registered
position, metres), never written over ``lat``/``lon``. Every other type (patrol-car
and city cameras, plate cameras, body cams) may move: its heartbeat's position
becomes the device's position, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rtcc.bus import Bus, Subscription
from rtcc.events import FIXED_DEVICE_TYPES, DeviceHeartbeat, DeviceStatus, parse_event, subject_for
from rtcc.geo import distance_m
from rtcc.metrics import Metrics
from rtcc.roles import DeviceType
from rtcc.store.db import Store
from rtcc.store.tables import Device

log = logging.getLogger(__name__)

FIXED_TYPES = FIXED_DEVICE_TYPES
"""Device types whose registered (surveyed) position a heartbeat never overwrites."""


def apply_heartbeat(session: Session, hb: DeviceHeartbeat) -> bool:
    """Record a heartbeat; True when it brought the device online (an edge).

    A fixed device (:data:`FIXED_TYPES`) keeps its registered position; the
    heartbeat's is stored as reported (see the module docstring).
    """
    values: dict[str, Any] = {"last_seen_at": hb.occurred_at}
    dev = session.get(Device, hb.device, with_for_update=True)
    if dev is None:
        return False
    late = dev.last_seen_at is not None and dev.last_seen_at > hb.occurred_at
    if late:
        values.pop("last_seen_at")  # an old heartbeat delivered late: keep the newer time
    reported: dict[str, Any] = {}
    if hb.pos is not None and dev.type in FIXED_TYPES:
        if not late:
            reported = {
                "reported_lat": hb.pos.lat,
                "reported_lon": hb.pos.lon,
                "reported_alt_m": hb.pos.alt_m,
                "reported_at": hb.occurred_at.isoformat(),
                "position_error_m": (
                    None
                    if dev.lat is None or dev.lon is None
                    else round(distance_m(dev.lat, dev.lon, hb.pos.lat, hb.pos.lon), 1)
                ),
            }
    elif hb.pos is not None:
        values.update(lat=hb.pos.lat, lon=hb.pos.lon, alt_m=hb.pos.alt_m)
    if hb.heading_deg is not None:
        values["heading_deg"] = hb.heading_deg
    state = {
        k: v
        for k, v in {
            "battery_pct": hb.battery_pct,
            "gps_lock": hb.gps_lock,
            "clock_quality": hb.clock_quality,
            "noise_floor_db": hb.noise_floor_db,
            "recording": hb.recording,
        }.items()
        if v is not None
    }
    if state or reported:
        values["attributes"] = {**(dev.attributes or {}), **state, **reported}
    session.execute(update(Device).where(Device.id == hb.device).values(**values))
    flipped = session.execute(
        update(Device)
        .where(Device.id == hb.device, Device.status != "online")
        .values(status="online")
        .returning(Device.id)
    ).first()
    return flipped is not None


def sweep_offline(session: Session, cutoff: datetime) -> list[tuple[str, str]]:
    """Flip devices silent since ``cutoff`` to offline; return (id, type) of each flipped."""
    rows = session.execute(
        update(Device)
        .where(Device.status == "online", Device.last_seen_at < cutoff)
        .values(status="offline")
        .returning(Device.id, Device.type)
    ).all()
    return [(r[0], r[1]) for r in rows]


class DeviceHealth:
    """Consumes heartbeats, publishes online/offline edges."""

    group = "health"

    def __init__(
        self,
        store: Store,
        bus: Bus,
        metrics: Metrics,
        *,
        offline_after_s: float = 60.0,
        sweep_every_s: float = 5.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.offline_after = timedelta(seconds=offline_after_s)
        self.sweep_every_s = sweep_every_s
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(subject_for("device_heartbeat"), self._handle, group=self.group)
        self._task = asyncio.get_running_loop().create_task(self._sweeper(), name="health-sweep")

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.stop()
            self._sub = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _handle(self, subject: str, payload: bytes) -> None:
        try:
            hb = parse_event(payload)
        except ValidationError:
            self.metrics.inc("health_malformed")
            return
        if not isinstance(hb, DeviceHeartbeat):
            return
        came_online = await self.store.write(lambda s: apply_heartbeat(s, hb))
        if came_online:
            await self._announce(hb.device, hb.device_type, "online", "heartbeat received")

    async def sweep(self, now: datetime | None = None) -> int:
        """Run one offline sweep; returns how many devices went offline."""
        cutoff = (now or datetime.now(UTC)) - self.offline_after
        flipped = await self.store.write(lambda s: sweep_offline(s, cutoff))
        for device_id, device_type in flipped:
            await self._announce(
                device_id,
                DeviceType(device_type),
                "offline",
                f"no heartbeat for {self.offline_after.total_seconds():.0f} s",
            )
        return len(flipped)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("health sweep failed")

    async def _announce(self, device_id: str, device_type: DeviceType, status: str, reason: str) -> None:
        log.info("device %s is %s (%s)", device_id, status, reason)
        self.metrics.inc("device_status_changes", status=status)
        ev = DeviceStatus(
            source="health",
            device=device_id,
            device_type=device_type,
            status=status,
            reason=reason,
        )
        await self.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))


async def device_rows(store: Store) -> list[Device]:
    """Every device (for the map and the API)."""
    return await store.read(lambda s: list(s.scalars(select(Device).order_by(Device.id))))
