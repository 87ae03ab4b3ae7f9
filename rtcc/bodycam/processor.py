"""The ``bodycam`` processor: acknowledgements, retries and timeouts, automatic activation.

* ``rtcc.events.device_command_ack`` (queue group ``bodycam-acks``): applies
  each acknowledgement once (:func:`rtcc.bodycam.commands.apply_ack`) and
  audits it, applied or ignored (duplicate, late, unknown, mismatched), many
  per transaction (:class:`~rtcc.bodycam.acks.AckBatcher`).
* ``rtcc.events.gunshot_incident`` and ``rtcc.events.hotlist_hit`` (group
  ``bodycam-policy``): when the stored policy is on and names the trigger,
  every body cam within its radius is told to start recording, once per unit
  per incident (``trigger_ref``).
* A loop every ``bodycam.retry_check_s`` re-sends commands not acknowledged
  within ``bodycam.ack_timeout_s`` (up to ``bodycam.max_attempts``) and then
  marks them ``timeout`` (audited); the ``sent`` commands of a body cam whose
  key was revoked are marked ``cancelled`` instead (audited), not re-sent.
* ``center.services["bodycam"]`` gets the :class:`~rtcc.bodycam.service.Mailbox`
  that wakes this process's HTTPS long-polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rtcc.bodycam.acks import AckBatcher
from rtcc.bodycam.commands import process_due
from rtcc.bodycam.policy import get_policy
from rtcc.bodycam.registry import units_near
from rtcc.bodycam.service import POLICY_ACTOR, Commander, Mailbox, device_actor
from rtcc.bus import Subscription
from rtcc.events import DeviceCommandAck, GunshotIncident, HotlistHit, parse_event, subject_for

log = logging.getLogger(__name__)


class BodycamProcessor:
    """Consumes acks and trigger events; retries and times out commands."""

    def __init__(self, center: Any, *, ack_members: int = 64) -> None:
        self.center = center
        self.settings = center.settings.bodycam
        self.ack_members = ack_members
        self.commander = Commander(center.store, center.bus, center.audit, self.settings, center.metrics)
        self.mailbox = Mailbox(center.bus)
        self.acks = AckBatcher(center)
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        bus = self.center.bus
        await self.mailbox.start()
        self.acks.start()
        self.center.services["bodycam"] = self.mailbox
        for _ in range(self.ack_members):
            self._subs.append(
                await bus.subscribe(subject_for("device_command_ack"), self._on_ack, group="bodycam-acks")
            )
        for trigger in ("gunshot_incident", "hotlist_hit"):
            self._subs.append(
                await bus.subscribe(subject_for(trigger), self._on_trigger, group="bodycam-policy")
            )
        self._task = asyncio.get_running_loop().create_task(self._retry_loop(), name="bodycam-retries")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        await self.acks.stop()
        if self.center.services.get("bodycam") is self.mailbox:
            self.center.services.pop("bodycam", None)
        await self.mailbox.stop()

    # -- acknowledgements ---------------------------------------------------------

    async def _on_ack(self, subject: str, payload: bytes) -> None:
        try:
            ack = parse_event(payload)
        except ValidationError:
            self.center.metrics.inc("bodycam_ack_malformed")
            return
        if isinstance(ack, DeviceCommandAck):
            await self.acks.submit(ack)

    # -- automatic activation -------------------------------------------------------

    async def _on_trigger(self, subject: str, payload: bytes) -> None:
        try:
            ev = parse_event(payload)
        except ValidationError:
            return
        if isinstance(ev, GunshotIncident):
            ref, what = f"gunshot_incident:{ev.incident_id}", f"gunshot incident {ev.incident_id}"
        elif isinstance(ev, HotlistHit):
            ref, what = f"hotlist_hit:{ev.read_id}", f"hotlist hit ({ev.category}) {ev.read_id}"
        else:
            return
        await self.activate(ev.type, ref, what, ev.pos.lat, ev.pos.lon)

    async def activate(self, trigger: str, ref: str, what: str, lat: float, lon: float) -> int:
        """Command every unit near (lat, lon) to record when the policy covers ``trigger``.

        Returns
        -------
        int
            Commands issued now (units already commanded for ``ref`` are skipped).
        """
        store = self.center.store
        policy = await store.read(get_policy)
        if not policy.enabled or trigger not in policy.triggers:
            self.center.metrics.inc("bodycam_triggers", trigger=trigger, result="not_in_policy")
            return 0
        units = await store.read(lambda s: units_near(s, lat, lon, policy.radius_m))
        reason = f"automatic: {what} within {policy.radius_m:g} m"
        rows = await self.commander.issue_many(
            POLICY_ACTOR, [u.device_id for u in units], "start_recording", reason, trigger_ref=ref
        )
        issued = len(rows)
        self.center.metrics.inc("bodycam_triggers", trigger=trigger, result="applied")
        if issued:
            log.info("%s: %d body cam(s) told to record", ref, issued)
        return issued

    # -- retries and timeouts ----------------------------------------------------------

    async def check_due(self) -> tuple[int, int]:
        """Cancel revoked units' commands, re-send or time out those past their deadline, once.

        Returns
        -------
        tuple of int
            Commands re-sent and timed out now (cancelled ones are counted in the
            ``bodycam_cancelled`` metric and audited as ``bodycam_command_cancelled``).
        """
        s = self.settings
        now = datetime.now(UTC)
        due = await self.center.store.write(
            lambda sess: process_due(
                sess, now=now, max_attempts=s.max_attempts, ack_timeout_s=s.ack_timeout_s
            )
        )
        for row in due.cancelled:
            self.center.metrics.inc("bodycam_cancelled")
            await self.center.audit(
                POLICY_ACTOR if row.automatic else device_actor(row.device_id),
                "bodycam_command_cancelled",
                "bodycam",
                record_id=str(row.id),
                outcome="cancelled",
                details={
                    "device": row.device_id,
                    "command": row.command,
                    "attempts": row.attempts,
                    "why": "device key revoked",
                },
            )
        for issued in due.retried:
            self.center.metrics.inc("bodycam_retries")
            await self.commander.send(issued)
        for row in due.timed_out:
            self.center.metrics.inc("bodycam_timeouts")
            await self.center.audit(
                POLICY_ACTOR if row.automatic else device_actor(row.device_id),
                "bodycam_command_timeout",
                "bodycam",
                record_id=str(row.id),
                outcome="timeout",
                details={"device": row.device_id, "command": row.command, "attempts": row.attempts},
            )
        return len(due.retried), len(due.timed_out)

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retry_check_s)
            try:
                await self.check_due()
            except Exception:
                log.exception("body-cam retry check failed")


def build(center: Any) -> BodycamProcessor:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return BodycamProcessor(center)
