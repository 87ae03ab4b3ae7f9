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
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from rtcc.api.deps import ws_principal
from rtcc.api.hub import LiveClient
from rtcc.events import EVENT_TYPES

router = APIRouter()
log = logging.getLogger(__name__)

SESSION_CHECK_S = 10.0
"""How often an open socket's session is checked (sign-outs, disables and role changes made in this
process end its sockets at once; this check catches the rest, e.g. made by another API process)."""

SEND_DEADLINE_S = 30.0
"""A client that has not taken a message within this long is stalled: its socket is dropped (it
reconnects and replays what it missed when it comes back)."""


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
    client = LiveClient(username=who.username, role=who.role, types=types, token_hash=who.token_hash)
    allowed = sorted(t for t in EVENT_TYPES if client.wants(t))
    # a stream that can carry personal data is audited when subscribed to: plate reads and hits,
    # heartbeats of devices that move with an officer (their location), hit alerts (they name the plate)
    personal = [t for t in allowed if EVENT_TYPES[t].may_be_personal()]
    if personal:
        await ctx.audit(who, "subscribe_live", "events", details={"types": personal})
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    try:
        ctx.hub.add(client)  # inside the try: a client gone before its hello leaves the hub too
        hello = {"kind": "hello", "user": who.username, "role": who.role.value, "types": allowed}
        await asyncio.wait_for(websocket.send_text(json.dumps(hello)), SEND_DEADLINE_S)
        tasks = [
            loop.create_task(_receive(websocket)),
            loop.create_task(_pump(websocket, client, ctx)),
            loop.create_task(_watch_session(websocket, ctx, client)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, TimeoutError, OSError, RuntimeError):
        pass  # gone, or stalled before its hello
    finally:
        ctx.hub.remove(client)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _receive(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, text or binary, until it disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _pump(websocket: WebSocket, client: LiveClient, ctx: Any) -> None:
    """Send the client's queue; return when it is gone or has stalled for :data:`SEND_DEADLINE_S`."""
    while True:
        text = await client.queue.get()
        try:
            await asyncio.wait_for(websocket.send_text(text), SEND_DEADLINE_S)
        except TimeoutError:
            ctx.metrics.inc("ws_stalled")
            log.info("live socket of %s took nothing for %.0f s; dropped", client.username, SEND_DEADLINE_S)
            return
        except (WebSocketDisconnect, OSError, RuntimeError):
            return


async def _watch_session(websocket: WebSocket, ctx: Any, client: LiveClient) -> None:
    """Return (closing the socket with 4401) once its session has ended: at once when this process
    ended it (:meth:`LiveHub.end_sessions`), else at the next check."""
    from rtcc.oversight.sessions import session_alive

    token_hash = client.token_hash
    idle = ctx.settings.security.session_idle_minutes
    while True:
        if token_hash is None:
            await client.ended.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.ended.wait(), SESSION_CHECK_S)
        if not client.ended.is_set() and token_hash is not None:
            alive = await ctx.store.read(
                functools.partial(
                    session_alive,
                    token_hash=token_hash,
                    now=datetime.now(UTC),
                    idle_minutes=idle,
                    mfa_default=ctx.settings.security.mfa_required,
                )
            )
            if alive:
                continue
        ctx.hub.remove(client)  # no further event is queued for it
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code=4401, reason="session ended"), 5.0)
        return
