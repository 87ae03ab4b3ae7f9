"""Body-cam figures for the public transparency page (no personal data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtcc.bodycam.policy import get_policy
from rtcc.store.tables_bodycams import BodycamCommand

_OUTCOME = {
    "acked": "acknowledged",
    "failed": "failed",
    "timeout": "timeout",
    "cancelled": "cancelled",
    "sent": "pending",
}
"""Command status (:data:`rtcc.bodycam.commands.STATUSES`) → the page's outcome bucket."""


def stats(session: Session) -> dict[str, Any]:
    """The automatic activation policy and counts of remote and automatic commands.

    Returns
    -------
    dict
        ``policy`` (enabled, triggers, radius_m), ``remote`` and ``automatic``:
        each ``{"start_recording": n, "stop_recording": n, "acknowledged": n,
        "failed": n, "timeout": n, "cancelled": n, "pending": n}`` — commands
        by kind, then by outcome: acknowledged ``ok``, acknowledged not ok
        (the device could not do it), never acknowledged, cancelled (the unit's
        key revoked first), still waiting; the outcomes add up to the
        commands. Counts only, no device, person or place.
    """
    pol = get_policy(session)
    rows = session.execute(
        select(
            BodycamCommand.automatic, BodycamCommand.command, BodycamCommand.status, func.count()
        ).group_by(BodycamCommand.automatic, BodycamCommand.command, BodycamCommand.status)
    ).all()
    out: dict[str, dict[str, int]] = {
        k: {"start_recording": 0, "stop_recording": 0, **dict.fromkeys(_OUTCOME.values(), 0)}
        for k in ("remote", "automatic")
    }
    for automatic, command, status, n in rows:
        bucket = out["automatic" if automatic else "remote"]
        bucket[command] = bucket.get(command, 0) + int(n)
        outcome = _OUTCOME.get(status)
        if outcome is not None:
            bucket[outcome] += int(n)
    return {
        "policy": {"enabled": pol.enabled, "triggers": pol.triggers, "radius_m": pol.radius_m},
        "remote": out["remote"],
        "automatic": out["automatic"],
    }
