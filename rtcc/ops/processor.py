"""The "operations" processor: the alert queue and incident packets, built from the bus.

* ``alert`` events are stored once each (idempotent by ``alert_id``, queue
  group ``ops-alerts``); a new alert is sent to the configured webhooks. The
  title of a plate alert kind (:data:`~rtcc.events.PLATE_ALERT_KINDS`) names
  the plate: sending it is a disclosure, audited (``webhook_hit_alert`` by
  :data:`WEBHOOK_ACTOR`, with the alert id and the receiving hosts) in the
  transaction that stores the alert, before anything is sent.
* ``gunshot_incident`` and ``hotlist_hit`` events get an incident packet at
  once (queue group ``ops-packets``); later reports of the same incident
  rebuild it.
* ``plate_read`` and body-cam ``device_heartbeat`` events near a live packet
  (within ``packet_radius_m``; reads within ``±packet_window_min``) rebuild
  it after ``packet_debounce_s`` — many triggers, one rebuild.

Every build publishes :class:`~rtcc.events.PacketUpdated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.orm import Session

from rtcc.bus import Subscription
from rtcc.events import (
    ALERT_KIND_ROLES,
    PLATE_ALERT_KINDS,
    Alert,
    DeviceHeartbeat,
    GunshotIncident,
    HotlistHit,
    PacketUpdated,
    PlateRead,
    parse_event,
    subject_for,
)
from rtcc.geo import distance_m
from rtcc.ops.alerts import store_alert
from rtcc.ops.packets import PacketParams, counts, get_packet, live_packets, upsert_packet
from rtcc.ops.webhooks import WebhookSender
from rtcc.roles import DeviceType, Role

log = logging.getLogger("rtcc.ops")

_Key = tuple[str, str]
REFRESH_S = 30.0
"""Seconds between reloads of the live packets (several operations workers share the triggers)."""

WEBHOOK_ACTOR = "system:operations"
"""Who the audit log names for a plate alert sent to the webhooks (no person: the configuration)."""


def webhook_hosts(urls: list[str]) -> list[str]:
    """The hosts (``host[:port]``) of ``urls``, for the audit log: no path, query or credentials."""
    out: list[str] = []
    for url in urls:
        try:
            host = urlsplit(url).netloc.rpartition("@")[2]
        except ValueError:
            host = ""
        out.append(host or "(invalid url)")
    return out


class OperationsProcessor:
    """Stores alerts, builds and rebuilds incident packets, sends webhooks."""

    def __init__(self, center: Any) -> None:
        self.center = center
        s = center.settings.operations
        self.params = PacketParams(
            radius_m=s.packet_radius_m,
            window_min=s.packet_window_min,
            history_days=s.packet_history_days,
            in_car_max_gap_s=center.settings.cameras.in_car_max_gap_s,
        )
        self.debounce_s = float(s.packet_debounce_s)
        self.live_for = timedelta(hours=s.packet_live_hours)
        self.webhooks = WebhookSender(
            s.webhook_urls,
            center.metrics,
            secret=s.webhook_secret,
            max_attempts=s.webhook_max_attempts,
            timeout_s=s.webhook_timeout_s,
            backoff_s=s.webhook_backoff_s,
        )
        self._subs: list[Subscription] = []
        self._live: dict[_Key, tuple[float, float, datetime]] = {}
        self._pending: dict[_Key, asyncio.Task[None]] = {}
        self._recording: dict[str, bool | None] = {}
        self._refreshed = 0.0

    # -- lifecycle -------------------------------------------------------------

    async def _refresh_live(self) -> None:
        """Load the live packets from the store (other workers may have built some)."""
        self._refreshed = time.monotonic()
        since = datetime.now(UTC) - self.live_for
        for kind, ref, lat, lon, at in await self.center.store.read(lambda s: live_packets(s, since)):
            self._live[(kind, ref)] = (lat, lon, at)

    async def start(self) -> None:
        await self._refresh_live()
        bus = self.center.bus
        self._subs = [
            await bus.subscribe(subject_for("alert"), self._on_alert, group="ops-alerts"),
            await bus.subscribe(subject_for("gunshot_incident"), self._on_incident, group="ops-packets"),
            await bus.subscribe(subject_for("hotlist_hit"), self._on_incident, group="ops-packets"),
            await bus.subscribe(subject_for("plate_read"), self._on_trigger, group="ops-triggers"),
            await bus.subscribe(subject_for("device_heartbeat"), self._on_trigger, group="ops-triggers"),
        ]
        self.center.services["operations"] = self

    async def stop(self) -> None:
        self.center.services.pop("operations", None)
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        for task in list(self._pending.values()):
            task.cancel()
        for task in list(self._pending.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending.clear()
        await self.webhooks.close()

    # -- alerts ------------------------------------------------------------------

    async def _on_alert(self, subject: str, payload: bytes) -> None:
        ev = _parse(payload)
        if not isinstance(ev, Alert):
            return
        send = bool(self.webhooks.urls) and ev.kind not in ALERT_KIND_ROLES  # review work stays inside
        disclose = send and ev.kind in PLATE_ALERT_KINDS
        secret = self.center.settings.security.secret_key.encode()
        hosts = webhook_hosts(self.webhooks.urls)

        def _store(s: Session) -> tuple[bool, Any]:
            if not store_alert(s, ev):
                return False, None
            if not disclose:
                return True, None
            from rtcc.oversight.audit import append_audit

            entry = append_audit(
                s,
                secret=secret,
                actor=WEBHOOK_ACTOR,
                role=Role.public.value,
                action="webhook_hit_alert",
                resource="alert",
                record_id=str(ev.alert_id),
                outcome="ok",
                details={"alert": str(ev.alert_id), "kind": ev.kind, "targets": hosts},
            )
            return True, entry

        new, entry = await self.center.store.write(_store)
        if not new:
            return
        self.center.metrics.inc("alerts_queued", kind=ev.kind)
        if entry is not None:
            from rtcc.oversight.audit import audit_event

            mirror = audit_event(entry)
            with contextlib.suppress(Exception):
                await self.center.bus.publish(mirror.subject, mirror.to_json(), msg_id=str(mirror.event_id))
        if send:
            pos = ev.position
            self.webhooks.submit(
                str(ev.alert_id),
                {
                    "id": str(ev.alert_id),
                    "kind": ev.kind,
                    "severity": ev.severity.value,
                    "title": ev.title,
                    "status": "new",
                    "occurred_at": ev.occurred_at.isoformat(),
                    "lat": pos.lat if pos else None,
                    "lon": pos.lon if pos else None,
                    "ref_id": str(ev.ref_event_id) if ev.ref_event_id else None,
                },
            )

    # -- packets -------------------------------------------------------------------

    async def _on_incident(self, subject: str, payload: bytes) -> None:
        ev = _parse(payload)
        if isinstance(ev, GunshotIncident):
            key: _Key = ("gunshot", str(ev.incident_id))
        elif isinstance(ev, HotlistHit):
            key = ("hit", str(ev.hit_id or ev.event_id))
        else:
            return
        pos = ev.pos
        self._live[key] = (pos.lat, pos.lon, ev.occurred_at)
        exists = await self.center.store.read(lambda s: get_packet(s, *key) is not None)
        if exists:
            self.schedule(key)  # a later report of the same incident
        else:
            await self.build(key)  # the first packet at once (and acked only once built)

    async def _on_trigger(self, subject: str, payload: bytes) -> None:
        if time.monotonic() - self._refreshed > REFRESH_S:
            await self._refresh_live()
        if not self._live:
            return
        ev = _parse(payload)
        now = datetime.now(UTC)
        if isinstance(ev, PlateRead):
            window = timedelta(minutes=self.params.window_min)
            near = [
                k
                for k, (lat, lon, at) in self._live.items()
                if abs(ev.occurred_at - at) <= window
                and distance_m(lat, lon, ev.pos.lat, ev.pos.lon) <= self.params.radius_m
            ]
        elif isinstance(ev, DeviceHeartbeat) and ev.device_type is DeviceType.bodycam and ev.pos is not None:
            changed = self._recording.get(ev.device) != ev.recording
            self._recording[ev.device] = ev.recording
            p = ev.pos
            near = [
                k
                for k, (lat, lon, at) in self._live.items()
                if now - at <= self.live_for and distance_m(lat, lon, p.lat, p.lon) <= self.params.radius_m
            ]
            if not changed:
                near = []  # a unit that only moves does not churn packets; a status change does
        else:
            return
        for k in near:
            self.schedule(k)
        self._forget_old(now)

    def _forget_old(self, now: datetime) -> None:
        old = [k for k, (_, _, at) in self._live.items() if now - at > self.live_for]
        for k in old:
            del self._live[k]

    def schedule(self, key: _Key) -> None:
        """Rebuild ``key``'s packet after the debounce (one rebuild for many triggers)."""
        if key in self._pending:
            return
        self._pending[key] = asyncio.create_task(self._later(key), name=f"packet-{key[0]}-{key[1]}")

    async def _later(self, key: _Key) -> None:
        try:
            await asyncio.sleep(self.debounce_s)
            self._pending.pop(key, None)
            await self.build(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rebuilding packet %s/%s failed", *key)
        finally:
            self._pending.pop(key, None)

    async def build(self, key: _Key) -> dict[str, Any]:
        """Build ``key``'s packet now and publish :class:`PacketUpdated`; returns its body."""
        lat, lon, at = self._live[key]
        kind, ref = key
        now = datetime.now(UTC)
        params = self.params
        row = await self.center.store.write(
            lambda s: upsert_packet(s, kind, ref, lat, lon, at, params, now=now)
        )
        body: dict[str, Any] = dict(row.body)
        ev = PacketUpdated(
            source="operations", kind=kind, ref_id=ref, version=row.version, counts=counts(body)
        )
        await self.center.bus.publish(ev.subject, ev.to_json(), msg_id=f"packet:{kind}:{ref}:{row.version}")
        self.center.metrics.inc("packets_built", kind=kind)
        return body


def _parse(payload: bytes) -> Any:
    try:
        return parse_event(payload)
    except ValidationError:
        log.warning("dropped an invalid event on the operations processor")
        return None


def build(center: Any) -> OperationsProcessor:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return OperationsProcessor(center)
