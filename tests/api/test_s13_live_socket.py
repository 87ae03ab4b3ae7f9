"""The live WebSocket after an audit of the hub:

* a client gone before its hello no longer stays in the hub for good (each ghost kept a full queue
  and was handed every event);
* a disabled account's socket closes at once (4401), not at the next session check, and gets no
  event published after the disable;
* a binary frame is ignored (it used to kill the socket with a ``KeyError`` traceback);
* a client that takes nothing for ``SEND_DEADLINE_S`` is dropped from the hub.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import httpx
import pytest
import websockets

from rtcc.api.routes import ws as ws_route
from rtcc.events import Alert, PlateRead, subject_for
from rtcc.roles import Role
from tests.api.test_websocket import HERE, _ws
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def _hit_and_run(port: int, token: str) -> None:
    """Upgrade to a WebSocket, then reset the connection before the server's hello."""
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setblocking(False)
    await loop.sock_connect(s, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        s,
        (
            f"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode(),
    )
    await loop.sock_recv(s, 100)  # the 101 comes at accept, before the audit write and the hello
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    s.close()


def _bearer(client: httpx.AsyncClient) -> str:
    return str(client.headers["authorization"]).removeprefix("Bearer ")


async def _publish_alert(center: Running, title: str) -> None:
    bus = center.center.bus
    assert bus is not None
    alert = Alert(source="test", kind="test", title=title, pos=HERE)
    await bus.publish(subject_for("alert"), alert.to_json())


async def _until_title(ws: Any, title: str) -> None:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if msg["kind"] == "event" and msg["event"].get("title") == title:
            return


async def test_clients_gone_before_their_hello_leave_the_hub(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    hub = center.center.hub
    assert hub is not None and center.center.port
    token = _bearer(clients[Role.admin])
    for _ in range(40):
        await _hit_and_run(center.center.port, token)

    async def empty() -> bool | None:
        return True if not hub.clients else None

    await eventually(empty, what="no client left in the hub")


async def test_a_disabled_accounts_socket_closes_at_once(
    center: Running, clients: dict[Role, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_route, "SESSION_CHECK_S", 3600.0)  # only the disable itself can close it
    center.add_user("ann", Role.analyst)
    ann = await center.login("ann")
    bus = center.center.bus
    assert bus is not None
    async with _ws(center, ann) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        r = await clients[Role.admin].patch("/api/v1/users/ann", json={"disabled": True})
        assert r.status_code == 200, r.text
        read = PlateRead(source="lpr-001", device="lpr-001", pos=HERE, plate="AFTER1", confidence=0.97)
        await bus.publish(subject_for("plate_read"), read.to_json())
        got: list[str] = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                got.append(await asyncio.wait_for(ws.recv(), 30))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert not any("AFTER1" in m for m in got)
    await ann.aclose()


async def test_a_binary_frame_is_ignored(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    async with _ws(center, clients[Role.analyst]) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        await ws.send(b"\x00\x01binary")
        await ws.send("a text ping")
        await _publish_alert(center, "still here")
        await _until_title(ws, "still here")


async def test_a_stalled_client_is_dropped(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_route, "SEND_DEADLINE_S", 1.0)
    center = await start_center(processors=())  # only the hub reads the bus: raw events are fine
    hub, bus = center.center.hub, center.center.bus
    assert hub is not None and bus is not None
    center.add_user("sam", Role.analyst)
    sam = await center.login("sam")
    url = center.url.replace("http", "ws") + "api/v1/ws"
    # a client that never reads: a small receive buffer, and nothing taken from it
    async with websockets.connect(
        url, additional_headers={"authorization": sam.headers["authorization"]}, max_queue=1
    ) as ws:
        ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await eventually(lambda: _one_client(hub), what="the client in the hub")
        alert = json.loads(Alert(source="test", kind="test", title="big", pos=HERE).to_json())
        noise = base64.b64encode(os.urandom(48_000)).decode()  # 64 kB that compression cannot shrink
        for i in range(300):  # 300 x 64 kB: far more than the socket buffers hold
            await bus.publish(
                subject_for("alert"), json.dumps({**alert, "title": f"{i}", "pad": noise}).encode()
            )
            await asyncio.sleep(0)

        async def gone() -> bool | None:
            return True if not hub.clients else None

        await eventually(gone, what="the stalled client dropped from the hub")
    assert center.center.metrics.get("ws_stalled") == 1
    await sam.aclose()


async def _one_client(hub: Any) -> bool | None:
    return True if len(hub.clients) == 1 else None
