"""Health, readiness, metrics and the map's base layers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rtcc import __version__
from rtcc.api.deps import Admin, AnyStaff, CtxDep, Public

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness: the process answers")
async def health(_: Public) -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", summary="Readiness: store, migrations and bus are usable")
async def ready(ctx: CtxDep, _: Public) -> JSONResponse:
    checks = {
        "store": await asyncio.to_thread(ctx.store.ping),
        "bus": await ctx.bus.healthy(),
        "started": ctx.ready,
    }
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/system/metrics", summary="Counters of this process and its bus")
async def metrics(ctx: CtxDep, _: Admin) -> dict[str, Any]:
    stats = ctx.bus.stats()
    return {
        "at": datetime.now(UTC).isoformat(),
        "uptime_s": (datetime.now(UTC) - ctx.started_at).total_seconds(),
        "counters": ctx.metrics.snapshot(),
        "bus": {
            "engine": ctx.bus.engine,
            "published": stats.published,
            "delivered": stats.delivered,
            "dropped": stats.dropped,
            "handler_errors": stats.handler_errors,
            "redelivered": stats.redelivered,
            "subscriptions": stats.per_subscription,
        },
        "websocket_clients": len(ctx.hub.clients),
        "live_views": len(ctx.hub.views),
    }


@router.get("/map", summary="Map settings and base layers (roads, area) for the dashboard")
async def map_layers(ctx: CtxDep, _: AnyStaff) -> dict[str, Any]:
    sim, m = ctx.settings.sim, ctx.settings.map
    lat = m.center_lat if m.center_lat is not None else sim.center_lat
    lon = m.center_lon if m.center_lon is not None else sim.center_lon
    return {
        "center": {"lat": lat, "lon": lon},
        "tile_url": ctx.settings.map.tile_url,
        "tile_attribution": ctx.settings.map.tile_attribution,
        "layers": ctx.map_layers,
    }
