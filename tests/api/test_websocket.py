"""The live WebSocket filters events by role and refuses people who are not signed in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from rtcc.events import Alert, PlateRead, Position
from rtcc.roles import Role
from tests.conftest import Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

HERE = Position(lat=33.5186, lon=-86.8104)


def _ws(center: Running, client: httpx.AsyncClient | None) -> Any:
    url = center.url.replace("http", "ws") + "api/v1/ws"
    headers = {"authorization": client.headers["authorization"]} if client is not None else {}
    return websockets.connect(url, additional_headers=headers)


async def _collect(ws: Any, until_type: str, until_title: str) -> list[str]:
    """Event types seen (alerts also as ``alert:<title>``) until ``until_type`` titled ``until_title``."""
    seen = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if msg["kind"] == "event":
            ev = msg["event"]
            seen.append(ev["type"])
            if ev["type"] == "alert":
                seen.append(f"alert:{ev['title']}")
            if ev["type"] == until_type and ev.get("title") == until_title:
                return seen


async def test_live_events_filtered_by_role(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    bus = center.center.bus
    assert bus is not None
    read = PlateRead(source="lpr-001", device="lpr-001", pos=HERE, plate="ABC1234", confidence=0.97)
    review = Alert(source="test", kind="gunshot_review", title="review me", pos=HERE)
    alert = Alert(source="test", kind="test", title="marker", pos=HERE)
    async with (
        _ws(center, clients[Role.analyst]) as analyst_ws,
        _ws(center, clients[Role.officer]) as officer_ws,
    ):
        hello_a = json.loads(await analyst_ws.recv())
        hello_o = json.loads(await officer_ws.recv())
        assert "plate_read" in hello_a["types"] and "plate_read" not in hello_o["types"]
        await bus.publish(read.subject, read.to_json())
        await bus.publish(review.subject, review.to_json())
        await bus.publish(alert.subject, alert.to_json())
        analyst_seen = await _collect(analyst_ws, "alert", "marker")
        officer_seen = await _collect(officer_ws, "alert", "marker")
    assert "plate_read" in analyst_seen
    assert "plate_read" not in officer_seen  # officers get the hit, not every read
    assert "alert:review me" in analyst_seen  # reviewers get the review queue's alerts
    assert "alert:review me" not in officer_seen
    # subscribing to a stream with plate reads is audited
    admin = clients[Role.admin]
    audit = (await admin.get("/api/v1/audit", params={"action": "subscribe_live"})).json()["items"]
    by_actor = {e["actor"]: e["details"]["types"] for e in audit}
    assert "plate_read" in by_actor["analyst1"]
    # hits are personal data too, and so are alerts naming a plate and units' heartbeats (positions)
    assert by_actor["officer1"] == ["alert", "device_heartbeat", "hotlist_hit"]


async def test_auditor_sees_audit_stream_only(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    async with _ws(center, clients[Role.auditor]) as ws:
        hello = json.loads(await ws.recv())
        assert "audit" in hello["types"]
        assert not {"plate_read", "hotlist_hit", "pulse", "device_heartbeat", "alert"} & set(hello["types"])


async def test_anonymous_websocket_refused(center: Running) -> None:
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with _ws(center, None) as ws:
            await asyncio.wait_for(ws.recv(), 10)


async def test_socket_closed_when_session_ends(
    center: Running, clients: dict[Role, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from websockets.exceptions import ConnectionClosed

    from rtcc.api.routes import ws as ws_route

    monkeypatch.setattr(ws_route, "SESSION_CHECK_S", 0.05)
    client = clients[Role.analyst]
    async with _ws(center, client) as sock:
        assert json.loads(await sock.recv())["kind"] == "hello"
        r = await client.post("/api/v1/auth/logout")
        assert r.status_code in (200, 204), r.text
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(sock.recv(), 20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
