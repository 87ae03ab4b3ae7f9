"""A stop always ends: a request that never finishes is cut after ``server.shutdown_grace_s``.

Before, the HTTP server waited without limit for every open request (uvicorn's default), so one
stuck response (a live view whose camera froze, a client that never reads) kept ``rtcc serve`` from
stopping until it was killed.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import StartCenter, stop_or_report

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_a_request_that_never_ends_does_not_keep_the_center_from_stopping(
    start_center: StartCenter,
) -> None:
    running = await start_center(processors=(), server={"shutdown_grace_s": 1})
    app = running.center.app
    assert app is not None
    entered = asyncio.Event()

    async def stuck() -> dict[str, str]:
        entered.set()
        await asyncio.Event().wait()  # never set: the response never comes
        return {}

    app.add_api_route("/test/stuck", stuck)
    app.router.routes.insert(0, app.router.routes.pop())  # before the dashboard's catch-all mount
    async with httpx.AsyncClient(base_url=running.url, timeout=None) as client:
        request = asyncio.ensure_future(client.get("/test/stuck"))
        await asyncio.wait_for(entered.wait(), 20)
        # fails (with the tasks' stacks) if the stop waits for the stuck request
        await stop_or_report(running.center, limit_s=60)
        # the server ended the request when it stopped: an error answer or a closed connection
        try:
            answer = await asyncio.wait_for(request, 20)
        except httpx.HTTPError:
            return
        assert answer.status_code >= 500, answer.text
