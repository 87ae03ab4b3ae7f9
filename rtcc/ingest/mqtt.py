"""The MQTT bridge: device traffic that arrived through the NATS server's MQTT listener.

Devices publish a :class:`~rtcc.events.DeviceEnvelope` (their id, key and
events) to MQTT topic ``rtcc/sensors/<device_id>/<kind>``; the NATS server
maps it onto subject ``rtcc.sensors.<device_id>.<kind>``, which the JetStream
stream keeps. This worker (queue group ``mqtt-ingest``; ``rtcc worker
ingest``) validates each envelope exactly as the HTTPS endpoint does and
publishes the accepted events on ``rtcc.events.<type>``. A refused message is
logged and counted, then acknowledged: it can never succeed. A store outage
raises, so JetStream redelivers the message later (nothing lost).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from rtcc.bus import Bus, Subscription
from rtcc.errors import AuthError, Conflict, Forbidden, ValidationFailed
from rtcc.events import SENSORS_PREFIX, DeviceEnvelope
from rtcc.ingest.service import IngestService
from rtcc.metrics import Metrics

log = logging.getLogger(__name__)


class MqttBridge:
    """Validates envelopes from ``rtcc.sensors.>`` and republishes their events."""

    group = "mqtt-ingest"

    def __init__(self, bus: Bus, ingest: IngestService, metrics: Metrics, members: int = 8) -> None:
        self.bus = bus
        self.ingest = ingest
        self.metrics = metrics
        self.members = members
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        for _ in range(self.members):
            self._subs.append(await self.bus.subscribe(f"{SENSORS_PREFIX}.>", self._handle, group=self.group))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()

    async def _handle(self, subject: str, payload: bytes) -> None:
        parts = subject.split(".")
        topic_device = parts[2] if len(parts) > 2 else None
        try:
            env = DeviceEnvelope.model_validate_json(payload)
        except ValidationError as exc:
            self.metrics.inc("ingest_refused", reason="malformed", channel="mqtt")
            log.warning("mqtt: malformed envelope on %s: %s", subject, exc.errors()[0].get("msg"))
            return
        if topic_device is not None and topic_device != env.device_id:
            self.metrics.inc("ingest_refused", reason="topic_mismatch", channel="mqtt")
            log.warning("mqtt: envelope for %s arrived on %s", env.device_id, subject)
            return
        try:
            ident = await self.ingest.authenticate(env.key, env.device_id, "mqtt")
            await self.ingest.ingest(ident, list(env.events), "mqtt")
        except (AuthError, Forbidden) as exc:
            log.warning("mqtt: refused %s: %s", env.device_id, exc.message)
        except (ValidationFailed, Conflict) as exc:
            log.info("mqtt: %s: %s", env.device_id, exc.message)
