"""The bus contract: what every engine (memory, NATS JetStream) guarantees.

Ordering within one subscription is used to prove *absence*: after the
messages under test, a sentinel is published on the same subscription, and
once the sentinel has arrived everything published before it has been seen
(memory queues are FIFO; a core NATS subscription and a single-member pull
consumer deliver in publish order). No assertion depends on timing.
"""

from __future__ import annotations

import asyncio

import pytest

from rtcc.bus import Bus, BusStats
from tests.bus.support import BusEnv, Collector
from tests.helpers import eventually

MODES = ["broadcast", "group"]


def group_for(mode: str, name: str = "g") -> str | None:
    return None if mode == "broadcast" else name


async def stats_where(bus: Bus, pred: object, what: str) -> BusStats:
    """Wait until ``pred(bus.stats())`` holds (stats move after handlers return)."""

    async def probe() -> BusStats | None:
        s = bus.stats()
        return s if pred(s) else None  # type: ignore[operator]

    return await eventually(probe, timeout=20, what=what)


@pytest.mark.parametrize("mode", MODES)
async def test_publish_subscribe_delivers_subject_and_payload(env: BusEnv, mode: str) -> None:
    got = Collector()
    await env.bus.subscribe(env.subject("events", "pulse"), got, group=group_for(mode))
    await env.bus.publish(env.subject("events", "pulse"), b'{"n":1}')
    await got.wait_for(lambda: len(got.items) == 1)
    assert got.items == [(env.subject("events", "pulse"), b'{"n":1}')]


@pytest.mark.parametrize("mode", MODES)
async def test_wildcards_match_one_token_and_the_rest(env: BusEnv, mode: str) -> None:
    star, rest = Collector(), Collector()
    await env.bus.subscribe(env.subject("sensors", "*", "pulse"), star, group=group_for(mode, "star"))
    await env.bus.subscribe(env.subject("events", ">"), rest, group=group_for(mode, "rest"))
    published = [
        env.subject("sensors", "s1", "pulse"),  # star
        env.subject("sensors", "s1", "heartbeat"),  # neither
        env.subject("sensors", "s1", "x", "pulse"),  # neither: * is exactly one token
        env.subject("events", "a"),  # rest
        env.subject("events", "a", "b"),  # rest
        env.subject("eventsx", "a"),  # neither
        env.subject("sensors", "s2", "pulse"),  # star (sentinel)
        env.subject("events", "end"),  # rest (sentinel)
    ]
    for i, subject in enumerate(published):
        await env.bus.publish(subject, str(i).encode())
    await star.wait_payloads(b"6")
    await rest.wait_payloads(b"7")
    assert star.items == [(published[0], b"0"), (published[6], b"6")]
    assert rest.items == [(published[3], b"3"), (published[4], b"4"), (published[7], b"7")]


async def test_broadcast_every_subscriber_gets_every_message(env: BusEnv) -> None:
    a, b = Collector(), Collector()
    subject = env.subject("events", "alert")
    await env.bus.subscribe(subject, a)
    await env.bus.subscribe(subject, b)
    payloads = [str(i).encode() for i in range(10)]
    for p in payloads:
        await env.bus.publish(subject, p)
    await a.wait_payloads(*payloads)
    await b.wait_payloads(*payloads)
    assert a.payloads == payloads
    assert b.payloads == payloads


async def test_queue_group_members_share_each_message_once(env: BusEnv) -> None:
    subject = env.subject("events", "pulse")
    a = Collector()
    b = Collector(share_with=a)
    await env.bus.subscribe(subject, a, group="workers")
    other = await env.peer()  # a second process on NATS
    await other.subscribe(subject, b, group="workers")
    payloads = [str(i).encode() for i in range(40)]
    for p in payloads:
        await env.bus.publish(subject, p)

    await a.wait_for(lambda: len(set(a.payloads) | set(b.payloads)) == len(payloads))
    assert set(a.payloads) | set(b.payloads) == set(payloads)
    assert not set(a.payloads) & set(b.payloads), "a message was handled by both members"
    # no failures here, so no redelivery either: each handled exactly once
    assert len(a.payloads) + len(b.payloads) == len(payloads)


async def test_group_members_in_one_process_work_concurrently(env: BusEnv) -> None:
    """Five members of a group each hold a message at the same time (no member waits for another)."""
    subject = env.subject("events", "pulse")
    holding = Collector()
    inside = 0

    async def member(subject: str, payload: bytes) -> None:
        nonlocal inside
        inside += 1
        await holding(subject, payload)
        # returns only once all five are inside together: deadlocks if run one at a time
        await holding.wait_for(lambda: inside >= 5, "five handlers at once")

    for _ in range(5):
        await env.bus.subscribe(subject, member, group="recorder")
    payloads = [str(i).encode() for i in range(5)]
    for p in payloads:
        await env.bus.publish(subject, p)
    await holding.wait_payloads(*payloads)
    assert sorted(holding.payloads) == payloads


