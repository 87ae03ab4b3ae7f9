"""The shared micro-batcher: batch boundaries, ordering, failure isolation, stop, concurrency."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from rtcc.bodycam.acks import AckBatcher
from rtcc.bus.memory import MemoryBus
from rtcc.events import DeviceCommandAck, Position, Pulse
from rtcc.ingest.recorder import Recorder
from rtcc.metrics import Metrics
from rtcc.settings import Settings
from rtcc.store import Store, count_events
from rtcc.store.batcher import BatcherClosed, MicroBatcher, window_end
from rtcc.store.tables import AuditEntry
from tests.helpers import eventually

from .conftest import DIALECTS

LONG = 3600.0  # a wait no test reaches: only size or stop can flush
GUARD = 30.0  # a test waiting this long for a result has failed (hang guard, not a timing assertion)


class Writer:
    """A write function that records every batch and can fail, block or miscount on demand."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail_on: set[int] = set()
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.short_by = 0

    async def __call__(self, items: list[int]) -> list[str]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
            self.batches.append(list(items))
            if self.fail_on & set(items):
                raise OSError(f"disk full writing {items}")
            return [f"r{i}" for i in items][: len(items) - self.short_by]
        finally:
            self.in_flight -= 1

    @property
    def written(self) -> list[int]:
        return [i for b in self.batches for i in b]


def batcher(writer: Writer, *, max_items: int = 100, max_wait_s: float = LONG) -> MicroBatcher[int, str]:
    b: MicroBatcher[int, str] = MicroBatcher(writer, max_items=max_items, max_wait_s=max_wait_s, name="test")
    b.start()
    return b


async def stop(b: MicroBatcher[int, str]) -> None:
    await asyncio.wait_for(b.stop(), GUARD)


async def settle(b: MicroBatcher[int, str], n: int) -> None:
    """Let ``n`` just-created submitters queue their items."""
    for _ in range(50):
        if b.pending >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {b.pending} of {n} items were queued")


async def test_each_caller_gets_its_own_result_in_submission_order() -> None:
    w = Writer()
    b = batcher(w, max_items=4, max_wait_s=0.005)
    results = await asyncio.wait_for(asyncio.gather(*(b.submit(i) for i in range(10))), GUARD)
    await stop(b)
    assert results == [f"r{i}" for i in range(10)]
    assert w.written == list(range(10))
    assert all(len(batch) <= 4 for batch in w.batches)


async def test_a_full_batch_is_written_without_waiting_and_the_rest_waits() -> None:
    w = Writer()
    b = batcher(w, max_items=3)  # max_wait is an hour: only size can flush before stop()
    tasks = [asyncio.create_task(b.submit(i)) for i in range(7)]
    done = await asyncio.wait_for(asyncio.gather(*tasks[:6]), GUARD)
    assert done == [f"r{i}" for i in range(6)]
    assert w.batches == [[0, 1, 2], [3, 4, 5]]
    assert b.pending == 1 and not tasks[6].done()
    await stop(b)
    assert await tasks[6] == "r6"
    assert w.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_a_partial_batch_is_written_at_the_end_of_its_max_wait_window() -> None:
    w = Writer()
    b = batcher(w, max_items=1000, max_wait_s=0.01)
    results = await asyncio.wait_for(asyncio.gather(b.submit(1), b.submit(2), b.submit(3)), GUARD)
    assert list(results) == ["r1", "r2", "r3"]
    assert w.batches == [[1, 2, 3]]  # one batch, written by the timer (not by stop)
    assert await asyncio.wait_for(b.submit(4), GUARD) == "r4"  # an idle batcher wakes for a new item
    assert w.batches == [[1, 2, 3], [4]]
    await stop(b)


async def test_a_failed_batch_fails_exactly_its_callers_and_later_batches_proceed() -> None:
    w = Writer()
    w.fail_on = {2}
    b = batcher(w, max_items=2)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(6)]
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GUARD)
    assert outcomes[:2] == ["r0", "r1"] and outcomes[4:] == ["r4", "r5"]
    assert all(isinstance(o, OSError) and "disk full" in str(o) for o in outcomes[2:4])
    assert w.batches == [[0, 1], [2, 3], [4, 5]]  # the failed items were handed over once, not retried
    await stop(b)


