"""Sending simulated devices' events to the center, as real devices do.

Each device posts its events to ``POST {base_url}api/v1/ingest/events`` with
``Authorization: Device <key>`` and the body ``{"events": [...]}``. Requests
run concurrently, at most ``concurrency`` at a time, over one shared
:class:`httpx.AsyncClient`.

What happens to a batch
-----------------------
=========================  ==================================================
Answer                     Outcome
=========================  ==================================================
202                        ``accepted`` and ``duplicates`` as the center
                           reports them; the rest of the batch is rejected
409 (all duplicates)       counted as duplicates (an earlier try got through)
429, 5xx, transport error  kept in the backlog and retried with backoff
any other 4xx              rejected (logged once per device and status)
=========================  ==================================================

The backlog is bounded (``backlog_limit`` events); when it overflows the
oldest events are dropped and counted. While the center is failing, new
batches go straight to the backlog, so a down center is not hammered. A
retry probes with one request; once that gets through, new batches are
posted again and each device sends its backlog in as few requests as
``max_batch`` allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

INGEST_PATH = "api/v1/ingest/events"
"""The ingest route, relative to the center's base URL."""


@dataclass(frozen=True)
class SimCounters:
    """Event counts since the runner was created (a snapshot).

    ``sent == accepted + duplicates + rejected + backlog + dropped + in_flight``
    at every moment.

    Attributes
    ----------
    sent : int
        Events handed to delivery (each counted once, however often retried).
    accepted : int
        Events the center accepted.
    duplicates : int
        Events the center already had (a retry of a batch that got through).
    rejected : int
        Events the center refused (4xx other than 409 and 429, or refused
        individually inside a 202 answer).
    backlog : int
        Events waiting to be retried now.
    dropped : int
        Events given up because the backlog was full.
    in_flight : int
        Events in requests not yet answered.
    requests : int
        HTTP requests made (retries included).
    failures : int
        Requests that failed with a transport error, 429 or 5xx.
    unroutable : int
        Events from sources naming no provisioned device (never sent, not in ``sent``).
    """

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    backlog: int = 0
    dropped: int = 0
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    unroutable: int = 0


@dataclass
class Batch:
    """Events of one device to post in one request."""

    device_id: str
    events: list[dict[str, Any]]
    attempts: int = 0
    resolved: bool = False
    """Set once the center answered with something other than "try again"."""


@dataclass
class _Counts:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    unroutable: int = 0
    reported: set[tuple[str, int]] = field(default_factory=set)


