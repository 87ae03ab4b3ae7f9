"""The public transparency page's data: aggregates only, no personal data.

Each room offers ``stats(session) -> dict`` in its own ``transparency``
module (plates, cameras, body cams); this module adds the alert and outcome
figures and the audit chain's status, and passes everything through
:func:`aggregates_only`, which keeps numbers, booleans, short labels and
dates and drops any key that names personal data (plates, people, contacts,
positions), whatever a room returns — except the center's own category
labels (:func:`public_labels`: hotlist categories such as ``stolen_plate``,
purposes, outcomes), which are counted by name and are never personal.

It also counts the refused plate searches (the audit log's
``plate_search_refused`` entries, by cause) and what retention did to the
event log and to pulse audio (the audit log's ``retention_purge`` entries).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtcc.ops.ledger import outcome_shares_for_kind, outcome_stats
from rtcc.store.tables import AuditEntry
from rtcc.store.tables_ops import AlertRow, Case

log = logging.getLogger("rtcc.ops.transparency")

ROOM_STATS: dict[str, str] = {
    "plates": "rtcc.plates.transparency:stats",
    "cameras": "rtcc.cameras.transparency:stats",
    "bodycams": "rtcc.bodycam.transparency:stats",
}
"""Where each room's aggregates come from (imported when used)."""

PERSONAL_KEY = re.compile(
    r"^(.*_)?(plates?|plate_numbers?|usernames?|users?|actors?|names?|emails?|phones?|contacts?|address|"
    r"lat|lon|latitude|longitude|position|pos|geom|officers?|owners?|ip|token|key|secret|password|image|"
    r"audio|video|reason|note|title|device|device_id|units?|by)$",
    re.IGNORECASE,
)
"""Keys dropped from the page whatever their value (a key that is, or ends in ``_``, one of these)."""

_MAX_LABEL = 64
_SAFE_LABEL = re.compile(r"^[A-Za-z0-9 _.,:/()%+\-]*$")

REFUSAL_CAUSES: tuple[str, ...] = (
    "missing_purpose",
    "missing_case_number",
    "missing_purpose_and_case_number",
    "invalid_purpose",
    "invalid_case_number",
    "event_history",
    "other",
)
"""Why plate searches were refused, as the page counts them (``event_history``: plate reads asked
of ``GET /events``, which does not serve them)."""


@functools.cache
def public_labels() -> frozenset[str]:
    """Category names the page counts by (dict keys that are labels, not personal fields).

    Hotlist categories, search purposes and kinds, outcome categories and
    refusal causes: fixed vocabularies of the center, so a key such as
    ``stolen_plate`` is a category, not a plate.
    """
    from rtcc.ops.ledger import OUTCOME_CATEGORIES
    from rtcc.plates.hotlist_import import Category
    from rtcc.plates.transparency import SEARCH_KINDS, PurposeCategory

    labels = {c.value for c in Category} | {c.value for c in PurposeCategory}
    return frozenset(labels.union(SEARCH_KINDS, OUTCOME_CATEGORIES, REFUSAL_CAUSES))


def aggregates_only(value: Any, depth: int = 0) -> Any:
    """Keep what may be public: numbers, booleans, dates and short labels; nested up to 4 levels.

    Dict keys matching :data:`PERSONAL_KEY` are dropped (unless they are one of
    the :func:`public_labels`); strings longer than
    64 characters or with unusual characters become None; lists keep 100 items.
    """
    if depth > 4:
        return None
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str):
        return value if len(value) <= _MAX_LABEL and _SAFE_LABEL.match(value) else None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = str(k)
            personal = PERSONAL_KEY.search(key) is not None and key not in public_labels()
            if personal or not _SAFE_LABEL.match(key) or len(key) > _MAX_LABEL:
                continue
            clean = aggregates_only(v, depth + 1)
            if clean is not None or v is None:
                out[key] = clean
        return out
    if isinstance(value, list | tuple):
        return [aggregates_only(v, depth + 1) for v in value[:100]]
    return None


def room_stats(session: Session, name: str, **options: Any) -> dict[str, Any]:
    """A room's ``stats(session, ...)``, cleaned; ``options`` the keyword arguments it accepts."""
    module, _, attr = ROOM_STATS[name].partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return {"available": False}
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in options.items() if k in params}
    try:
        with session.begin_nested():
            data = fn(session, **kwargs)
    except Exception:
        log.exception("transparency stats of %s failed", name)
        return {"available": False}
    clean = aggregates_only(data if isinstance(data, dict) else {})
    return {"available": True, **(clean or {})}


