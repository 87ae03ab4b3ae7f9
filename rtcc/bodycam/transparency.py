"""Body-cam figures for the public transparency page (no personal data)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtcc.bodycam.policy import get_policy
from rtcc.store.tables_bodycams import BodycamCommand


def stats(session: Session) -> dict[str, Any]:
    """The automatic activation policy and counts of remote and automatic commands.

    Returns
    -------
    dict
        ``policy`` (enabled, triggers, radius_m), ``remote`` and ``automatic``:
        each ``{"start_recording": n, "stop_recording": n, "acknowledged": n,
        "timeout": n}``; counts only, no device, person or place.
    """
    pol = get_policy(session)
    rows = session.execute(
        select(
            BodycamCommand.automatic, BodycamCommand.command, BodycamCommand.status, func.count()
        ).group_by(BodycamCommand.automatic, BodycamCommand.command, BodycamCommand.status)
    ).all()
    out: dict[str, dict[str, int]] = {
        k: {"start_recording": 0, "stop_recording": 0, "acknowledged": 0, "timeout": 0}
        for k in ("remote", "automatic")
    }
    for automatic, command, status, n in rows:
        bucket = out["automatic" if automatic else "remote"]
        bucket[command] = bucket.get(command, 0) + int(n)
        if status == "acked":
            bucket["acknowledged"] += int(n)
        elif status == "timeout":
            bucket["timeout"] += int(n)
    return {
        "policy": {"enabled": pol.enabled, "triggers": pol.triggers, "radius_m": pol.radius_m},
        "remote": out["remote"],
        "automatic": out["automatic"],
    }
