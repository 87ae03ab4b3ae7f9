"""Passwords can be changed: by the person (``POST /auth/password``, the current one required) and
by an admin for someone who forgot theirs (``POST /users/{name}/password``); on the server,
``rtcc users set-password`` (``tests/oversight/test_accounts_cli.py``). Before, an account kept its
first password for ever, and a forgotten one could only be replaced by a new account."""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import PASSWORD, Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LOGIN = "/api/v1/auth/login"
CHANGE = "/api/v1/auth/password"
NEW = "a brand new sturdy passphrase"


async def _login(center: Running, username: str, password: str) -> httpx.Response:
    return await center.http.post(LOGIN, json={"username": username, "password": password})


async def _actions(admin: httpx.AsyncClient, action: str) -> list[tuple[str, str]]:
    items = (await admin.get("/api/v1/audit", params={"action": action})).json()["items"]
    return [(e["record_id"], e["outcome"]) for e in items]


async def test_a_person_changes_their_own_password(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    center.add_user("olga", Role.officer)
    this = await center.login("olga")
    other = await center.login("olga")  # another browser, signed in earlier

    r = await this.post(CHANGE, json={"current_password": "not it at all", "new_password": NEW})
    assert_envelope(r, 422, "validation_failed")
    assert r.json()["error"]["details"] == {"field": "current_password"}
    r = await this.post(CHANGE, json={"current_password": PASSWORD, "new_password": "short"})
    assert_envelope(r, 422, "validation_failed")
    r = await this.post(CHANGE, json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert_envelope(r, 422, "validation_failed")
    assert (await _login(center, "olga", PASSWORD)).status_code == 200  # nothing changed so far

    r = await this.post(CHANGE, json={"current_password": PASSWORD, "new_password": NEW})
    assert r.status_code == 204, r.text
    assert (await this.get("/api/v1/auth/me")).status_code == 200  # this session stays
    assert_envelope(await other.get("/api/v1/auth/me"), 401, "unauthenticated")  # the others end
    assert_envelope(await _login(center, "olga", PASSWORD), 401)
    assert (await _login(center, "olga", NEW)).status_code == 200

    got = await _actions(clients[Role.admin], "change_password")
    assert ("olga", "ok") in got and ("olga", "denied") in got
    for c in (this, other):
        await c.aclose()


async def test_guessing_the_current_password_locks_the_account_like_failed_logins(
    center: Running,
) -> None:
    center.add_user("gus", Role.analyst)
    stolen = await center.login("gus")
    attempts = center.settings.security.lockout_attempts
    for i in range(attempts):
        r = await stolen.post(CHANGE, json={"current_password": f"guess number {i}", "new_password": NEW})
        assert r.status_code == (423 if i == attempts - 1 else 422), r.text
    assert_envelope(await stolen.get("/api/v1/auth/me"), 401, "unauthenticated")  # its sessions ended
    assert_envelope(await _login(center, "gus", PASSWORD), 423)  # and the right password waits
    await stolen.aclose()


async def test_an_admin_sets_a_new_password_for_someone_who_forgot_theirs(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    center.add_user("fay", Role.supervisor)
    fay = await center.login("fay")
    for _ in range(center.settings.security.lockout_attempts):
        await _login(center, "fay", "what was it again")
    assert_envelope(await _login(center, "fay", PASSWORD), 423)

    url = "/api/v1/users/fay/password"
    assert_envelope(await clients[Role.supervisor].post(url, json={"password": NEW}), 403, "forbidden")
    assert_envelope(await clients[Role.admin].post(url, json={"password": "fay"}), 422)
    nobody = "/api/v1/users/nobody/password"
    assert_envelope(await clients[Role.admin].post(nobody, json={"password": NEW}), 404)
    r = await clients[Role.admin].post(url, json={"password": NEW})
    assert r.status_code == 200 and r.json()["locked"] is False, r.text

    assert_envelope(await fay.get("/api/v1/auth/me"), 401, "unauthenticated")
    assert (await _login(center, "fay", NEW)).status_code == 200
    assert ("fay", "ok") in await _actions(clients[Role.admin], "set_password")
    await fay.aclose()
