"""One JSON error envelope on every error, across routes and failure kinds."""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.conftest import Running


def assert_envelope(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "request_id"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"] == r.headers["x-request-id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


async def test_envelope_across_failure_kinds(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    admin = clients[Role.admin]
    # 404 unknown route under the API and an unknown record
    assert_envelope(await admin.get("/api/v1/nope"), 404, "not_found")
    assert_envelope(await admin.get("/api/v1/devices/ghost"), 404, "not_found")
    # 405 wrong method
    assert_envelope(await admin.delete("/api/v1/health"), 405, "method_not_allowed")
    # 422 malformed body, wrong types, unknown keys
    assert_envelope(
        await admin.post(
            "/api/v1/devices", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "validation_failed",
    )
    body = assert_envelope(
        await admin.post("/api/v1/devices", json={"id": "x", "type": "toaster", "lat": 1, "lon": 2}),
        422,
        "validation_failed",
    )
    assert any("type" in d["loc"] for d in body["error"]["details"])  # type: ignore[index,union-attr]
    assert_envelope(
        await admin.post(
            "/api/v1/devices",
            json={"id": "x", "type": "camera", "lat": 95, "lon": 2},
        ),
        422,
        "validation_failed",
    )
    assert_envelope(await admin.get("/api/v1/events", params={"limit": 0}), 422, "validation_failed")
    # 401 and 403
    assert_envelope(await center.http.get("/api/v1/devices"), 401, "unauthenticated")
    assert_envelope(await clients[Role.officer].get("/api/v1/users"), 403, "forbidden")
    # 409 duplicate
    await admin.post(
        "/api/v1/users", json={"username": "dup", "password": "Another-long-passw0rd", "role": "analyst"}
    )
    assert_envelope(
        await admin.post(
            "/api/v1/users", json={"username": "dup", "password": "Another-long-passw0rd", "role": "analyst"}
        ),
        409,
        "conflict",
    )
    # 401 login failure
    assert_envelope(
        await center.http.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"}),
        401,
        "unauthenticated",
    )


@pytest.mark.parametrize("backend", ["embedded"])
async def test_oversized_bodies_get_413(start_center: object) -> None:
    running = await start_center(server={"max_request_bytes": 4096})  # type: ignore[operator]
    big = {"events": [{"x": "y" * 5000}]}
    r = await running.http.post("/api/v1/ingest/events", json=big)
    assert_envelope(r, 413, "payload_too_large")
    assert "server.max_request_bytes" in r.json()["error"]["message"]

    # chunked body without Content-Length is counted as it streams
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1000

    r = await running.http.post(
        "/api/v1/ingest/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(r, 413, "payload_too_large")


@pytest.mark.parametrize("backend", ["embedded"])
async def test_upload_routes_have_their_own_limit(start_center: object) -> None:
    running = await start_center(  # type: ignore[operator]
        server={"max_request_bytes": 4096, "max_upload_bytes": 65536}
    )
    body = b"x" * 20_000
    # an upload route takes a body over max_request_bytes (then refuses the anonymous caller) ...
    r = await running.http.post("/api/v1/outcomes/import", content=body, headers={"content-type": "text/csv"})
    assert_envelope(r, 401, "unauthenticated")
    # ... other routes don't
    r = await running.http.post("/api/v1/cases", content=body, headers={"content-type": "application/json"})
    assert_envelope(r, 413, "payload_too_large")
    # and an upload over its own limit names that setting
    r = await running.http.post(
        "/api/v1/outcomes/import", content=b"x" * 70_000, headers={"content-type": "text/csv"}
    )
    assert_envelope(r, 413, "payload_too_large")
    assert "server.max_upload_bytes" in r.json()["error"]["message"]
