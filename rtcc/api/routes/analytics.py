"""Hotspots and deployment recommendations from the center's gunshot incidents, as GeoJSON.

* ``GET /analytics/hotspots?days=&res=&tz=`` — H3 cells with incident counts, kernel-density
  share and Getis-Ord Gi* z-scores, plus the hour-of-week profile.
* ``GET /analytics/recommendations?shift=&k=&days=&res=&tz=`` — the top cells to staff in a shift.

Analysts, supervisors and admins. The cells are aggregates (no personal data); the answer is
computed in a worker thread from incidents that alerted, await review or were confirmed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from rtcc.api.deps import Allow, CtxDep, Principal
from rtcc.roles import Role

router = APIRouter(prefix="/analytics", tags=["analytics"])

Analysts = Annotated[Principal, Depends(Allow(Role.admin, Role.supervisor, Role.analyst))]

Days = Query(365, ge=1, le=3650, description="Incidents of the last N days.")
Res = Query(9, ge=7, le=10, description="H3 resolution (8 ≈ 0.74 km², 9 ≈ 0.11 km² cells).")
Tz = Query(
    "UTC", min_length=1, max_length=64, description="IANA time zone for hours, shifts (e.g. America/Chicago)."
)


class CellPolygon(BaseModel):
    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[list[float]]] = Field(description="One closed ring of [lon, lat] (WGS 84).")


class HotspotCell(BaseModel):
    cell: str = Field(description="H3 cell id.")
    area_km2: float
    count: int = Field(description="Incidents in the cell over the period.")
    kde_share: float = Field(description="Share of the kernel density (scipy gaussian_kde) in the cell.")
    gi_z: float = Field(description="Getis-Ord Gi* z-score (esda, star=True, H3 ring-1 binary weights).")
    gi_p: float = Field(description="One-sided p-value of gi_z.")
    hotspot: Literal["hot", "cold", "none"] = Field(description="Gi* at 95 %.")
    peak_hour_of_week: int | None = Field(description="Busiest hour of the week, 0 = Monday 00:00 (in tz).")


class HotspotFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: CellPolygon
    properties: HotspotCell


class HotspotMap(BaseModel):
    """GeoJSON FeatureCollection of the cells holding incidents or a significant Gi* hot spot."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[HotspotFeature]
    res: int
    incidents: int
    hour_of_week: list[int] = Field(description="168 counts, Monday 00:00 first (in tz).")
    days: int
    tz: str


class RecommendedCell(BaseModel):
    cell: str
    area_km2: float
    rank: int = Field(description="1 = staff first.")
    score: float = Field(description="Method score (kde: expected share of the shift's incidents).")
    count: int = Field(description="The shift's incidents in the cell over the period.")


class RecommendationFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: CellPolygon
    properties: RecommendedCell


class Recommendations(BaseModel):
    """GeoJSON FeatureCollection of the top cells for one shift, best first."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[RecommendationFeature]
    shift: Literal["day", "evening", "night"]
    hours: list[int] = Field(description="[first hour, end hour) local time; night wraps past midnight.")
    method: str
    params: dict[str, Any]
    res: int
    incidents: int = Field(description="The shift's incidents over the period.")
    days: int
    tz: str


async def _incidents(ctx: Any, days: int, tz_name: str) -> tuple[Any, datetime]:
    from rtcc.analytics.center import load_incidents, local_now, window, zone

    tz = zone(tz_name)
    now = datetime.now(UTC)
    since, until = window(now, days)
    inc = await ctx.store.read(lambda s: load_incidents(s, since=since, until=until, tz=tz))
    return inc, local_now(now, tz)


@router.get("/hotspots", summary="Hotspot cells (counts, kernel density, Gi*) as GeoJSON")
async def get_hotspots(
    ctx: CtxDep, who: Analysts, days: int = Days, res: int = Res, tz: str = Tz
) -> HotspotMap:
    from rtcc.analytics.hotspots import hotspots

    inc, now = await _incidents(ctx, days, tz)
    out = await asyncio.to_thread(hotspots, inc, res=res, now=now)
    return HotspotMap.model_validate({**out, "days": days, "tz": tz})


@router.get("/recommendations", summary="Top cells to staff in a shift, as GeoJSON")
async def get_recommendations(
    ctx: CtxDep,
    who: Analysts,
    shift: Literal["day", "evening", "night"] | None = Query(
        None, description="day 07–15, evening 15–23, night 23–07 local time; default: the current shift."
    ),
    k: int = Query(5, ge=1, le=50, description="Number of cells."),
    method: Literal["kde", "recency", "gi_star", "counts", "naive"] = Query(
        "kde", description="Scoring method (kde did best on the real records' tuning months)."
    ),
    days: int = Days,
    res: int = Res,
    tz: str = Tz,
) -> Recommendations:
    from rtcc.analytics.hotspots import recommendations, shift_of

    inc, now = await _incidents(ctx, days, tz)
    chosen = shift or shift_of(now.hour)
    out = await asyncio.to_thread(recommendations, inc, shift=chosen, k=k, res=res, method=method, now=now)
    return Recommendations.model_validate({**out, "days": days, "tz": tz})
