"""Helpers for the operations tests: publish alerts on the real bus and wait for the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx

from rtcc.events import Alert, AlertSeverity, Event, Position
from tests.conftest import Running
from tests.helpers import eventually

POINT = (33.5186, -86.8104)


async def publish(center: Running, ev: Event) -> None:
    bus = center.center.bus
    assert bus is not None
    await bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))


def make_alert(
    kind: str = "gunshot",
    *,
    title: str = "Gunfire: 3 rounds, ±20 m",
    pos: tuple[float, float] | None = POINT,
    ref: UUID | None = None,
    severity: AlertSeverity = AlertSeverity.critical,
    at: datetime | None = None,
) -> Alert:
    extra: dict[str, Any] = {"occurred_at": at} if at is not None else {}
    return Alert(
        source="acoustic",
        kind=kind,
        severity=severity,
        title=title,
        pos=Position(lat=pos[0], lon=pos[1]) if pos else None,
        ref_event_id=ref or uuid4(),
        **extra,
    )


async def queued(center: Running, client: httpx.AsyncClient, alert_id: UUID) -> dict[str, Any]:
    """Wait until the operations processor stored ``alert_id``; returns it as the API shows it."""

    async def probe() -> dict[str, Any] | None:
        r = await client.get(f"/api/v1/alerts/{alert_id}")
        return r.json() if r.status_code == 200 else None

    return await eventually(probe, what=f"alert {alert_id} in the queue")


async def audit_of(admin: httpx.AsyncClient, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items
