"""Sign-in over HTTP: lockout, idle expiry, MFA required for everyone, logout, audit of it all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from rtcc.oversight.mfa import current_code
from rtcc.roles import Role
from rtcc.store.tables import UserSession
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import PASSWORD, Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_lockout_after_five_failures(center: Running) -> None:
    center.add_user("ana", Role.analyst)
    for _ in range(4):
        r = await center.http.post(
            "/api/v1/auth/login", json={"username": "ana", "password": "nope-nope-nope"}
        )
        assert_envelope(r, 401, "unauthenticated")
    r = await center.http.post("/api/v1/auth/login", json={"username": "ana", "password": "nope-nope-nope"})
    assert r.status_code in (401, 423)
    # now even the right password is refused until the lock ends
    r = await center.http.post("/api/v1/auth/login", json={"username": "ana", "password": PASSWORD})
    body = assert_envelope(r, 423, "locked_out")
    assert body["error"]["details"]["locked_until"]  # type: ignore[index]
    admin = await center.login("admin")
    audit = (await admin.get("/api/v1/audit", params={"action": "login", "limit": 20})).json()["items"]
    assert sum(1 for e in audit if e["actor"] == "ana" and e["outcome"] in ("denied", "locked")) >= 6
    await admin.aclose()


async def test_idle_session_expires(center: Running) -> None:
    client = await center.login("admin")
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    assert center.center.store is not None
    center.center.store.run(
        lambda s: s.execute(
            update(UserSession).values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
        )
    )
    assert_envelope(await client.get("/api/v1/auth/me"), 401, "unauthenticated")
    await client.aclose()


async def test_logout_ends_the_session(center: Running) -> None:
    client = await center.login("admin")
    assert (await client.post("/api/v1/auth/logout")).status_code == 204
    assert_envelope(await client.get("/api/v1/auth/me"), 401)
    await client.aclose()


async def test_admin_requires_mfa_for_everyone(center: Running) -> None:
    admin = await center.login("admin")
    center.add_user("off1", Role.officer)
    assert (await admin.put("/api/v1/auth/mfa/required", json={"required": True})).json() == {
        "required": True
    }
    # the officer signs in but may do nothing until enrolled
    r = await center.http.post("/api/v1/auth/login", json={"username": "off1", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["mfa_enrolment_required"] is True
    officer = httpx.AsyncClient(base_url=center.url, headers={"authorization": f"Bearer {r.json()['token']}"})
    body = assert_envelope(await officer.get("/api/v1/devices"), 403, "forbidden")
    assert body["error"]["details"] == {"reason": "mfa_enrolment_required"}
    secret = (await officer.post("/api/v1/auth/mfa/enrol")).json()["secret"]
    assert_envelope(await officer.post("/api/v1/auth/mfa/confirm", json={"code": "000000"}), 422)
    r = await officer.post("/api/v1/auth/mfa/confirm", json={"code": current_code(secret)})
    assert r.status_code == 200
    assert (await officer.get("/api/v1/devices")).status_code == 200
    # next sign-in needs the code
    r = await center.http.post("/api/v1/auth/login", json={"username": "off1", "password": PASSWORD})
    body = assert_envelope(r, 401)
    assert body["error"]["details"]["reason"] == "mfa_code_required"  # type: ignore[index]
    r = await center.http.post(
        "/api/v1/auth/login",
        json={"username": "off1", "password": PASSWORD, "totp_code": current_code(secret)},
    )
    assert r.status_code == 200 and r.json()["mfa_enrolment_required"] is False
    await officer.aclose()
    await admin.aclose()
