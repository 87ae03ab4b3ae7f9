"""Device traffic in: authenticate the device, validate its events, publish them.

Both ingest paths end here: the HTTPS endpoint (``POST /api/v1/ingest/events``)
and the MQTT bridge (:mod:`rtcc.ingest.mqtt`). An event is accepted only when

* the device key is known and not revoked (else the request is refused and
  counted, and the claimed device's ``rejected_count`` goes up),
* it parses as a typed event (:func:`rtcc.events.parse_event`),
* its type is in the device type's scope (:data:`rtcc.events.DEVICE_SCOPES`),
* it names the authenticated device as its ``device`` and ``source``,
* its time is plausible (not more than ``max_future_s`` ahead of the center's
  clock nor older than ``max_age_s``, the setting ``server.max_event_age_s``) and
  its position is not (0, 0),
* its id has not been accepted recently (duplicates are reported, not re-published).

Accepted events are published on ``rtcc.events.<type>`` with the event id as
the message id (JetStream drops duplicate publishes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from rtcc.bus import Bus
from rtcc.errors import AuthError, Conflict, ValidationFailed
from rtcc.events import DEVICE_SCOPES, Event, parse_event
from rtcc.metrics import Metrics
from rtcc.oversight.device_keys import DeviceIdentity, DeviceKeyCache, record_rejection
from rtcc.store.db import Store

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What happened to one request's events."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


class _RecentIds:
    """A bounded set of recently accepted event ids (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class IngestService:
    """Validates device traffic and publishes accepted events on the bus."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        metrics: Metrics,
        *,
        max_future_s: float = 300.0,
        max_age_s: float = 7 * 86400.0,
        key_ttl_s: float = 60.0,
        recent_ids: int = 200_000,
    ) -> None:
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.max_future = timedelta(seconds=max_future_s)
        self.max_age = timedelta(seconds=max_age_s)
        self.keys = DeviceKeyCache(ttl_s=key_ttl_s)
        self._recent = _RecentIds(recent_ids)

    # -- keys -----------------------------------------------------------------

    def forget_keys(self, device_id: str | None = None) -> None:
        """Drop cached keys (all, or one device's) after a revoke or rotation."""
        if device_id is None:
            self.keys.clear()
        else:
            self.keys.invalidate_device(device_id)

    async def authenticate(self, key: str | None, claimed_device: str | None, channel: str) -> DeviceIdentity:
        """The device ``key`` belongs to; refused (and counted) when unknown or revoked.

        Raises
        ------
        AuthError
            No key, an unknown key, a revoked key, or a key of another device.
        """
        if not key:
            self.metrics.inc("ingest_refused", reason="no_key", channel=channel)
            raise AuthError(
                "device key missing: send 'Authorization: Device <key>' (keys are issued "
                "with `rtcc devices add` or POST /api/v1/devices)"
            )
        try:
            ident = self.keys.check(key, event_type=None, device_id=claimed_device)
            if ident is None:
                ident = await self.store.read(
                    lambda s: self.keys.authenticate(s, key, event_type=None, device_id=claimed_device)
                )
        except AuthError as exc:
            self.metrics.inc("ingest_refused", reason="bad_key", channel=channel)
            if claimed_device:
                await self.store.write(lambda s: record_rejection(s, claimed_device))
            raise AuthError(f"device key refused: {exc.message}") from None
        return ident

    # -- events ---------------------------------------------------------------

    def _check(self, ident: DeviceIdentity, raw: Any, now: datetime) -> Event | str:
        """The validated event, or the reason it is refused."""
        if not isinstance(raw, dict):
            return "not a JSON object"
        try:
            event = parse_event(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err.get("loc", ()))
            return f"invalid event: {loc}: {err.get('msg')}" if loc else f"invalid event: {err.get('msg')}"
        except (ValueError, OverflowError) as exc:
            # a second guard: a value no validator turned into a ValidationError (e.g. a date
            # beyond datetime's range) refuses this event only, never the whole batch
            return f"invalid event: {exc}"
        if event.type not in DEVICE_SCOPES[ident.type]:
            return f"a {ident.type.value} may not send {event.type!r} events"
        if event.device_id != ident.id or event.source != ident.id:
            return (
                f"event names device {event.device_id!r} / source {event.source!r}, "
                f"but the key belongs to {ident.id!r}"
            )
        claimed_type = getattr(event, "device_type", None)
        if claimed_type is not None and claimed_type != ident.type:
            return (
                f"event says device_type {str(claimed_type)!r}, but {ident.id!r} is registered as "
                f"{ident.type.value!r}"
            )
        try:
            future = event.occurred_at > now + self.max_future
            stale = event.occurred_at < now - self.max_age
        except OverflowError:  # now ± the window leaves datetime's range (a huge setting)
            return f"occurred_at {event.occurred_at.isoformat()} is out of the supported date range"
        if future:
            return f"occurred_at {event.occurred_at.isoformat()} is in the future (check the device clock)"
        if stale:
            return (
                f"occurred_at {event.occurred_at.isoformat()} is older than the ingest window "
                f"({self.max_age.total_seconds():g} s, setting server.max_event_age_s)"
            )
        pos = event.position
        if pos is not None and pos.lat == 0.0 and pos.lon == 0.0:
            return "position (0, 0) is not a real position (no GPS fix?)"
        return event

    async def ingest(self, ident: DeviceIdentity, raw_events: list[Any], channel: str) -> IngestResult:
        """Validate and publish a device's events.

        Valid events are published even when others in the same batch are
        refused; the result lists each refusal with its index and reason.

        Raises
        ------
        ValidationFailed
            When no event in the batch is acceptable (nothing is published).
        Conflict
            When every event in the batch was already accepted.
        """
        now = datetime.now(UTC)
        result = IngestResult()
        accepted: list[Event] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_events):
            checked = self._check(ident, raw, now)
            if isinstance(checked, str):
                result.rejected.append({"index": i, "reason": checked})
                continue
            eid = str(checked.event_id)
            if eid in self._recent or eid in seen:
                result.duplicates += 1
                continue
            seen.add(eid)
            accepted.append(checked)
        # publish concurrently (JetStream acks are awaited in parallel); all must succeed
        # before the device hears 202, so a failure leaves the device to retry the batch
        await asyncio.gather(
            *(self.bus.publish(e.subject, e.to_json(), msg_id=str(e.event_id)) for e in accepted)
        )
        for event in accepted:
            self._recent.add(str(event.event_id))
            result.event_ids.append(str(event.event_id))
        result.accepted = len(accepted)
        self.metrics.inc("ingest_accepted", result.accepted, channel=channel)
        if result.duplicates:
            self.metrics.inc("ingest_duplicates", result.duplicates, channel=channel)
        if result.rejected:
            self.metrics.inc("ingest_rejected_events", len(result.rejected), channel=channel)
            log.info(
                "refused %d event(s) from %s via %s: %s",
                len(result.rejected),
                ident.id,
                channel,
                result.rejected[0]["reason"],
            )
        if not accepted and result.rejected:
            raise ValidationFailed(
                f"no acceptable event in the batch ({len(result.rejected)} refused); "
                f"first: {result.rejected[0]['reason']}",
                details={"rejected": result.rejected, "duplicates": result.duplicates},
            )
        if not accepted and result.duplicates:
            raise Conflict(
                f"all {result.duplicates} event(s) were already accepted (duplicate event ids)",
                details={"duplicates": result.duplicates},
            )
        return result
