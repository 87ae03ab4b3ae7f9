"""HTTPS to the center from a field device: one more try when a kept-alive connection went stale.

The center's server closes an idle kept-alive connection (uvicorn: after 5 s). A request sent on it
just as it closes fails with a read, write or protocol error ("connection reset by peer") although
the center is up; httpx retries only failed connects. One retry on a fresh connection tells that
race from a center that is down. Device posts are safe to send twice: the center drops an event id
it already holds (plate images are deduplicated the same way), and a heartbeat only states the
present.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

STALE_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
"""What a request on a connection the server closed under it fails with."""


def post(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """``client.post(url, **kwargs)``, sent once more if the connection turned out stale.

    Any other failure, or a second one, is raised as ``httpx`` raises it.
    """
    try:
        return client.post(url, **kwargs)
    except STALE_CONNECTION as exc:
        log.debug("stale connection to %s (%s: %s); sending again", url, type(exc).__name__, exc)
        return client.post(url, **kwargs)


def refusal(resp: httpx.Response, *, limit: int = 500) -> str:
    """The center's reason for refusing a request, from its JSON error shape: ``"409 code: message"``.

    A body that is not the error shape (a proxy's page) is quoted up to ``limit`` characters.
    """
    try:
        body = resp.json()
        return f"{resp.status_code} {body['error']['code']}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}: {resp.text[:limit]}"
