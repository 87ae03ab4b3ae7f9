"""The alert queue: alerts stored once from the bus, moved through their states, audited, live."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from rtcc.events import AlertSeverity
from rtcc.roles import Role
from tests.conftest import Running
from tests.ops.helpers import audit_of, make_alert, publish, queued


async def test_queue_states_audit_and_live_updates(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, supervisor, admin = clients[Role.officer], clients[Role.supervisor], clients[Role.admin]
    alert = make_alert()
    await publish(center, alert)
    await publish(center, alert)  # delivered twice: stored once
    row = await queued(center, officer, alert.alert_id)
    assert row["status"] == "new" and row["kind"] == "gunshot" and row["severity"] == "critical"
    assert row["lat"] == pytest.approx(alert.pos.lat) and row["ref_id"] == str(alert.ref_event_id)  # type: ignore[union-attr]
    listed = (await officer.get("/api/v1/alerts")).json()["items"]
    assert [a["id"] for a in listed] == [str(alert.alert_id)]

    url = center.url.replace("http", "ws") + "api/v1/ws?types=alert_updated"
    async with websockets.connect(
        url, additional_headers={"authorization": supervisor.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        r = await officer.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == "officer1"
        live = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert live["alert_id"] == str(alert.alert_id) and live["status"] == "acknowledged"
        assert live["by"] == "officer1"

    # acknowledged once only
    r = await supervisor.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    # assigning needs a unit
    r = await supervisor.post(f"/api/v1/alerts/{alert.alert_id}/assign", json={})
    assert r.status_code == 422
    r = await supervisor.post(f"/api/v1/alerts/{alert.alert_id}/assign", json={"unit": "B-12"})
    assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["assigned_unit"] == "B-12"
    # dismissing needs a reason
    r = await supervisor.post(f"/api/v1/alerts/{alert.alert_id}/dismiss", json={})
    assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
    r = await officer.post(f"/api/v1/alerts/{alert.alert_id}/close")
    assert r.status_code == 200
    done = r.json()
    assert done["status"] == "closed" and done["closed_by"] == "officer1"
    assert [h["status"] for h in done["history"]] == ["new", "acknowledged", "assigned", "closed"]
    # closed is final
    r = await supervisor.post(f"/api/v1/alerts/{alert.alert_id}/dismiss", json={"reason": "duplicate call"})
    assert r.status_code == 409
    # every step audited, by whom
    assert [e["actor"] for e in await audit_of(admin, "alert_acknowledge")] == ["officer1"]
    assigned = await audit_of(admin, "alert_assign")
    assert assigned[0]["actor"] == "supervisor1" and assigned[0]["details"]["unit"] == "B-12"
    assert assigned[0]["record_id"] == str(alert.alert_id)
    assert len(await audit_of(admin, "alert_close")) == 1
    # the auditor does not work the queue; strangers get nothing
    assert (await clients[Role.auditor].get("/api/v1/alerts")).status_code == 403
    async with httpx.AsyncClient(base_url=center.url) as anon:
        assert (await anon.get("/api/v1/alerts")).status_code == 401
        assert (await anon.post(f"/api/v1/alerts/{alert.alert_id}/close")).status_code == 401


async def test_review_alerts_only_for_reviewers_and_dismiss_with_reason(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, analyst, admin = clients[Role.officer], clients[Role.analyst], clients[Role.admin]
    review = make_alert("gunshot_review", severity=AlertSeverity.warning, title="Possible gunfire — review")
    plain = make_alert()
    await publish(center, review)
    await publish(center, plain)
    await queued(center, analyst, review.alert_id)
    await queued(center, officer, plain.alert_id)
    # officers do not see review work, not even that it exists
    assert [a["id"] for a in (await officer.get("/api/v1/alerts")).json()["items"]] == [str(plain.alert_id)]
    assert (await officer.get(f"/api/v1/alerts/{review.alert_id}")).status_code == 404
    assert (await officer.post(f"/api/v1/alerts/{review.alert_id}/acknowledge")).status_code == 404
    assert len((await analyst.get("/api/v1/alerts")).json()["items"]) == 2

    reason = "fireworks over the stadium"
    r = await analyst.post(f"/api/v1/alerts/{review.alert_id}/dismiss", json={"reason": reason})
    assert r.status_code == 200
    assert r.json()["status"] == "dismissed" and r.json()["dismiss_reason"] == reason
    entry = (await audit_of(admin, "alert_dismiss"))[0]
    assert entry["purpose"] == reason and entry["actor"] == "analyst1"
    # filters
    r = await analyst.get("/api/v1/alerts", params={"status": "dismissed"})
    assert [a["id"] for a in r.json()["items"]] == [str(review.alert_id)]
    assert (await analyst.get("/api/v1/alerts", params={"since": "2020-01-01T00:00:00"})).status_code == 422
    assert (await analyst.get("/api/v1/alerts", params={"status": "bogus"})).status_code == 422
    assert (await analyst.get("/api/v1/alerts/not-a-uuid")).status_code == 422
