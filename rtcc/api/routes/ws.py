"""The live WebSocket: events as they happen, filtered by the caller's role.

Connect to ``/api/v1/ws`` with the session cookie, an ``Authorization: Bearer``
header or ``?token=``; optionally ``?types=a,b`` to narrow the stream. The
server sends ``{"kind": "hello", ...}`` then ``{"kind": "event", "subject",
"event"}`` messages. Subscribing to a stream that can carry personal data is
audited (``subscribe_live`` with those types): plate reads and hits, heartbeats of
body cams and in-car devices (officers' locations) and alerts (a hit alert names
the plate). The server closes the socket (code 4401) once the session ends:
signed out, revoked, or idle for longer than ``security.session_idle_minutes``
(a connected page is not activity); it checks every :data:`SESSION_CHECK_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from rtcc.api.deps import ws_principal
from rtcc.api.hub import LiveClient
from rtcc.events import EVENT_TYPES

router = APIRouter()

SESSION_CHECK_S = 10.0

"""How often an open socket's session is checked."""


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    ctx = websocket.app.state.ctx
    who = await ws_principal(websocket)
    if who is None or who.mfa_pending:
        await websocket.close(code=4401, reason="sign in first")
        return
    types_param = websocket.query_params.get("types")
    types = frozenset(t for t in types_param.split(",") if t) if types_param else None
    if types is not None and not types <= set(EVENT_TYPES):
        await websocket.close(code=4422, reason="unknown event type")
        return
    await websocket.accept()
    client = LiveClient(username=who.username, role=who.role, types=types)
    allowed = sorted(t for t in EVENT_TYPES if client.wants(t))
    # a stream that can carry personal data is audited when subscribed to: plate reads and hits,
    # heartbeats of devices that move with an officer (their location), hit alerts (they name the plate)
    personal = [t for t in allowed if EVENT_TYPES[t].may_be_personal()]
    if personal:
        await ctx.audit(who, "subscribe_live", "events", details={"types": personal})
    ctx.hub.add(client)
    await websocket.send_text(
        json.dumps({"kind": "hello", "user": who.username, "role": who.role.value, "types": allowed})
    )
    loop = asyncio.get_running_loop()
    sender = loop.create_task(_pump(websocket, client))
    watcher = loop.create_task(_watch_session(websocket, ctx, who.token_hash))
    try:
        while True:
            await websocket.receive_text()  # pings / ignored; returns on disconnect
    except WebSocketDisconnect:
        pass
    finally:
        ctx.hub.remove(client)
        for task in (sender, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _pump(websocket: WebSocket, client: LiveClient) -> None:
    while True:
        text = await client.queue.get()
        await websocket.send_text(text)


async def _watch_session(websocket: WebSocket, ctx: Any, token_hash: str | None) -> None:
    """Close the socket with 4401 once its session has ended."""
    from rtcc.oversight.sessions import session_alive

    if token_hash is None:
        return
    idle = ctx.settings.security.session_idle_minutes
    while True:
        await asyncio.sleep(SESSION_CHECK_S)
        alive = await ctx.store.read(
            functools.partial(
                session_alive,
                token_hash=token_hash,
                now=datetime.now(UTC),
                idle_minutes=idle,
                mfa_default=ctx.settings.security.mfa_required,
            )
        )
        if not alive:
            await websocket.close(code=4401, reason="session ended")
            return
