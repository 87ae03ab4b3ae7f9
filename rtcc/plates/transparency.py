"""Accountability of plate data: the search ledger and the transparency page's figures.

Every search of the reads (search, track, co-travel) is written to
``plate_searches`` with who, the purpose category and text, the case number,
the terms and the result count (:func:`record_search`). :func:`stats` counts
what the public may see — searches by purpose, hits confirmed / rejected /
waiting, retention settings and purges — and no personal data: no plate, no
name, no place, no case number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtcc.store.tables_hotlists import HitRow, HotlistSourceRow, PlateSearchRow, RetentionRunRow


class PurposeCategory(StrEnum):
    """Why a search was made (the transparency page counts searches by these)."""

    criminal_investigation = "criminal_investigation"
    stolen_vehicle = "stolen_vehicle"
    missing_person = "missing_person"
    wanted_person = "wanted_person"
    hit_verification = "hit_verification"
    other = "other"


SEARCH_KINDS: tuple[str, ...] = ("search", "track", "cotravel")


def record_search(
    session: Session,
    *,
    username: str,
    role: str,
    kind: str,
    purpose_category: PurposeCategory | str,
    purpose: str,
    case_number: str,
    terms: dict[str, Any],
    result_count: int,
    at: datetime | None = None,
) -> PlateSearchRow:
    """Write one search to the ledger (in the caller's transaction)."""
    row = PlateSearchRow(
        at=at or datetime.now(UTC),
        username=username,
        role=role,
        kind=kind,
        purpose_category=PurposeCategory(purpose_category).value,
        purpose=purpose,
        case_number=case_number,
        terms=terms,
        result_count=result_count,
    )
    session.add(row)
    session.flush()
    return row


def record_retention_run(
    session: Session,
    *,
    started_at: datetime,
    actor: str,
    dry_run: bool,
    plate_reads_days: int,
    cutoff: datetime,
    reads_deleted: int,
    media_deleted: int,
    kept_for_hits: int,
    kept_for_cases: int,
) -> RetentionRunRow:
    """Write one retention run (in the caller's transaction)."""
    row = RetentionRunRow(
        started_at=started_at,
        finished_at=datetime.now(UTC),
        actor=actor,
        dry_run=dry_run,
        plate_reads_days=plate_reads_days,
        cutoff=cutoff,
        reads_deleted=reads_deleted,
        media_deleted=media_deleted,
        kept_for_hits=kept_for_hits,
        kept_for_cases=kept_for_cases,
    )
    session.add(row)
    session.flush()
    return row


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def stats(session: Session, *, retention: Any = None, since: datetime | None = None) -> dict[str, Any]:
    """The plate figures of the transparency page (no personal data).

    Parameters
    ----------
    session
        An open session.
    retention
        The :class:`rtcc.settings.RetentionSettings` in force (reported as
        the policy); when None, the policy of the last run is reported.
    since
        Count only from this time (default: everything kept).

    Returns
    -------
    dict
        ``searches`` (total, by purpose category, by kind), ``hits``
        (confirmed, rejected, pending, by category), ``hotlists`` (sources
        with their kind and entry counts — list names, not plates) and
        ``retention`` (policy, runs, reads and media deleted, last run).
    """

    def since_(col: Any) -> list[Any]:
        return [col >= since] if since is not None else []

    by_purpose = {
        cat: int(n)
        for cat, n in session.execute(
            select(PlateSearchRow.purpose_category, func.count())
            .where(*since_(PlateSearchRow.at))
            .group_by(PlateSearchRow.purpose_category)
        )
    }
    by_kind = {
        kind: int(n)
        for kind, n in session.execute(
            select(PlateSearchRow.kind, func.count())
            .where(*since_(PlateSearchRow.at))
            .group_by(PlateSearchRow.kind)
        )
    }
    hit_status = {
        st: int(n)
        for st, n in session.execute(
            select(HitRow.status, func.count()).where(*since_(HitRow.read_at)).group_by(HitRow.status)
        )
    }
    hit_category = {
        cat: int(n)
        for cat, n in session.execute(
            select(HitRow.category, func.count()).where(*since_(HitRow.read_at)).group_by(HitRow.category)
        )
    }
    runs = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(RetentionRunRow.reads_deleted), 0),
            func.coalesce(func.sum(RetentionRunRow.media_deleted), 0),
        ).where(RetentionRunRow.dry_run.is_(False), *since_(RetentionRunRow.started_at))
    ).one()
    last = session.scalars(
        select(RetentionRunRow)
        .where(RetentionRunRow.dry_run.is_(False))
        .order_by(RetentionRunRow.started_at.desc(), RetentionRunRow.id.desc())
        .limit(1)
    ).first()
    if retention is not None:
        policy: dict[str, Any] = {
            "plate_reads_days": int(retention.plate_reads_days),
            "interval_s": float(retention.interval_s),
        }
    else:
        policy = {"plate_reads_days": last.plate_reads_days if last else None, "interval_s": None}
    sources = [
        {"source": s.name, "kind": s.kind, "entries": s.entry_count, "imported_at": _iso(s.imported_at)}
        for s in session.scalars(select(HotlistSourceRow).order_by(HotlistSourceRow.name))
    ]
    return {
        "since": _iso(since),
        "searches": {
            "total": sum(by_purpose.values()),
            "by_purpose": {c.value: by_purpose.get(c.value, 0) for c in PurposeCategory},
            "by_kind": {k: by_kind.get(k, 0) for k in SEARCH_KINDS},
        },
        "hits": {
            "total": sum(hit_status.values()),
            "confirmed": hit_status.get("confirmed", 0),
            "rejected": hit_status.get("rejected", 0),
            "pending": hit_status.get("verify", 0),
            "by_category": dict(sorted(hit_category.items())),
        },
        "hotlists": sources,
        "retention": {
            **policy,
            "runs": int(runs[0]),
            "reads_deleted": int(runs[1]),
            "media_deleted": int(runs[2]),
            "last_run": None
            if last is None
            else {
                "at": _iso(last.started_at),
                "cutoff": _iso(last.cutoff),
                "reads_deleted": last.reads_deleted,
                "media_deleted": last.media_deleted,
                "kept_for_hits": last.kept_for_hits,
                "kept_for_cases": last.kept_for_cases,
            },
        },
    }
