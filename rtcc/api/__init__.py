"""The HTTP API: FastAPI under ``/api/v1``, the live WebSocket, and the dashboard's files.

:func:`create_app` builds the application around a :class:`~rtcc.api.deps.Context`
(made by the composition root, :mod:`rtcc.app`). Every route declares its roles
with :class:`~rtcc.api.deps.Allow`; every error leaves as the one envelope of
:mod:`rtcc.api.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from rtcc import __version__
from rtcc.api.deps import Context
from rtcc.api.errors import RequestIdAndLimitMiddleware, install_error_handlers
from rtcc.api.routes import (
    alerts,
    analytics,
    audit,
    auth,
    bodycams,
    cameras,
    cases,
    community,
    devices,
    events,
    gunshots,
    hotlists,
    ingest,
    plates,
    reports,
    system,
    transparency,
    users,
    ws,
)

API_PREFIX = "/api/v1"
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ROUTERS = (
    system,
    auth,
    users,
    devices,
    ingest,
    events,
    gunshots,
    plates,
    hotlists,
    cameras,
    community,
    bodycams,
    alerts,
    cases,
    analytics,
    reports,
    transparency,
    audit,
    ws,
)
"""Every router the API mounts under :data:`API_PREFIX`, in order."""


def iter_api_routes() -> Iterator[tuple[str, APIRoute]]:
    """Every HTTP route as (full path, route): what the route × role test walks."""
    for module in ROUTERS:
        for route in module.router.routes:
            if isinstance(route, APIRoute):
                yield API_PREFIX + route.path, route


UPLOAD_PATHS = re.compile(
    API_PREFIX
    + r"/(plates/images|hotlists/[^/]+/import|outcomes/import"
    + r"|community/(manage|footage)/[^/]+(/requests/[^/]+)?/clip)"
)
"""Upload routes: their bodies may reach ``server.max_upload_bytes`` (others ``max_request_bytes``)."""


def create_app(
    ctx: Context | None = None, *, max_request_bytes: int = 1_048_576, max_upload_bytes: int | None = None
) -> FastAPI:
    """The API application; ``ctx`` may be attached later (``app.state.ctx``)."""
    app = FastAPI(
        title="rtcc",
        version=__version__,
        summary="Open-source Real-Time Crime Center",
        description=(
            "Gunshot detection, plate reading, cameras and body cams, operations, with "
            "oversight built in. People authenticate with a session token "
            "(`Authorization: Bearer`, or the `rtcc_session` cookie); devices with their "
            "device key (`Authorization: Device <key>`). Every error is "
            '`{"error": {"code", "message", "details"}, "request_id"}`.'
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    if ctx is not None:
        app.state.ctx = ctx
    install_error_handlers(app)
    for r in ROUTERS:
        app.include_router(r.router, prefix=API_PREFIX)
    if WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    app.add_middleware(
        RequestIdAndLimitMiddleware,
        max_bytes=max_request_bytes,
        upload_bytes=max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    return app
