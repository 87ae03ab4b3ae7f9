"""Audit pages by ``before_seq`` do not shift: reading the log adds an entry, so an offset did.

With ``offset`` the second page repeats the last entry of the first (the first read added
``read_audit`` on top). ``next_before_seq`` gives the next page exactly.
"""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import Role
from tests.api.test_error_envelope import assert_envelope
from tests.conftest import Running

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

AUDIT = "/api/v1/audit"


async def test_pages_by_before_seq_neither_repeat_nor_skip(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin = clients[Role.admin]
    for _ in range(7):  # entries to page over (each read of the log is one)
        assert (await admin.get(AUDIT, params={"limit": 1})).status_code == 200

    whole = (await admin.get(AUDIT, params={"limit": 1000})).json()
    everything = [e["seq"] for e in whole["items"]]
    assert whole["next_before_seq"] is None  # fewer than a page: nothing older

    first = (await admin.get(AUDIT, params={"limit": 3})).json()
    by_offset = (await admin.get(AUDIT, params={"limit": 3, "offset": 3})).json()
    # the offset page shifted: two reads were added since the first page's top
    assert by_offset["items"][0]["seq"] != first["items"][-1]["seq"] - 1

    seen = [e["seq"] for e in first["items"]]
    cursor = first["next_before_seq"]
    assert cursor == seen[-1]
    while cursor is not None:
        page = (await admin.get(AUDIT, params={"limit": 3, "before_seq": cursor})).json()
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_before_seq"]
    # every entry that existed when the first page was read, once each, newest first
    assert seen == list(range(seen[0], seen[-1] - 1, -1))  # the chain's seqs have no gaps
    assert set(everything) <= set(seen) and seen[-1] == min(everything)


async def test_before_seq_must_be_positive(clients: dict[Role, httpx.AsyncClient]) -> None:
    assert_envelope(await clients[Role.admin].get(AUDIT, params={"before_seq": 0}), 422, "validation_failed")
