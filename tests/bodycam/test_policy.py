"""Automatic activation: a gunshot incident or hotlist hit commands the units within the radius, once."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from rtcc.bodycam.registry import units_near
from rtcc.bodycam.transparency import stats
from rtcc.events import GunshotIncident, HotlistHit, Position
from rtcc.geo import distance_m
from rtcc.roles import Role
from tests.bodycam.conftest import LAT0, LON0, MakeRig, Rig, north_of
from tests.helpers import eventually


def _incident(incident_id: Any = None) -> GunshotIncident:
    return GunshotIncident(
        source="acoustic",
        incident_id=incident_id or uuid4(),
        pos=Position(lat=LAT0, lon=LON0),
        ellipse_major_m=20,
        ellipse_minor_m=10,
        rounds=3,
        label="gunshot",
        confidence=0.97,
        sensors=["ac-1", "ac-2", "ac-3"],
    )


async def _publish(rig: Rig, ev: Any) -> None:
    bus = rig.run.center.bus
    assert bus is not None
    await bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))


async def _automatic(rig: Rig) -> list[dict[str, Any]]:
    r = await rig.clients[Role.admin].get("/api/v1/bodycams/commands", params={"automatic": "true"})
    return list(r.json()["items"])


async def _wait_positions(rig: Rig, n: int) -> None:
    async def moved() -> bool:
        r = await rig.clients[Role.admin].get("/api/v1/bodycams")
        return sum(u["last_seen_at"] is not None for u in r.json()["items"]) >= n

    await eventually(moved, what="heartbeats applied")


async def test_gunshot_incident_commands_only_units_within_radius(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    admin = rig.clients[Role.admin]
    for role in (Role.supervisor, Role.officer):
        r = await rig.clients[role].put("/api/v1/bodycams/policy", json={"enabled": True, "triggers": []})
        assert r.status_code == 403
    r = await admin.get("/api/v1/bodycams/policy")
    assert r.json()["enabled"] is False and r.json()["radius_m"] == 300.0
    cams = {
        d: await rig.add_cam(d, m)
        for d, m in (("near", 100.0), ("edge", 280.0), ("far", 400.0), ("km", 1000.0))
    }
    await _wait_positions(rig, 4)

    # policy off: nothing happens
    metrics = rig.run.center.metrics
    await _publish(rig, _incident())

    async def skipped() -> bool:
        return metrics.get("bodycam_triggers", trigger="gunshot_incident", result="not_in_policy") == 1

    await eventually(skipped, what="incident skipped while the policy is off")
    r = await admin.put(
        "/api/v1/bodycams/policy", json={"enabled": True, "triggers": ["gunshot_incident"], "radius_m": 300}
    )
    assert r.status_code == 200 and r.json()["updated_by"] == "admin"
    incident = _incident()
    await _publish(rig, incident)

    async def both_acked() -> list[dict[str, Any]] | None:
        rows = await _automatic(rig)
        return rows if len(rows) == 2 and all(c["status"] == "acked" for c in rows) else None

    rows = await eventually(both_acked, what="two automatic commands acknowledged")
    assert {c["device_id"] for c in rows} == {"near", "edge"}
    assert all(str(incident.incident_id) in c["reason"] and c["automatic"] for c in rows)
    assert cams["near"].recording and cams["edge"].recording
    assert not cams["far"].recording and not cams["km"].recording
    # the same incident delivered again (a new event for the same incident): no second command
    await _publish(rig, _incident(incident.incident_id))
    # a hotlist hit is not a trigger in this policy
    hit = HotlistHit(
        source="plates",
        read_id=uuid4(),
        device="lpr-1",
        pos=Position(lat=LAT0, lon=LON0),
        plate="ABC123",
        entry_plate="ABC123",
        category="stolen",
        match="exact",
    )
    await _publish(rig, hit)
    # a later incident (a marker we can wait for) still commands the units near it
    marker = _incident()
    await _publish(rig, marker)

    async def marker_done() -> list[dict[str, Any]] | None:
        rows = await _automatic(rig)
        return rows if sum(str(marker.incident_id) in c["reason"] for c in rows) == 2 else None

    rows = await eventually(marker_done, what="marker incident handled")
    assert len(rows) == 4
    policy_changes = await rig.clients[Role.auditor].get(
        "/api/v1/audit", params={"action": "bodycam_policy_change"}
    )
    assert len(policy_changes.json()["items"]) == 1

    store = rig.run.center.store
    assert store is not None
    figures = await store.read(stats)
    assert figures["policy"] == {"enabled": True, "triggers": ["gunshot_incident"], "radius_m": 300.0}
    assert figures["automatic"]["start_recording"] == 4 and figures["remote"]["start_recording"] == 0
    assert "near" not in str(figures)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_units_near_uses_latest_heartbeat(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    cam = await rig.add_cam("mover", 2000.0, start=False)
    await _wait_positions(rig, 1)
    store = rig.run.center.store
    assert store is not None
    assert await store.read(lambda s: units_near(s, LAT0, LON0, 300)) == []
    lat, lon = north_of(150.0)
    assert await rig.link.send(cam, [cam.heartbeat(lat, lon, 50.0)])

    async def near() -> list[Any] | None:
        return await store.read(lambda s: units_near(s, LAT0, LON0, 300)) or None

    (u,) = await eventually(near, what="unit near")
    assert u.device_id == "mover" and u.distance_m == pytest.approx(150.0, abs=1.0)
    assert u.recording is False and u.last_seen_at is not None


def test_haversine_known_distance() -> None:
    # one degree of latitude is 111.2 km on the mean sphere; a degree of longitude shrinks by cos(lat)
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert distance_m(60, 0, 60, 1) == pytest.approx(111_195 * 0.5, rel=1e-3)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_hotlist_hit_trigger_with_a_smaller_radius(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    await rig.add_cam("close", 120.0)
    await rig.add_cam("outside", 250.0)
    await _wait_positions(rig, 2)
    r = await rig.clients[Role.admin].put(
        "/api/v1/bodycams/policy", json={"enabled": True, "triggers": ["hotlist_hit"], "radius_m": 200}
    )
    assert r.json()["triggers"] == ["hotlist_hit"] and r.json()["radius_m"] == 200.0
    await _publish(rig, _incident())  # not a trigger now
    hit = HotlistHit(
        source="plates",
        read_id=uuid4(),
        device="lpr-1",
        pos=Position(lat=LAT0, lon=LON0),
        plate="XYZ789",
        entry_plate="XYZ789",
        category="stolen",
        match="exact",
    )
    await _publish(rig, hit)

    async def one() -> list[dict[str, Any]] | None:
        rows = await _automatic(rig)
        return rows if rows and rows[0]["status"] == "acked" else None

    (row,) = await eventually(one, what="hotlist-hit activation acknowledged")
    assert row["device_id"] == "close" and "hotlist hit (stolen)" in row["reason"]
    assert row["trigger_ref"] == f"hotlist_hit:{hit.read_id}"
