"""The gunshot review queue over the API: list, read, confirm/dismiss with a reason, audio (audited)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def _pending_incident(center: Running, client: httpx.AsyncClient, src: tuple[float, float]) -> str:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.6)  # in the review band (0.35 … 0.85)
    await post_pulses(center, arr, shot_pulses(arr, src))

    async def pending() -> list[dict[str, Any]] | None:
        r = await client.get("/api/v1/gunshots", params={"status": "pending_review"})
        items: list[dict[str, Any]] = r.json()["items"]
        return items or None

    items = await eventually(pending, what="a pending incident")
    return str(items[0]["id"])


async def test_review_band_waits_and_confirm_alerts(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    supervisor, analyst, officer = clients[Role.supervisor], clients[Role.analyst], clients[Role.officer]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=alert"
    async with websockets.connect(
        url, additional_headers={"authorization": analyst.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        iid = await _pending_incident(center, supervisor, (50.0, 60.0))
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert first["kind"] == "gunshot_review" and first["severity"] == "warning"
        assert first["ref_event_id"] == iid

        row = (await officer.get(f"/api/v1/gunshots/{iid}")).json()
        assert row["status"] == "pending_review" and row["confidence"] == pytest.approx(0.6)

        # a reason is required (the one error envelope)
        r = await analyst.post(f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm"})
        assert r.status_code == 422
        body = r.json()
        assert body["error"]["code"] == "validation_failed" and "reason" in body["error"]["message"]
        r = await analyst.post(f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": "ok"})
        assert r.status_code == 422  # shorter than 3 characters
        # officers do not review
        r = await officer.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": "heard it"}
        )
        assert r.status_code == 403

        reason = "three distinct reports, matches 911 call"
        r = await analyst.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": reason}
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "confirmed" and done["reviewed_by"] == "analyst1"
        assert done["review_reason"] == reason and done["reviewed_at"]
        # the confirmation sends the gunfire alert
        second = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert second["kind"] == "gunshot" and second["severity"] == "critical"
        assert second["ref_event_id"] == iid

    # reviewed once only
    r = await supervisor.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "fireworks"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    # audited, with the reason
    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "gunshot_confirm"})).json()[
        "items"
    ]
    assert len(audit) == 1
    assert audit[0]["actor"] == "analyst1" and audit[0]["record_id"] == iid
    assert audit[0]["purpose"] == reason and audit[0]["details"]["reason"] == reason


async def test_dismiss_and_filters(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    supervisor = clients[Role.supervisor]
    iid = await _pending_incident(center, supervisor, (-200.0, 100.0))
    r = await supervisor.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "July 4th fireworks"}
    )
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert (await supervisor.get("/api/v1/gunshots", params={"status": "pending_review"})).json()[
        "items"
    ] == []
    assert (
        len((await supervisor.get("/api/v1/gunshots", params={"status": "dismissed"})).json()["items"]) == 1
    )
    r = await supervisor.get("/api/v1/gunshots", params={"since": "2000-01-01T00:00:00"})
    assert r.status_code == 422  # a time without a timezone
    r = await supervisor.get("/api/v1/gunshots", params={"until": "2000-01-01T00:00:00Z"})
    assert r.json()["items"] == []
    r = await supervisor.get("/api/v1/gunshots/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await clients[Role.auditor].get("/api/v1/gunshots")
    assert r.status_code == 403


async def test_audio_of_a_contributing_sensor_is_served_and_audited(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer = clients[Role.officer]
    iid = await _pending_incident(center, officer, (0.0, -100.0))
    row = (await officer.get(f"/api/v1/gunshots/{iid}")).json()
    sensor = row["sensors"][0]

    async def audio() -> httpx.Response | None:
        r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": sensor})
        return r if r.status_code == 200 else None  # the recorder writes the pulse shortly after

    r = await eventually(audio, what="the pulse's audio")
    assert r.headers["content-type"] == "audio/flac" and r.content[:4] == b"fLaC"
    r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": "not-a-contributor"})
    assert r.status_code == 404
    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "read_gunshot_audio"})).json()
    entries = audit["items"]
    assert (
        len(entries) == 1 and entries[0]["actor"] == "officer1" and entries[0]["details"]["sensor"] == sensor
    )


async def test_a_review_decision_reaches_the_map(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """Dismissing (or confirming) an incident re-publishes it with its new status, so the map and open
    dashboards update without reloading."""
    supervisor = clients[Role.supervisor]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=gunshot_incident"
    async with websockets.connect(
        url, additional_headers={"authorization": supervisor.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        iid = await _pending_incident(center, supervisor, (-60.0, 90.0))
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert first["incident_id"] == iid and first["status"] == "pending_review"
        r = await supervisor.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "construction site"}
        )
        assert r.status_code == 200, r.text
        update = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert update["incident_id"] == iid and update["status"] == "dismissed"


async def test_poor_geometry_is_shown_on_the_incident_and_its_alert(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """A shot well outside the array (every sensor on one side) is located with poor geometry: the
    incident says so (``location_quality``) and so does its alert, instead of looking as sure as any."""
    officer = clients[Role.officer]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=alert"
    async with websockets.connect(
        url, additional_headers={"authorization": officer.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        arr = await provision_array(center)
        use_classifier(pipeline_of(center), 0.95)
        await post_pulses(center, arr, shot_pulses(arr, (1100.0, 0.0)))
        alert = json.loads(await asyncio.wait_for(ws.recv(), 30))["event"]
        assert alert["kind"] == "gunshot" and "poor sensor geometry" in alert["title"]
    [inc] = (await officer.get("/api/v1/gunshots")).json()["items"]
    assert inc["location_quality"] == "poor"
    # inside the array the same code says good
    await post_pulses(center, arr, shot_pulses(arr, (30.0, -40.0)))

    async def second() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items if len(items) == 2 else None

    newest = (await eventually(second, what="the second incident"))[0]
    assert newest["location_quality"] == "good"
