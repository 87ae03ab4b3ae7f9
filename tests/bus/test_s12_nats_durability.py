"""NATS bus durability: store outages delay messages, a lost stream comes back, no JetStream is named.

* A handler failing *transiently* (store down: SQLAlchemy ``OperationalError``,
  ``ConnectionError``, ``rtcc.errors.Unavailable``, ...) keeps its message for as
  long as that lasts; only non-transient failures count against ``max_deliver``.
* A server that lost its JetStream data (restart without the store, stream
  deleted) gets the stream and the durable consumers back; readiness is false
  until then.
* A server without JetStream is refused with a message that says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
import sqlalchemy.exc
from nats.js import api

from rtcc.bus.base import is_transient
from rtcc.bus.nats import NatsBus, durable_name
from rtcc.errors import Unavailable
from tests.bus.support import BusEnv, Collector
from tests.helpers import eventually

pytestmark = pytest.mark.nats


def _operational() -> Exception:
    return sqlalchemy.exc.OperationalError(
        "INSERT INTO events ...", {}, Exception("connection to server at 127.0.0.1 failed: refused")
    )


TRANSIENT: dict[str, Callable[[], Exception]] = {
    "sqlalchemy-operational": _operational,
    "connection-refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "unavailable": lambda: Unavailable("the store is down"),
}


class Scripted:
    """A handler whose n-th delivery of each payload raises ``script[n-1]`` (then succeeds)."""

    def __init__(self, script: list[Callable[[], Exception]]) -> None:
        self.script = script
        self.got = Collector()

    async def __call__(self, subject: str, payload: bytes) -> None:
        n = self.got.attempts.get(payload, 0) + 1
        if n <= len(self.script):
            self.got.attempts[payload] = n
            raise self.script[n - 1]()
        await self.got(subject, payload)  # counts the attempt and records the delivery


@pytest.fixture
async def tuned(nats_env: BusEnv) -> AsyncIterator[NatsBus]:
    """A bus on the test stream with ``max_deliver=2`` and short retry delays."""
    assert nats_env.url is not None and nats_env.stream is not None
    bus = NatsBus(
        nats_env.url,
        stream=nats_env.stream,
        subjects=(f"{nats_env.prefix}.>",),
        max_age_s=3600,
        max_deliver=2,
        fetch_timeout_s=0.5,
        nak_delay_s=0.05,
        retry_delay_max_s=0.4,
        name="rtcc-test-s12",
    )
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def _consumer_info(url: str, stream: str, durable: str) -> api.ConsumerInfo:
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().consumer_info(stream, durable)
    finally:
        await nc.close()


async def _delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def _bus_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rtcc.bus.nats" and r.levelno >= logging.WARNING]


# --- transient vs poison ------------------------------------------------------------


def test_transient_errors_are_told_from_poison() -> None:
    for make in TRANSIENT.values():
        assert is_transient(make())
    assert is_transient(TimeoutError())
    assert is_transient(sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("closed")))
    assert is_transient(ExceptionGroup("batch", [ConnectionResetError(), TimeoutError()]))
    assert not is_transient(ExceptionGroup("batch", [ConnectionResetError(), ValueError()]))
    assert not is_transient(ValueError("bad payload"))
    assert not is_transient(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_transient(RuntimeError("bug"))


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
async def test_a_store_outage_only_delays_messages(
    tuned: NatsBus, nats_env: BusEnv, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Six transient failures per message with max_deliver=2: every message still gets handled."""
    caplog.set_level(logging.DEBUG, logger="rtcc.bus.nats")
    handler = Scripted([TRANSIENT[kind]] * 6)
    subject = nats_env.subject("plate")
    await tuned.subscribe(subject, handler, group="recorder")
    payloads = [f"read-{i}".encode() for i in range(3)]
    for p in payloads:
        await tuned.publish(subject, p)

    await handler.got.wait_payloads(*payloads)

    assert sorted(handler.got.payloads) == payloads
    assert all(handler.got.attempts[p] == 7 for p in payloads)
    # one warning for the outage, no traceback per message; and a line when it is over
    warnings = _bus_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "transient" in warnings[0].getMessage() and warnings[0].exc_info is None
    assert any("succeed again" in r.getMessage() for r in caplog.records)
    # the server does not give up on its own
    assert nats_env.stream is not None and nats_env.url is not None
    info = await _consumer_info(nats_env.url, nats_env.stream, durable_name("recorder", subject))
    assert info.config.max_deliver == -1


