"""The demo's patrol units: their body cams obey commands and their heartbeats say they record."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from rtcc.roles import Role
from rtcc.sim.heartbeats import heartbeat
from tests.bodycam.conftest import MakeRig, Rig
from tests.helpers import eventually


@pytest.mark.parametrize("backend", ["embedded"])
async def test_sim_units_obey_commands_and_report_recording(make_rig: MakeRig) -> None:
    rig: Rig = await make_rig(
        sim={"enabled": True, "patrol_units": 3, "extent_m": 1600.0, "heartbeat_s": 1.0}
    )
    admin = rig.clients[Role.admin]

    async def seen() -> list[dict[str, Any]] | None:
        r = await admin.get("/api/v1/bodycams")
        items = [u for u in r.json()["items"] if u["last_seen_at"] is not None]
        return items if len(items) == 3 else None

    await eventually(seen, what="the 3 sim body cams heard from")
    r = await admin.post(
        "/api/v1/bodycams/bwc-02/commands", json={"command": "start_recording", "reason": "demo"}
    )
    assert r.status_code == 202, r.text
    cid = r.json()["id"]

    async def acked() -> bool:
        r = await admin.get("/api/v1/bodycams/commands")
        return any(c["id"] == cid and c["status"] == "acked" for c in r.json()["items"])

    await eventually(acked, what="sim body cam acknowledged")
    city = rig.run.center.sim.city
    unit = city.unit("unit-02")
    assert unit.recording is True and city.unit("unit-01").recording is False
    (dev,) = [d for d in city.devices() if d.id == "bwc-02"]
    assert heartbeat(dev, city, datetime.now(UTC), random.Random(1)).recording is True
