"""Incident packets: what an operator needs about the place of a gunshot incident or hotlist hit.

A packet gathers, for a place ``(lat, lon)`` and a time ``at``:

* ``cameras`` — cameras that can see the place (``rtcc.cameras.visibility.cameras_seeing``);
* ``plate_reads`` — the plate reads within ``R`` metres and ``±T`` minutes that
  hit a hotlist (``rtcc.plates.reads.hit_reads_near``: they are alerts already),
  and only the **count** of the other reads there (``others``) with a ``hint``:
  a packet is opened by every operations role without a purpose, so it is no
  way around the accountable search (an analyst searches those reads with a
  purpose and a case number, ``GET /plates/search``);
* ``bodycams`` — body-cam units within ``R`` metres and whether they record
  (``rtcc.bodycam.registry.units_near``);
* ``earlier_incidents`` — gunshot incidents within ``R`` metres in the last
  ``N`` days.

Each section is ``{"items": [...], "note": str | None}``; a section whose
room does not offer its function yet (or fails) is empty with a note saying
why, so a packet is never lost because one room is missing.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from rtcc.geo import EARTH_RADIUS_M, distance_m
from rtcc.store.tables import GunshotIncidentRow
from rtcc.store.tables_ops import PacketRow

log = logging.getLogger("rtcc.ops.packets")

PACKET_KINDS = ("gunshot", "hit")

SOURCES: dict[str, str] = {
    "cameras": "rtcc.cameras.visibility:cameras_seeing",
    "plate_reads": "rtcc.plates.reads:hit_reads_near",
    "plate_reads_count": "rtcc.plates.reads:count_reads_near",
    "bodycams": "rtcc.bodycam.registry:units_near",
}
"""Where each section's data comes from (another room's function, imported when used)."""


@dataclasses.dataclass(frozen=True)
class PacketParams:
    """How far and how long a packet looks (see ``OperationsSettings``)."""

    radius_m: float = 300.0
    window_min: float = 10.0
    history_days: int = 90
    in_car_max_gap_s: float = 120.0
    """An in-car camera counts where its last heartbeat put it only this close in time
    (``cameras.in_car_max_gap_s``, as ``GET /cameras/visible`` uses)."""


def bbox(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) of a box holding the circle of ``radius_m`` around a point."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def jsonable(obj: Any) -> Any:
    """Plain JSON data from what another room returns (dataclass, pydantic model, ORM row, dict)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"))
    table = getattr(obj, "__table__", None)
    if table is not None:
        return {c.key: jsonable(getattr(obj, c.key, None)) for c in table.columns if c.key != "geom"}
    if hasattr(obj, "_asdict"):
        return jsonable(obj._asdict())
    return str(obj)


def _source(name: str) -> Callable[..., Any] | None:
    module, _, attr = SOURCES[name].partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None
    return fn if callable(fn) else None


def _section(session: Session, name: str, call: Callable[[Callable[..., Any]], Any]) -> dict[str, Any]:
    fn = _source(name)
    if fn is None:
        return {"items": [], "note": f"not available: {SOURCES[name]} is not installed"}
    try:
        with session.begin_nested():
            items = call(fn)
    except Exception as exc:  # one room's failure must not lose the packet
        log.exception("packet section %s failed", name)
        return {"items": [], "note": f"failed: {type(exc).__name__}"}
    return {"items": jsonable(list(items or [])), "note": None}


OTHER_READS_HINT = (
    "Other plate reads nearby are counted, not listed: reading them is a search. An analyst can "
    "search them in Plate search with a purpose and a case number."
)
"""Shown beside the count of the reads that hit no hotlist."""


def _plate_reads(
    session: Session, lat: float, lon: float, radius_m: float, start: datetime, end: datetime
) -> dict[str, Any]:
    """The ``plate_reads`` section: the hotlist-hit reads, and how many other reads there are."""
    sec = _section(session, "plate_reads", lambda f: f(session, lat, lon, radius_m, start, end, limit=200))
    count = _source("plate_reads_count")
    others: int | None = None
    if count is not None:
        try:
            with session.begin_nested():
                others = int(count(session, lat, lon, radius_m, start, end, hit=False))
        except Exception:  # the count is a hint; the section stands without it
            log.exception("packet section plate_reads: counting the other reads failed")
    return {**sec, "others": others, "hint": OTHER_READS_HINT if others else None}


