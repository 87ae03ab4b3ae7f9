"""Acknowledgements applied in batches: one transaction for many acks and their audit entries.

A storm of acknowledgements (every unit near an incident answering at once)
would otherwise cost two writes each (the command, the audit entry) on the
store's single writer. :class:`AckBatcher` gathers the acks handed to it for
up to ``linger_s`` (or ``max_batch`` of them,
:class:`~rtcc.store.batcher.MicroBatcher`), applies each with
:func:`rtcc.bodycam.commands.apply_ack` and appends its audit entry in the same
transaction, then mirrors the entries on the bus. :meth:`AckBatcher.submit`
returns only after the commit, so the bus message is acknowledged after its
effect is stored (a failed batch raises in every submitter: redelivered).
:meth:`AckBatcher.stop` applies the acks already handed over before it returns.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rtcc.bodycam.commands import AckOutcome, apply_ack
from rtcc.events import AuditEvent, DeviceCommandAck
from rtcc.roles import Role
from rtcc.store.batcher import MicroBatcher

log = logging.getLogger(__name__)


def _audit_fields(ack: DeviceCommandAck, out: AckOutcome) -> dict[str, Any]:
    return {
        "actor": f"device:{ack.device}",
        "role": Role.public.value,
        "action": "bodycam_ack",
        "resource": "bodycam",
        "record_id": str(ack.command_id),
        "outcome": "ok" if out.applied else f"ignored_{out.result}",
        "details": {
            "device": ack.device,
            "ok": ack.ok,
            "detail": ack.detail[:200],
            "result": out.result,
            "latency_s": out.command.latency_s if out.command is not None else None,
        },
    }


class AckBatcher:
    """Applies acknowledgements and writes their audit entries, many per transaction."""

    def __init__(self, center: Any, *, max_batch: int = 200, linger_s: float = 0.01) -> None:
        self.center = center
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._batcher: MicroBatcher[DeviceCommandAck, AckOutcome] = MicroBatcher(
            self._apply, max_items=max_batch, max_wait_s=linger_s, name="bodycam-acks"
        )

    def start(self) -> None:
        self._batcher.start()

    async def stop(self) -> None:
        await self._batcher.stop()

    async def submit(self, ack: DeviceCommandAck) -> AckOutcome:
        """Apply ``ack``; returns once it (and its audit entry) is committed."""
        return await self._batcher.submit(ack)

    async def _apply(self, acks: list[DeviceCommandAck]) -> list[AckOutcome]:
        from rtcc.oversight.audit import append_audit

        center = self.center
        secret = center.settings.security.secret_key.encode()
        now = datetime.now(UTC)

        def _do(session: Session) -> list[tuple[AckOutcome, Any]]:
            done = []
            for ack in acks:
                out = apply_ack(session, ack, now)
                entry = append_audit(session, secret=secret, **_audit_fields(ack, out))
                done.append((out, entry))
            return done

        try:
            results = await center.store.write(_do)
        except Exception as exc:
            log.warning("applying %d acknowledgement(s) failed (redelivered): %s", len(acks), exc)
            raise
        for ack, (out, entry) in zip(acks, results, strict=True):
            center.metrics.inc("bodycam_acks", result=out.result)
            if not out.applied:
                log.info("ack %s from %s ignored: %s", ack.command_id, ack.device, out.result)
            ev = AuditEvent(
                source="audit",
                occurred_at=entry.at,
                actor=entry.actor,
                action=entry.action,
                resource=entry.resource,
                record_id=entry.record_id,
                outcome=entry.outcome,
            )
            with contextlib.suppress(Exception):
                await center.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
        return [out for out, _ in results]
