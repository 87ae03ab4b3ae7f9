"""Audit finding: automatic activation commanded a unit that never reported a position.

``bwc-99`` was added (``rtcc devices add``) and never sent a heartbeat: its row still held the
coordinates it was registered with, and the policy commanded it (the command timed out). Only units
online with a heartbeat are "near" (docs/bodycam-protocol.md: "latest heartbeat").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rtcc.bodycam.registry import units_near
from rtcc.ingest.health import sweep_offline
from rtcc.roles import DeviceType, Role
from tests.bodycam.conftest import LAT0, LON0, MakeRig, Rig, north_of
from tests.bodycam.test_policy import _automatic, _incident, _publish, _wait_positions
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_units_near_skips_units_never_heard_from_and_offline(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    store = rig.run.center.store
    assert store is not None
    await rig.add_cam("live", 100.0)
    await rig.add_cam("gone", 150.0, start=False)
    lat, lon = north_of(50.0)  # registered right next to the point, never heard from
    await rig.run.center.provision_device("bwc-99", DeviceType.bodycam, "cam bwc-99", lat, lon)
    await _wait_positions(rig, 2)

    async def both_online() -> list[str] | None:
        ids = [u.device_id for u in await store.read(lambda s: units_near(s, LAT0, LON0, 300))]
        return ids if ids == ["live", "gone"] else None

    assert await eventually(both_online, what="two units online near the point") == ["live", "gone"]
    # "gone" falls silent: the health sweep (its real function, with a cutoff after its heartbeat) flips it
    flipped = await store.write(lambda s: sweep_offline(s, datetime.now(UTC) + timedelta(seconds=1)))
    assert ("gone", "bodycam") in flipped
    ids = [u.device_id for u in await store.read(lambda s: units_near(s, LAT0, LON0, 300))]
    # "live" may have been swept too (same cutoff) until its next heartbeat: never bwc-99, never "gone"
    assert "bwc-99" not in ids and "gone" not in ids


async def test_policy_does_not_command_a_unit_without_a_heartbeat(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig()
    admin = rig.clients[Role.admin]
    await rig.add_cam("near", 100.0)
    lat, lon = north_of(20.0)
    await rig.run.center.provision_device("bwc-99", DeviceType.bodycam, "cam bwc-99", lat, lon)
    await _wait_positions(rig, 1)
    r = await admin.put(
        "/api/v1/bodycams/policy", json={"enabled": True, "triggers": ["gunshot_incident"], "radius_m": 300}
    )
    assert r.status_code == 200, r.text
    incident = _incident()
    await _publish(rig, incident)

    async def acked() -> list[dict[str, Any]] | None:
        rows = await _automatic(rig)
        return rows if rows and all(c["status"] == "acked" for c in rows) else None

    rows = await eventually(acked, what="the automatic command acknowledged")
    assert [c["device_id"] for c in rows] == ["near"]
    # a second incident as a marker: still only the unit that reports where it is
    marker = _incident()
    await _publish(rig, marker)

    async def marker_done() -> list[dict[str, Any]] | None:
        rows = await _automatic(rig)
        return rows if any(str(marker.incident_id) in c["reason"] for c in rows) else None

    rows = await eventually(marker_done, what="marker incident handled")
    assert {c["device_id"] for c in rows} == {"near"}
