"""NATS JetStream engine specifics: dedupe, durability across restarts, MQTT, errors."""

from __future__ import annotations

import asyncio
import doctest
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from rtcc.bus import make_bus
from rtcc.bus.nats import NatsBus, durable_name, mqtt_topic_to_subject, redact_url
from rtcc.errors import Unavailable
from tests.bus.support import BusEnv, Collector
from tests.helpers import eventually

# --- no server needed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("rtcc/sensors/s1/pulse", "rtcc.sensors.s1.pulse"),
        ("rtcc/sensors/+/#", "rtcc.sensors.*.>"),
        ("/a", "/.a"),
        ("a/", "a./"),
        ("a//b", "a./.b"),
        ("single", "single"),
    ],
)
def test_mqtt_topic_to_subject(topic: str, subject: str) -> None:
    assert mqtt_topic_to_subject(topic) == subject


@pytest.mark.parametrize("topic", ["", "a.b/c", "a b"])
def test_mqtt_topic_to_subject_refuses_what_the_server_refuses(topic: str) -> None:
    with pytest.raises(ValueError):
        mqtt_topic_to_subject(topic)


def test_durable_name_is_valid_and_distinct_per_subject() -> None:
    a = durable_name("rtcc.workers >*", "rtcc.events.>")
    b = durable_name("rtcc.workers >*", "rtcc.sensors.>")
    assert a != b
    for name in (a, b):
        assert not any(c in name for c in ".*> ")
        assert name.startswith("rtcc_workers___-")
    assert durable_name("workers", "rtcc.events.>") == durable_name("workers", "rtcc.events.>")


def test_module_doctests_pass() -> None:
    import rtcc.bus.nats
    import rtcc.bus.nats_subjects

    attempted = 0
    for module in (rtcc.bus.nats, rtcc.bus.nats_subjects):
        result = doctest.testmod(module)
        assert result.failed == 0
        attempted += result.attempted
    assert attempted >= 3


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://rtcc:s3cret@nats.example:4222", "nats://rtcc:***@nats.example:4222"),
        ("nats://t0ken@nats.example:4222", "nats://***@nats.example:4222"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
    ],
)
def test_urls_in_messages_hide_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert NatsBus(f"{url},nats://other:4222").url == f"{shown},nats://other:4222"


def test_from_settings_maps_the_bus_section() -> None:
    from rtcc.settings import BusSettings

    bus = NatsBus.from_settings(
        BusSettings(engine="nats", nats_url="nats://a:1,nats://b:2", stream="S", max_deliver=7),
        fetch_batch=8,
    )
    assert bus.servers == ["nats://a:1", "nats://b:2"]
    assert (bus.stream, bus.max_deliver, bus.fetch_batch, bus.ack_wait_s) == ("S", 7, 8, 30.0)


def test_make_bus_builds_nats_engine() -> None:
    bus = make_bus("nats", servers="nats://127.0.0.1:1,nats://127.0.0.1:2", stream="S1")
    assert isinstance(bus, NatsBus)
    assert bus.engine == "nats"
    assert bus.servers == ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]


def test_bad_configuration_is_refused_early() -> None:
    with pytest.raises(ValueError):
        NatsBus(stream="has.dot")
    with pytest.raises(ValueError):
        NatsBus(servers=" , ")
    with pytest.raises(ValueError):
        NatsBus(subjects=("a..b",))


async def test_unreachable_server_is_unavailable_naming_the_setting() -> None:
    bus = NatsBus("nats://127.0.0.1:1", connect_attempts=1, connect_timeout_s=1)
    with pytest.raises(Unavailable) as info:
        await bus.start()
    msg = str(info.value)
    assert "nats://127.0.0.1:1" in msg
    assert "bus.nats_url" in msg and "RTCC_BUS__NATS_URL" in msg
    assert not await bus.healthy()
    await bus.stop()  # harmless when never started


# --- against nats-server ----------------------------------------------------------


@pytest.mark.nats
async def test_healthy_follows_the_connection(nats_env: BusEnv) -> None:
    assert await nats_env.bus.healthy()
    await nats_env.bus.stop()
    assert not await nats_env.bus.healthy()