def served_plate_reads(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its ``plate_reads`` section as served: reads that hit a hotlist only.

    Packets built before the section was restricted listed every read nearby; those are left
    out here (and counted in ``others``), so a stored body never serves them.
    """
    sec = body.get("plate_reads") or {}
    items = [x for x in sec.get("items") or [] if isinstance(x, dict)]
    hits = [x for x in items if x.get("hit") is True]
    others = sec.get("others")
    if others is None and len(hits) < len(items):
        others = len(items) - len(hits)
    section = {
        "items": hits,
        "note": sec.get("note"),
        "others": others,
        "hint": OTHER_READS_HINT if others else None,
    }
    return {**body, "plate_reads": section}


def earlier_incidents(
    session: Session,
    lat: float,
    lon: float,
    at: datetime,
    *,
    radius_m: float,
    days: int,
    exclude: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Gunshot incidents within ``radius_m`` of a point in the ``days`` before ``at``, nearest first."""
    lat0, lat1, lon0, lon1 = bbox(lat, lon, radius_m)
    rows = session.scalars(
        select(GunshotIncidentRow)
        .where(
            GunshotIncidentRow.occurred_at >= at - timedelta(days=days),
            GunshotIncidentRow.occurred_at < at,
            GunshotIncidentRow.lat.between(lat0, lat1),
            GunshotIncidentRow.lon.between(lon0, lon1),
        )
        .limit(10 * limit)
    )
    out: list[dict[str, Any]] = []
    for r in rows:
        if exclude is not None and str(r.id) == exclude:
            continue
        d = distance_m(lat, lon, r.lat, r.lon)
        if d <= radius_m:
            out.append(
                {
                    "id": str(r.id),
                    "occurred_at": r.occurred_at.isoformat(),
                    "distance_m": round(d, 1),
                    "rounds": r.rounds,
                    "status": r.status,
                    "label": r.label,
                }
            )
    out.sort(key=lambda x: float(x["distance_m"]))
    return out[:limit]


def build_body(
    session: Session, kind: str, ref_id: str, lat: float, lon: float, at: datetime, params: PacketParams
) -> dict[str, Any]:
    """The packet's JSON body for ``kind``/``ref_id`` at a place and time."""
    window = timedelta(minutes=params.window_min)
    r = params.radius_m
    return {
        "kind": kind,
        "ref_id": ref_id,
        "at": at.isoformat(),
        "pos": {"lat": lat, "lon": lon},
        "params": dataclasses.asdict(params),
        "cameras": _section(
            session,
            "cameras",
            lambda f: f(session, lat, lon, at, limit=50, max_gap_s=params.in_car_max_gap_s),
        ),
        "plate_reads": _plate_reads(session, lat, lon, r, at - window, at + window),
        "bodycams": _section(session, "bodycams", lambda f: f(session, lat, lon, r)),
        "earlier_incidents": {
            "items": earlier_incidents(
                session, lat, lon, at, radius_m=r, days=params.history_days, exclude=ref_id
            ),
            "note": None,
        },
    }


def counts(body: dict[str, Any]) -> dict[str, int]:
    """Items per section (sent with ``PacketUpdated``; no personal data)."""
    return {
        k: len(body.get(k, {}).get("items", []))
        for k in ("cameras", "plate_reads", "bodycams", "earlier_incidents")
    }


def upsert_packet(
    session: Session,
    kind: str,
    ref_id: str,
    lat: float,
    lon: float,
    at: datetime,
    params: PacketParams,
    *,
    now: datetime,
) -> PacketRow:
    """Build (or rebuild) the packet of ``kind``/``ref_id``; ``version`` grows by one each rebuild."""
    body = build_body(session, kind, ref_id, lat, lon, at, params)
    row = session.scalars(select(PacketRow).where(PacketRow.kind == kind, PacketRow.ref_id == ref_id)).first()
    if row is None:
        row = PacketRow(kind=kind, ref_id=ref_id, occurred_at=at, lat=lat, lon=lon, version=1)
        session.add(row)
    else:
        row.version = row.version + 1
    body["version"] = row.version
    body["built_at"] = now.isoformat()
    row.body = body
    row.built_at = now
    session.flush()
    return row


def get_packet(session: Session, kind: str, ref_id: str) -> PacketRow | None:
    return session.scalars(
        select(PacketRow).where(PacketRow.kind == kind, PacketRow.ref_id == ref_id)
    ).first()


def live_packets(session: Session, since: datetime) -> list[tuple[str, str, float, float, datetime]]:
    """(kind, ref_id, lat, lon, at) of packets for things that happened since ``since``."""
    rows = session.execute(
        select(PacketRow.kind, PacketRow.ref_id, PacketRow.lat, PacketRow.lon, PacketRow.occurred_at).where(
            PacketRow.occurred_at >= since
        )
    )
    return [(r.kind, r.ref_id, r.lat, r.lon, r.occurred_at) for r in rows]
