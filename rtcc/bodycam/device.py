"""A body cam's side of the protocol, and the transports a simulated one speaks.

:class:`Bodycam` is the device logic without I/O: it checks each command
(:class:`~rtcc.bodycam.protocol.ReplayGuard`: right device, valid signature,
not expired, not replayed), starts or stops recording, and makes the
acknowledgement. A repeated command (same nonce) is never executed twice; it
is acknowledged again only when the center re-sent it (a higher ``attempt``:
the first acknowledgement was lost).

Transports: :class:`HttpsLink` (long-poll ``POST /api/v1/bodycams/commands/poll``
and ``POST /api/v1/ingest/events``, works with every center) and
:class:`MqttLink` (subscribe ``rtcc/devices/<id>/commands``, publish on
``rtcc/sensors/<id>/<kind>``; the NATS server's MQTT listener). :func:`run_bodycam`
runs one device on them until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from pydantic import ValidationError

from rtcc.bodycam.protocol import ReplayGuard, Verdict, commands_topic
from rtcc.events import DeviceCommand, DeviceCommandAck, DeviceHeartbeat, Event, Position, utcnow
from rtcc.roles import DeviceType

log = logging.getLogger(__name__)


@dataclass
class Bodycam:
    """One body cam's protocol state.

    Parameters
    ----------
    device_id, key : str
        Its id and device key.
    ack_delay_s : float
        Seconds between obeying a command and acknowledging it.
    never_ack : bool
        Obey but never acknowledge (a device whose uplink is broken).
    clock : callable
        The device clock (UTC).
    """

    device_id: str
    key: str
    ack_delay_s: float = 0.2
    never_ack: bool = False
    clock: Callable[[], datetime] = utcnow
    recording: bool = False
    executed: list[DeviceCommand] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    on_change: Callable[[bool], None] | None = None
    _guard: ReplayGuard = field(init=False, repr=False)
    _acked: dict[str, int] = field(default_factory=dict, repr=False)
    _received: dict[UUID, tuple[int, datetime | None]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._guard = ReplayGuard(self.device_id, self.key)

    def receive(self, cmd: DeviceCommand, expires_at: str | None = None) -> DeviceCommandAck | None:
        """Obey ``cmd`` when it is valid and new; the acknowledgement to send, if any.

        ``expires_at`` is the command's ``expires_at`` string as received in
        its JSON: the signature is checked over it (docs/bodycam-protocol.md),
        not over a re-formatted time.
        """
        if cmd.device == self.device_id and cmd.command_id is not None:
            had = self._received.get(cmd.command_id, (0, None))[0]
            self._received[cmd.command_id] = (max(had, cmd.attempt), cmd.expires_at)
        verdict: Verdict = self._guard.check(cmd, self.clock(), expires_at)
        self.verdicts[verdict] += 1
        if verdict in ("not_mine", "forged", "expired"):
            log.info("%s ignored command %s: %s", self.device_id, cmd.command_id, verdict)
            return None
        if verdict == "execute":
            self.recording = cmd.command == "start_recording"
            self.executed.append(cmd)
            if self.on_change is not None:
                self.on_change(self.recording)
        elif self._acked.get(cmd.nonce, 0) >= cmd.attempt:
            return None  # the same attempt over a second channel: acknowledged already
        if self.never_ack:
            return None
        self._acked[cmd.nonce] = cmd.attempt
        assert cmd.command_id is not None
        return DeviceCommandAck(
            source=self.device_id,
            device=self.device_id,
            command_id=cmd.command_id,
            ok=True,
            detail="repeat" if verdict == "repeat" else "",
            nonce=cmd.nonce,
            recording=self.recording,
        )

    def received(self, limit: int = 200) -> list[dict[str, Any]]:
        """The command attempts this device has (not expired), for its next long-poll."""
        now = self.clock()
        for cid in [c for c, (_, exp) in self._received.items() if exp is None or exp < now]:
            del self._received[cid]
        items = list(self._received.items())[-limit:]
        return [{"command_id": str(cid), "attempt": attempt} for cid, (attempt, _) in items]

    def heartbeat(self, lat: float, lon: float, battery_pct: float | None = None) -> DeviceHeartbeat:
        """A heartbeat with position, battery and recording state."""
        return DeviceHeartbeat(
            source=self.device_id,
            device=self.device_id,
            occurred_at=self.clock(),
            device_type=DeviceType.bodycam,
            pos=Position(lat=lat, lon=lon),
            battery_pct=battery_pct,
            gps_lock=True,
            clock_quality="gps",
            recording=self.recording,
        )


Received = tuple[DeviceCommand, str | None]
"""A command as received, with its ``expires_at`` string as the JSON carried it (signed as is)."""


def _raw_expires(item: Any) -> str | None:
    raw = item.get("expires_at") if isinstance(item, dict) else None
    return raw if isinstance(raw, str) else None


def parse_received(items: list[Any]) -> list[Received]:
    """The valid commands in a list of JSON objects, each with its ``expires_at`` as received."""
    out: list[Received] = []
    for item in items:
        try:
            out.append((DeviceCommand.model_validate(item), _raw_expires(item)))
        except ValidationError as exc:
            log.warning("malformed command dropped: %s", exc.errors()[0].get("msg"))
    return out


def parse_commands(items: list[Any]) -> list[DeviceCommand]:
    """The valid commands in a list of JSON objects (others are logged and dropped)."""
    return [cmd for cmd, _ in parse_received(items)]


class HttpsLink:
    """The HTTPS side: long-poll for commands, post events with the device key."""

    def __init__(self, http: httpx.AsyncClient, center_url: str) -> None:
        self.http = http
        self.base = center_url.rstrip("/") + "/api/v1/"

    @staticmethod
    def _headers(cam: Bodycam) -> dict[str, str]:
        return {"authorization": f"Device {cam.key}", "x-device-id": cam.device_id}

    async def poll(self, cam: Bodycam, wait_s: float) -> list[DeviceCommand]:
        """Commands for ``cam`` (waits up to ``wait_s`` for one).

        Raises
        ------
        httpx.HTTPError
            Network failure or a refusal (e.g. 401 for a revoked key).
        """
        return [cmd for cmd, _ in await self.poll_received(cam, wait_s)]

    async def poll_received(self, cam: Bodycam, wait_s: float) -> list[Received]:
        """Like :meth:`poll`, each command with its ``expires_at`` string as received.

        Raises
        ------
        httpx.HTTPError
            Network failure or a refusal (e.g. 401 for a revoked key).
        """
        r = await self.http.post(
            self.base + "bodycams/commands/poll",
            json={"device_id": cam.device_id, "wait_s": wait_s, "received": cam.received()},
            headers=self._headers(cam),
            timeout=wait_s + 15.0,
        )
        r.raise_for_status()
        return parse_received(r.json().get("commands", []))

    async def send(self, cam: Bodycam, events: list[Event]) -> bool:
        """Post events; True when the center took them (or had them already)."""
        try:
            r = await self.http.post(
                self.base + "ingest/events",
                json={"events": [e.model_dump(mode="json") for e in events]},
                headers=self._headers(cam),
            )
        except httpx.HTTPError as exc:
            log.warning("%s: sending failed: %s", cam.device_id, exc)
            return False
        return r.status_code in (202, 409)


class MqttLink:
    """The MQTT side of one body cam: its command topic in, events out (QoS 1)."""

    def __init__(
        self, addr: str, cam: Bodycam, on_command: Callable[[DeviceCommand, str | None], None]
    ) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        host, _, port = addr.rpartition(":")
        self.cam = cam
        self.subscribed = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"rtcc-bodycam-{cam.device_id}",
            clean_session=True,
        )

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            client.subscribe(commands_topic(cam.device_id), qos=1)

        def on_subscribe(client: Any, userdata: Any, mid: Any, rcs: Any, props: Any = None) -> None:
            loop.call_soon_threadsafe(self.subscribed.set)

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            try:
                cmd = DeviceCommand.model_validate_json(msg.payload)
                raw = _raw_expires(json.loads(msg.payload))
            except (ValidationError, ValueError):
                log.warning("%s: malformed command on MQTT", cam.device_id)
                return
            loop.call_soon_threadsafe(on_command, cmd, raw)

        self._client.on_connect = on_connect
        self._client.on_subscribe = on_subscribe
        self._client.on_message = on_message
        self._client.reconnect_delay_set(1, 30)
        self._client.connect_async(host or "127.0.0.1", int(port or 1883), keepalive=30)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected())

    async def send(self, kind: str, events: list[Event]) -> bool:
        """Publish an envelope on ``rtcc/sensors/<id>/<kind>``; True once the broker took it."""
        if not self.connected:
            return False
        payload = json.dumps(
            {
                "device_id": self.cam.device_id,
                "key": self.cam.key,
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        info = self._client.publish(f"rtcc/sensors/{self.cam.device_id}/{kind}", payload, qos=1)
        for _ in range(100):
            if info.is_published():
                return True
            await asyncio.sleep(0.05)
        return False

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def run_bodycam(
    cam: Bodycam,
    https: HttpsLink,
    *,
    mqtt: str | None = None,
    poll_wait_s: float = 20.0,
    position: Callable[[], tuple[float, float]] | None = None,
    heartbeat_s: float | None = None,
    https_poll: bool = True,
    ready: asyncio.Event | None = None,
) -> None:
    """Run ``cam`` until cancelled: obey commands from HTTPS long-polls and/or MQTT, acknowledge them.

    Acknowledgements go over MQTT when connected, else HTTPS (retried a few
    times). With ``position`` and ``heartbeat_s`` it also sends heartbeats.
    ``https_poll=False`` (with ``mqtt``) listens on MQTT only. ``ready`` is set
    once the device listens (its MQTT subscription confirmed, when it has one).
    """
    tasks: set[asyncio.Task[None]] = set()
    link: MqttLink | None = None

    async def deliver(events: list[Event], kind: str) -> None:
        for attempt in range(5):
            if link is not None and await link.send(kind, events):
                return
            if await https.send(cam, events):
                return
            await asyncio.sleep(0.5 * 2**attempt)
        log.warning("%s: giving up on %d event(s)", cam.device_id, len(events))

    async def ack_later(ack: DeviceCommandAck) -> None:
        await asyncio.sleep(cam.ack_delay_s)
        await deliver([ack], "ack")

    def on_command(cmd: DeviceCommand, expires_at: str | None = None) -> None:
        ack = cam.receive(cmd, expires_at)
        if ack is not None:
            t = asyncio.get_running_loop().create_task(ack_later(ack))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    async def heartbeats() -> None:
        assert position is not None and heartbeat_s is not None
        while True:
            lat, lon = position()
            await deliver([cam.heartbeat(lat, lon)], "heartbeat")
            await asyncio.sleep(heartbeat_s)

    if mqtt:
        link = MqttLink(mqtt, cam, on_command)
    if ready is not None:
        if link is None:
            ready.set()
        else:
            sub = link.subscribed
            t = asyncio.get_running_loop().create_task(_set_when(sub, ready))
            tasks.add(t)
    if position is not None and heartbeat_s:
        t = asyncio.get_running_loop().create_task(heartbeats())
        tasks.add(t)
    backoff = 0.5
    try:
        while not https_poll:
            await asyncio.sleep(3600)
        while True:
            try:
                for cmd, expires_at in await https.poll_received(cam, poll_wait_s):
                    on_command(cmd, expires_at)
                backoff = 0.5
            except httpx.HTTPError as exc:
                log.info("%s: poll failed (%s); retrying in %.1f s", cam.device_id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
    finally:
        for t in list(tasks):
            t.cancel()
        for t in list(tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if link is not None:
            link.close()
