"""Every route × every role: the declared roles are exactly the ones let in."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute

from rtcc.api import create_app, iter_api_routes
from rtcc.api.deps import Allow
from rtcc.roles import Role
from tests.conftest import ROLES, Running


def _allow_of(route: APIRoute) -> Allow:
    found: list[Allow] = []

    def walk(dep: Any) -> None:
        for sub in dep.dependencies:
            if isinstance(sub.call, Allow):
                found.append(sub.call)
            walk(sub)

    walk(route.dependant)
    assert len(found) == 1, f"{route.path} {route.methods} declares {len(found)} Allow dependencies"
    return found[0]


def _routes() -> list[tuple[str, str, Allow]]:
    out = []
    for path, r in iter_api_routes():
        allow = _allow_of(r)
        for m in sorted(r.methods):
            out.append((m, path, allow))
    # the walk covers what the app serves: every documented path is walked
    served = set(create_app().openapi()["paths"])
    assert served == {p for _, p, _ in out}
    return out


def test_every_route_declares_its_roles() -> None:
    routes = _routes()
    assert len(routes) > 15
    public = {(m, p) for m, p, a in routes if a.public}
    # the only public routes: health, readiness, login; device routes (device-key auth); a
    # resident's camera registration and the owner's secret-link pages; the transparency page
    assert public == {
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/ready"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/ingest/events"),
        ("POST", "/api/v1/plates/images"),
        ("POST", "/api/v1/bodycams/commands/poll"),
        ("POST", "/api/v1/community/registrations"),
        ("POST", "/api/v1/community/verify"),
        ("GET", "/api/v1/community/manage/{token}"),
        ("DELETE", "/api/v1/community/manage/{token}"),
        ("POST", "/api/v1/community/manage/{token}/requests/{request_id}/clip"),
        ("POST", "/api/v1/community/manage/{token}/requests/{request_id}/decline"),
        ("GET", "/api/v1/community/footage/{token}"),
        ("POST", "/api/v1/community/footage/{token}/clip"),
        ("POST", "/api/v1/community/footage/{token}/decline"),
        ("GET", "/api/v1/transparency"),
    }


_SAMPLES = {"device_id": "no-such-device", "username": "no-such-user"}
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"


def _fill(path: str) -> str:
    """Sample path parameters: names from :data:`_SAMPLES`, anything else an unknown UUID."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: _SAMPLES.get(m.group(1), NO_SUCH_ID), path)


async def test_route_by_role(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    anonymous = httpx.AsyncClient(base_url=center.url, timeout=20)
    checked = 0
    try:
        for method, path, allow in _routes():
            if path in ("/api/v1/auth/logout",):
                continue  # would end the session used for the next routes; covered in test_auth
            url = _fill(path)
            # anonymous
            r = await anonymous.request(method, url, json={} if method in ("POST", "PUT", "PATCH") else None)
            if allow.public:
                assert r.status_code not in (401, 403), (method, path, r.status_code)
            else:
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                assert r.json()["error"]["code"] == "unauthenticated"
            for role in ROLES:
                body = {} if method in ("POST", "PUT", "PATCH") else None
                r = await clients[role].request(method, url, json=body)
                if role in allow.roles or allow.public:
                    assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (method, path, role, r.status_code, r.text)
                    assert r.json()["error"]["code"] == "forbidden"
                checked += 1
    finally:
        await anonymous.aclose()
    assert checked >= 15 * len(ROLES)
