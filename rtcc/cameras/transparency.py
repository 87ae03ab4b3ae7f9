"""Camera figures for the transparency page: counts only, no personal data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtcc.store.tables_cameras import CameraRow, CameraWithdrawalRow, FootageRequestRow

FOOTAGE_STATUSES = ("requested", "notified", "uploaded", "declined", "expired", "purged")


def stats(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Counts of cameras and footage requests.

    Registrations whose verification expired unused are not pending (they are
    deleted by the next retention run or when the same email registers again).

    Returns
    -------
    dict
        ``cameras``: ``city``, ``in_car`` and ``community`` (active),
        ``registered`` and ``integrated`` (active community cameras by level),
        ``pending`` (community registrations waiting for verification or
        approval), ``rejected``, ``withdrawn`` (all time);
        ``footage_requests``: a count per status.
    """
    from rtcc.cameras.registry import expired_registrations

    now = now or datetime.now(UTC)
    by: dict[tuple[str, str, str], int] = {
        (k, lvl, st): int(n)
        for k, lvl, st, n in session.execute(
            select(CameraRow.kind, CameraRow.level, CameraRow.status, func.count()).group_by(
                CameraRow.kind, CameraRow.level, CameraRow.status
            )
        ).all()
    }

    def count(
        kind: str | None = None, level: str | None = None, status: tuple[str, ...] = ("active",)
    ) -> int:
        return sum(
            n
            for (k, lvl, st), n in by.items()
            if (kind is None or k == kind) and (level is None or lvl == level) and st in status
        )

    expired = (
        session.scalar(select(func.count()).select_from(CameraRow).where(expired_registrations(now))) or 0
    )
    withdrawn = session.scalar(select(func.count()).select_from(CameraWithdrawalRow)) or 0
    reqs = dict(
        session.execute(
            select(FootageRequestRow.status, func.count()).group_by(FootageRequestRow.status)
        ).all()
    )
    return {
        "cameras": {
            "city": count("city"),
            "in_car": count("in_car"),
            "community": count("community"),
            "registered": count("community", "registered"),
            "integrated": count("community", "integrated"),
            "pending": count("community", status=("pending_verification", "pending_approval")) - int(expired),
            "rejected": count("community", status=("rejected",)),
            "withdrawn": int(withdrawn),
        },
        "footage_requests": {st: int(reqs.get(st, 0)) for st in FOOTAGE_STATUSES},
    }
