"""Micro-batching: items from many concurrent callers written in one transaction per batch.

Three writers gather what concurrent bus deliveries hand them into one store
transaction: the recorder (events), the plates processor (reads and their
hits) and the body-cam acknowledgements (acks and their audit entries).
:class:`MicroBatcher` is the mechanism they share; what a batch *does* stays
with them, in the write function.

Contract
--------
* :meth:`MicroBatcher.submit` queues one item and returns that item's result
  once the batch holding it has been written — so a bus message is
  acknowledged only after its effect is committed.
* A batch is written when ``max_items`` items wait, or at the end of the
  ``max_wait_s`` window (:func:`window_end`) in which its oldest item arrived;
  on :meth:`~MicroBatcher.stop` at once. An item thus waits at most
  ``max_wait_s`` (half that on average when alone) plus the write of the batch
  before it — the cadence of a timer ticking every ``max_wait_s``, without
  waking an idle process. Batches are written one at a time, in submission
  order, and the write function sees the items of a batch in submission order.
* The write function returns one result per item, in order. If it raises,
  every caller of that batch — and no other — gets the exception; nothing is
  retried here (the bus redelivers the messages; the writers are idempotent).
  A result list of the wrong length fails the batch with :class:`ValueError`.
* An accepted item is written once, even when its caller stopped waiting
  (cancelled): it is never dropped and never written twice by the batcher.
* :meth:`~MicroBatcher.stop` refuses new items (:class:`BatcherClosed`), lets
  the batch in flight finish and writes every item accepted before it.
* Backpressure comes from the callers: each awaits its result, so at most one
  item per concurrent caller (bus group member) waits.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from rtcc.errors import Unavailable

T = TypeVar("T")
R = TypeVar("R")

WriteBatch = Callable[[list[T]], Awaitable[Sequence[R]]]
"""Writes one batch (items in submission order); returns one result per item, in the same order."""


def window_end(since: float, window: float) -> float:
    """End of the ``window``-long slot of the clock that holds ``since`` (``since`` itself if 0).

    Slots are ``[k * window, (k + 1) * window)`` on the event loop's clock, so
    items arriving in one slot are written together at its end, which is
    later than ``since`` by more than 0 and at most ``window`` seconds.
    """
    if window <= 0:
        return since
    return (math.floor(since / window) + 1) * window


class BatcherClosed(Unavailable):
    """The item was not written: the batcher was not running, or its worker was cancelled first.

    An :class:`~rtcc.errors.Unavailable`: the message is fine, its processor is stopping, so the bus
    retries it (another worker, or this one after a restart) without counting it as a failure of the
    message (:func:`rtcc.bus.base.is_transient`).
    """


@dataclass(slots=True)
class _Waiting(Generic[T, R]):
    item: T
    result: asyncio.Future[R]
    since: float  # loop time of the submit


class MicroBatcher(Generic[T, R]):
    """Gathers submitted items into batches and writes each batch with one call of ``write``.

    Parameters
    ----------
    write : callable
        ``async write(items) -> results``: one call per batch, never two at once.
    max_items : int
        Largest batch; a batch this size is written without waiting.
    max_wait_s : float
        Length of the collection windows, in seconds: the longest time an item waits
        for more items (0: no waiting, every batch is what queued during the last write).
    name : str
        Used in messages and as the worker task's name.
    """

    def __init__(self, write: WriteBatch[T, R], *, max_items: int, max_wait_s: float, name: str) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self.write = write
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.name = name
        self._waiting: list[_Waiting[T, R]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Items accepted and not yet handed to the write function."""
        return len(self._waiting)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (items are accepted)."""
        return self._task is not None and not self._task.done() and not self._closing

    def start(self) -> None:
        """Start the worker (needs a running event loop)."""
        if self._task is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Refuse new items, finish the batch in flight, write every accepted item, end the worker."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await task
            finally:
                if self._task is task:
                    self._task = None

    async def submit(self, item: T) -> R:
        """Queue ``item``; returns its result once its batch is written.

        Raises
        ------
        BatcherClosed
            The batcher is not running (the item was not accepted), or its worker
            was cancelled before the item's batch was written.
        Exception
            Whatever the write function raised for the batch holding ``item``.
        """
        if not self.running:
            raise BatcherClosed(f"{self.name} is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._waiting.append(_Waiting(item, fut, loop.time()))
        n = len(self._waiting)
        if n == 1 or n >= self.max_items:
            self._wake.set()
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Waiting[T, R]] = []
        try:
            while True:
                if not self._waiting:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if len(self._waiting) < self.max_items and not self._closing:
                    due = window_end(self._waiting[0].since, self.max_wait_s)
                    if due > loop.time():
                        self._wake.clear()
                        timer = loop.call_at(due, self._wake.set)
                        try:
                            await self._wake.wait()
                        finally:
                            timer.cancel()
                        continue
                batch = self._waiting[: self.max_items]
                del self._waiting[: self.max_items]
                await self._write(batch)
                batch = []
        finally:
            # only reached with items left when the worker itself was cancelled
            self._closing = True
            left, self._waiting = batch + self._waiting, []
            for w in left:
                if not w.result.done():
                    w.result.set_exception(BatcherClosed(f"{self.name} was cancelled before the write"))

    async def _write(self, batch: list[_Waiting[T, R]]) -> None:
        items = [w.item for w in batch]
        try:
            results = await self.write(items)
            if len(results) != len(items):
                raise ValueError(f"{self.name}: {len(results)} results for {len(items)} items")
        except Exception as exc:
            for w in batch:
                if not w.result.done():
                    w.result.set_exception(exc)
            return
        for w, res in zip(batch, results, strict=True):
            if not w.result.done():
                w.result.set_result(res)