@pytest.mark.nats
async def test_start_is_idempotent_and_stream_is_reused(nats_env: BusEnv) -> None:
    await nats_env.bus.start()
    peer = await nats_env.peer()  # finds the stream as configured: no update needed
    assert await peer.healthy()


@pytest.mark.nats
async def test_same_msg_id_is_delivered_once_to_a_group(nats_env: BusEnv) -> None:
    subject = nats_env.subject("events", "pulse")
    got = Collector()
    await nats_env.bus.subscribe(subject, got, group="dedupe")
    await nats_env.bus.publish(subject, b"dup", msg_id="event-1")
    await nats_env.bus.publish(subject, b"dup", msg_id="event-1")  # dropped by the stream
    await nats_env.bus.publish(subject, b"sentinel", msg_id="event-2")
    await got.wait_payloads(b"sentinel")
    assert got.payloads == [b"dup", b"sentinel"]
    assert nats_env.bus.stats().published == 3  # publishes attempted and acknowledged


@pytest.mark.nats
async def test_broadcast_subscribers_see_duplicates(nats_env: BusEnv) -> None:
    """Core NATS delivers before the stream deduplicates: broadcast gets both copies."""
    subject = nats_env.subject("events", "pulse")
    got = Collector()
    await nats_env.bus.subscribe(subject, got)
    await nats_env.bus.publish(subject, b"dup", msg_id="event-1")
    await nats_env.bus.publish(subject, b"dup", msg_id="event-1")
    await nats_env.bus.publish(subject, b"sentinel")
    await got.wait_payloads(b"sentinel")
    assert got.payloads == [b"dup", b"dup", b"sentinel"]


@pytest.mark.nats
async def test_publish_outside_the_stream_is_unavailable(nats_env: BusEnv) -> None:
    with pytest.raises(Unavailable, match="no JetStream stream stores"):
        await nats_env.bus.publish(f"rtcctest_elsewhere.{uuid.uuid4().hex}", b"x")


@pytest.mark.nats
async def test_group_outside_the_stream_is_refused(nats_env: BusEnv) -> None:
    with pytest.raises(ValueError, match="cannot create queue group"):
        await nats_env.bus.subscribe(f"rtcctest_elsewhere.{uuid.uuid4().hex}", Collector(), group="g")


@pytest.mark.nats
async def test_durable_group_survives_a_restart(nats_env: BusEnv) -> None:
    """Messages published while no member runs reach the next member of the group."""
    subject = nats_env.subject("events", "gunshot_incident")
    first = Collector()
    worker1 = await nats_env.peer()
    await worker1.subscribe(subject, first, group="workers")
    await nats_env.bus.publish(subject, b"m0")
    await first.wait_payloads(b"m0")
    await worker1.stop()  # acknowledges m0 on the way out

    missed = [f"m{i}".encode() for i in range(1, 6)]
    for p in missed:
        await nats_env.bus.publish(subject, p)  # nobody in the group is running

    second = Collector()
    worker2 = await nats_env.peer()  # "the process restarted"
    await worker2.subscribe(subject, second, group="workers")
    await second.wait_payloads(*missed)
    assert second.payloads == missed  # m0 was acknowledged before the restart
    assert first.payloads == [b"m0"]


@pytest.mark.nats
async def test_stopping_member_finishes_its_message_and_the_group_gets_the_rest(
    nats_env: BusEnv,
) -> None:
    """A member stopped mid-message finishes and acks it; the backlog goes to the group's next member."""
    subject = nats_env.subject("events", "plate_read")
    payloads = [str(i).encode() for i in range(20)]
    for p in payloads:
        await nats_env.bus.publish(subject, p)

    started = asyncio.Event()
    proceed = asyncio.Event()
    handled: list[bytes] = []

    async def slow(subject: str, payload: bytes) -> None:
        started.set()
        await proceed.wait()
        handled.append(payload)

    worker1 = await nats_env.peer()
    sub = await worker1.subscribe(subject, slow, group="workers")
    await asyncio.wait_for(started.wait(), 20)  # holds a batch, first message in hand
    stopping = asyncio.create_task(sub.stop())
    await asyncio.sleep(0)  # stop() has begun: nothing more is started
    proceed.set()
    await asyncio.wait_for(stopping, 20)
    assert len(handled) == 1

    rest = Collector()
    await nats_env.bus.subscribe(subject, rest, group="workers")
    expected = set(payloads) - set(handled)
    await rest.wait_for(lambda: expected <= set(rest.payloads), "the handed-back messages")
    assert not set(rest.payloads) & set(handled)


