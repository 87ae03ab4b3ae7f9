"""The public transparency page's data.

``GET /transparency`` — public, no sign-in: plate searches by purpose, hits
confirmed and rejected, retention settings and purge counts, cameras
registered and integrated, alerts and the share with each outcome, body-cam
activations, and the audit chain's status. Cached for
``operations.transparency_cache_s`` (the page is public; the chain check is
slow on a long chain). Aggregates only; see
:func:`rtcc.ops.transparency.aggregates_only`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from rtcc.api.deps import CtxDep, Public

router = APIRouter(tags=["transparency"])


@router.get("/transparency", summary="Public aggregates about what the center does (no personal data)")
async def transparency(ctx: CtxDep, who: Public) -> dict[str, Any]:
    from rtcc.ops.transparency import PageCache, audit_status, collect
    from rtcc.oversight.audit import verify_chain

    cache = ctx.services.get("transparency_page")
    if not isinstance(cache, PageCache):
        cache = ctx.services["transparency_page"] = PageCache(ctx.settings.operations.transparency_cache_s)
    retention = ctx.settings.retention
    secret = ctx.settings.security.secret_key.encode()

    async def compute() -> dict[str, Any]:
        data = await ctx.store.read(lambda s: collect(s, retention))
        data["audit_chain"] = audit_status(await ctx.store.read(lambda s: verify_chain(s, secret)))
        return data

    return await cache.get(compute)
