"""JetStream pull consumers (queue groups) and core-NATS broadcast subscriptions.

Used by :class:`rtcc.bus.nats.NatsBus`; the delivery model is described in
:mod:`rtcc.bus.nats`.

Retries are decided here, not by the server (whose consumers have no
``max_deliver`` limit): a handler failure that :func:`rtcc.bus.base.is_transient`
calls transient (the store is down) is retried with a capped backoff for as long
as it lasts, logged once when it starts, once a minute while it lasts and once
when it ends; any other failure counts against ``max_deliver`` and the message
is given up (``term``) when that many of its deliveries to this process failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext, api

from rtcc.bus.base import Handler, Subscription, is_transient

if TYPE_CHECKING:
    from rtcc.bus.nats import NatsBus

log = logging.getLogger("rtcc.bus.nats")

_FAILURES_KEPT = 10_000
"""Most messages whose non-transient failures one consumer remembers (oldest forgotten first)."""


@dataclass
class _Counters:
    delivered: int = 0
    handler_errors: int = 0
    redelivered: int = 0
    dropped: int = 0
    members: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "handler_errors": self.handler_errors,
            "redelivered": self.redelivered,
            "dropped": self.dropped,
            "members": self.members,
        }


class _GroupConsumer:
    """This process's side of one queue group on one subject.

    One pull loop per (group, subject) per bus, however many members this
    process subscribed: it fetches at most as many messages as there are idle
    members (so the process takes only what it can start on now, and other
    processes get the rest) and hands each to an idle member, which handles,
    then acknowledges it. Members therefore work concurrently, one message each.

    ``config`` is the durable consumer's configuration, kept so that the bus
    can re-create the consumer when the server lost it (see
    :meth:`rtcc.bus.nats.NatsBus.restore`).
    """

    outage_log_every_s: float = 60.0
    """While handlers keep failing transiently, one log line per this many seconds."""

    def __init__(
        self,
        bus: NatsBus,
        key: str,
        subject: str,
        durable: str,
        psub: JetStreamContext.PullSubscription,
        counters: _Counters,
        config: api.ConsumerConfig,
    ) -> None:
        self.bus = bus
        self.key = key
        self.subject = subject
        self.durable = durable
        self.config = config
        self._psub = psub
        self.counters = counters
        self.members: list[_GroupMember] = []
        self._cond = asyncio.Condition()
        self._closing = False
        self._closing_ev = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._failing: str | None = None
        # messages this process holds, unacknowledged: id -> (msg, last touched)
        self._held: dict[int, tuple[Msg, float]] = {}
        # non-transient handler failures per stream sequence (the poison count)
        self._failures: OrderedDict[int, int] = OrderedDict()
        # the transient failure under way: (first error, started, last logged, failed deliveries)
        self._outage: tuple[str, float, float, int] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name=f"nats-bus:{self.durable}")
        self._task.add_done_callback(self._check_crash)
        self._ticker = loop.create_task(self._keep_alive(), name=f"nats-bus-wip:{self.durable}")

    @property
    def in_flight(self) -> int:
        """Messages this process holds for the group and has not acknowledged yet."""
        return len(self._held)

    def _check_crash(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.error(
                "bus consumer %s on %s stopped pulling messages",
                self.durable,
                self.subject,
                exc_info=task.exception(),
            )

    def _first_idle(self) -> _GroupMember | None:
        return next((m for m in self.members if m.idle), None)

    def _can_dispatch(self) -> bool:
        return self._closing or self._first_idle() is not None

    async def add(self, member: _GroupMember) -> bool:
        """Take ``member`` in; ``False`` when the consumer is closing (start a new one)."""
        async with self._cond:
            if self._closing:
                return False
            self.members.append(member)
            self.counters.members += 1
            self._cond.notify_all()
            return True

    async def member_done(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def remove(self, member: _GroupMember) -> None:
        async with self._cond:
            if member in self.members:
                self.members.remove(member)
                self.counters.members -= 1
            last = not self.members
            self._cond.notify_all()
        if last:
            await self.close()

    async def _run(self) -> None:
        bus = self.bus
        while True:
            async with self._cond:
                await self._cond.wait_for(self._can_dispatch)
                if self._closing:
                    return
                room = min(bus.fetch_batch, sum(1 for m in self.members if m.idle))
            nc = bus._nc
            if nc is not None and nc.is_reconnecting:
                # pulls sent now would only queue up in the client's buffer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing_ev.wait(), bus.fetch_timeout_s)
                continue
            try:
                msgs = await self._psub.fetch(room, timeout=bus.fetch_timeout_s)
            except TimeoutError:  # nothing to do (also nats.errors.TimeoutError)
                self._recovered()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                if isinstance(exc, nats.errors.ConnectionClosedError):
                    return
                with contextlib.suppress(TimeoutError):  # back off; wake at once on close
                    await asyncio.wait_for(self._closing_ev.wait(), 1.0)
                continue
            self._recovered()
            now = asyncio.get_running_loop().time()
            for msg in msgs:
                self._held[id(msg)] = (msg, now)
            for i, msg in enumerate(msgs):
                async with self._cond:
                    await self._cond.wait_for(self._can_dispatch)
                    member = None if self._closing else self._first_idle()
                    if member is not None:
                        member.take(msg)
                if member is None:
                    # no one left to work on them: hand them back at once
                    for rest in msgs[i:]:
                        self._held.pop(id(rest), None)
                        with contextlib.suppress(Exception):
                            await rest.nak()
                    return

    async def _keep_alive(self) -> None:
        """Tell the server we are still at it when a handler runs long.

        Without this, a message held longer than ``ack_wait_s`` would be
        redelivered to another process while a member here still works on it.
        """
        period = self.bus.ack_wait_s / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for key, (msg, touched) in list(self._held.items()):
                if now - touched >= period and key in self._held:
                    self._held[key] = (msg, now)
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

    async def handle(self, handler: Handler, msg: Msg) -> None:
        """Run ``handler`` on ``msg``, then ack, or nak for a retry, or give up."""
        bus = self.bus
        try:
            try:
                meta = msg.metadata
                attempt = meta.num_delivered or 1
                seq: int | None = meta.sequence.stream
            except Exception:  # not a JetStream message: cannot happen on a pull consumer
                attempt, seq = 1, None
            if attempt > 1:
                self.counters.redelivered += 1
                bus._stats.redelivered += 1
            try:
                await handler(msg.subject, msg.data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters.handler_errors += 1
                bus._stats.handler_errors += 1
                if is_transient(exc):
                    await self._retry_later(msg, attempt, exc)
                else:
                    await self._reject(msg, seq, attempt)
                return
            if self._outage is not None:
                self._outage_over()
            if seq is not None:
                self._failures.pop(seq, None)
            try:
                await msg.ack()
            except Exception as exc:  # redelivered after ack_wait; handlers are idempotent
                self._failed(exc)
                return
            self.counters.delivered += 1
            bus._stats.delivered += 1
        finally:
            self._held.pop(id(msg), None)

    async def _retry_later(self, msg: Msg, attempt: int, exc: Exception) -> None:
        """A transient failure: redeliver after a capped backoff, however many times it takes."""
        bus = self.bus
        now = asyncio.get_running_loop().time()
        what = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if self._outage is None:
            log.warning(
                "handlers of group consumer %s on %s fail with a transient error (%s); "
                "their messages are kept and retried (backoff up to %g s) until it recovers",
                self.durable,
                self.subject,
                what,
                bus.retry_delay_max_s,
            )
            self._outage = (what, now, now, 1)
        else:
            first, started, logged, failures = self._outage
            if now - logged >= self.outage_log_every_s:
                log.warning(
                    "handlers of group consumer %s on %s still fail with a transient error after "
                    "%.0f s (%d failed deliveries; last: %s); retrying",
                    self.durable,
                    self.subject,
                    now - started,
                    failures + 1,
                    what,
                )
                logged = now
            self._outage = (first, started, logged, failures + 1)
        log.debug(
            "handler for %s (group consumer %s) failed transiently on delivery %d; will retry",
            msg.subject,
            self.durable,
            attempt,
            exc_info=True,
        )
        try:
            await msg.nak(delay=bus.retry_delay(attempt))
        except Exception as nak_exc:  # the server redelivers after ack_wait anyway
            self._failed(nak_exc)

    def _outage_over(self) -> None:
        assert self._outage is not None
        _, started, _, failures = self._outage
        self._outage = None
        log.info(
            "handlers of group consumer %s on %s succeed again after %.0f s of transient "
            "failures (%d failed deliveries retried)",
            self.durable,
            self.subject,
            asyncio.get_running_loop().time() - started,
            failures,
        )

    async def _reject(self, msg: Msg, seq: int | None, attempt: int) -> None:
        """A non-transient failure: retry up to ``max_deliver`` failures, then give up."""
        bus = self.bus
        failures = attempt if seq is None else self._failures.pop(seq, 0) + 1
        try:
            if failures >= bus.max_deliver:
                log.exception(
                    "handler for %s (group consumer %s) failed %d of %d times (delivery %d); "
                    "giving up on this message",
                    msg.subject,
                    self.durable,
                    failures,
                    bus.max_deliver,
                    attempt,
                )
                await msg.term()
            else:
                if seq is not None:
                    self._failures[seq] = failures
                    while len(self._failures) > _FAILURES_KEPT:
                        self._failures.popitem(last=False)
                log.warning(
                    "handler for %s (group consumer %s) failed %d of %d times (delivery %d); will retry",
                    msg.subject,
                    self.durable,
                    failures,
                    bus.max_deliver,
                    attempt,
                    exc_info=True,
                )
                await msg.nak(delay=bus.nak_delay(failures))
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        what = f"{type(exc).__name__}: {exc}"
        if what != self._failing and not self._closing:
            log.warning("bus consumer %s on %s: %s", self.durable, self.subject, what)
        self._failing = what

    def _recovered(self) -> None:
        if self._failing is not None:
            log.info("bus consumer %s on %s is consuming again", self.durable, self.subject)
            self._failing = None

    async def close(self) -> None:
        """Stop pulling (after the pull under way), hand back what no member took.

        Always ends: a close that was cancelled or failed half-way still marks the consumer
        closed (a later close, e.g. the bus's stop, would otherwise wait for it for ever), and a
        second close waits for the first at most as long as a close takes.
        """
        if self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self.bus.fetch_timeout_s + 10)
            return
        self._closing = True
        try:
            self._closing_ev.set()
            self.bus._consumer_closing(self)  # from now on, subscribe() starts a fresh consumer
            async with self._cond:
                self._cond.notify_all()
            task = self._task
            if task is not None:
                # the loop ends after its current pull (at most fetch_timeout_s)
                done, _ = await asyncio.wait({task}, timeout=self.bus.fetch_timeout_s + 5)
                if not done:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._ticker
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()
            await self.bus._flush_quietly()
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()  # a cancelled close leaves no pull loop behind
            self.bus._closing_consumers.discard(self)
            self._closed.set()


class _GroupMember(Subscription):
    """One ``subscribe(..., group=...)``: handles one message at a time for its consumer."""

    def __init__(self, consumer: _GroupConsumer, handler: Handler) -> None:
        self._consumer = consumer
        self._handler = handler
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped = False

    @property
    def idle(self) -> bool:
        return self._task is None and not self._stopping

    def take(self, msg: Msg) -> None:
        """Start on ``msg`` (called by the consumer, only when idle)."""
        self._task = asyncio.get_running_loop().create_task(
            self._work(msg), name=f"nats-bus-handler:{self._consumer.durable}"
        )

    async def _work(self, msg: Msg) -> None:
        try:
            await self._consumer.handle(self._handler, msg)
        finally:
            self._task = None
            await self._consumer.member_done()

    async def stop(self) -> None:
        """Finish (and acknowledge) the message in hand, then leave the group."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping = True
        task = self._task
        if task is not None:
            stop_timeout = self._consumer.bus.stop_timeout_s
            done, _ = await asyncio.wait({task}, timeout=stop_timeout)
            if not done:
                log.warning(
                    "a handler of group consumer %s did not finish within %.0f s; cancelling "
                    "(its message comes back after ack_wait)",
                    self._consumer.durable,
                    stop_timeout,
                )
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._consumer.remove(self)


class _BroadcastSubscription(Subscription):
    """A core NATS subscription: every message on the subject, no acks."""

    def __init__(self, bus: NatsBus, key: str, subject: str, handler: Handler) -> None:
        self._bus = bus
        self.key = key
        self._subject = subject
        self._handler = handler
        self.counters = _Counters(members=1)
        self._sub: NatsSubscription | None = None
        self._busy = asyncio.Lock()
        self._stopping = False
        self._stopped = False

    async def on_msg(self, msg: Msg) -> None:
        if self._stopping:
            return
        async with self._busy:
            if self._stopping:
                return
            try:
                await self._handler(msg.subject, msg.data)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters.handler_errors += 1
                self._bus._stats.handler_errors += 1
                log.exception("broadcast handler for %s failed (not retried)", msg.subject)
                return
            self.counters.delivered += 1
            self._bus._stats.delivered += 1

    def attach(self, sub: NatsSubscription) -> None:
        self._sub = sub

    @property
    def sid(self) -> int | None:
        return None if self._sub is None else self._sub._id

    async def stop(self) -> None:
        """Let the message in hand finish, then unsubscribe (queued messages are dropped)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping = True
        async with self._busy:
            pass
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self.counters.members = 0
        self._bus._forget(self)
