"""The ``cameras`` processor: live-source health (edge-triggered online/offline) and request expiry.

Every ``cameras.probe_interval_s`` it probes each active camera with a live
source (a stream being watched counts as online without a second
connection), stores ``online``/``last_probe_at`` and publishes a
:class:`~rtcc.events.CameraStatus` only when a camera's state changes —
once per edge. It also marks unanswered footage requests ``expired``. It
offers the shared :class:`~rtcc.cameras.service.CameraService` to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.cameras.footage import expire_due
from rtcc.cameras.registry import is_live
from rtcc.cameras.service import SERVICE_KEY, CameraService, make_service
from rtcc.events import CameraStatus
from rtcc.store.tables_cameras import CameraRow

log = logging.getLogger(__name__)


class CamerasProcessor:
    def __init__(self, center: Any) -> None:
        self.center = center
        self.settings = center.settings.cameras
        self.service: CameraService = make_service(self.settings)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.center.services[SERVICE_KEY] = self.service
        self._task = asyncio.create_task(self._loop(), name="cameras-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.service.live.close()
        if self.center.services.get(SERVICE_KEY) is self.service:
            self.center.services.pop(SERVICE_KEY)

    async def _loop(self) -> None:
        while True:
            try:
                await self.probe_all()
            except Exception:
                log.exception("camera health round failed")
            await asyncio.sleep(self.settings.probe_interval_s)

    async def probe_all(self) -> list[CameraStatus]:
        """One health round; returns the events published (state changes only)."""
        store = self.center.store
        now = datetime.now(UTC)
        await store.write(lambda s: expire_due(s, now))

        def _cams(s: Session) -> list[tuple[UUID, str, str, bool | None]]:
            rows = s.scalars(
                select(CameraRow).where(CameraRow.status == "active", CameraRow.stream_url.is_not(None))
            )
            return [(r.id, r.name, str(r.stream_url), r.online) for r in rows if is_live(r)]

        cams = await store.read(_cams)
        sem = asyncio.Semaphore(4)

        async def one(cid: UUID, url: str) -> str | None:
            st = self.service.live.streams.get(cid)
            if st is not None and st.running and st.error is None and st.latest is not None:
                return None
            async with sem:  # probe() answers every source failure as a reason, never raises for one
                return await self.service.live.probe(url)

        reasons = await asyncio.gather(*(one(cid, url) for cid, _, url, _ in cams))
        published: list[CameraStatus] = []
        for (cid, name, _, before), reason in zip(cams, reasons, strict=True):
            online = reason is None

            def _save(s: Session, cid: UUID = cid, online: bool = online) -> None:
                row = s.get(CameraRow, cid)
                if row is not None:
                    row.online, row.last_probe_at = online, now

            await store.write(_save)
            if before is online:
                continue
            ev = CameraStatus(
                source="cameras",
                camera_id=cid,
                name=name[:200],
                status="online" if online else "offline",
                reason=(reason or "")[:500],
            )
            log.info("camera %s (%s) is %s %s", cid, name, ev.status, ev.reason)
            await self.center.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
            published.append(ev)
        return published


def build(center: Any) -> CamerasProcessor:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return CamerasProcessor(center)