async def test_a_write_returning_the_wrong_number_of_results_fails_its_batch() -> None:
    w = Writer()
    w.short_by = 1
    b = batcher(w, max_items=2)
    outcomes = await asyncio.wait_for(asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True), GUARD)
    assert all(isinstance(o, ValueError) and "1 results for 2 items" in str(o) for o in outcomes)
    await stop(b)


async def test_stop_writes_every_accepted_item_then_refuses_new_ones() -> None:
    w = Writer()
    b = batcher(w, max_items=100)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(5)]
    await settle(b, 5)
    assert w.batches == []
    await stop(b)
    assert [t.result() for t in tasks] == [f"r{i}" for i in range(5)]
    assert w.batches == [[0, 1, 2, 3, 4]]
    assert not b.running
    with pytest.raises(BatcherClosed):
        await b.submit(9)
    assert w.written == [0, 1, 2, 3, 4]


async def test_stop_lets_the_batch_in_flight_finish_before_writing_the_rest() -> None:
    w = Writer()
    w.gate = asyncio.Event()
    b = batcher(w, max_items=2)
    first = [asyncio.create_task(b.submit(i)) for i in range(2)]
    await asyncio.wait_for(w.started.wait(), GUARD)  # batch [0, 1] is in the write, held at the gate
    later = [asyncio.create_task(b.submit(i)) for i in range(2, 5)]
    await settle(b, 3)
    stopping = asyncio.create_task(b.stop())
    await asyncio.sleep(0)
    assert not stopping.done() and w.batches == []
    with pytest.raises(BatcherClosed):
        await b.submit(99)  # refused while stopping
    w.gate.set()
    await asyncio.wait_for(stopping, GUARD)
    assert [t.result() for t in first + later] == [f"r{i}" for i in range(5)]
    assert w.batches == [[0, 1], [2, 3], [4]]
    assert w.most_in_flight == 1


async def test_an_item_whose_caller_gave_up_is_still_written_once() -> None:
    w = Writer()
    b = batcher(w, max_items=3)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(2)]
    await settle(b, 2)
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await asyncio.wait_for(b.submit(2), GUARD) == "r2"  # completes the batch of three
    assert tasks[1].result() == "r1"
    assert w.batches == [[0, 1, 2]]
    await stop(b)
    assert w.written == [0, 1, 2]


async def test_a_batcher_that_is_not_started_refuses_items() -> None:
    b: MicroBatcher[int, str] = MicroBatcher(Writer(), max_items=2, max_wait_s=0.01, name="test")
    with pytest.raises(BatcherClosed, match="test is not running"):
        await b.submit(1)
    await b.stop()  # stopping a batcher that never started is harmless


async def test_cancelling_the_worker_fails_the_waiting_callers_instead_of_leaving_them_hanging() -> None:
    w = Writer()
    w.gate = asyncio.Event()
    b = batcher(w, max_items=1)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(3)]
    await asyncio.wait_for(w.started.wait(), GUARD)  # item 0 is in the write; 1 and 2 wait
    assert b._task is not None
    b._task.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GUARD)
    assert all(isinstance(o, BatcherClosed) for o in outcomes)
    assert b.pending == 0 and not b.running


async def test_many_concurrent_callers_every_item_written_exactly_once() -> None:
    rng = random.Random(7)
    w = Writer()
    w.fail_on = {137, 911}
    b = batcher(w, max_items=25, max_wait_s=0.002)

    queued: list[int] = []

    async def caller(i: int) -> str:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        queued.append(i)  # submit() queues before its first suspension
        return await b.submit(i)

    n = 2000
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(caller(i) for i in range(n)), return_exceptions=True), GUARD
    )
    await stop(b)
    assert sorted(w.written) == list(range(n))  # none lost, none twice
    assert w.most_in_flight == 1 and max(len(batch) for batch in w.batches) <= 25
    failed = {i for batch in w.batches if w.fail_on & set(batch) for i in batch}
    for i, out in enumerate(outcomes):
        if i in failed:
            assert isinstance(out, OSError)
        else:
            assert out == f"r{i}"
    assert queued != sorted(queued)  # the callers did interleave ...
    assert w.written == queued  # ... and items were written in the order they were submitted


