"""Sign-in audit findings over HTTP: no account enumeration, MFA switch ends non-MFA sessions,
TOTP codes work once, absolute session lifetime, admin unlock, and the last admin stays."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from rtcc.oversight.mfa import current_code
from rtcc.roles import Role
from rtcc.store.tables import User, UserSession
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import PASSWORD, Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LOGIN = "/api/v1/auth/login"


async def _attempt(center: Running, username: str, password: str) -> tuple[int, str, object]:
    r = await center.http.post(LOGIN, json={"username": username, "password": password})
    body = r.json()
    return r.status_code, body["error"]["message"], body["error"]["details"]


def _no_clock(message: str) -> str:
    """A message with its times blanked: the two attempts can fall on either side of a second."""
    return re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?", "<time>", message)


def _without_time(details: object) -> object:
    """Error details with the lock's end time blanked (its presence still compared)."""
    if isinstance(details, dict) and "locked_until" in details:
        return {**details, "locked_until": "<time>"}
    return details


async def test_login_does_not_reveal_which_names_exist(center: Running) -> None:
    center.add_user("ana", Role.analyst)
    for _ in range(center.settings.security.lockout_attempts + 1):
        real = await _attempt(center, "ana", "nope-nope-nope")
        ghost = await _attempt(center, "ghost", "nope-nope-nope")
        # the same answer; only the lock's end may differ by the second between the two attempts
        assert real[0] == ghost[0] and _without_time(real[2]) == _without_time(ghost[2])
        assert _no_clock(real[1]) == _no_clock(ghost[1])
    # Both are now locked the same way.
    assert real[0] == 423 and ghost[0] == 423
    first = await _attempt(center, "ghost", PASSWORD)
    assert first[0] == 423 and "ask an administrator" in first[1]
    # The precise reasons stay in the audit log.
    admin = await center.login("admin")
    items = (await admin.get("/api/v1/audit", params={"action": "login", "limit": 50})).json()["items"]
    reasons = {(e["actor"], e["details"]["reason"]) for e in items if e["outcome"] != "ok"}
    assert ("ana", "bad_password") in reasons and ("ghost", "unknown_user") in reasons
    await admin.aclose()


async def test_first_failure_details_are_generic(center: Running) -> None:
    center.add_user("ana", Role.analyst)
    for name in ("ana", "nobody"):
        body = assert_envelope(
            await center.http.post(LOGIN, json={"username": name, "password": "nope-nope-nope"}), 401
        )
        assert body["error"]["details"] == {"reason": "invalid_credentials"}  # type: ignore[index]


