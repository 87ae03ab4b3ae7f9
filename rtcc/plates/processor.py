"""The "plates" processor: every plate read on the bus stored, matched against the hotlists, hits raised.

For each :class:`~rtcc.events.PlateRead` (queue group ``plates``):

1. the read is stored (:func:`rtcc.plates.reads.insert_reads`, idempotent);
2. its plate is matched against the active hotlist entries
   (:class:`~rtcc.plates.matching.HotlistMatcher`: exact, look-alike within
   ``plates.lookalike_distance`` edits, wildcard entries);
3. on a match a hit row is stored with status ``verify`` ("verify before
   action") and the read is marked as a hit (retention keeps it);
4. a :class:`~rtcc.events.HotlistHit` and an :class:`~rtcc.events.Alert`
   (kind ``hotlist_hit``) are published.

Ids are derived from read and entry (:func:`rtcc.plates.hits.hit_id_for`),
so a redelivered read stores nothing twice and republishes the same event
ids (the recorder and JetStream drop the copies).

Each hotlist source has its own matcher, rebuilt when the hotlist version
(``hotlist_state``) moves and that source's content changed
(:func:`~rtcc.plates.hotlists.changed_sources`): at once when this process's API
changed a list (:meth:`PlatesProcessor.refresh`, offered to routes as
``services["plates"]``), and by polling every ``plates.hotlist_refresh_s``
seconds for changes made by other processes. A BOLO added beside a
million-line NCIC list thus matches within milliseconds instead of after the
big list's rebuild (≈ 17 s at 1 M entries); the matchers in use keep serving
reads while new ones are built.

**Catching up.** A read stored between a list's change and this process's rebuild
was matched against the old lists. After a rebuild, the reads stored since the
previous check (``CATCH_UP_MARGIN_S`` earlier, at most ``CATCH_UP_MAX`` of
them) are matched against the rebuilt sources only, and their new hits raised
like any other: a plate on a fresh list does not pass a camera unflagged in the
seconds the list took to arrive. Reads from before that are not searched (that
would be a search of the reads, which needs a purpose and a case).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from rtcc.bus import Subscription
from rtcc.events import Alert, AlertSeverity, HotlistHit, PlateRead, Position, parse_event
from rtcc.plates.hits import NewHit, record_hit
from rtcc.plates.hotlists import SourceSignature, SourceSnapshot, changed_sources, hotlist_version
from rtcc.plates.matching import HotlistMatcher, Match, match_order
from rtcc.plates.reads import insert_reads, mark_hit, read_event
from rtcc.store.batcher import MicroBatcher
from rtcc.store.tables_plates import PlateReadRow

log = logging.getLogger(__name__)

SUBJECT = "rtcc.events.plate_read"
CATCH_UP_MARGIN_S = 5.0
"""Reads stored this long before the previous hotlist check are matched again after a rebuild."""
CATCH_UP_MAX = 100_000
"""At most this many reads are matched again after one rebuild (oldest first)."""

_ALERT_NS = uuid.UUID("0b3f1c52-8f0e-4a8f-a0a4-1f0f6a1c9d27")

CRITICAL_CATEGORIES = frozenset({"wanted_person", "missing_person"})
"""Hit categories whose alert is critical (people at risk or dangerous); the rest are warnings."""


def hit_event(row: Any) -> HotlistHit:
    """The bus event of a stored hit (its event id is the hit id)."""

    return HotlistHit(
        event_id=row.id,
        source="plates",
        occurred_at=row.read_at,
        read_id=row.read_id,
        device=row.device,
        pos=Position(lat=row.lat, lon=row.lon),
        plate=row.plate,
        entry_plate=row.entry_plate,
        category=row.category,
        match=row.match,
        hit_id=row.id,
        entry_id=row.entry_id,
        entry_source=row.entry_source,
        reason=(row.reason or "")[:2000],
        distance=row.distance,
        image_ref=row.image_ref,
        crop_ref=row.crop_ref,
        status=row.status,
    )


def hit_alert(row: Any, *, entry_state: str | None = None, read_region: str | None = None) -> Alert:
    """The operator alert of a stored hit: says "verify before action", and says first when the
    entry's state and the state read on the plate differ (the same number in another state)."""
    from rtcc.plates.hits import state_mismatch

    aid = uuid.uuid5(_ALERT_NS, str(row.id))
    how = "" if row.match == "exact" else f", {row.match} match of {row.entry_plate}"
    if state_mismatch(entry_state, read_region):
        how += f"; STATE DIFFERS: list {entry_state}, plate read {read_region}"
    category = str(row.category).replace("_", " ")
    return Alert(
        event_id=aid,
        alert_id=aid,
        source="plates",
        occurred_at=row.read_at,
        kind="hotlist_hit",
        severity=AlertSeverity.critical if row.category in CRITICAL_CATEGORIES else AlertSeverity.warning,
        title=f"Hotlist hit {row.plate} ({category}{how}) at {row.device} — verify before action"[:300],
        pos=Position(lat=row.lat, lon=row.lon),
        ref_event_id=row.id,
    )