@pytest.mark.parametrize("window", [0.01, 0.02, 0.25, 3600.0])
def test_a_window_ends_after_each_of_its_items_and_at_most_one_window_later(window: float) -> None:
    rng = random.Random(3)
    for _ in range(2000):
        since = rng.uniform(0, 1e5)
        end = window_end(since, window)
        assert since < end <= since + window * (1 + 1e-9)
        later = rng.uniform(since, end)  # an item arriving later in the same window ...
        assert later >= end or window_end(later, window) == end  # ... is written with it
    assert window_end(123.4, 0.0) == 123.4  # no window: at once


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="max_items"):
        MicroBatcher(Writer(), max_items=0, max_wait_s=0.01, name="x")
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(Writer(), max_items=1, max_wait_s=-1, name="x")


@pytest.mark.parametrize("store", DIALECTS, indirect=True)
async def test_the_recorder_writes_full_batches_at_once_and_the_rest_on_stop(store: Store) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    pulses = [
        Pulse(
            source="ac-1",
            device="ac-1",
            occurred_at=t0 + timedelta(seconds=i),
            pos=Position(lat=33.5186, lon=-86.8104),
            peak_db=120.0,
            snr_db=30.0,
            duration_ms=2.0,
        )
        for i in range(10)
    ]
    bus = MemoryBus()
    await bus.start()
    metrics = Metrics()
    rec = Recorder(store, bus, metrics, members=12, batch_size=4, linger_s=LONG)  # only size or stop flush
    await rec.start()
    try:
        for p in [*pulses, pulses[3]]:  # ten events and one redelivered copy
            await bus.publish(p.subject, p.to_json(), msg_id=str(p.event_id))
        await bus.publish(pulses[0].subject, b'{"type": "pulse"}')  # malformed: dropped, not batched

        async def two_batches() -> bool:
            return metrics.get("recorder_written") + metrics.get("recorder_duplicates") == 8

        await eventually(two_batches, what="two full batches of four written")
        assert await store.read(count_events) == 8 - metrics.get("recorder_duplicates")
    finally:
        await rec.stop()  # the three waiting events are written, not dropped
        await bus.stop()
    assert await store.read(count_events) == 10
    assert metrics.get("recorder_written") == 10 and metrics.get("recorder_duplicates") == 1
    assert metrics.get("recorder_malformed") == 1 and metrics.get("recorder_errors") == 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_stopping_the_ack_batcher_applies_and_audits_the_acks_handed_to_it(store: Store) -> None:
    bus = MemoryBus()
    await bus.start()
    metrics = Metrics()
    center = SimpleNamespace(settings=Settings(), store=store, bus=bus, metrics=metrics)
    acks = AckBatcher(center, max_batch=100, linger_s=LONG)  # only stop() can flush
    acks.start()
    sent = [DeviceCommandAck(source="bc-1", device="bc-1", command_id=uuid.uuid4()) for _ in range(3)]
    tasks = [asyncio.create_task(acks.submit(a)) for a in sent]
    for _ in range(50):
        await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    await asyncio.wait_for(acks.stop(), GUARD)
    await bus.stop()
    assert [t.result().result for t in tasks] == ["unknown"] * 3  # applied (as unknown commands) ...
    audited = await store.read(
        lambda s: s.scalars(select(AuditEntry.record_id).where(AuditEntry.action == "bodycam_ack")).all()
    )
    assert len(audited) == 3 and set(audited) == {str(a.command_id) for a in sent}  # ... and audited, once
    assert metrics.get("bodycam_acks", result="unknown") == 3
    with pytest.raises(BatcherClosed):
        await acks.submit(sent[0])