def operations_stats(session: Session) -> dict[str, Any]:
    """Alerts, cases and outcomes, counted."""
    per_kind = dict(session.execute(select(AlertRow.kind, func.count()).group_by(AlertRow.kind)).all())
    per_status = dict(session.execute(select(AlertRow.status, func.count()).group_by(AlertRow.status)).all())
    cases = dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    ledger = outcome_stats(session)
    return {
        "alerts_by_kind": {str(k): int(v) for k, v in per_kind.items()},
        "alerts_by_status": {str(k): int(v) for k, v in per_status.items()},
        "cases": {"open": int(cases.get("open", 0)), "closed": int(cases.get("closed", 0))},
        "outcomes": {
            "summary": ledger["summary"],
            "success_cases": ledger["success_cases"],
            "per_category": ledger["per_category"],
            "share_of_alerts_with_no_outcome": ledger["share_no_outcome"],
            "share_of_alerts_with_no_evidence_found": ledger["share_no_evidence"],
        },
        "gunshot_alerts": outcome_shares_for_kind(session, "gunshot"),
    }


def refusal_cause(details: Any) -> str:
    """The :data:`REFUSAL_CAUSES` entry of a ``plate_search_refused`` audit entry's details."""
    if not isinstance(details, dict):
        return "other"
    if details.get("reason") == "event_history":
        return "event_history"
    missing = details.get("missing")
    if isinstance(missing, list) and missing:
        names = [m for m in ("purpose", "case_number") if m in missing]
        cause = "missing_" + "_and_".join(names)
        return cause if names and cause in REFUSAL_CAUSES else "other"
    problem = details.get("problem")
    if isinstance(problem, str):
        if problem.startswith("case_number"):
            return "invalid_case_number"
        if problem.startswith("purpose"):
            return "invalid_purpose"
    return "other"


def refused_searches(session: Session) -> dict[str, Any]:
    """Plate searches refused (no purpose, no case number, reads asked of the event history), by cause."""
    counts = dict.fromkeys(REFUSAL_CAUSES, 0)
    q = select(AuditEntry.details).where(AuditEntry.action == "plate_search_refused")
    for details in session.scalars(q.execution_options(yield_per=1000)):
        counts[refusal_cause(details)] += 1
    return {"total": sum(counts.values()), "by_cause": counts}


_RETENTION_SUMS: tuple[str, ...] = (
    "plate_read_events_deleted",
    "hotlist_hit_events_deleted",
    "pulse_audio_stripped",
    "pulse_audio_kept_for_incidents",
    "plate_alert_events_deleted",
    "packet_reads_removed",
    "heartbeat_events_deleted",
    "footage_clips_deleted",
)


def retention_extra(session: Session, retention: Any) -> dict[str, Any]:
    """What retention did beyond the plate reads: event copies deleted, pulse audio stripped (summed
    over the audited purges), and the pulse audio policy."""
    sums = dict.fromkeys(_RETENTION_SUMS, 0)
    q = select(AuditEntry.details).where(AuditEntry.action == "retention_purge")
    for details in session.scalars(q.execution_options(yield_per=1000)):
        for k in _RETENTION_SUMS:
            v = details.get(k) if isinstance(details, dict) else None
            if isinstance(v, int) and not isinstance(v, bool):
                sums[k] += v
    days = getattr(retention, "pulse_audio_days", None)
    hb_days = getattr(retention, "heartbeat_days", None)
    clip_days = getattr(retention, "footage_days", None)
    return {
        "pulse_audio_days": int(days) if days is not None else None,
        "heartbeat_days": int(hb_days) if hb_days is not None else None,
        "footage_days": int(clip_days) if clip_days is not None else None,
        **sums,
    }


def collect(session: Session, retention: Any) -> dict[str, Any]:
    """Everything on the page except the audit chain (see :func:`audit_status`).

    ``retention`` is the :class:`~rtcc.settings.RetentionSettings` in force
    (the plates room reports it with its purge counts).
    """
    plates = room_stats(session, "plates", retention=retention)
    if plates.get("available"):
        for section, extra in (
            ("searches", {"refused": refused_searches(session)}),
            ("retention", retention_extra(session, retention)),
        ):
            part = plates.get(section)
            plates[section] = {**(part if isinstance(part, dict) else {}), **aggregates_only(extra)}
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "plates": plates,
        "cameras": room_stats(session, "cameras"),
        "bodycams": room_stats(session, "bodycams"),
        "operations": aggregates_only(operations_stats(session)),
    }


class PageCache:
    """The page's data, cached for ``ttl_s``: the audit-chain check and the counts can be slow
    on a long history, and the page is public. Concurrent callers share one computation.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._value: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, compute: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at > self.ttl_s:
                self._value = await compute()
                self._at = time.monotonic()
            return self._value


def audit_status(report: Any) -> dict[str, Any]:
    """The public part of an audit-chain verification: intact or not, how many entries, and the head.

    Publishing the head (its sequence number and hash) lets anyone keep a copy: a later page whose
    chain no longer contains that head shows that the newest entries were cut off.
    """
    return {
        "intact": bool(report.ok),
        "entries_checked": int(report.checked),
        "head_seq": int(report.head_seq),
        "head_hash": str(report.head_hash),
        "verified_at": datetime.now(UTC).isoformat(),
    }
