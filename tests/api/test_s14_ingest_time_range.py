"""An event time beyond datetime's range refuses that event only, over HTTPS and MQTT (audit s14).

``0001-01-01T00:00:00+14:00`` and ``9999-12-31T23:59:59-14:00`` parse, but have no UTC equivalent
inside datetime's range: converting them raised ``OverflowError``, which escaped validation, so
the whole batch failed (and over MQTT the envelope was redelivered, then dropped).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rtcc.events import Pulse, parse_event
from rtcc.ingest.mqtt import MqttBridge
from rtcc.roles import DeviceType, Role
from tests.api.test_ingest import add_device, pulse, send
from tests.conftest import Running

OUT_OF_RANGE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_an_out_of_range_time_is_a_validation_error(when: str) -> None:
    raw = {**pulse("ac-s14"), "occurred_at": when}
    with pytest.raises(ValueError, match="out of the supported date range"):
        parse_event(raw)
    with pytest.raises(ValueError, match="out of the supported date range"):
        Pulse.model_validate(raw)


@pytest.mark.parametrize("when", OUT_OF_RANGE)
async def test_http_batch_keeps_the_good_pulse_and_refuses_the_bad_one(
    center: Running, clients: dict[Role, httpx.AsyncClient], when: str
) -> None:
    key = await add_device(clients[Role.admin], "ac-s1401", DeviceType.acoustic_sensor)
    good = pulse("ac-s1401")
    bad = {**pulse("ac-s1401"), "occurred_at": when}
    r = await send(center.http, key, [good, bad])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert body["event_ids"] == [good["event_id"]]
    assert [x["index"] for x in body["rejected"]] == [1]
    assert "out of the supported date range" in body["rejected"][0]["reason"]
    # a batch of only the bad event is a plain 422 with the reason, not a 500
    r = await send(center.http, key, [{**pulse("ac-s1401"), "occurred_at": when}])
    assert r.status_code == 422, r.text
    assert "out of the supported date range" in r.text


@pytest.mark.parametrize("when", OUT_OF_RANGE)
async def test_mqtt_bridge_refuses_only_the_bad_event(
    center: Running, clients: dict[Role, httpx.AsyncClient], when: str
) -> None:
    key = await add_device(clients[Role.admin], "ac-s1402", DeviceType.acoustic_sensor)
    published: list[str] = []

    async def seen(subject: str, payload: bytes) -> None:
        published.append(json.loads(payload)["event_id"])

    sub = await center.center.bus.subscribe("rtcc.events.pulse", seen)
    bridge = MqttBridge(center.center.bus, center.center.ingest, center.center.metrics, members=0)
    metrics = center.center.metrics
    before_ok = metrics.get("ingest_accepted", channel="mqtt")
    before_bad = metrics.get("ingest_rejected_events", channel="mqtt")
    good = pulse("ac-s1402")
    bad = {**pulse("ac-s1402"), "occurred_at": when}
    envelope = {"device_id": "ac-s1402", "key": key, "events": [good, bad]}
    try:
        # must not raise: a raising handler makes JetStream redeliver, then drop the good pulse
        await bridge._handle("rtcc.sensors.ac-s1402.pulse", json.dumps(envelope).encode())
        assert metrics.get("ingest_accepted", channel="mqtt") == before_ok + 1
        assert metrics.get("ingest_rejected_events", channel="mqtt") == before_bad + 1
        for _ in range(200):
            if published:
                break
            await asyncio.sleep(0.01)
        assert published == [good["event_id"]]
    finally:
        await sub.stop()
