"""The live WebSocket: events as they happen, filtered by the caller's role.

Connect to ``/api/v1/ws`` with the session cookie, an ``Authorization: Bearer``
header or ``?token=``; optionally ``?types=a,b`` to narrow the stream. The
server sends ``{"kind": "hello", ...}`` then ``{"kind": "event", "subject",
"event"}`` messages. Subscribing to a stream with personal data (plate reads)
is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from rtcc.api.deps import ws_principal
from rtcc.api.hub import LiveClient
from rtcc.events import EVENT_TYPES

router = APIRouter()


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
    personal = [t for t in allowed if EVENT_TYPES[t].personal]
    if personal:
        await ctx.audit(who, "subscribe_live", "events", details={"types": personal})
    ctx.hub.add(client)
    await websocket.send_text(
        json.dumps({"kind": "hello", "user": who.username, "role": who.role.value, "types": allowed})
    )
    sender = asyncio.get_running_loop().create_task(_pump(websocket, client))
    try:
        while True:
            await websocket.receive_text()  # pings / ignored; returns on disconnect
    except WebSocketDisconnect:
        pass
    finally:
        ctx.hub.remove(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _pump(websocket: WebSocket, client: LiveClient) -> None:
    while True:
        text = await client.queue.get()
        await websocket.send_text(text)
