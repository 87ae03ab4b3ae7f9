"""Accounts over the API follow the same rules as ``rtcc users``: a display name is trimmed (blank:
the username), and one-character usernames, which the accounts allow, are accepted."""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.conftest import Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_display_names_are_trimmed_and_never_blank(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    center.add_user("dora", Role.analyst)
    r = await admin.patch("/api/v1/users/dora", json={"display_name": "  Dora Q.  "})
    assert r.status_code == 200 and r.json()["display_name"] == "Dora Q.", r.text
    r = await admin.patch("/api/v1/users/dora", json={"display_name": "   "})
    assert r.status_code == 200 and r.json()["display_name"] == "dora", r.text


async def test_a_one_character_username_is_accepted(clients: dict[Role, httpx.AsyncClient]) -> None:
    r = await clients[Role.admin].post(
        "/api/v1/users", json={"username": "q", "password": "a sturdy passphrase", "role": "officer"}
    )
    assert r.status_code == 201 and r.json()["username"] == "q", r.text
