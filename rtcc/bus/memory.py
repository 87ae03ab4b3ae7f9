"""In-process bus engine: asyncio queues, bounded, with drop counters.

Each broadcast subscription owns a bounded queue and a task; a queue group
owns one bounded queue that its members' tasks share, so each message is
handled once per group.

Full queues behave like their JetStream counterparts: a queue group is
durable, so a publisher waits for room (backpressure reaches the device as a
slower answer, and nothing accepted is lost); a broadcast subscription is
best effort, like a core NATS subscriber, so the message is dropped for that
subscriber and counted (``BusStats.dropped``).

Nothing is persisted, though: messages still queued when the last member of a
queue group (or a broadcast subscriber) stops are discarded with the queue.
They are counted in ``BusStats.dropped`` too, and :meth:`MemoryBus.stop` logs
one warning with the number of queue-group messages discarded unhandled. A
clean stop of the center therefore calls :meth:`MemoryBus.drain` before it
stops the processors (:meth:`rtcc.app.Center.stop`).

A handler that raises is retried up to ``max_deliver`` times, like JetStream
redelivery, then counted as an error and logged. A *transient* failure
(:func:`rtcc.bus.base.is_transient`: the store locked or unreachable) does not
count: the message is retried with a backoff (from 0.05 s, doubling up to 2 s)
for as long as it lasts while the bus runs, with one warning per subject and
minute, as the NATS engine does; once the bus is stopping it counts like any
other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field

from rtcc.bus.base import Bus, BusStats, Handler, Subscription, is_transient, subject_matches

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    name: str
    pattern: str
    queue: asyncio.Queue[tuple[str, bytes]]
    durable: bool
    members: list[_MemorySubscription] = field(default_factory=list)
    delivered: int = 0
    dropped: int = 0


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, q: _Queue, handler: Handler) -> None:
        self._bus = bus
        self._q = q
        self._handler = handler
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bus:{self._q.name}")

    async def _run(self) -> None:
        while True:
            subject, payload = await self._q.queue.get()
            try:
                await self._deliver(subject, payload)
            finally:
                self._q.queue.task_done()

    async def _deliver(self, subject: str, payload: bytes) -> None:
        attempt, delay = 0, TRANSIENT_FIRST_DELAY_S
        while True:
            attempt += 1
            try:
                await self._handler(subject, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # the store is down or busy: not yet, not never (is_transient); but a stopping bus
                # (processors already stopped, refusing) retries no more: that would never end
                if is_transient(exc) and self._bus._started:
                    attempt -= 1
                    self._bus._stats.redelivered += 1
                    self._bus._transient(subject, exc)
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, TRANSIENT_MAX_DELAY_S)
                    continue
                if attempt == self._bus.max_deliver:
                    self._bus._stats.handler_errors += 1
                    log.exception("handler for %s failed %d times; giving up", subject, attempt)
                    return
                self._bus._stats.redelivered += 1
                await asyncio.sleep(0)
            else:
                self._q.delivered += 1
                self._bus._stats.delivered += 1
                if delay > TRANSIENT_FIRST_DELAY_S:
                    self._bus._recovered(subject)
                return

    async def stop(self) -> None:
        self._bus._detach(self._q, self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


TRANSIENT_FIRST_DELAY_S = 0.05
TRANSIENT_MAX_DELAY_S = 2.0


class MemoryBus(Bus):
    """The embedded bus: everything in one process, nothing persisted."""

    engine = "memory"

    def __init__(self, queue_size: int = 10_000, max_deliver: int = 3) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.max_deliver = max_deliver
        self._queues: dict[str, _Queue] = {}
        self._stats = BusStats()
        self._started = False
        self._counter = 0
        self._warned: dict[str, float] = {}  # subject -> loop time of its last transient warning
        self._discarded = 0  # queue-group messages discarded unhandled (not yet reported by stop)

    def _transient(self, subject: str, exc: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._warned.get(subject, -math.inf) >= 60.0:
            self._warned[subject] = now
            log.warning(
                "handler for %s cannot run yet (%s); retrying",
                subject,
                f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
            )

    def _recovered(self, subject: str) -> None:
        if self._warned.pop(subject, None) is not None:
            log.info("handler for %s runs again", subject)

    async def start(self) -> None:
        self._started = True

    async def stop(self, drain_timeout: float = 5.0) -> None:
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(q.queue.join() for q in self._queues.values())), drain_timeout
            )
        for q in list(self._queues.values()):
            for member in list(q.members):
                await member.stop()
        for q in list(self._queues.values()):  # a queue left without members (none expected)
            self._discard(q)
        self._queues.clear()
        if self._discarded:
            log.warning(
                "bus stopped: %d queued message(s) of queue groups were discarded unhandled "
                "(their processors stopped before handling them; counted in dropped)",
                self._discarded,
            )
            self._discarded = 0

    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None) -> None:
        if not self._started:
            raise RuntimeError("bus is not started")
        if not subject or any(c in subject for c in " *>") or "" in subject.split("."):
            raise ValueError(f"invalid subject {subject!r}")
        self._stats.published += 1
        for q in list(self._queues.values()):
            if subject_matches(q.pattern, subject):
                try:
                    q.queue.put_nowait((subject, payload))
                except asyncio.QueueFull:
                    if q.durable and q.members:
                        self._stats.backpressure_waits += 1
                        await q.queue.put((subject, payload))
                    else:
                        q.dropped += 1
                        self._stats.dropped += 1
        # let consumers run so a tight publish loop cannot starve them
        await asyncio.sleep(0)

    async def subscribe(self, subject: str, handler: Handler, *, group: str | None = None) -> Subscription:
        if not self._started:
            raise RuntimeError("bus is not started")
        if group is not None:
            name = f"{group}|{subject}"
            q = self._queues.get(name)
            if q is None:
                q = _Queue(name, subject, asyncio.Queue(self.queue_size), durable=True)
                self._queues[name] = q
        else:
            self._counter += 1
            name = f"~{self._counter}|{subject}"
            q = _Queue(name, subject, asyncio.Queue(self.queue_size), durable=False)
            self._queues[name] = q
        sub = _MemorySubscription(self, q, handler)
        q.members.append(sub)
        sub.start()
        return sub

    def _detach(self, q: _Queue, sub: _MemorySubscription) -> None:
        if sub in q.members:
            q.members.remove(sub)
        if not q.members:
            self._queues.pop(q.name, None)
            self._discard(q)

    def _discard(self, q: _Queue) -> None:
        """Count (not silently lose) the messages still waiting in ``q``, which goes away with its
        last member; mark them done so nobody waits on them (:meth:`drain`)."""
        n = 0
        while True:
            try:
                q.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            q.queue.task_done()
            n += 1
        if n:
            q.dropped += n
            self._stats.dropped += n
            if q.durable:
                self._discarded += n
                log.debug("bus: %d queued message(s) of %s discarded (no member left)", n, q.name)

    def stats(self) -> BusStats:
        s = BusStats(
            published=self._stats.published,
            delivered=self._stats.delivered,
            dropped=self._stats.dropped,
            handler_errors=self._stats.handler_errors,
            redelivered=self._stats.redelivered,
            backpressure_waits=self._stats.backpressure_waits,
        )
        s.per_subscription = {
            name: {
                "queued": q.queue.qsize(),
                "capacity": self.queue_size,
                "delivered": q.delivered,
                "dropped": q.dropped,
                "members": len(q.members),
            }
            for name, q in self._queues.items()
        }
        return s

    def queued(self) -> int:
        """Messages waiting in the queues (not counting those being handled)."""
        return sum(q.queue.qsize() for q in self._queues.values())

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued message has been handled (tests and shutdown)."""
        await asyncio.wait_for(asyncio.gather(*(q.queue.join() for q in self._queues.values())), timeout)
