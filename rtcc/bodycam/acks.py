"""Acknowledgements applied in batches: one transaction for many acks and their audit entries.

A storm of acknowledgements (every unit near an incident answering at once)
would otherwise cost two writes each (the command, the audit entry) on the
store's single writer. :class:`AckBatcher` gathers the acks handed to it for
up to ``linger_s`` (or ``max_batch`` of them), applies each with
:func:`rtcc.bodycam.commands.apply_ack` and appends its audit entry in the same
transaction, then mirrors the entries on the bus. :meth:`AckBatcher.submit`
returns only after the commit, so the bus message is acknowledged after its
effect is stored (a failed batch raises in every submitter: redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rtcc.bodycam.commands import AckOutcome, apply_ack
from rtcc.events import AuditEvent, DeviceCommandAck
from rtcc.roles import Role

log = logging.getLogger(__name__)

_Item = tuple[DeviceCommandAck, "asyncio.Future[AckOutcome]"]


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
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bodycam-acks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError("stopping: acknowledgement not applied"))

    async def submit(self, ack: DeviceCommandAck) -> AckOutcome:
        """Apply ``ack``; returns once it (and its audit entry) is committed."""
        fut: asyncio.Future[AckOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((ack, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            until = loop.time() + self.linger_s
            while len(batch) < self.max_batch:
                left = until - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            await self._flush(batch)

    async def _flush(self, batch: list[_Item]) -> None:
        from rtcc.oversight.audit import append_audit

        center = self.center
        secret = center.settings.security.secret_key.encode()
        now = datetime.now(UTC)

        def _do(session: Session) -> list[tuple[AckOutcome, Any]]:
            done = []
            for ack, _ in batch:
                out = apply_ack(session, ack, now)
                entry = append_audit(session, secret=secret, **_audit_fields(ack, out))
                done.append((out, entry))
            return done

        try:
            results = await center.store.write(_do)
        except Exception as exc:
            log.warning("applying %d acknowledgement(s) failed (redelivered): %s", len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (ack, fut), (out, entry) in zip(batch, results, strict=True):
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
            if not fut.done():
                fut.set_result(out)
