"""HTTPS ingest: devices post their events with their own key.

This route is public as far as people's sessions go: it is authenticated by
the device key (``Authorization: Device <key>``), checked by
:class:`rtcc.ingest.service.IngestService`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rtcc.api.deps import CtxDep, Public
from rtcc.errors import ValidationFailed

router = APIRouter(prefix="/ingest", tags=["ingest"])


class IngestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        min_length=1, description="Typed events (see rtcc.events), each with its own event_id."
    )


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]
    event_ids: list[str]


def _device_key(authorization: str | None, x_device_key: str | None) -> str | None:
    if authorization and authorization.lower().startswith("device "):
        return authorization[7:].strip() or None
    return x_device_key


@router.post(
    "/events",
    status_code=202,
    summary="A device sends events (authenticated by its device key)",
    response_model=IngestOut,
    responses={401: {"description": "missing, unknown or revoked device key"}},
)
async def ingest_events(
    body: IngestIn,
    request: Request,
    ctx: CtxDep,
    _: Public,
    authorization: str | None = Header(None),
    x_device_key: str | None = Header(None),
    x_device_id: str | None = Header(None, max_length=128),
) -> JSONResponse:
    limit = ctx.settings.server.max_ingest_batch
    if len(body.events) > limit:
        raise ValidationFailed(
            f"{len(body.events)} events in one request; the limit is {limit} "
            "(setting server.max_ingest_batch)"
        )
    ident = await ctx.ingest.authenticate(_device_key(authorization, x_device_key), x_device_id, "http")
    result = await ctx.ingest.ingest(ident, body.events, "http")
    return JSONResponse(
        IngestOut(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=result.rejected,
            event_ids=result.event_ids,
        ).model_dump(),
        status_code=202,
    )
