"""Production shape: PostgreSQL/PostGIS + NATS JetStream, MQTT devices, workers in their own processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from rtcc.roles import DeviceType, Role
from rtcc.store.tables import EventRecord
from tests.api.test_ingest import add_device, pulse, send
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["production"])


def _stored(url: str, type_: str = "pulse") -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return int(
                c.execute(
                    select(func.count()).select_from(EventRecord).where(EventRecord.type == type_)
                ).scalar_one()
            )
    finally:
        eng.dispose()


def _mqtt_publish(port: int, topic: str, payload: dict[str, Any]) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert connected.wait(10), "MQTT connect failed"
        client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


async def test_mqtt_device_to_store_and_wrong_key_counted(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    port = int(os.environ.get("RTCC_TEST_MQTT_PORT", "0") or 0)
    if not port:
        pytest.skip("RTCC_TEST_MQTT_PORT not set")
    admin = clients[Role.admin]
    key = await add_device(admin, "ac-mq1", DeviceType.acoustic_sensor)
    p = pulse("ac-mq1")
    _mqtt_publish(port, "rtcc/sensors/ac-mq1/pulse", {"device_id": "ac-mq1", "key": key, "events": [p]})

    async def arrived() -> list[Any] | None:
        items = (await admin.get("/api/v1/events", params={"types": "pulse"})).json()["items"]
        return items or None

    items = await eventually(arrived, what="MQTT pulse stored")
    assert items[0]["event_id"] == p["event_id"]
    # a wrong key over MQTT is refused, counted, and stores nothing
    bad = pulse("ac-mq1")
    _mqtt_publish(
        port, "rtcc/sensors/ac-mq1/pulse", {"device_id": "ac-mq1", "key": key[:-3] + "xyz", "events": [bad]}
    )

    async def refused() -> bool:
        m = (await admin.get("/api/v1/system/metrics")).json()
        return any(
            c["name"] == "ingest_refused" and c["labels"].get("channel") == "mqtt" for c in m["counters"]
        )

    await eventually(refused, what="MQTT refusal counted")
    dev = (await admin.get("/api/v1/devices/ac-mq1")).json()
    assert dev["rejected_count"] >= 1
    assert len((await admin.get("/api/v1/events", params={"types": "pulse"})).json()["items"]) == 1


async def test_recorder_workers_scale_out_in_separate_processes(
    start_center: StartCenter, tmp_path: Path
) -> None:
    # the API process runs no recorder: two `rtcc worker recorder` processes do the writing
    running = await start_center(processors=("health",))
    s = running.settings
    admin = await running.login("admin")
    key = await add_device(admin, "ac-w1", DeviceType.acoustic_sensor)
    env = dict(os.environ)
    env.update(
        RTCC_MODE="production",
        RTCC_DATA_DIR=str(tmp_path / "worker"),
        RTCC_DATABASE__URL=s.database_url,
        RTCC_BUS__ENGINE="nats",
        RTCC_BUS__NATS_URL=s.bus.nats_url,
        RTCC_BUS__STREAM=s.bus.stream,
        RTCC_SECURITY__SECRET_KEY=s.security.secret_key,
        RTCC_LOG_LEVEL="INFO",
    )
    exe = str(Path(sys.executable).parent / "rtcc")
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [exe, "worker", "recorder"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        for log in logs
    ]
    try:

        async def workers_ready() -> bool:
            return all("running on bus nats" in log.read_text() for log in logs)

        await eventually(workers_ready, timeout=60, what="both workers connected")
        total = 0
        for _ in range(40):
            r = await send(running.http, key, [pulse("ac-w1") for _ in range(50)])
            assert r.status_code == 202, r.text
            total += 50

        async def all_stored() -> bool:
            return _stored(s.database_url) == total

        await eventually(all_stored, timeout=60, what=f"{total} events stored by the workers")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(30)
        await admin.aclose()
    texts = [log.read_text() for log in logs]
    written = []
    for t in texts:
        line = [ln for ln in t.splitlines() if "recorder stopped: wrote" in ln]
        assert line, t[-2000:]
        written.append(int(line[-1].split("wrote ")[1].split()[0]))
    assert sum(written) >= total  # at least once
    assert all(n > 0 for n in written), f"both workers took part: {written}"
    assert _stored(s.database_url) == total  # exactly once in the store