@pytest.mark.nats
async def test_mqtt_qos1_publish_reaches_a_queue_group(nats_env: BusEnv) -> None:
    """A device's MQTT QoS 1 publish lands in the stream and reaches a group subscription."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    port = os.environ.get("RTCC_TEST_MQTT_PORT")
    if not port:
        if os.environ.get("RTCC_REQUIRE_SERVICES") == "1":
            pytest.fail("RTCC_TEST_MQTT_PORT is not set but RTCC_REQUIRE_SERVICES=1")
        pytest.skip("RTCC_TEST_MQTT_PORT not set: start services with scripts/services.sh")
    uniq = nats_env.extra["uniq"]
    topic = f"rtcctest/{uniq}/sensors/s1/pulse"  # devices use rtcc/sensors/<id>/<kind>
    subject = mqtt_topic_to_subject(topic)
    assert subject == nats_env.subject("sensors", "s1", "pulse")

    got = Collector()
    await nats_env.bus.subscribe(subject, got, group="mqtt-bridge")

    def publish_over_mqtt() -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rtcc-test-{uniq}")
        client.connect("127.0.0.1", int(port), keepalive=30)
        client.loop_start()
        try:
            info = client.publish(topic, b'{"device_id":"s1"}', qos=1)
            info.wait_for_publish(timeout=20)
            assert info.is_published(), "the MQTT listener did not acknowledge (PUBACK)"
        finally:
            client.disconnect()
            client.loop_stop()

    await asyncio.to_thread(publish_over_mqtt)
    await got.wait_payloads(b'{"device_id":"s1"}')
    assert got.items == [(subject, b'{"device_id":"s1"}')]


@pytest.mark.nats
async def test_bus_rides_out_a_server_restart(tmp_path: Path) -> None:
    """A private nats-server goes away and comes back: the bus reconnects and consumers resume."""
    binary = shutil.which("nats-server")
    if binary is None:
        if os.environ.get("RTCC_REQUIRE_SERVICES") == "1":
            pytest.fail("nats-server is not on PATH but RTCC_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [binary, "-js", "-sd", str(tmp_path / "js"), "-a", "127.0.0.1", "-p", str(port)]

    async def serve() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def listening() -> bool:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            w.close()
            return True

        await eventually(listening, timeout=20, what="nats-server to listen")
        return proc

    def halt(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)

    server = await serve()
    bus = NatsBus(f"nats://127.0.0.1:{port}", stream="RESTART", subjects=("rtcctest.>",), fetch_timeout_s=0.5)
    try:
        await bus.start()
        grouped = Collector()
        broadcast = Collector(share_with=grouped)
        await bus.subscribe("rtcctest.r.>", grouped, group="workers")
        await bus.subscribe("rtcctest.r.>", broadcast)
        await bus.publish("rtcctest.r.a", b"before")
        await grouped.wait_for(lambda: grouped.payloads == broadcast.payloads == [b"before"])

        halt(server)

        async def down() -> bool:
            return not await bus.healthy()

        await eventually(down, timeout=20, what="the bus to notice the server is gone")
        server = await serve()  # same port, same store: the stream and consumer are still there

        async def up() -> bool:
            return await bus.healthy()

        await eventually(up, timeout=30, what="the bus to reconnect")
        await bus.publish("rtcctest.r.b", b"after")
        await grouped.wait_for(lambda: b"after" in grouped.payloads and b"after" in broadcast.payloads)
        assert grouped.payloads == [b"before", b"after"]
    finally:
        await bus.stop()
        halt(server)
