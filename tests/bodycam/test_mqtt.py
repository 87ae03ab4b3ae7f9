"""Production path: PostgreSQL + NATS JetStream, the command over MQTT, the acknowledgement over MQTT."""

from __future__ import annotations

import os
from typing import Any

import pytest

from rtcc.roles import Role
from tests.bodycam.conftest import MakeRig, Rig
from tests.helpers import eventually


@pytest.mark.parametrize("backend", ["production"])
async def test_command_and_ack_over_mqtt(make_rig: MakeRig) -> None:
    port = os.environ.get("RTCC_TEST_MQTT_PORT")
    if not port:
        pytest.skip("RTCC_TEST_MQTT_PORT not set")
    rig: Rig = await make_rig(processors=("recorder", "health", "bodycam", "ingest"))
    cam = await rig.add_cam("bwc-mq", 10.0, mqtt=f"127.0.0.1:{port}")
    metrics = rig.run.center.metrics
    before = metrics.get("ingest_accepted", channel="mqtt")
    r = await rig.clients[Role.supervisor].post(
        "/api/v1/bodycams/bwc-mq/commands", json={"command": "start_recording", "reason": "foot pursuit"}
    )
    assert r.status_code == 202
    cid = r.json()["id"]

    async def acked() -> dict[str, Any] | None:
        r = await rig.clients[Role.auditor].get("/api/v1/bodycams/commands")
        return next((c for c in r.json()["items"] if c["id"] == cid and c["status"] == "acked"), None)

    row = await eventually(acked, what="command acknowledged over MQTT")
    assert cam.recording is True and row["attempts"] >= 1
    # the device heard it on its MQTT topic only (no HTTPS poll), and its ack came in through MQTT
    assert cam.verdicts["execute"] == 1
    assert metrics.get("ingest_accepted", channel="mqtt") > before
