"""NATS JetStream bus engine.

Publishing
----------
Every publish is a JetStream publish: the server stores the message in the
stream (``RTCC`` over ``rtcc.>`` by default, file storage, kept ``max_age_s``)
and :meth:`NatsBus.publish` returns once the server has acknowledged it. A
``msg_id`` travels as the ``Nats-Msg-Id`` header, and the stream drops a second
publish with the same id inside its duplicate window (two minutes by default).

A lost stream is re-created
---------------------------
A NATS server restarted without its JetStream data (or a stream deleted by
hand) no longer has the stream or the queue groups' consumers. The bus puts
them back (:meth:`NatsBus.restore`, logged as a warning naming what it
re-created) after every reconnection and when a publish finds no stream for a
subject the stream should hold; that publish is then retried once. Until the
stream is back, :meth:`NatsBus.healthy` (the readiness check) is false: it asks
the server for the stream on every call. Messages the lost stream held are
gone with it; the re-created consumers start at its (new) beginning.

Queue groups (``group=...``)
----------------------------
A subscription with a group is a *durable pull consumer* on the stream, named
after the group and the filter subject (see :func:`durable_name`). Every
process that subscribes with the same group and subject pulls from the same
consumer, so the group's members share the work: that is how ``rtcc worker``
processes scale out. Within one process, all subscriptions with the same
group and subject share one pull loop, which fetches no more messages than
there are idle members and hands each to one of them: ``n`` subscriptions
mean up to ``n`` messages handled concurrently. Each message is acknowledged only after the handler
returns. A handler that raises makes the message come back (``nak`` with a
growing delay), and what happens next depends on what it raised:

* a *transient* error (:data:`rtcc.bus.base.TRANSIENT_ERRORS`: the store or
  another dependency is down — ``rtcc.errors.Unavailable``, SQLAlchemy's
  ``OperationalError``/``InterfaceError``/``DisconnectionError``/``TimeoutError``,
  ``OSError`` including ``ConnectionError`` and ``TimeoutError``) only delays the
  message: it is redelivered with a backoff from ``nak_delay_s`` doubling up to
  ``retry_delay_max_s`` (30 s) between tries, for as long as the failure lasts.
  The bound is the stream's ``max_age_s``: a message older than that leaves the
  stream. Each consumer logs one warning when such an outage starts, one line a
  minute while it lasts and one when a handler succeeds again;
* any other error is the message's fault (poison): it is retried with a short
  delay (``nak_delay_s``, doubled each time, capped at ``ack_wait_s``) and given
  up (``term``, logged with the traceback) when ``max_deliver`` of its deliveries
  to this process failed that way.

The server does not count deliveries against a limit (the durable consumers
have no ``max_deliver``; an existing consumer is updated to that when a group
subscribes), so a process that dies mid-message gets it redelivered to another
member after ``ack_wait_s``, however often that happens.
While a member works on a long batch or a slow handler it tells the server
so ("in progress") every ``ack_wait_s / 3``, so live work is not redelivered.
The consumer outlives the process, so messages published while no member
runs are delivered when one starts again (at least once, across restarts).
Stopping a subscription does *not* delete its consumer.

A group that did not exist before starts at the beginning of what the
stream retains (``group_deliver_policy="all"``), so nothing published before
the first worker came up is lost; handlers are idempotent (events carry ids).

Broadcast (no group)
--------------------
A subscription without a group is a plain core NATS subscription: the server
hands every message published on a matching subject (JetStream publishes
included) to every such subscriber, from the moment it subscribed on. There is
no acknowledgement, no redelivery and no ``msg_id`` deduplication: core
subscribers see both copies of a duplicate publish. Broadcast is at most once;
use it for live fan-out (the WebSocket hub), not for work that must happen.

MQTT devices
------------
The NATS server's MQTT listener turns an MQTT topic into a NATS subject (see
:func:`mqtt_topic_to_subject`): a QoS 1 publish on ``rtcc/sensors/s1/pulse``
arrives on ``rtcc.sensors.s1.pulse``, is stored by the stream and reaches
queue groups like any other message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from rtcc.bus.base import Bus, BusStats, Handler, Subscription, subject_matches
from rtcc.bus.nats_consumers import _BroadcastSubscription, _Counters, _GroupConsumer, _GroupMember
from rtcc.bus.nats_subjects import (
    _ERR_JETSTREAM_NOT_ENABLED,
    _ERR_STREAM_NAME_IN_USE,
    _ERR_STREAM_SUBJECT_OVERLAP,
    _MSG_ID_HEADER,
    _NAME_OK,
    _SETTING_HINT,
    _check_subject,
    durable_name,
    mqtt_topic_to_subject,
    redact_url,
)
from rtcc.errors import ConfigError, PayloadTooLarge, Unavailable
from rtcc.settings import BusSettings

log = logging.getLogger(__name__)

__all__ = ["NatsBus", "durable_name", "mqtt_topic_to_subject", "redact_url"]


class NatsBus(Bus):
    """The bus on a NATS server with JetStream (``bus.engine = "nats"``).

    Parameters
    ----------
    servers : str
        NATS server URL(s), comma-separated (``bus.nats_url``).
    stream : str
        JetStream stream holding the bus's subjects; created or updated by
        :meth:`start` (``bus.stream``).
    subjects : tuple of str
        Subjects the stream stores. Publishing outside them fails.
    max_age_s : float
        How long the stream keeps messages, in seconds (``bus.stream_max_age_s``).
    ack_wait_s : float
        Seconds a queue-group message may stay unacknowledged before the
        server redelivers it (``bus.ack_wait_s``).
    max_deliver : int
        Non-transient handler failures of one message (in one process) before
        it is given up (``bus.max_deliver``). Transient failures do not count.
    name : str
        Connection name shown in the server's monitoring.
    queue_size : int
        Messages a broadcast subscription buffers before the client drops
        (counted in ``BusStats.dropped``) (``bus.queue_size``).
    duplicate_window_s : float
        How long the stream remembers ``msg_id`` values, in seconds (at most
        ``max_age_s``).
    group_deliver_policy : {"all", "new"}
        Where a queue group that does not exist yet starts: ``all`` — at the
        oldest message the stream retains; ``new`` — with messages published
        after it is created.
    fetch_batch : int
        Most messages one pull takes for a queue group (never more than the
        group's idle members in this process).
    fetch_timeout_s : float
        How long one pull waits for messages; also the longest a stopping
        member waits for its pull to end.
    max_ack_pending : int
        Messages a queue group may hold unacknowledged (JetStream's default is 1,000): the
        acoustic pipeline keeps every pulse of an open window in hand until the window is
        processed, and a long burst heard by many sensors is thousands of pulses.
    nak_delay_s : float
        Delay before the first redelivery of a message whose handler raised;
        doubled for each further failure, capped at ``ack_wait_s`` for
        non-transient failures and at ``retry_delay_max_s`` for transient ones.
    retry_delay_max_s : float
        Longest delay between two deliveries of a message whose handler fails
        transiently (the store is down).
    connect_timeout_s : float
        Timeout of one connection attempt, in seconds (rounded up to whole seconds).
    connect_attempts : int
        Connection rounds over the servers at :meth:`start` before giving up
        with :class:`~rtcc.errors.Unavailable`. Once connected the client
        reconnects forever.
    publish_timeout_s : float
        How long :meth:`publish` waits for the server's acknowledgement.
    stop_timeout_s : float
        How long stopping a group member waits for its handler to finish
        before cancelling it.
    """

    engine = "nats"

    def __init__(
        self,
        servers: str = "nats://127.0.0.1:4222",
        stream: str = "RTCC",
        subjects: Sequence[str] = ("rtcc.>",),
        max_age_s: float = 7 * 86400,
        ack_wait_s: float = 30,
        max_deliver: int = 5,
        name: str = "rtcc",
        *,
        queue_size: int = 10_000,
        duplicate_window_s: float = 120.0,
        group_deliver_policy: Literal["all", "new"] = "all",
        fetch_batch: int = 256,
        fetch_timeout_s: float = 1.0,
        nak_delay_s: float = 0.25,
        connect_timeout_s: float = 2.0,
        connect_attempts: int = 3,
        publish_timeout_s: float = 5.0,
        stop_timeout_s: float = 10.0,
        max_ack_pending: int = 20_000,
        retry_delay_max_s: float = 30.0,
    ) -> None:
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        if not self.servers:
            raise ValueError("servers: give at least one NATS URL (bus.nats_url)")
        if not _NAME_OK.match(stream):
            raise ValueError(
                f"stream {stream!r}: JetStream stream names use only letters, digits, '_' and '-'"
            )
        if isinstance(subjects, str):
            subjects = (subjects,)
        if not subjects:
            raise ValueError("subjects: the stream needs at least one subject")
        for s in subjects:
            _check_subject(s, wildcards=True)
        if max_age_s <= 0 or ack_wait_s <= 0 or duplicate_window_s <= 0 or retry_delay_max_s <= 0:
            raise ValueError(
                "max_age_s, ack_wait_s, duplicate_window_s and retry_delay_max_s must be positive"
            )
        if max_deliver < 1 or fetch_batch < 1 or queue_size < 1 or connect_attempts < 1:
            raise ValueError("max_deliver, fetch_batch, queue_size and connect_attempts must be at least 1")
        if group_deliver_policy not in ("all", "new"):
            raise ValueError("group_deliver_policy must be 'all' or 'new'")
        self.stream = stream
        self.subjects = tuple(subjects)
        self.max_age_s = float(max_age_s)
        self.ack_wait_s = float(ack_wait_s)
        self.max_deliver = max_deliver
        self.name = name
        self.queue_size = queue_size
        self.duplicate_window_s = min(float(duplicate_window_s), self.max_age_s)
        self.group_deliver_policy = group_deliver_policy
        self.fetch_batch = fetch_batch
        self.fetch_timeout_s = fetch_timeout_s
        self.nak_delay_s = nak_delay_s
        self.connect_timeout_s = connect_timeout_s
        self.connect_attempts = connect_attempts
        self.publish_timeout_s = publish_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.max_ack_pending = max_ack_pending
        self.retry_delay_max_s = float(retry_delay_max_s)

        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._stats = BusStats()
        self._duplicates = 0
        self._counters: dict[str, _Counters] = {}
        self._consumers: dict[str, _GroupConsumer] = {}
        self._closing_consumers: set[_GroupConsumer] = set()
        self._broadcasts: list[_BroadcastSubscription] = []
        self._broadcast_n = 0
        self._connected = False
        self._stopping = False
        self._last_error: str | None = None
        self._start_lock = asyncio.Lock()
        self._restore_lock = asyncio.Lock()
        self._restore_task: asyncio.Task[None] | None = None
        self._restore_failing: str | None = None
        self._restored = 0  # successful restores so far

    @classmethod
    def from_settings(cls, settings: BusSettings, **overrides: Any) -> NatsBus:
        """Build from the ``[bus]`` settings section.

        Parameters
        ----------
        settings : BusSettings
            ``Settings.bus``: ``nats_url``, ``stream``, ``stream_max_age_s``,
            ``ack_wait_s``, ``max_deliver`` and ``queue_size`` are used.
        **overrides
            Further keyword arguments for the constructor.

        Returns
        -------
        NatsBus
            Not started yet.
        """
        kwargs: dict[str, Any] = {
            "servers": settings.nats_url,
            "stream": settings.stream,
            "max_age_s": settings.stream_max_age_s,
            "ack_wait_s": settings.ack_wait_s,
            "max_deliver": settings.max_deliver,
            "queue_size": settings.queue_size,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def url(self) -> str:
        """The configured server URL(s), comma-separated, passwords redacted."""
        return ",".join(redact_url(u) for u in self.servers)

    @property
    def duplicates(self) -> int:
        """Publishes the stream dropped as duplicates of an earlier ``msg_id``."""
        return self._duplicates

    def nak_delay(self, attempt: int) -> float:
        """Seconds before redelivering a message whose handler failed (non-transiently) ``attempt`` times."""
        return float(min(self.nak_delay_s * 2 ** min(max(attempt - 1, 0), 32), self.ack_wait_s))

    def retry_delay(self, attempt: int) -> float:
        """Seconds before redelivering a message whose ``attempt``-th delivery failed transiently."""
        return float(min(self.nak_delay_s * 2 ** min(max(attempt - 1, 0), 32), self.retry_delay_max_s))

    # --- connection ----------------------------------------------------------

    async def start(self) -> None:
        """Connect to NATS and create or update the stream. Idempotent.

        Raises
        ------
        rtcc.errors.Unavailable
            When no server can be reached or the server has no JetStream.
        rtcc.errors.ConfigError
            When the stream cannot be created as configured (e.g. its subjects
            overlap another stream's).
        """
        async with self._start_lock:
            if self._nc is not None and not self._nc.is_closed:
                return
            self._stopping = False
            nc = Client()
            try:
                await nc.connect(
                    servers=self.servers,
                    name=self.name,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                    allow_reconnect=True,
                    connect_timeout=max(1, math.ceil(self.connect_timeout_s)),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=self.connect_attempts,
                    drain_timeout=max(1, round(self.stop_timeout_s)),
                )
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                with contextlib.suppress(Exception):
                    await nc.close()
                raise Unavailable(
                    f"cannot connect to the NATS server at {self.url} "
                    f"({type(exc).__name__}: {exc or 'no server answered'}); "
                    f"{_SETTING_HINT}, and that nats-server is running with JetStream (-js)"
                ) from exc
            # initial attempts are bounded; once connected, reconnect forever
            nc.options["max_reconnect_attempts"] = -1
            self._connected = True
            self._last_error = None
            js = nc.jetstream(timeout=max(self.publish_timeout_s, 5.0))
            try:
                await self._ensure_stream(js)
            except BaseException:
                self._connected = False  # closing on purpose: no "disconnected" warning
                with contextlib.suppress(Exception):
                    await nc.close()
                raise
            self._nc = nc
            self._js = js
            log.info("bus connected to NATS %s (stream %s)", self._server_label(nc), self.stream)

    def _server_label(self, nc: Client) -> str:
        u = nc.connected_url
        return redact_url(u.geturl()) if u is not None else self.url

    async def _ensure_stream(self, js: JetStreamContext) -> bool:
        """Create the stream, or update it to the configuration; ``True`` when it was created."""
        wanted = api.StreamConfig(
            name=self.stream,
            subjects=list(self.subjects),
            storage=api.StorageType.FILE,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
        )
        try:
            try:
                info = await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                try:
                    await js.add_stream(wanted)
                    log.info("created JetStream stream %s over %s", self.stream, self.subjects)
                    return True
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != _ERR_STREAM_NAME_IN_USE:  # not a creation race
                        raise
                    info = await js.stream_info(self.stream)
            cfg = info.config
            if (
                set(cfg.subjects or ()) != set(self.subjects)
                or cfg.max_age != self.max_age_s
                or cfg.duplicate_window != self.duplicate_window_s
            ):
                if cfg.storage != api.StorageType.FILE:
                    log.warning(
                        "JetStream stream %s uses %s storage, not file; keeping it",
                        self.stream,
                        cfg.storage,
                    )
                await js.update_stream(
                    cfg.evolve(
                        subjects=list(self.subjects),
                        max_age=self.max_age_s,
                        duplicate_window=self.duplicate_window_s,
                    )
                )
                log.info("updated JetStream stream %s", self.stream)
            return False
        except nats.js.errors.APIError as exc:
            # nats-server 2.9 answers a server without JetStream with a bare 503
            # status: nats-py raises ServiceUnavailableError with code and err_code None
            if (
                isinstance(exc, nats.js.errors.ServiceUnavailableError)
                or exc.err_code in _ERR_JETSTREAM_NOT_ENABLED
                or exc.code == 503
            ):
                detail = f" ({exc.description})" if exc.description else ""
                raise Unavailable(
                    f"JetStream is not enabled on the NATS server at {self.url}{detail}: "
                    "start nats-server with -js (or a jetstream {} block in its configuration)"
                ) from exc
            if exc.err_code == _ERR_STREAM_SUBJECT_OVERLAP:
                raise ConfigError(
                    f"JetStream stream {self.stream!r} cannot hold {list(self.subjects)}: "
                    "another stream on the server already holds overlapping subjects; set "
                    "bus.stream (RTCC_BUS__STREAM) to that stream's name or remove it"
                ) from exc
            raise ConfigError(
                f"cannot create or update JetStream stream {self.stream!r} on {self.url}: "
                f"{exc.description or type(exc).__name__} (status {exc.code}, error {exc.err_code})"
            ) from exc
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
            raise Unavailable(
                f"the NATS server at {self.url} does not answer JetStream requests; "
                "start nats-server with JetStream enabled (-js)"
            ) from exc
        except TimeoutError as exc:
            raise Unavailable(
                f"the NATS server at {self.url} did not answer a JetStream request in time"
            ) from exc

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            for sub in self._broadcasts:
                if sub.sid == exc.sid:
                    if sub.counters.dropped == 0:
                        log.warning(
                            "broadcast subscriber on %s is too slow; dropping messages (see bus stats)",
                            exc.subject,
                        )
                    sub.counters.dropped += 1
                    self._stats.dropped += 1
            return
        what = f"{type(exc).__name__}: {exc}"
        if what != self._last_error and not self._stopping:
            log.warning("NATS (%s): %s", self.url, what)
        self._last_error = what

    async def _on_disconnected(self) -> None:
        if self._connected and not self._stopping:
            log.warning("bus disconnected from NATS %s; reconnecting", self.url)
        self._connected = False

    async def _on_reconnected(self) -> None:
        if not self._connected and self._nc is not None:
            log.info("bus reconnected to NATS %s", self._server_label(self._nc))
        self._connected = True
        self._last_error = None
        # the server may have come back without its JetStream data
        self._schedule_restore("after reconnecting")

    # --- restoring a lost stream -------------------------------------------------

    def _schedule_restore(self, why: str) -> None:
        """Run :meth:`restore` in the background (retrying) unless it already runs."""
        if self._stopping or self._nc is None:
            return
        task = self._restore_task
        if task is not None and not task.done():
            return
        self._restore_task = asyncio.get_running_loop().create_task(
            self._restore_until_done(why), name=f"nats-bus-restore:{self.stream}"
        )

    async def _restore_until_done(self, why: str) -> None:
        pause = 0.5
        while not self._stopping and self._nc is not None and self._nc.is_connected:
            if await self.restore(why):
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def restore(self, why: str = "on request", *, unless_after: int | None = None) -> bool:
        """Make sure the stream and every queue group's durable consumer exist on the server.

        What is missing is re-created with this bus's configuration and logged
        as a warning; what exists is left as it is (the stream is updated to the
        configuration as :meth:`start` does).

        Parameters
        ----------
        why : str
            What prompted the check, for the log.
        unless_after : int, optional
            A count of successful restores read before the failure that
            prompted this one: when a restore has succeeded since, return
            ``True`` at once (many publishes failing together cause one check).

        Returns
        -------
        bool
            ``True`` when the stream and the consumers are in place; ``False``
            when the server could not be asked or refused (logged once until
            it succeeds).
        """
        async with self._restore_lock:
            if unless_after is not None and self._restored != unless_after:
                return True
            nc, js = self._nc, self._js
            if nc is None or js is None or not nc.is_connected:
                return False
            try:
                if await self._ensure_stream(js):
                    log.warning(
                        "JetStream stream %s was missing on NATS %s (%s; the server lost its "
                        "JetStream data?): re-created it; messages it held are lost",
                        self.stream,
                        self._server_label(nc),
                        why,
                    )
                for consumer in list(self._consumers.values()):
                    await self._restore_consumer(js, consumer)
            except (Unavailable, ConfigError, nats.errors.Error, TimeoutError) as exc:
                what = f"{type(exc).__name__}: {exc}"
                if what != self._restore_failing:
                    log.warning(
                        "cannot check or re-create JetStream stream %s on NATS %s (%s): %s; will try again",
                        self.stream,
                        self.url,
                        why,
                        what,
                    )
                self._restore_failing = what
                return False
            if self._restore_failing is not None:
                log.info("JetStream stream %s on NATS %s is usable again", self.stream, self.url)
                self._restore_failing = None
            self._restored += 1
            return True

    async def _restore_consumer(self, js: JetStreamContext, consumer: _GroupConsumer) -> None:
        try:
            await js.consumer_info(self.stream, consumer.durable)
            return
        except nats.js.errors.NotFoundError:
            pass
        await js.add_consumer(self.stream, consumer.config)
        log.warning(
            "durable consumer %s (queue group on %s) was missing in stream %s: re-created it",
            consumer.durable,
            consumer.subject,
            self.stream,
        )

    async def _on_closed(self) -> None:
        if not self._stopping and self._nc is not None:
            log.error("bus connection to NATS %s closed", self.url)
        self._connected = False

    async def _flush_quietly(self) -> None:
        nc = self._nc
        if nc is not None and nc.is_connected:
            with contextlib.suppress(Exception):
                await nc.flush(timeout=max(1, round(self.publish_timeout_s)))

    async def stop(self) -> None:
        """Stop every subscription gracefully, then drain and close the connection.

        Group members finish and acknowledge the message in hand and hand the
        rest of their batch back to the server; durable consumers stay.
        """
        async with self._start_lock:
            nc = self._nc
            if nc is None:
                return
            self._stopping = True
            restoring = self._restore_task
            if restoring is not None and not restoring.done():
                restoring.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await restoring
            self._restore_task = None
            members = [m for c in self._consumers.values() for m in c.members]
            await asyncio.gather(
                *(m.stop() for m in members),
                *(b.stop() for b in self._broadcasts),
                return_exceptions=True,
            )
            closing = [*self._consumers.values(), *self._closing_consumers]
            await asyncio.gather(*(c.close() for c in closing), return_exceptions=True)
            try:
                if nc.is_connected:
                    await nc.drain()
            except Exception as exc:
                log.debug("NATS drain failed: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await nc.close()
            self._nc = None
            self._js = None
            self._connected = False

    async def healthy(self) -> bool:
        """Whether the bus can carry messages: connected, and the stream exists on the server.

        Asks the server for the stream (one JetStream request, at most
        ``publish_timeout_s``). A missing stream makes the bus re-create it
        in the background (:meth:`restore`); until that has finished, the
        answer is ``False``.
        """
        nc, js = self._nc, self._js
        if nc is None or js is None or not nc.is_connected:
            return False
        restoring = self._restore_task
        if restoring is not None and not restoring.done():
            return False
        try:
            await asyncio.wait_for(js.stream_info(self.stream), self.publish_timeout_s)
        except nats.js.errors.NotFoundError:
            self._schedule_restore("the readiness check found no stream")
            return False
        except (nats.errors.Error, TimeoutError):
            return False
        return True

    # --- publish / subscribe ----------------------------------------------------

    def _require_js(self) -> tuple[Client, JetStreamContext]:
        if self._nc is None or self._js is None:
            raise RuntimeError("bus is not started")
        return self._nc, self._js

    async def publish(self, subject: str, payload: bytes, *, msg_id: str | None = None) -> None:
        """Store ``payload`` on ``subject`` in the stream; return once the server acknowledged it.

        Parameters
        ----------
        subject : str
            A subject (no wildcards) covered by the stream's subjects.
        payload : bytes
            The message.
        msg_id : str, optional
            Sent as ``Nats-Msg-Id``: a second publish with the same id within
            the duplicate window is dropped by the stream (queue groups get it
            once; broadcast subscribers still see both).

        Raises
        ------
        ValueError
            When ``subject`` is not a valid subject.
        rtcc.errors.PayloadTooLarge
            When ``payload`` exceeds the server's max_payload.
        rtcc.errors.Unavailable
            When the server does not acknowledge in time (down, reconnecting)
            or no stream holds ``subject`` (a subject the stream should hold
            first makes the bus re-create a lost stream and retry once).
        """
        _, js = self._require_js()
        _check_subject(subject, wildcards=False)
        headers = {_MSG_ID_HEADER: msg_id} if msg_id else None
        restored = self._restored
        try:
            try:
                ack = await js.publish(subject, payload, timeout=self.publish_timeout_s, headers=headers)
            except nats.js.errors.NoStreamResponseError:
                # the server may have lost the stream: put it back, then try once more
                if not any(subject_matches(p, subject) for p in self.subjects):
                    raise
                why = f"no stream answered a publish on {subject}"
                if not await self.restore(why, unless_after=restored):
                    raise
                ack = await js.publish(subject, payload, timeout=self.publish_timeout_s, headers=headers)
        except nats.errors.MaxPayloadError as exc:
            raise PayloadTooLarge(
                f"message of {len(payload)} bytes on {subject} exceeds the NATS server's max_payload"
            ) from exc
        except nats.js.errors.NoStreamResponseError as exc:
            raise Unavailable(
                f"no JetStream stream stores {subject!r} (stream {self.stream} holds "
                f"{list(self.subjects)}); publish under those subjects or check that "
                "JetStream is enabled"
            ) from exc
        except nats.js.errors.APIError as exc:
            raise Unavailable(
                f"JetStream refused the message on {subject}: "
                f"{exc.description or type(exc).__name__} (error {exc.err_code})"
            ) from exc
        except TimeoutError as exc:
            self._schedule_restore(f"a publish on {subject} was not acknowledged")
            raise Unavailable(
                f"the NATS server at {self.url} did not acknowledge a message on {subject} "
                f"within {self.publish_timeout_s:g} s (down or reconnecting)"
            ) from exc
        except nats.errors.Error as exc:
            raise Unavailable(
                f"cannot publish on {subject} to NATS at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        self._stats.published += 1
        if ack.duplicate:
            self._duplicates += 1
            log.debug("duplicate msg_id %s on %s dropped by the stream", msg_id, subject)

    async def subscribe(self, subject: str, handler: Handler, *, group: str | None = None) -> Subscription:
        """Call ``handler`` for messages on ``subject``.

        Parameters
        ----------
        subject : str
            Subject filter; ``*`` and ``>`` wildcards allowed. With a group it
            must lie within the stream's subjects.
        handler : Handler
            ``await handler(subject, payload)``; raising means "not handled".
        group : str, optional
            Queue group: a durable consumer shared by every subscriber with
            this group and subject, in any process (each message is handled
            once per group, acknowledged after the handler returns). Without
            a group: a broadcast subscription receiving every message from now on.

        Raises
        ------
        ValueError
            When ``subject`` is invalid or, with a group, not within the stream.
        rtcc.errors.Unavailable
            When the server cannot be reached.
        """
        nc, js = self._require_js()
        _check_subject(subject, wildcards=True)
        if group is None:
            return await self._subscribe_broadcast(nc, subject, handler)
        if not group:
            raise ValueError("group must be a non-empty string (or None for broadcast)")
        key = f"{group}|{subject}"
        durable = durable_name(group, subject)
        existing = self._consumers.get(key)
        if existing is not None:
            member = _GroupMember(existing, handler)
            if await existing.add(member):
                return member
            return await self.subscribe(subject, handler, group=group)  # it was closing
        config = api.ConsumerConfig(
            name=durable,
            durable_name=durable,
            description=f"rtcc queue group {group!r} on {subject}",
            filter_subject=subject,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # retries are limited by the client, for non-transient failures only
            max_deliver=-1,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=(
                api.DeliverPolicy.ALL if self.group_deliver_policy == "all" else api.DeliverPolicy.NEW
            ),
        )
        try:
            try:
                await js.add_consumer(self.stream, config)
            except nats.js.errors.BadRequestError as exc:
                # e.g. a setting that cannot change on an existing consumer:
                # keep the consumer as it is (it holds the group's position)
                try:
                    await js.consumer_info(self.stream, durable)
                except nats.js.errors.NotFoundError:
                    raise ValueError(
                        f"cannot create queue group {group!r} on {subject!r} in stream "
                        f"{self.stream} (subjects {list(self.subjects)}): {exc.description}"
                    ) from exc
                log.warning(
                    "could not update consumer %s for group %r: %s; using it as it is "
                    "(its own max_deliver and ack_wait, if different, still apply)",
                    durable,
                    group,
                    exc.description,
                )
            psub = await js.pull_subscribe_bind(durable=durable, stream=self.stream)
        except nats.js.errors.APIError as exc:
            raise Unavailable(
                f"JetStream refused queue group {group!r} on {subject!r}: "
                f"{exc.description or type(exc).__name__}"
            ) from exc
        except (TimeoutError, nats.errors.Error) as exc:
            raise Unavailable(
                f"cannot subscribe queue group {group!r} on {subject!r} at NATS {self.url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        consumer = self._consumers.get(key)
        if consumer is None:
            counters = self._counters.setdefault(key, _Counters())
            consumer = _GroupConsumer(self, key, subject, durable, psub, counters, config)
            self._consumers[key] = consumer
            consumer.start()
        else:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()  # this process already pulls for the group
        member = _GroupMember(consumer, handler)
        if await consumer.add(member):
            return member
        return await self.subscribe(subject, handler, group=group)  # it was closing

    async def _subscribe_broadcast(self, nc: Client, subject: str, handler: Handler) -> Subscription:
        self._broadcast_n += 1
        key = f"~{self._broadcast_n}|{subject}"
        sub = _BroadcastSubscription(self, key, subject, handler)
        try:
            nsub = await nc.subscribe(subject, cb=sub.on_msg, pending_msgs_limit=self.queue_size)
            sub.attach(nsub)
            self._broadcasts.append(sub)
            self._counters[key] = sub.counters
            # round trip: the server has the interest before we return
            await nc.flush(timeout=max(1, round(self.publish_timeout_s)))
        except (TimeoutError, nats.errors.Error) as exc:
            await sub.stop()
            raise Unavailable(
                f"cannot subscribe to {subject!r} at NATS {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        return sub

    def _forget(self, sub: _BroadcastSubscription) -> None:
        if sub in self._broadcasts:
            self._broadcasts.remove(sub)
        self._counters.pop(sub.key, None)

    def _consumer_closing(self, consumer: _GroupConsumer) -> None:
        """A consumer's last member left: a new subscribe starts a fresh one."""
        if self._consumers.get(consumer.key) is consumer:
            del self._consumers[consumer.key]
            self._counters.pop(consumer.key, None)
        self._closing_consumers.add(consumer)

    def stats(self) -> BusStats:
        """Counters since this bus object was created, per subscription too.

        ``per_subscription`` is keyed ``"<group>|<subject>"`` for queue groups
        (members in this process share one entry) and ``"~<n>|<subject>"`` for
        broadcast subscriptions.
        """
        s = BusStats(
            published=self._stats.published,
            delivered=self._stats.delivered,
            dropped=self._stats.dropped,
            handler_errors=self._stats.handler_errors,
            redelivered=self._stats.redelivered,
        )
        s.per_subscription = {key: c.as_dict() for key, c in self._counters.items()}
        for key, consumer in self._consumers.items():
            if key in s.per_subscription:
                s.per_subscription[key]["in_flight"] = consumer.in_flight
        return s