class Delivery:
    """Posts device batches to the center, with a bounded retry backlog.

    Parameters
    ----------
    http : httpx.AsyncClient
        Shared client (a real base URL, or ``httpx.ASGITransport`` in tests).
    base_url : str
        The center's address, e.g. ``http://127.0.0.1:8470/``.
    keys : Mapping of str to str
        Device id to device key; read at every request, so a rotated key is
        used from the next request on.
    concurrency : int
        Most requests in flight at once.
    backlog_limit : int
        Most events held for retry; older ones are dropped beyond it.
    max_batch : int
        Most events in one request (the center's ``server.max_ingest_batch``).
    backoff_initial_s, backoff_max_s : float
        First and longest wait between retries of the backlog, seconds
        (doubling after each failed try).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        keys: Mapping[str, str],
        *,
        concurrency: int = 16,
        backlog_limit: int = 100_000,
        max_batch: int = 1000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if concurrency < 1 or backlog_limit < 0 or max_batch < 1:
            raise ValueError("concurrency and max_batch must be >= 1, backlog_limit >= 0")
        self.http = http
        self.url = base_url.rstrip("/") + "/" + INGEST_PATH
        self.keys = keys
        self.backlog_limit = backlog_limit
        self.max_batch = max_batch
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._sem = asyncio.Semaphore(concurrency)
        self._backlog: deque[Batch] = deque()
        self._backlog_events = 0
        self._c = _Counts()
        self._failing = False
        self._overflowing = False
        self._drain_lock = asyncio.Lock()
        self._wake = asyncio.Event()

    # -- counters -------------------------------------------------------------

    @property
    def counters(self) -> SimCounters:
        """A snapshot of the event counts."""
        c = self._c
        return SimCounters(
            sent=c.sent,
            accepted=c.accepted,
            duplicates=c.duplicates,
            rejected=c.rejected,
            backlog=self._backlog_events,
            dropped=c.dropped,
            in_flight=c.in_flight,
            requests=c.requests,
            failures=c.failures,
            unroutable=c.unroutable,
        )

    @property
    def failing(self) -> bool:
        """True from a failed request until a retry gets through."""
        return self._failing

    def count_unroutable(self, n: int = 1) -> None:
        """Count events that name no provisioned device."""
        self._c.unroutable += n

    # -- sending --------------------------------------------------------------

    async def send(self, batches: Iterable[Batch]) -> None:
        """Post each batch (one request per batch, concurrently).

        Batches larger than ``max_batch`` are split. Batches that fail in a
        retryable way go to the backlog; while the center is failing, new
        batches go straight to the backlog instead of being posted.
        """
        todo: list[Batch] = []
        for b in batches:
            if not b.events:
                continue
            self._c.sent += len(b.events)
            for i in range(0, len(b.events), self.max_batch):
                todo.append(Batch(b.device_id, b.events[i : i + self.max_batch]))
        if not todo:
            return
        if self._failing:
            for b in todo:
                self._enqueue(b)
            self._wake.set()
            return
        try:
            retry = await self._post_all(todo)
        except asyncio.CancelledError:
            self._keep_unresolved(todo)
            raise
        for b in retry:
            self._enqueue(b)
        if retry:
            self._wake.set()

    async def flush(self) -> bool:
        """Try to deliver the backlog now, ignoring the backoff.

        Returns
        -------
        bool
            True when the backlog is empty afterwards.
        """
        async with self._drain_lock:
            while self._backlog:
                group = list(self._backlog)
                self._backlog.clear()
                self._backlog_events = 0
                merged = _merge(group, self.max_batch)
                try:
                    # Probe with one request before sending everything else.
                    retry = await self._post_all(merged[:1])
                    if not retry:
                        self._recovered()
                        retry = await self._post_all(merged[1:])
                    else:
                        retry.extend(merged[1:])
                except asyncio.CancelledError:
                    self._keep_unresolved(merged)
                    raise
                if retry:
                    self._backlog.extendleft(reversed(retry))
                    self._backlog_events += sum(len(b.events) for b in retry)
                    self._trim()
                    return False
            self._overflowing = False
            self._recovered()
            return True

    async def run_retries(self, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Retry the backlog with exponential backoff, forever (cancel to stop)."""
        delay = self.backoff_initial_s
        while True:
            if not self._backlog:
                self._wake.clear()
                await self._wake.wait()
                await sleep(self.backoff_initial_s)
            if await self.flush():
                delay = self.backoff_initial_s
                continue
            await sleep(delay)
            delay = min(delay * 2.0, self.backoff_max_s)

    # -- internals ------------------------------------------------------------

    def _enqueue(self, b: Batch) -> None:
        self._backlog.append(b)
        self._backlog_events += len(b.events)
        self._trim()

    def _keep_unresolved(self, batches: list[Batch]) -> None:
        """On cancellation: back to the backlog with every batch the center did not answer."""
        for b in reversed(batches):
            if not b.resolved:
                self._backlog.appendleft(b)
                self._backlog_events += len(b.events)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest events while the backlog is over its bound."""
        while self._backlog_events > self.backlog_limit and self._backlog:
            over = self._backlog_events - self.backlog_limit
            oldest = self._backlog[0]
            if len(oldest.events) <= over:
                self._backlog.popleft()
                n = len(oldest.events)
            else:
                del oldest.events[:over]
                n = over
            self._backlog_events -= n
            self._c.dropped += n
            if not self._overflowing:
                self._overflowing = True
                log.warning(
                    "backlog full (%d events, set by backlog_limit): dropping the oldest "
                    "events until the center is reachable again",
                    self.backlog_limit,
                )

    async def _post_all(self, batches: list[Batch]) -> list[Batch]:
        """Post batches concurrently; return those to retry, in their order."""
        results = await asyncio.gather(*(self._post(b) for b in batches))
        return [b for b, ok in zip(batches, results, strict=True) if not ok]

    async def _post(self, b: Batch) -> bool:
        """Post one batch; False when it should be retried."""
        n = len(b.events)
        key = self.keys.get(b.device_id)
        if key is None:
            b.resolved = True
            self._c.rejected += n
            self._report(b.device_id, 0, "no key (device not provisioned)")
            return True
        async with self._sem:
            self._c.in_flight += n
            self._c.requests += 1
            b.attempts += 1
            try:
                resp = await self.http.post(
                    self.url,
                    json={"events": b.events},
                    headers={"Authorization": f"Device {key}"},
                )
            except httpx.TransportError as exc:
                return self._retry_later(b, f"{type(exc).__name__}: {exc}")
            finally:
                self._c.in_flight -= n
        status = resp.status_code
        if status == 429 or status >= 500:
            return self._retry_later(b, f"HTTP {status}")
        b.resolved = True
        body = _json(resp)
        if 200 <= status < 300:
            accepted = _int(body.get("accepted"), n)
            dup = _int(body.get("duplicates"), 0)
            accepted, dup = min(accepted, n), min(dup, n - min(accepted, n))
            self._c.accepted += accepted
            self._c.duplicates += dup
            self._c.rejected += n - accepted - dup
            if n - accepted - dup:
                self._report(b.device_id, status, _message(body) or "some events refused")
            return True
        if status == 409:
            self._c.duplicates += n
            return True
        self._c.rejected += n
        self._report(b.device_id, status, _message(body))
        return True

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("the center is reachable again; delivering the backlog")

    def _retry_later(self, b: Batch, why: str) -> bool:
        self._c.failures += 1
        if not self._failing:
            self._failing = True
            log.warning("cannot reach the center (%s): holding events in the backlog", why)
        return False

    def _report(self, device_id: str, status: int, message: str) -> None:
        """Log a refusal once per device and status (edge-triggered)."""
        if (device_id, status) in self._c.reported:
            return
        self._c.reported.add((device_id, status))
        log.warning("center refused events from %s (HTTP %d): %s", device_id, status, message)


def _merge(group: list[Batch], max_batch: int) -> list[Batch]:
    """Join each device's batches (keeping their order) into requests of up to ``max_batch`` events.

    A device with a backlog sends it in as few requests as the batch limit
    allows, as a real device flushing its store would.
    """
    out: list[Batch] = []
    last: dict[str, Batch] = {}
    for b in group:
        prev = last.get(b.device_id)
        if prev is not None and len(prev.events) + len(b.events) <= max_batch:
            prev.events.extend(b.events)
            continue
        nb = Batch(b.device_id, list(b.events), b.attempts)  # unresolved: a new request
        out.append(nb)
        last[b.device_id] = nb
    return out


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else default


def _message(body: dict[str, Any]) -> str:
    err = body.get("error")
    if isinstance(err, dict):
        return f"{err.get('code', '')}: {err.get('message', '')}"
    return ""
