"""Retention: plate reads and their images that hit nothing are deleted after a set time.

A run (the ``retention`` processor every ``retention.interval_s`` seconds, or
``rtcc retention run``) deletes the plate reads older than
``retention.plate_reads_days`` days, and then the media files (plate crops,
vehicle images) no remaining read uses. It keeps

* reads linked to an **open** case (``case_links`` with ``ref_type``
  ``plate_read``); once the case closes they go at the next run, and
* reads that hit a hotlist entry while the hit still needs them: until it is
  decided (``verify``), and while it, its read or the alert that announced it
  (``ref_type`` ``alert``, as :func:`rtcc.ops.ledger.record_outcomes` links an
  outcome recorded on the alert) is linked to an open case.
  A hit read is *released* to the ordinary rule once every hit of it was
  rejected (a misread: the vehicle had nothing to do with the list), once
  every case it was linked to is closed, or, confirmed and never linked to a
  case, ``retention.confirmed_hit_days`` after the decision. A released hit
  keeps its decision record (plate, entry, who decided and why) but loses
  its photos with the read.

The same run deletes the event log's copies of plate reads and hotlist hits
(``events`` rows of type ``plate_read`` and ``hotlist_hit``) older than
``retention.plate_reads_days``, whatever became of the read: ``plate_reads``
and ``hotlist_hits`` are the records (reads kept for a hit or an open case are
kept *there*), and the event copies would otherwise keep every plate, place
and time for ever. For the same reason it deletes, after the same time, the
``alert`` events of a plate alert kind (:data:`rtcc.events.PLATE_ALERT_KINDS`,
whose title names the plate; the ``alerts`` row is the record and stays;
counted in ``plate_alert_events_deleted``).

Incident packets (``packets``) list plate reads in full in their body
(``plate_reads.items``: plate, place, time, camera, photo refs). Every entry
of a read no longer stored (deleted by this run or an earlier one) is removed
from the packets that hold it; the rest of each packet stays as it was (the
count of the other reads nearby, ``others``, keeps the number the packet was
built with). Only packets of things that happened before the cutoff plus the
longest packet window can hold an expired read, so only those are read
(counted in ``packet_reads_removed`` and ``packets_updated``).

Device heartbeats (``events`` rows of type ``device_heartbeat``: a body cam's
or in-car camera's carries the officer's position) are deleted after
``retention.heartbeat_days``, whatever the device (counted in
``heartbeat_events_deleted``).

It also strips the audio (``audio_flac_b64``) from stored
acoustic pulses older than ``retention.pulse_audio_days``, keeping their
timing and level, except the pulses of a gunshot incident
(``gunshot_incidents.pulses`` and, for every round, ``round_pulses``): that audio is the incident's evidence
(``GET /gunshots/{id}/audio``).

Clips that camera owners delivered for footage requests are deleted
``retention.footage_days`` after they arrived, unless an open case links them
(``ref_type`` ``footage``; then when it closes); the request stays as the
record, with status ``purged`` (counted in ``footage_clips_deleted`` and
``footage_clips_kept_for_cases``).

It also deletes community camera registrations whose verification expired
unused (the verification mail promises nothing is kept without
confirmation), and withdrawn cameras kept only for a clip linked to a case,
with their clips, once no open case links them (counted in
``camera_registrations_expired`` and ``withdrawn_clips_deleted``).

Media files are deleted after the rows, once the transaction committed (a
file deleted before a rollback would be lost evidence). So that a crash
between the commit and the file deletion orphans nothing, the purge lists the
freed refs in ``media_deletions`` in the same transaction; the run deletes the
files and then the entries, and every run first takes over the entries an
earlier, interrupted run left (skipping a ref a newer read uses again: the
store is content-addressed), counted in ``media_resumed``.

Every run is written to ``retention_runs`` (the transparency page counts
them) and every real purge is audited with its counts by the actor
``system:retention``, in the purge's own transaction when the caller gives
the audit secret (:func:`run_once`, the processor), so a purge is never
committed without its audit entry. A dry run counts the same in a
rolled-back savepoint and deletes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from rtcc.events import PLATE_ALERT_KINDS
from rtcc.plates.reads import purge_reads
from rtcc.plates.transparency import record_retention_run
from rtcc.store.events_repo import delete_events_before, pulse_audio_ids, strip_pulse_audio
from rtcc.store.tables import GunshotIncidentRow
from rtcc.store.tables_hotlists import HitRow, MediaDeletionRow
from rtcc.store.tables_ops import AlertRow, PacketRow
from rtcc.store.tables_plates import PlateReadRow

log = logging.getLogger(__name__)

ACTOR = "system:retention"
"""Who the audit log names for every purge."""

_IN_CHUNK = 1000

EVENT_COPIES: tuple[str, ...] = ("plate_read", "hotlist_hit")
"""Event types whose ``events`` rows go after ``retention.plate_reads_days`` (their record is elsewhere)."""

HEARTBEAT = "device_heartbeat"
"""The event type deleted after ``retention.heartbeat_days`` (officers' positions among them)."""

HIT_ALERT_KINDS: tuple[str, ...] = ("hotlist_hit",)
"""Alert kinds whose ``ref_id`` is a hotlist hit's id (:func:`rtcc.plates.processor.hit_alert`): a case
linking such an alert keeps the hit's read like a link to the hit itself."""

PACKET_WINDOW_MAX = timedelta(days=1)
"""More than the longest packet window (``operations.packet_window_min`` is at most 240 minutes): a
packet of something that happened later than this after the cutoff holds no read older than it."""


@dataclass
class RetentionReport:
    """What one run did (or, dry, would do)."""

    started_at: datetime
    cutoff: datetime
    plate_reads_days: int
    dry_run: bool
    reads_deleted: int = 0
    media_deleted: int = 0
    kept_for_hits: int = 0
    kept_for_cases: int = 0
    hit_reads_released: int = 0
    plate_read_events_deleted: int = 0
    hotlist_hit_events_deleted: int = 0
    plate_alert_events_deleted: int = 0
    packet_reads_removed: int = 0
    packets_updated: int = 0
    heartbeat_days: int | None = None
    heartbeat_cutoff: datetime | None = None
    heartbeat_events_deleted: int = 0
    pulse_audio_days: int | None = None
    pulse_audio_cutoff: datetime | None = None
    pulse_audio_stripped: int = 0
    pulse_audio_kept_for_incidents: int = 0
    camera_registrations_expired: int = 0
    withdrawn_clips_deleted: int = 0
    footage_days: int | None = None
    footage_clips_deleted: int = 0
    footage_clips_kept_for_cases: int = 0
    media_resumed: int = 0
    """Media files an earlier, interrupted run freed but had not deleted; this run deletes them."""
    media_refs: list[str] = field(default_factory=list, repr=False)
    resumed_refs: list[str] = field(default_factory=list, repr=False)
    queue_ids: list[int] = field(default_factory=list, repr=False)
    """The ``media_deletions`` entries of ``media_refs`` and ``resumed_refs`` (cleared once deleted)."""
    audit_event: Any = field(default=None, repr=False)
    """The bus mirror of the audit entry written in the purge's transaction (None: the caller audits)."""

    _INTERNAL: ClassVar[tuple[str, ...]] = ("media_refs", "resumed_refs", "queue_ids", "audit_event")

    def counts(self) -> dict[str, Any]:
        """The run as JSON-ready counts (no media refs)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._INTERNAL}
        for k in ("started_at", "cutoff", "pulse_audio_cutoff", "heartbeat_cutoff"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def media_root(settings: Any) -> Path:
    """The plate media store's folder (``plates.media_dir``, default ``data_dir/media``)."""
    configured = settings.plates.media_dir
    return Path(configured) if configured is not None else Path(settings.data_dir) / "media"


def footage_media(settings: Any) -> Path:
    """Where community camera clips live (see :func:`rtcc.cameras.footage.media_dir`)."""
    from rtcc.cameras.footage import media_dir

    return media_dir(Path(settings.data_dir))


def open_case_read_ids(session: Session) -> set[str]:
    """Ids of plate reads linked to an open case, in canonical UUID text (:func:`_ref_key`).

    :func:`rtcc.plates.reads.purge_reads` compares them with ``str(read.id)``: a link stored in
    another spelling (upper case, before migration 0017) must still keep its read.
    """
    from rtcc.store.tables_ops import Case, CaseLink

    q = (
        select(CaseLink.ref_id)
        .join(Case, Case.id == CaseLink.case_id)
        .where(CaseLink.ref_type == "plate_read", Case.status == "open")
    )
    return {_ref_key(str(x)) for x in session.scalars(q)}


def _as_utc(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _ref_key(ref_id: str) -> str:
    """A link's ``ref_id`` in the form the ids are compared in (a UUID's canonical text when it is one)."""
    try:
        return str(uuid.UUID(ref_id))
    except ValueError:
        return ref_id


def hit_case_links(session: Session) -> dict[tuple[str, str], list[str]]:
    """The statuses of the cases linking each hit or plate read, ``{(ref_type, id): [status, ...]}``.

    ``ref_type`` is ``hit`` or ``plate_read``. A case linking the *alert* of a
    hit (:data:`HIT_ALERT_KINDS`, whose ``ref_id`` is the hit) counts as
    linking the hit: recording an outcome on the alert links the alert, and
    that case needs the hit's photos as much as one linking the hit.
    """
    from rtcc.store.tables_ops import Case, CaseLink

    links: dict[tuple[str, str], list[str]] = {}
    alerts: dict[uuid.UUID, list[str]] = {}
    for ref_type, ref_id, case_status in session.execute(
        select(CaseLink.ref_type, CaseLink.ref_id, Case.status)
        .join(Case, Case.id == CaseLink.case_id)
        .where(CaseLink.ref_type.in_(("hit", "plate_read", "alert")))
    ):
        if ref_type != "alert":
            links.setdefault((ref_type, _ref_key(ref_id)), []).append(case_status)
            continue
        with contextlib.suppress(ValueError):
            alerts.setdefault(uuid.UUID(ref_id), []).append(case_status)
    ids = list(alerts)
    for i in range(0, len(ids), _IN_CHUNK):
        for aid, hit_id in session.execute(
            select(AlertRow.id, AlertRow.ref_id).where(
                AlertRow.id.in_(ids[i : i + _IN_CHUNK]),
                AlertRow.kind.in_(HIT_ALERT_KINDS),
                AlertRow.ref_id.is_not(None),
            )
        ):
            links.setdefault(("hit", _ref_key(str(hit_id))), []).extend(alerts[aid])
    return links


def release_hit_reads(session: Session, cutoff: datetime, now: datetime, confirmed_hit_days: int) -> int:
    """Clear the ``hit`` mark of old hit reads no hit needs any more (see the module docstring).

    A case links a hit's read through the read, the hit, or the hit's alert
    (:func:`hit_case_links`); while one of them is open the read is kept.

    Only reads older than ``cutoff`` are looked at; their hits lose their
    media refs (the photos go with the read). Returns how many reads were released.
    """
    by_read: dict[uuid.UUID, list[tuple[str, str, datetime | None]]] = {}
    for hid, rid, status, decided in session.execute(
        select(HitRow.id, HitRow.read_id, HitRow.status, HitRow.decided_at).where(HitRow.read_at < cutoff)
    ):
        by_read.setdefault(rid, []).append((str(hid), status, _as_utc(decided)))
    if not by_read:
        return 0
    still_hit = set(
        session.scalars(
            select(PlateReadRow.id).where(
                PlateReadRow.read_at < cutoff,
                PlateReadRow.hit,
                PlateReadRow.id.in_(list(by_read)),
            )
        )
    )
    links = hit_case_links(session)
    confirmed_until = now - timedelta(days=confirmed_hit_days)
    release: list[uuid.UUID] = []
    for rid in still_hit:
        hits = by_read[rid]
        if any(status == "verify" for _, status, _ in hits):
            continue
        cases = links.get(("plate_read", str(rid)), []) + [
            c for h, _, _ in hits for c in links.get(("hit", h), [])
        ]
        if "open" in cases:
            continue
        if cases or all(status == "rejected" for _, status, _ in hits):
            release.append(rid)
            continue
        decisions = [d for _, status, d in hits if status == "confirmed" and d is not None]
        if decisions and max(decisions) < confirmed_until:
            release.append(rid)
    for i in range(0, len(release), _IN_CHUNK):
        chunk = release[i : i + _IN_CHUNK]
        session.execute(  # read_at bounds the scan: SQLite keys plate_reads by (read_at, id) (0009)
            update(PlateReadRow)
            .where(PlateReadRow.read_at < cutoff, PlateReadRow.id.in_(chunk))
            .values(hit=False)
        )
        session.execute(update(HitRow).where(HitRow.read_id.in_(chunk)).values(image_ref=None, crop_ref=None))
    return len(release)


def _count_kept(session: Session, cutoff: datetime, case_ids: set[str]) -> tuple[int, int]:
    """(reads kept for a hit, reads kept for an open case only) among those older than ``cutoff``."""
    old = PlateReadRow.read_at < cutoff
    hits = int(
        session.scalar(select(func.count()).select_from(PlateReadRow).where(old, PlateReadRow.hit)) or 0
    )
    ids: list[uuid.UUID] = []
    for x in case_ids:
        with contextlib.suppress(ValueError):
            ids.append(uuid.UUID(x))
    cases = 0
    for i in range(0, len(ids), _IN_CHUNK):
        cases += int(
            session.scalar(
                select(func.count())
                .select_from(PlateReadRow)
                .where(old, PlateReadRow.hit.is_(False), PlateReadRow.id.in_(ids[i : i + _IN_CHUNK]))
            )
            or 0
        )
    return hits, cases


def incident_pulse_ids(session: Session) -> set[uuid.UUID]:
    """Event ids of the pulses a gunshot incident was located from, every round's (their audio is its
    evidence)."""
    ids: set[uuid.UUID] = set()
    for pulses, per_round in session.execute(
        select(GunshotIncidentRow.pulses, GunshotIncidentRow.round_pulses)
    ):
        values = list((pulses or {}).values())
        for slots in (per_round or {}).values():
            values.extend(v for v in slots or [] if v)
        for v in values:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                ids.add(uuid.UUID(str(v)))
    return ids


def purge_event_copies(session: Session, rep: RetentionReport) -> None:
    """Delete (dry: count) the event copies older than the report's cutoff.

    The ``plate_read`` and ``hotlist_hit`` events, and the ``alert`` events of
    a plate alert kind (:data:`rtcc.events.PLATE_ALERT_KINDS`; the ``alerts``
    row stays).
    """
    counts = delete_events_before(session, EVENT_COPIES, rep.cutoff, dry_run=rep.dry_run)
    rep.plate_read_events_deleted = counts["plate_read"]
    rep.hotlist_hit_events_deleted = counts["hotlist_hit"]
    alerts = delete_events_before(
        session, ("alert",), rep.cutoff, dry_run=rep.dry_run, kinds=PLATE_ALERT_KINDS
    )
    rep.plate_alert_events_deleted = alerts["alert"]


def purge_heartbeats(session: Session, rep: RetentionReport, days: int) -> None:
    """Delete (dry: count) the ``device_heartbeat`` events older than ``days`` days."""
    cutoff = rep.started_at - timedelta(days=days)
    rep.heartbeat_days, rep.heartbeat_cutoff = days, cutoff
    counts = delete_events_before(session, (HEARTBEAT,), cutoff, dry_run=rep.dry_run)
    rep.heartbeat_events_deleted = counts[HEARTBEAT]


_READ_AT_PAD = timedelta(minutes=1)
"""Slack around a packet entry's ``read_at`` when looking its read up (the id decides; the time
only bounds the scan)."""


def _packet_read_id(item: Any) -> uuid.UUID | None:
    """The read id of an entry of a packet's ``plate_reads`` items (None: not a read)."""
    if not isinstance(item, dict):
        return None
    try:
        return uuid.UUID(str(item.get("id")))
    except ValueError:
        return None


def _packet_read_key(item: Any, cutoff: datetime) -> tuple[uuid.UUID, datetime | None] | None:
    """``(id, read_at)`` of a packet's plate read entry older than ``cutoff`` (None: not one)."""
    rid = _packet_read_id(item)
    if rid is None:
        return None
    at = item.get("read_at")
    t: datetime | None = None
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            t = _as_utc(datetime.fromisoformat(at))
    if t is not None and t >= cutoff:
        return None
    return rid, t


def _stored_reads(session: Session, keys: set[tuple[uuid.UUID, datetime | None]]) -> set[uuid.UUID]:
    """The ids among ``keys`` of the reads still stored (looked up in chunks by time span and id)."""
    timed = sorted(((t, rid) for rid, t in keys if t is not None), key=lambda k: (k[0], k[1]))
    found: set[uuid.UUID] = set()
    for i in range(0, len(timed), _IN_CHUNK):
        chunk = timed[i : i + _IN_CHUNK]
        # the time span lets SQLite use its (read_at, id) key and PostgreSQL prune partitions
        span = PlateReadRow.read_at.between(chunk[0][0] - _READ_AT_PAD, chunk[-1][0] + _READ_AT_PAD)
        ids = [rid for _, rid in chunk]
        found.update(session.scalars(select(PlateReadRow.id).where(span, PlateReadRow.id.in_(ids))))
    untimed = sorted({rid for rid, t in keys if t is None})
    for i in range(0, len(untimed), _IN_CHUNK):
        found.update(
            session.scalars(select(PlateReadRow.id).where(PlateReadRow.id.in_(untimed[i : i + _IN_CHUNK])))
        )
    return found


def without_reads(body: dict[str, Any], gone: set[uuid.UUID]) -> tuple[dict[str, Any], int]:
    """``body`` without the ``plate_reads`` entries of the reads ``gone``, and how many went.

    The rest of the packet is unchanged. A packet built before the section
    counted the other reads (``others`` None: it listed them) gets the count
    it was served with (:func:`rtcc.ops.packets.served_plate_reads`), so
    removing a listed read does not change it.
    """
    sec = body.get("plate_reads")
    items = sec.get("items") if isinstance(sec, dict) else None
    if not isinstance(sec, dict) or not isinstance(items, list):
        return body, 0
    keep = [x for x in items if _packet_read_id(x) not in gone]
    removed = len(items) - len(keep)
    if not removed:
        return body, 0
    section = {**sec, "items": keep}
    if sec.get("others") is None:
        others = sum(1 for x in items if isinstance(x, dict) and x.get("hit") is not True)
        if others:
            section["others"] = others
    return {**body, "plate_reads": section}, removed


def purge_packet_reads(session: Session, rep: RetentionReport) -> None:
    """Remove (dry: count) from the incident packets the entries of plate reads no longer stored.

    Only packets of things before the cutoff plus :data:`PACKET_WINDOW_MAX`
    are read, and of them only the ``plate_reads`` items; entries older than
    the cutoff are looked up in ``plate_reads``, and a packet is rewritten
    only when one of its reads is gone. Run after the reads are deleted.
    """
    q = (
        select(PacketRow.id, PacketRow.body[("plate_reads", "items")])
        .where(PacketRow.occurred_at < rep.cutoff + PACKET_WINDOW_MAX)
        .order_by(PacketRow.id)
    )
    held: dict[int, set[uuid.UUID]] = {}
    keys: set[tuple[uuid.UUID, datetime | None]] = set()
    for pid, items in session.execute(q):
        for item in items if isinstance(items, list) else ():
            k = _packet_read_key(item, rep.cutoff)
            if k is not None:
                keys.add(k)
                held.setdefault(pid, set()).add(k[0])
    if not keys:
        return
    gone = {rid for rid, _ in keys} - _stored_reads(session, keys)
    touched = sorted(pid for pid, ids in held.items() if ids & gone)
    for i in range(0, len(touched), _IN_CHUNK):
        chunk = touched[i : i + _IN_CHUNK]
        for pid, body in session.execute(select(PacketRow.id, PacketRow.body).where(PacketRow.id.in_(chunk))):
            new, removed = without_reads(dict(body or {}), gone)
            if not removed:
                continue
            rep.packet_reads_removed += removed
            rep.packets_updated += 1
            if not rep.dry_run:
                session.execute(update(PacketRow).where(PacketRow.id == pid).values(body=new))


def purge_pulse_audio(session: Session, rep: RetentionReport, days: int) -> None:
    """Strip (dry: count) the audio of pulses older than ``days`` days that no incident uses."""
    cutoff = rep.started_at - timedelta(days=days)
    rep.pulse_audio_days, rep.pulse_audio_cutoff = days, cutoff
    keys = pulse_audio_ids(session, cutoff)
    if not keys:
        return
    evidence = incident_pulse_ids(session)
    strip = [k for k in keys if k[0] not in evidence]
    rep.pulse_audio_kept_for_incidents = len(keys) - len(strip)
    rep.pulse_audio_stripped = len(strip) if rep.dry_run else strip_pulse_audio(session, strip)


def purge_cameras(
    session: Session, rep: RetentionReport, footage_media: Path | None, footage_days: int | None = None
) -> None:
    """Delete expired unverified registrations, released withdrawn cameras and, with
    ``footage_days``, delivered clips older than that which no open case links (dry: count only).

    A clip file is deleted inside the transaction (as a withdrawal's are): should it roll back, the
    request still names a clip that is gone, which was due for deletion anyway; the other order could
    leave a clip nobody knows of on disk for ever.
    """
    from rtcc.cameras.registry import (
        WITHDRAWN,
        expired_registrations,
        purge_expired_registrations,
        purge_old_clips,
    )
    from rtcc.store.tables_cameras import CameraRow

    if footage_media is not None and footage_days is not None:
        rep.footage_days = footage_days
        clips = purge_old_clips(
            session, footage_media, rep.started_at - timedelta(days=footage_days), dry_run=rep.dry_run
        )
        rep.footage_clips_deleted, rep.footage_clips_kept_for_cases = clips.deleted, clips.kept_for_cases
    if rep.dry_run:
        rep.camera_registrations_expired = int(
            session.scalar(
                select(func.count()).select_from(CameraRow).where(expired_registrations(rep.started_at))
            )
            or 0
        )
        return
    rep.camera_registrations_expired = purge_expired_registrations(session, rep.started_at)
    if footage_media is not None and session.scalar(
        select(func.count()).select_from(CameraRow).where(CameraRow.status == WITHDRAWN)
    ):
        from rtcc.cameras.registry import purge_withdrawn

        rep.withdrawn_clips_deleted = purge_withdrawn(session, footage_media)


def _media_in_use(session: Session, refs: list[str]) -> set[str]:
    """The refs among ``refs`` a stored read or hit names (the store is content-addressed: the same
    image stored again by a newer read gets the same ref)."""
    used: set[str] = set()
    for i in range(0, len(refs), _IN_CHUNK):
        chunk = refs[i : i + _IN_CHUNK]
        for table in (PlateReadRow, HitRow):
            for crop, image in session.execute(
                select(table.crop_ref, table.image_ref).where(
                    or_(table.crop_ref.in_(chunk), table.image_ref.in_(chunk))
                )
            ):
                used.update(x for x in (crop, image) if x)
    return used & set(refs)


def take_media_queue(session: Session, rep: RetentionReport) -> None:
    """Take over the ``media_deletions`` entries an earlier run left (it stopped before deleting them).

    Their rows were deleted and committed, so nothing else would ever delete
    those files. An entry whose ref a stored read or hit names again is
    dropped without touching the file. The rest go into ``rep.resumed_refs``
    (counted in ``media_resumed``) for this run's file phase.
    """
    rows = session.execute(
        select(MediaDeletionRow.id, MediaDeletionRow.ref).order_by(MediaDeletionRow.id)
    ).all()
    if not rows:
        return
    used = _media_in_use(session, sorted({str(r.ref) for r in rows}))
    stale = [int(r.id) for r in rows if r.ref in used]
    for i in range(0, len(stale), _IN_CHUNK):
        session.execute(delete(MediaDeletionRow).where(MediaDeletionRow.id.in_(stale[i : i + _IN_CHUNK])))
    rep.resumed_refs = sorted({str(r.ref) for r in rows if r.ref not in used})
    rep.media_resumed = len(rep.resumed_refs)
    rep.queue_ids.extend(int(r.id) for r in rows if r.ref not in used)


def queue_media(session: Session, rep: RetentionReport) -> None:
    """List ``rep.media_refs`` in ``media_deletions``, in the purge's transaction (module docstring)."""
    rows = [MediaDeletionRow(ref=ref, queued_at=rep.started_at) for ref in rep.media_refs]
    if not rows:
        return
    session.add_all(rows)
    session.flush()
    rep.queue_ids.extend(int(r.id) for r in rows)


def clear_media_queue(session: Session, ids: list[int], failed: set[str] | None = None) -> None:
    """Remove the ``media_deletions`` entries ``ids`` whose files are gone (not those of ``failed`` refs:
    the next run tries them again)."""
    keep = sorted(failed or ())
    for i in range(0, len(ids), _IN_CHUNK):
        q = delete(MediaDeletionRow).where(MediaDeletionRow.id.in_(ids[i : i + _IN_CHUNK]))
        if keep:
            q = q.where(MediaDeletionRow.ref.not_in(keep))
        session.execute(q)


def audit_purge(session: Session, rep: RetentionReport, secret: bytes, via: str | None = None) -> None:
    """Append the purge's audit entry in its own transaction (last: PostgreSQL holds the audit chain's
    lock until the commit) and keep its bus mirror in ``rep.audit_event``."""
    from rtcc.oversight.audit import append_audit, audit_event
    from rtcc.roles import Role

    details = audit_details(rep)
    if via is not None:
        details["via"] = via
    entry = append_audit(
        session,
        secret=secret,
        actor=ACTOR,
        role=Role.admin.value,
        action="retention_purge",
        resource="plate_reads",
        outcome="ok",
        details=details,
    )
    rep.audit_event = audit_event(entry)


def purge_plate_reads(
    session: Session,
    *,
    days: int,
    dry_run: bool = False,
    now: datetime | None = None,
    confirmed_hit_days: int = 365,
    pulse_audio_days: int | None = None,
    footage_media: Path | None = None,
    heartbeat_days: int | None = None,
    footage_days: int | None = None,
    audit_secret: bytes | None = None,
    audit_via: str | None = None,
) -> RetentionReport:
    """Delete (or, dry, count) the expired reads in the caller's transaction and record the run.

    Also removes the entries of the deleted reads from the incident packets,
    deletes the expired ``plate_read`` / ``hotlist_hit`` / plate ``alert``
    event copies, when ``pulse_audio_days`` is given strips the expired pulse
    audio, and when ``heartbeat_days`` is given deletes the expired device
    heartbeats (see the module docstring). With ``audit_secret`` a real run
    is audited in the same transaction (``audit_via`` goes in the details), so
    the purge cannot commit without its audit entry.

    The media files are not touched here: they are listed in
    ``media_deletions`` (with those an earlier run left), and the caller
    deletes ``report.media_refs`` and ``report.resumed_refs`` after the
    transaction commits, then the list entries (see :func:`finish_media`).
    """
    started = now or datetime.now(UTC)
    cutoff = started - timedelta(days=days)
    keep = open_case_read_ids(session)
    rep = RetentionReport(started, cutoff, days, dry_run)
    if dry_run:
        sp = session.begin_nested()
        try:
            take_media_queue(session, rep)
            rep.hit_reads_released = release_hit_reads(session, cutoff, started, confirmed_hit_days)
            rep.kept_for_hits, rep.kept_for_cases = _count_kept(session, cutoff, keep)
            rep.reads_deleted, refs = purge_reads(session, cutoff, keep)
            purge_packet_reads(session, rep)
        finally:
            sp.rollback()
        rep.media_deleted = len(refs)
        rep.resumed_refs, rep.queue_ids = [], []
    else:
        take_media_queue(session, rep)
        rep.hit_reads_released = release_hit_reads(session, cutoff, started, confirmed_hit_days)
        rep.kept_for_hits, rep.kept_for_cases = _count_kept(session, cutoff, keep)
        rep.reads_deleted, rep.media_refs = purge_reads(session, cutoff, keep)
        rep.media_deleted = len(rep.media_refs)
        queue_media(session, rep)
        purge_packet_reads(session, rep)
    purge_event_copies(session, rep)
    if heartbeat_days is not None:
        purge_heartbeats(session, rep, heartbeat_days)
    if pulse_audio_days is not None:
        purge_pulse_audio(session, rep, pulse_audio_days)
    purge_cameras(session, rep, footage_media, footage_days)
    record_retention_run(
        session,
        started_at=started,
        actor=ACTOR,
        dry_run=dry_run,
        plate_reads_days=days,
        cutoff=cutoff,
        reads_deleted=rep.reads_deleted,
        media_deleted=rep.media_deleted,
        kept_for_hits=rep.kept_for_hits,
        kept_for_cases=rep.kept_for_cases,
    )
    if not dry_run and audit_secret is not None:
        audit_purge(session, rep, audit_secret, audit_via)
    return rep


def delete_media(root: Path, refs: list[str], failed: set[str] | None = None) -> int:
    """Delete media files by ref; returns how many files were there to delete.

    A file that cannot be deleted is logged and its ref added to ``failed``.
    """
    from rtcc.plates.media import MediaStore

    store = MediaStore(root)
    gone = 0
    for ref in refs:
        try:
            gone += bool(store.delete(ref))
        except Exception:
            log.exception("retention: could not delete media %s", ref)
            if failed is not None:
                failed.add(ref)
    return gone


def finish_media(store: Any, root: Path, rep: RetentionReport) -> None:
    """The file phase of a committed run (in this thread): delete the files, then their list entries.

    A crash before the entries are removed only makes the next run delete
    the same files again (already gone: harmless); a file that could not be
    deleted keeps its entry for the next run.
    """
    if rep.dry_run or not rep.queue_ids:
        return
    failed: set[str] = set()
    delete_media(root, rep.media_refs + rep.resumed_refs, failed)
    store.run(lambda s: clear_media_queue(s, rep.queue_ids, failed))


def run_once(
    store: Any,
    settings: Any,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    via: str | None = None,
) -> RetentionReport:
    """One run in this thread: purge, record and audit in one transaction, then delete the media files.

    ``via`` goes in the audit entry's details (e.g. ``"cli"``).
    """
    days = int(settings.retention.plate_reads_days)
    hit_days = int(settings.retention.confirmed_hit_days)
    audio_days = int(settings.retention.pulse_audio_days)
    beat_days = int(settings.retention.heartbeat_days)
    secret = settings.security.secret_key.encode()
    rep: RetentionReport = store.run(
        lambda s: purge_plate_reads(
            s,
            days=days,
            dry_run=dry_run,
            now=now,
            confirmed_hit_days=hit_days,
            pulse_audio_days=audio_days,
            footage_media=footage_media(settings),
            heartbeat_days=beat_days,
            footage_days=int(settings.retention.footage_days),
            audit_secret=secret,
            audit_via=via,
        )
    )
    finish_media(store, media_root(settings), rep)
    return rep


def audit_details(rep: RetentionReport) -> dict[str, Any]:
    """What the audit entry of a purge says."""
    return {"resource": "plate_reads", **rep.counts()}


class RetentionProcessor:
    """Runs retention every ``retention.interval_s`` seconds (first run one interval after start)."""

    def __init__(self, center: Any) -> None:
        self.center = center
        self.interval_s = float(center.settings.retention.interval_s)
        self.last: RetentionReport | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.center.services["retention"] = self
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.center.services.get("retention") is self:
            del self.center.services["retention"]

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run(dry_run=False)
            except Exception:
                log.exception("retention run failed; the next run tries again")

    async def run(self, *, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
        """One run now: purge and audit (real runs) with the counts in one transaction, then delete media."""
        c = self.center
        days = int(c.settings.retention.plate_reads_days)
        hit_days = int(c.settings.retention.confirmed_hit_days)
        audio_days = int(c.settings.retention.pulse_audio_days)
        beat_days = int(c.settings.retention.heartbeat_days)
        secret = c.settings.security.secret_key.encode()
        async with self._lock:
            rep: RetentionReport = await c.store.write(
                lambda s: purge_plate_reads(
                    s,
                    days=days,
                    dry_run=dry_run,
                    now=now,
                    confirmed_hit_days=hit_days,
                    pulse_audio_days=audio_days,
                    footage_media=footage_media(c.settings),
                    heartbeat_days=beat_days,
                    footage_days=int(c.settings.retention.footage_days),
                    audit_secret=secret,
                )
            )
            # audited (in the purge's transaction) before any file is touched
            ev = rep.audit_event
            if ev is not None:
                with contextlib.suppress(Exception):
                    await c.bus.publish(ev.subject, ev.to_json(), msg_id=str(ev.event_id))
            if not dry_run and rep.queue_ids:
                failed: set[str] = set()
                await asyncio.to_thread(
                    delete_media, media_root(c.settings), rep.media_refs + rep.resumed_refs, failed
                )
                await c.store.write(lambda s: clear_media_queue(s, rep.queue_ids, failed))
        if not dry_run:
            c.metrics.inc("retention_reads_deleted", rep.reads_deleted)
            c.metrics.inc(
                "retention_events_deleted",
                rep.plate_read_events_deleted
                + rep.hotlist_hit_events_deleted
                + rep.plate_alert_events_deleted,
            )
            c.metrics.inc("retention_heartbeats_deleted", rep.heartbeat_events_deleted)
            c.metrics.inc("retention_packet_reads_removed", rep.packet_reads_removed)
            c.metrics.inc("retention_pulse_audio_stripped", rep.pulse_audio_stripped)
        self.last = rep
        return rep


def build(center: Any) -> RetentionProcessor:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return RetentionProcessor(center)
