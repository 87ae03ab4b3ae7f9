"""Outgoing webhooks: signed bodies, bounded retries, failures counted; new alerts reach a real receiver."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from rtcc.metrics import Metrics
from rtcc.ops.webhooks import EVENT_HEADER, SIGNATURE_HEADER, WebhookSender, sign, verify
from tests.conftest import Running
from tests.helpers import eventually
from tests.ops.helpers import make_alert, publish, queued

SECRET = "webhook-secret-0123456789"


def test_signature_round_trip() -> None:
    body = b'{"id":"1"}'
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(SECRET, body, header)
    assert not verify(SECRET, body + b" ", header)
    assert not verify("another-secret-456789", body, header)


async def test_retries_then_delivers_with_signature() -> None:
    seen: list[httpx.Request] = []
    answers = iter([500, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    metrics = Metrics()
    sender = WebhookSender(
        ["http://cad.example/hook"], metrics, secret=SECRET, max_attempts=3, backoff_s=0.0,
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    try:
        assert await sender.deliver_all("a-1", {"id": "a-1", "kind": "gunshot"}) == [True]
    finally:
        await sender.close()
    assert len(seen) == 3
    for req in seen:
        assert verify(SECRET, req.content, req.headers[SIGNATURE_HEADER])
        assert req.headers[EVENT_HEADER] == "a-1"
        assert json.loads(req.content) == {"id": "a-1", "kind": "gunshot"}
    assert metrics.get("webhook_attempt_failures") == 2 and metrics.get("webhook_delivered") == 1
    assert metrics.get("webhook_failures") == 0


async def test_gives_up_after_max_attempts_and_counts() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    metrics = Metrics()
    sender = WebhookSender(
        ["http://down.example/hook"],
        metrics,
        max_attempts=4,
        backoff_s=0.0,
        transport=httpx.MockTransport(handler),
    )
    try:
        assert await sender.deliver_all("a-2", {"id": "a-2"}) == [False]
    finally:
        await sender.close()
    assert calls == 4
    assert metrics.get("webhook_failures") == 1 and metrics.get("webhook_attempt_failures") == 4


class _Receiver:
    """A real HTTP server (asyncio streams) that records POST bodies and headers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_new_alerts_reach_the_webhook_once_and_review_work_does_not(start_center: Any) -> None:
    receiver = _Receiver()
    url = await receiver.start()
    try:
        center: Running = await start_center(operations={"webhook_urls": [url], "webhook_secret": SECRET})
        admin = await center.login("admin")
        alert, review = make_alert(), make_alert("gunshot_review")
        await publish(center, alert)
        await publish(center, alert)
        await publish(center, review)
        await queued(center, admin, alert.alert_id)
        await queued(center, admin, review.alert_id)
        await eventually(lambda: _value(receiver.received), what="the webhook delivery")
        await admin.aclose()
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER.lower()])
    payload = json.loads(body)
    assert (
        payload["id"] == str(alert.alert_id) and payload["status"] == "new" and payload["kind"] == "gunshot"
    )
    assert center.center.metrics.get("webhook_delivered") == 1


async def _value(x: list[Any]) -> list[Any]:
    return x