async def test_stopping_many_idle_members_one_by_one_is_prompt(env: BusEnv) -> None:
    """Like the recorder's stop(): 200 members stopped in turn (a ceiling, not a timing test)."""
    subject = env.subject("events", "pulse")
    got = Collector()
    subs = [await env.bus.subscribe(subject, got, group="recorder") for _ in range(200)]
    await env.bus.publish(subject, b"x")
    await got.wait_payloads(b"x")

    async def stop_all() -> None:
        for sub in subs:
            await sub.stop()

    await asyncio.wait_for(stop_all(), 30)
    sentinel = Collector()
    await env.bus.subscribe(subject, sentinel, group="recorder")  # the group goes on
    await env.bus.publish(subject, b"y")
    await sentinel.wait_payloads(b"y")
    assert got.payloads == [b"x"]


async def test_two_groups_each_get_every_message(env: BusEnv) -> None:
    subject = env.subject("events", "plate_read")
    a, b = Collector(), Collector()
    await env.bus.subscribe(subject, a, group="recorder")
    await env.bus.subscribe(subject, b, group="health")
    payloads = [str(i).encode() for i in range(10)]
    for p in payloads:
        await env.bus.publish(subject, p)
    await a.wait_payloads(*payloads)
    await b.wait_payloads(*payloads)
    assert sorted(a.payloads) == sorted(payloads)
    assert sorted(b.payloads) == sorted(payloads)


async def test_handler_error_means_redelivery_and_is_counted(env: BusEnv) -> None:
    subject = env.subject("events", "shot_located")
    flaky = Collector(fail_times=1)
    await env.bus.subscribe(subject, flaky, group="locator")
    await env.bus.publish(subject, b"bang")
    await flaky.wait_payloads(b"bang")
    assert flaky.attempts[b"bang"] == 2
    assert flaky.payloads == [b"bang"]
    s = await stats_where(env.bus, lambda s: s.redelivered >= 1 and s.delivered >= 1, "redelivery stats")
    assert s.redelivered >= 1
    if env.engine == "nats":
        # NATS counts every raise; the memory engine counts only messages it gave up on
        assert s.handler_errors >= 1


@pytest.mark.parametrize("mode", MODES)
async def test_stopped_subscription_gets_nothing_more(env: BusEnv, mode: str) -> None:
    subject = env.subject("events", "alert")
    stopped, sentinel = Collector(), Collector()
    sub = await env.bus.subscribe(subject, stopped, group=group_for(mode, "stopped"))
    await env.bus.subscribe(subject, sentinel, group=group_for(mode, "sentinel"))
    await env.bus.publish(subject, b"before")
    await stopped.wait_payloads(b"before")
    await sub.stop()
    await sub.stop()  # idempotent
    await env.bus.publish(subject, b"after")
    await sentinel.wait_payloads(b"before", b"after")
    assert stopped.payloads == [b"before"]


async def test_stats_counters_move(env: BusEnv) -> None:
    subject = env.subject("events", "device_heartbeat")
    before = env.bus.stats()
    got = Collector()
    await env.bus.subscribe(subject, got, group="health")
    for i in range(5):
        await env.bus.publish(subject, str(i).encode())
    await got.wait_for(lambda: len(got.items) == 5)
    s = await stats_where(env.bus, lambda s: s.delivered >= before.delivered + 5, "delivered count")
    assert s.published == before.published + 5
    entries = [v for k, v in s.per_subscription.items() if k.startswith("health|")]
    assert entries and entries[0]["delivered"] == 5


async def test_invalid_subjects_are_refused(env: BusEnv) -> None:
    for bad in ["", "a..b", "a.*", "a.>", "a b"]:
        with pytest.raises(ValueError):
            await env.bus.publish(bad, b"x")


async def test_publish_before_start_is_an_error(env: BusEnv) -> None:
    fresh = type(env.bus)()
    with pytest.raises(RuntimeError):
        await fresh.publish(env.subject("x"), b"x")


# --- memory engine only ---------------------------------------------------------


async def test_memory_full_queue_drops_and_counts() -> None:
    from rtcc.bus.memory import MemoryBus

    bus = MemoryBus(queue_size=2)
    await bus.start()
    release = Collector()
    gate_open = False

    async def slow(subject: str, payload: bytes) -> None:
        await release.wait_for(lambda: gate_open, "the gate")
        await release(subject, payload)

    try:
        await bus.subscribe("rtcctest.slow", slow)
        for i in range(6):  # 1 in the handler, 2 queued, the rest dropped
            await bus.publish("rtcctest.slow", str(i).encode())
        s = bus.stats()
        assert s.published == 6
        assert s.dropped >= 1
        (entry,) = s.per_subscription.values()
        assert entry["dropped"] == s.dropped
        assert entry["capacity"] == 2

        async with release._cond:
            gate_open = True
            release._cond.notify_all()
        await release.wait_for(lambda: len(release.items) == 6 - s.dropped, "the kept messages")
        assert bus.stats().delivered + bus.stats().dropped == 6
    finally:
        await bus.stop()


async def test_memory_does_not_deduplicate_msg_id(memory_env: BusEnv) -> None:
    """The in-process engine ignores ``msg_id``: a repeated publish is delivered twice.

    That is why handlers are idempotent (events carry ids); only JetStream
    drops duplicates, and only for queue groups.
    """
    got = Collector()
    subject = memory_env.subject("events", "pulse")
    await memory_env.bus.subscribe(subject, got, group="g")
    await memory_env.bus.publish(subject, b"once", msg_id="id-1")
    await memory_env.bus.publish(subject, b"once", msg_id="id-1")
    await got.wait_for(lambda: len(got.items) == 2)