async def test_a_poison_message_is_still_given_up_after_max_deliver(
    tuned: NatsBus, nats_env: BusEnv, caplog: pytest.LogCaptureFixture
) -> None:
    assert nats_env.stream is not None and nats_env.url is not None
    handler = Scripted([lambda: ValueError("not a plate read")] * 100)
    subject = nats_env.subject("plate")
    durable = durable_name("recorder", subject)
    await tuned.subscribe(subject, handler, group="recorder")
    await tuned.publish(subject, b"poison")

    async def given_up() -> bool:
        info = await _consumer_info(nats_env.url or "", nats_env.stream or "", durable)
        return info.num_ack_pending == 0 and info.ack_floor is not None and info.ack_floor.stream_seq == 1

    await eventually(given_up, what="the poison message to be given up")
    assert handler.got.attempts[b"poison"] == 2
    assert any("giving up" in r.getMessage() for r in _bus_warnings(caplog))


async def test_transient_failures_do_not_count_against_max_deliver(tuned: NatsBus, nats_env: BusEnv) -> None:
    """Three outage failures, then one real failure, then success: max_deliver=2 is not reached."""
    handler = Scripted([_operational, _operational, _operational, lambda: ValueError("flaky")])
    subject = nats_env.subject("pulse")
    await tuned.subscribe(subject, handler, group="acoustic")
    await tuned.publish(subject, b"pulse-1")

    await handler.got.wait_payloads(b"pulse-1")
    assert handler.got.attempts[b"pulse-1"] == 5


async def test_an_existing_consumer_loses_its_server_side_limit(nats_env: BusEnv) -> None:
    """A durable consumer created by an older version (max_deliver=5) is updated on subscribe."""
    assert nats_env.stream is not None and nats_env.url is not None
    subject = nats_env.subject("heartbeat")
    durable = durable_name("health", subject)
    nc = await nats.connect(nats_env.url)
    try:
        await nc.jetstream().add_consumer(
            nats_env.stream,
            api.ConsumerConfig(
                name=durable,
                durable_name=durable,
                filter_subject=subject,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=30,
                max_deliver=5,
                deliver_policy=api.DeliverPolicy.ALL,
            ),
        )
    finally:
        await nc.close()
    got = Collector()
    await nats_env.bus.subscribe(subject, got, group="health")
    info = await _consumer_info(nats_env.url, nats_env.stream, durable)
    assert info.config.max_deliver == -1


# --- a lost stream ---------------------------------------------------------------------


async def test_a_deleted_stream_makes_the_bus_unready_until_it_is_back(
    nats_env: BusEnv, caplog: pytest.LogCaptureFixture
) -> None:
    assert nats_env.stream is not None and nats_env.url is not None
    bus = nats_env.bus
    got = Collector()
    subject = nats_env.subject("plate")
    await bus.subscribe(subject, got, group="recorder")
    await bus.publish(subject, b"before")
    await got.wait_payloads(b"before")
    assert await bus.healthy()

    await _delete_stream(nats_env.url, nats_env.stream)

    assert not await bus.healthy()  # the readiness check sees the stream is gone ...
    await eventually(bus.healthy, what="the bus to re-create the stream")  # ... and puts it back
    info = await _consumer_info(nats_env.url, nats_env.stream, durable_name("recorder", subject))
    assert info.config.max_deliver == -1
    await bus.publish(subject, b"after")
    await got.wait_payloads(b"after")
    assert any("was missing" in r.getMessage() for r in _bus_warnings(caplog))


