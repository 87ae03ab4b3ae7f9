"""The async side of commands: issue, publish, audit; wake HTTPS long-polls.

:class:`Commander` is used by the API route (remote commands) and by the
processor (automatic activation, retries). It needs only the store, the bus
and the audit function, so it works in any process. :class:`Mailbox` wakes
the HTTPS long-polls of this process when a command for their device is
published (a broadcast subscription on ``rtcc.devices.*.commands``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rtcc.api.deps import Principal
from rtcc.bodycam.commands import Issued, command_event, issue_command
from rtcc.bodycam.protocol import COMMANDS_PREFIX, commands_subject
from rtcc.bus import Bus, Subscription
from rtcc.errors import NotFound, ValidationFailed
from rtcc.metrics import Metrics
from rtcc.roles import Role
from rtcc.settings import BodycamSettings
from rtcc.store.db import Store
from rtcc.store.tables_bodycams import BodycamCommand

log = logging.getLogger(__name__)

POLICY_ACTOR = Principal(username="system:bodycam-policy", role=Role.public)
"""Who automatic commands are audited as (no person: the stored policy)."""

Audit = Callable[..., Awaitable[None]]


def device_actor(device_id: str) -> Principal:
    """Who a device's acknowledgements are audited as."""
    return Principal(username=f"device:{device_id}", role=Role.public)


class Commander:
    """Issues commands: store (attempt 1), audit, publish for MQTT and HTTPS devices."""

    def __init__(
        self, store: Store, bus: Bus, audit: Audit, settings: BodycamSettings, metrics: Metrics
    ) -> None:
        self.store = store
        self.bus = bus
        self.audit = audit
        self.settings = settings
        self.metrics = metrics

    async def issue(
        self,
        who: Principal,
        device_id: str,
        command: str,
        reason: str,
        *,
        automatic: bool = False,
        trigger_ref: str | None = None,
    ) -> BodycamCommand | None:
        """Issue one command; None when ``trigger_ref`` already commanded this device.

        Raises
        ------
        rtcc.errors.NotFound
            No such body cam.
        rtcc.errors.ValidationFailed
            Its key is revoked.
        """
        issued = await self.issue_warned(
            who, device_id, command, reason, automatic=automatic, trigger_ref=trigger_ref
        )
        return issued.row if issued is not None else None

    async def issue_warned(
        self,
        who: Principal,
        device_id: str,
        command: str,
        reason: str,
        *,
        automatic: bool = False,
        trigger_ref: str | None = None,
    ) -> Issued | None:
        """Like :meth:`issue`, with the whole :class:`~rtcc.bodycam.commands.Issued`.

        Its ``warning`` (``"unit offline since …"``, ``"unit never heard from"``,
        :func:`rtcc.bodycam.commands.unit_warning`) tells the person issuing the
        command that the unit may not get it soon; it is also in the audit entry.

        Raises
        ------
        rtcc.errors.NotFound
            No such body cam.
        rtcc.errors.ValidationFailed
            Its key is revoked.
        """
        s = self.settings
        now = datetime.now(UTC)
        issued = await self.store.write(
            lambda sess: issue_command(
                sess,
                device_id=device_id,
                command=command,
                reason=reason,
                issued_by=who.username,
                now=now,
                ack_timeout_s=s.ack_timeout_s,
                ttl_s=s.command_ttl_s,
                automatic=automatic,
                trigger_ref=trigger_ref,
            )
        )
        if issued is None:
            return None
        row = issued.row
        details: dict[str, Any] = {
            "device": device_id,
            "command": command,
            "automatic": automatic,
            "trigger": trigger_ref,
            "expires_at": row.expires_at.isoformat(),
        }
        if issued.warning is not None:
            details["warning"] = issued.warning
        await self.audit(
            who,
            "bodycam_command",
            "bodycam",
            record_id=str(row.id),
            purpose=reason,
            details=details,
        )
        self.metrics.inc("bodycam_commands", kind="automatic" if automatic else "remote")
        await self.send(issued)
        return issued

    async def issue_many(
        self,
        who: Principal,
        device_ids: list[str],
        command: str,
        reason: str,
        *,
        trigger_ref: str,
    ) -> list[BodycamCommand]:
        """Automatic activation: one transaction, one audit entry naming every command, concurrent sends.

        Devices already commanded for ``trigger_ref``, unknown or revoked ones are skipped.
        """
        s = self.settings
        now = datetime.now(UTC)

        def _issue(sess: Session) -> list[Issued]:
            out = []
            for device_id in device_ids:
                try:
                    issued = issue_command(
                        sess,
                        device_id=device_id,
                        command=command,
                        reason=reason,
                        issued_by=who.username,
                        now=now,
                        ack_timeout_s=s.ack_timeout_s,
                        ttl_s=s.command_ttl_s,
                        automatic=True,
                        trigger_ref=trigger_ref,
                    )
                except (NotFound, ValidationFailed) as exc:
                    log.info("automatic %s skips %s: %s", trigger_ref, device_id, exc.message)
                    continue
                if issued is not None:
                    out.append(issued)
            return out

        batch = await self.store.write(_issue)
        if not batch:
            return []
        await self.audit(
            who,
            "bodycam_command",
            "bodycam",
            record_id=trigger_ref,
            purpose=reason,
            details={
                "command": command,
                "automatic": True,
                "trigger": trigger_ref,
                "commands": [{"id": str(i.row.id), "device": i.row.device_id} for i in batch],
                "expires_at": batch[0].row.expires_at.isoformat(),
            },
        )
        self.metrics.inc("bodycam_commands", len(batch), kind="automatic")
        await asyncio.gather(*(self.send(i) for i in batch))
        return [i.row for i in batch]

    async def send(self, issued: Issued) -> None:
        """Publish the current attempt (per-device subject for MQTT, event for the log and live view).

        A bus failure is logged: the command stays ``sent`` and the retry loop sends it again.
        """
        ev = command_event(issued.row, issued.key_hash)
        try:
            await self.bus.publish(
                commands_subject(ev.device), ev.to_json(), msg_id=f"{issued.row.id}:{issued.row.attempts}"
            )
            await self.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
        except Exception as exc:
            self.metrics.inc("bodycam_publish_failed")
            log.warning("publishing command %s to %s failed (will retry): %s", ev.command_id, ev.device, exc)


class Mailbox:
    """Wakes this process's HTTPS long-polls when a command for their device is published."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"{COMMANDS_PREFIX}.*.commands", self._on_command)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.stop()
            self._sub = None
        for evs in self._waiters.values():
            for ev in evs:
                ev.set()

    async def _on_command(self, subject: str, payload: bytes) -> None:
        parts = subject.split(".")
        if len(parts) == 4:
            self.notify(parts[2])

    def notify(self, device_id: str) -> None:
        for ev in self._waiters.get(device_id, ()):
            ev.set()

    @contextlib.contextmanager
    def watch(self, device_id: str) -> Iterator[asyncio.Event]:
        """An event set when a command for ``device_id`` is published (register before checking)."""
        ev = asyncio.Event()
        self._waiters.setdefault(device_id, set()).add(ev)
        try:
            yield ev
        finally:
            waiters = self._waiters.get(device_id)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    self._waiters.pop(device_id, None)

    @property
    def waiting(self) -> int:
        """Long-polls waiting now."""
        return sum(len(v) for v in self._waiters.values())


def commander_of(ctx: Any) -> Commander:
    """A :class:`Commander` over an API context (or a center)."""
    return Commander(ctx.store, ctx.bus, ctx.audit, ctx.settings.bodycam, ctx.metrics)
