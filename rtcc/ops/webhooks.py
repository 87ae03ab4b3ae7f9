"""Outgoing webhooks: new alerts POSTed to dispatch (CAD) systems.

Each delivery is a JSON body (see :func:`rtcc.ops.exports.feed_item`) with

* ``X-RTCC-Event-Id`` — the alert's id (receivers drop duplicates with it),
* ``X-RTCC-Signature: sha256=<hex>`` — HMAC-SHA256 of the body with
  ``operations.webhook_secret`` (when set).

A failed attempt (network error, a non-2xx answer, or any other error such as
a URL the HTTP client refuses) is retried up to ``webhook_max_attempts`` times
with doubling backoff; deliveries that still fail are counted
(``webhook_failures``) and logged once, never raised: one bad URL cannot break
the delivery to the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from rtcc.metrics import Metrics

log = logging.getLogger("rtcc.ops.webhooks")

SIGNATURE_HEADER = "X-RTCC-Signature"
EVENT_HEADER = "X-RTCC-Event-Id"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), header)


class WebhookSender:
    """Delivers payloads to every configured URL with bounded retries."""

    def __init__(
        self,
        urls: Sequence[str],
        metrics: Metrics,
        *,
        secret: str | None = None,
        max_attempts: int = 3,
        timeout_s: float = 5.0,
        backoff_s: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = list(urls)
        self.metrics = metrics
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._tasks: set[asyncio.Task[list[bool]]] = set()

    def submit(self, event_id: str, payload: dict[str, Any]) -> None:
        """Deliver in the background (returns at once)."""
        if not self.urls:
            return
        task = asyncio.create_task(self.deliver_all(event_id, payload), name=f"webhook-{event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def deliver_all(self, event_id: str, payload: dict[str, Any]) -> list[bool]:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
        return list(await asyncio.gather(*(self.deliver(url, event_id, body) for url in self.urls)))

    async def deliver(self, url: str, event_id: str, body: bytes) -> bool:
        """One URL, up to ``max_attempts`` tries; True when a 2xx came back."""
        headers = {"content-type": "application/json", EVENT_HEADER: event_id}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = await self._client.post(url, content=body, headers=headers)
                if 200 <= r.status_code < 300:
                    self.metrics.inc("webhook_delivered")
                    return True
                why = f"HTTP {r.status_code}"
            except Exception as exc:  # not only httpx.HTTPError: e.g. InvalidURL, a port out of range
                why = f"{type(exc).__name__}: {exc}"[:200]
            self.metrics.inc("webhook_attempt_failures")
            if attempt < self.max_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        self.metrics.inc("webhook_failures")
        log.warning("webhook to %s failed after %d attempt(s): %s", url, self.max_attempts, why)
        return False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