async def test_a_publish_that_finds_no_stream_recreates_it(nats_env: BusEnv) -> None:
    assert nats_env.stream is not None and nats_env.url is not None
    bus = nats_env.bus
    got = Collector()
    subject = nats_env.subject("pulse")
    await bus.subscribe(subject, got, group="acoustic")
    await _delete_stream(nats_env.url, nats_env.stream)

    await asyncio.gather(*(bus.publish(subject, f"p{i}".encode()) for i in range(5)))

    await got.wait_payloads(*(f"p{i}".encode() for i in range(5)))
    with pytest.raises(Unavailable, match="no JetStream stream stores"):
        await bus.publish("elsewhere.x", b"outside the stream")  # still refused, no retry loop


# --- private nats-servers ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nats_server() -> Iterator[Callable[..., Awaitable[subprocess.Popen[bytes]]]]:
    """Start private nats-servers: ``await start(port, *args)``; all stopped at teardown."""
    binary = shutil.which("nats-server")
    if binary is None:
        if os.environ.get("RTCC_REQUIRE_SERVICES") == "1":
            pytest.fail("nats-server is not on PATH but RTCC_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not on PATH")
    procs: list[subprocess.Popen[bytes]] = []

    async def start(port: int, *args: str) -> subprocess.Popen[bytes]:
        cmd = [binary, "-a", "127.0.0.1", "-p", str(port), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)

        async def listening() -> bool:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            w.close()
            return True

        await eventually(listening, timeout=20, what="nats-server to listen")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def _halt(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


async def test_a_server_restarted_without_its_data_gets_the_stream_back(
    nats_server: Callable[..., Awaitable[subprocess.Popen[bytes]]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _free_port()
    server = await nats_server(port, "-js", "-sd", str(tmp_path / "js-before"))
    bus = NatsBus(f"nats://127.0.0.1:{port}", stream="LOST", subjects=("rtcctest.>",), fetch_timeout_s=0.5)
    try:
        await bus.start()
        got = Collector()
        await bus.subscribe("rtcctest.l.>", got, group="recorder")
        await bus.publish("rtcctest.l.a", b"before")
        await got.wait_payloads(b"before")

        _halt(server)

        async def down() -> bool:
            return not await bus.healthy()

        await eventually(down, timeout=20, what="the bus to notice the server is gone")
        await nats_server(port, "-js", "-sd", str(tmp_path / "js-after"))  # an empty store
        await eventually(bus.healthy, timeout=30, what="the bus to reconnect and re-create its stream")

        await bus.publish("rtcctest.l.b", b"after")
        await got.wait_payloads(b"after")
        assert got.payloads == [b"before", b"after"]
        assert any("was missing" in r.getMessage() for r in _bus_warnings(caplog))
    finally:
        await bus.stop()


async def test_a_server_without_jetstream_is_named(
    nats_server: Callable[..., Awaitable[subprocess.Popen[bytes]]],
) -> None:
    port = _free_port()
    await nats_server(port)  # no -js
    bus = NatsBus(f"nats://127.0.0.1:{port}", stream="RTCCAUDIT", subjects=("rtcctest.>",))
    with pytest.raises(Unavailable) as info:  # the CLI exits 3 on Unavailable
        await bus.start()
    msg = str(info.value)
    assert "JetStream is not enabled" in msg and "-js" in msg and f":{port}" in msg
    assert "None" not in msg
    assert not await bus.healthy()
    await bus.stop()


async def test_a_long_outage_logs_a_line_a_minute(
    tuned: NatsBus, nats_env: BusEnv, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it lasts, an outage is logged every ``outage_log_every_s`` (a minute; here at once)."""
    from rtcc.bus.nats_consumers import _GroupConsumer

    monkeypatch.setattr(_GroupConsumer, "outage_log_every_s", 0.0)
    handler = Scripted([_operational] * 3)
    subject = nats_env.subject("plate")
    await tuned.subscribe(subject, handler, group="recorder")
    await tuned.publish(subject, b"read")

    await handler.got.wait_payloads(b"read")
    messages = [r.getMessage() for r in _bus_warnings(caplog)]
    assert len(messages) == 3, messages  # the start, then one per further failure
    assert "still fail" in messages[1] and "still fail" in messages[2]