class PlatesProcessor:
    """Stores reads, matches them, raises hits (see the module docstring).

    Reads from the queue group's ``members`` concurrent deliveries are gathered
    into batches (up to ``batch_size`` reads or ``linger_s`` seconds,
    :class:`~rtcc.store.batcher.MicroBatcher`) and each batch is stored in one
    transaction; a message is acknowledged only after its batch is committed and
    its hits published.
    """

    group = "plates"

    def __init__(
        self, center: Any, *, members: int = 200, batch_size: int = 500, linger_s: float = 0.02
    ) -> None:
        self.center = center
        self.members = members
        self.batch_size = batch_size
        self.linger_s = linger_s
        ps = center.settings.plates
        self.max_distance: int = ps.lookalike_distance
        self.refresh_s: float = ps.hotlist_refresh_s
        # per source: (signature, matcher, expiries); replaced as a whole, never mutated
        self.sources: dict[str, tuple[SourceSignature, HotlistMatcher, dict[str, datetime]]] = {}
        # what matches() reads, swapped in one assignment: (matchers with entries, expiries by entry id)
        self._live: tuple[tuple[HotlistMatcher, ...], dict[str, datetime]] = ((), {})
        self.version = -1
        self._checked_at: datetime | None = None  # wall time of the last version check that ran
        self._lock = asyncio.Lock()
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._batcher: MicroBatcher[PlateRead, list[NewHit]] = MicroBatcher(
            self._write_batch, max_items=batch_size, max_wait_s=linger_s, name="plates-batches"
        )

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self.refresh(force=True)
        self.center.services["plates"] = self
        self._batcher.start()
        self._tasks = [asyncio.get_running_loop().create_task(self._poll(), name="plates-hotlists")]
        for _ in range(self.members):
            self._subs.append(await self.center.bus.subscribe(SUBJECT, self._handle, group=self.group))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.stop()
        self._subs.clear()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._batcher.stop()  # stores every read accepted before
        if self.center.services.get("plates") is self:
            del self.center.services["plates"]

    # -- the matcher --------------------------------------------------------------

    @property
    def size(self) -> int:
        """Active entries in the matchers (as of their builds)."""
        return sum(m.size for m in self._live[0])

    async def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the matchers of changed sources when the hotlist version moved (all if ``force``).

        Returns True when anything was rebuilt or dropped.
        """
        store = self.center.store
        async with self._lock:
            checked, self._checked_at = self._checked_at, datetime.now(UTC)
            if not force and await store.read(hotlist_version) == self.version:
                return False
            known = {} if force else {name: sig for name, (sig, _, _) in self.sources.items()}
            snap: SourceSnapshot = await store.read(lambda s: changed_sources(s, known))
            sources = {k: v for k, v in self.sources.items() if k in snap.signatures}
            for name, active in snap.changed.items():
                if len(active.entries) > 1000:  # a big list is built off the event loop
                    matcher = await asyncio.to_thread(
                        HotlistMatcher, active.entries, max_distance=self.max_distance
                    )
                else:
                    matcher = HotlistMatcher(active.entries, max_distance=self.max_distance)
                sources[name] = (snap.signatures[name], matcher, active.expires)
            self.sources = sources
            self._live = (
                tuple(m for _, m, _ in sources.values() if m.size),
                {k: v for _, _, exp in sources.values() for k, v in exp.items()},
            )
            self.version = snap.version
        log.info(
            "hotlist matchers: %d active entries in %d sources (version %d; rebuilt %s, dropped %s)",
            self.size,
            len(sources),
            snap.version,
            sorted(snap.changed) or "none",
            snap.gone or "none",
        )
        if snap.changed and checked is not None and not force:
            await self._catch_up(set(snap.changed), checked - timedelta(seconds=CATCH_UP_MARGIN_S))
        return bool(snap.changed or snap.gone)

    async def _catch_up(self, names: set[str], since: datetime) -> int:
        """Match the reads stored since ``since`` against the rebuilt sources ``names``; new hits raised.

        Returns how many hits were new.
        """
        store = self.center.store
        matchers = [self.sources[n][1] for n in names if n in self.sources]
        expires = self._live[1]
        now = datetime.now(UTC)

        def _found(s: Any) -> list[tuple[PlateRead, list[Match]]]:
            rows = s.scalars(
                select(PlateReadRow)
                .where(PlateReadRow.created_at >= since, PlateReadRow.read_at >= since - timedelta(days=1))
                .order_by(PlateReadRow.created_at)
                .limit(CATCH_UP_MAX)
            ).all()
            out = []
            for row in rows:
                found = [
                    m
                    for matcher in matchers
                    for m in matcher.match(row.plate)
                    if (exp := expires.get(m.entry.entry_id)) is None or exp > now
                ]
                if found:
                    out.append((read_event(row), sorted(found, key=match_order)))
            return out

        pending = await store.read(_found)
        if not pending:
            return 0

        def _write(s: Any) -> list[list[NewHit]]:
            out = []
            for read, matches in pending:
                hits = [h for m in matches if (h := record_hit(s, read, m)) is not None]
                if any(h.created for h in hits):
                    mark_hit(s, read.event_id)
                out.append([h for h in hits if h.created])
            return out

        new = 0
        for (read, matches), hits in zip(pending, await store.write(_write), strict=True):
            for h in hits:
                new += 1
                self.center.metrics.inc("hotlist_hits_caught_up")
                await self._announce(h, read, matches)
        if new:
            log.info("hotlist matchers: %d hit(s) on reads stored while %s changed", new, sorted(names))
        return new

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("checking the hotlist version failed; matching with the lists loaded before")

    def matches(self, plate: str, now: datetime | None = None) -> list[Match]:
        """Active entries ``plate`` matches (entries expired since the last rebuild left out)."""
        when = now or datetime.now(UTC)
        matchers, expires = self._live
        if len(matchers) == 1:
            found = matchers[0].match(plate)
        else:
            found = sorted((m for matcher in matchers for m in matcher.match(plate)), key=match_order)
        return [m for m in found if (exp := expires.get(m.entry.entry_id)) is None or exp > when]

    # -- reads --------------------------------------------------------------------

    async def _handle(self, subject: str, payload: bytes) -> None:
        try:
            ev = parse_event(payload)
        except ValidationError:
            self.center.metrics.inc("plate_reads_malformed")
            log.warning("plates: dropping an invalid plate_read message")
            return
        if not isinstance(ev, PlateRead):
            return
        await self._batcher.submit(ev)

    async def _write_batch(self, reads: list[PlateRead]) -> list[list[NewHit]]:
        """:meth:`process_batch` for the batcher, which fails every message of a failed batch."""
        try:
            return await self.process_batch(reads)
        except Exception:
            self.center.metrics.inc("plate_reads_errors")
            log.exception("plates: batch of %d failed; the reads will be redelivered", len(reads))
            raise

    async def process(self, read: PlateRead) -> list[NewHit]:
        """Store, match and raise the hits of one read; returns the hits (new or already stored)."""
        return (await self.process_batch([read]))[0]

    async def process_batch(self, reads: list[PlateRead]) -> list[list[NewHit]]:
        """Store a batch of reads in one transaction, record their hits, publish them; hits per read."""
        store = self.center.store
        metrics = self.center.metrics
        if len(reads) > 20:  # a big batch is matched off the event loop
            found = await asyncio.to_thread(lambda: [self.matches(r.plate) for r in reads])
        else:
            found = [self.matches(r.plate) for r in reads]

        def _write(s: Any) -> list[list[NewHit]]:
            insert_reads(s, reads)
            out: list[list[NewHit]] = []
            for read, matches in zip(reads, found, strict=True):
                hits = [h for m in matches if (h := record_hit(s, read, m)) is not None]
                if hits:
                    mark_hit(s, read.event_id)
                out.append(hits)
            return out

        results: list[list[NewHit]] = await store.write(_write)
        metrics.inc("plate_reads_processed", len(reads))
        for read, matches, hits in zip(reads, found, results, strict=True):
            for h in hits:
                await self._announce(h, read, matches)
        return results

    async def _announce(self, h: NewHit, read: PlateRead, matches: list[Match]) -> None:
        """Publish a hit and its alert (a new one counted); a stored one is published again, same ids."""
        if h.created:
            self.center.metrics.inc("hotlist_hits", category=h.row.category, match=h.row.match)
        state = next((m.entry.state for m in matches if uuid.UUID(m.entry.entry_id) == h.row.entry_id), None)
        ev = hit_event(h.row)
        alert = hit_alert(h.row, entry_state=state, read_region=read.region)
        await self.center.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
        await self.center.bus.publish(alert.subject, alert.to_json(), msg_id=str(alert.event_id))


def build(center: Any) -> PlatesProcessor:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return PlatesProcessor(center)