async def test_mfa_switch_ends_sessions_opened_without_mfa(center: Running) -> None:
    center.add_user("off1", Role.officer)
    officer = await center.login("off1")
    admin = await center.login("admin")
    assert (await officer.get("/api/v1/devices")).status_code == 200
    r = await admin.put("/api/v1/auth/mfa/required", json={"required": True})
    assert r.status_code == 200
    # Neither the officer's nor the admin's session proved a code: both must sign in again.
    assert_envelope(await officer.get("/api/v1/devices"), 401, "unauthenticated")
    assert_envelope(await admin.get("/api/v1/auth/me"), 401, "unauthenticated")
    # Signing in again leads to enrolment; after it the session works.
    r = await center.http.post(LOGIN, json={"username": "off1", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["mfa_enrolment_required"] is True
    again = httpx.AsyncClient(base_url=center.url, headers={"authorization": f"Bearer {r.json()['token']}"})
    secret = (await again.post("/api/v1/auth/mfa/enrol")).json()["secret"]
    assert (
        await again.post("/api/v1/auth/mfa/confirm", json={"code": current_code(secret)})
    ).status_code == 200
    assert (await again.get("/api/v1/devices")).status_code == 200
    for c in (officer, admin, again):
        await c.aclose()


async def test_same_totp_code_cannot_sign_in_twice(center: Running) -> None:
    center.add_user("sup1", Role.supervisor)
    sup = await center.login("sup1")
    secret = (await sup.post("/api/v1/auth/mfa/enrol")).json()["secret"]
    assert (
        await sup.post("/api/v1/auth/mfa/confirm", json={"code": current_code(secret)})
    ).status_code == 200
    await sup.aclose()
    # Even if the 30-second step turns between the two logins, the code stays inside the drift
    # window, so the only reason left to refuse it is that it was used.
    code = current_code(secret)
    r = await center.http.post(LOGIN, json={"username": "sup1", "password": PASSWORD, "totp_code": code})
    assert r.status_code == 200, r.text
    r = await center.http.post(LOGIN, json={"username": "sup1", "password": PASSWORD, "totp_code": code})
    body = assert_envelope(r, 401, "unauthenticated")
    assert body["error"]["details"] == {"reason": "reused_mfa_code", "mfa_required": True}  # type: ignore[index]


async def test_session_has_an_absolute_lifetime(start_center: object) -> None:
    center: Running = await start_center(security={"session_max_hours": 2})  # type: ignore[operator]
    client = await center.login("admin")
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    store = center.center.store
    assert store is not None
    row = store.run(lambda s: s.scalars(select(UserSession)).one())
    assert row.expires_at is not None and row.expires_at - row.created_at == timedelta(hours=2)
    # Recently active, but past its end.
    now = datetime.now(UTC)
    store.run(
        lambda s: s.execute(update(UserSession).values(created_at=now - timedelta(hours=3), expires_at=now))
    )
    assert_envelope(await client.get("/api/v1/auth/me"), 401, "unauthenticated")
    await client.aclose()


async def test_admin_unlocks_a_locked_account(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    for _ in range(center.settings.security.lockout_attempts):
        await center.http.post(LOGIN, json={"username": "analyst1", "password": "nope-nope-nope"})
    assert_envelope(await center.http.post(LOGIN, json={"username": "analyst1", "password": PASSWORD}), 423)
    users = (await clients[Role.admin].get("/api/v1/users")).json()["items"]
    assert next(u for u in users if u["username"] == "analyst1")["locked"] is True

    # Only admins unlock; locking by hand is not a thing (disable instead).
    assert_envelope(
        await clients[Role.supervisor].patch("/api/v1/users/analyst1", json={"locked": False}),
        403,
        "forbidden",
    )
    assert_envelope(
        await clients[Role.admin].patch("/api/v1/users/analyst1", json={"locked": True}),
        422,
        "validation_failed",
    )
    r = await clients[Role.admin].patch("/api/v1/users/analyst1", json={"locked": False})
    assert r.status_code == 200 and r.json()["locked"] is False
    r = await center.http.post(LOGIN, json={"username": "analyst1", "password": PASSWORD})
    assert r.status_code == 200, r.text

    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "update_user"})).json()["items"]
    assert any(e["record_id"] == "analyst1" and e["details"] == {"locked": False} for e in audit)


async def test_last_enabled_admin_cannot_disable_or_demote_itself(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    for patch in ({"disabled": True}, {"role": "analyst"}):
        body = assert_envelope(await admin.patch("/api/v1/users/admin", json=patch), 409, "conflict")
        assert "last enabled admin" in body["error"]["message"]  # type: ignore[index]
    assert (await admin.get("/api/v1/auth/me")).status_code == 200
    assert center.center.store is not None
    row = center.center.store.run(lambda s: s.scalars(select(User).where(User.username == "admin")).one())
    assert row.role == "admin" and not row.disabled

    # With a second admin, the first may step down; the disabling is audited.
    assert (await admin.patch("/api/v1/users/supervisor1", json={"role": "admin"})).status_code == 200
    r = await admin.patch("/api/v1/users/admin", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert_envelope(await admin.get("/api/v1/auth/me"), 401)
    second = await center.login("supervisor1")
    audit = (await second.get("/api/v1/audit", params={"action": "update_user"})).json()["items"]
    assert any(e["record_id"] == "admin" and e["details"] == {"disabled": True} for e in audit)
    assert_envelope(await second.patch("/api/v1/users/supervisor1", json={"disabled": True}), 409, "conflict")
    await second.aclose()
