"""s15 on cameras: open live views are session-bound views of the live hub, not WebSocket clients
(``websocket_clients`` counts only sockets, ``live_views`` the views, and a sign-out still ends a
view at once); a clip read by a video player's many Range requests is audited once per person and
clip per window, the window read from the audit log itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import select, update

from rtcc.api.hub import LiveClient, LiveHub, LiveView
from rtcc.metrics import Metrics
from rtcc.roles import Role
from rtcc.store.tables import AuditEntry
from tests.api.test_websocket import _ws
from tests.cameras.helpers import (
    EMAIL,
    LIVE,
    LOG,
    assert_view_ends,
    city_camera,
    delivered_clip,
    live_view,
    register_verified_active,
    signed_in,
    store_of,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])


def _hub(center: Running) -> LiveHub:
    ctx = center.center.ctx
    assert ctx is not None
    return ctx.hub


async def _figures(admin: httpx.AsyncClient) -> tuple[int, int]:
    r = await admin.get("/api/v1/system/metrics")
    assert r.status_code == 200, r.text
    return r.json()["websocket_clients"], r.json()["live_views"]


# --- 1. live views are not WebSocket clients, and still end with their session -----------------


@EMBEDDED
async def test_websocket_clients_counts_sockets_not_live_views(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:
        cam = await city_camera(admin)
        assert await _figures(admin) == (0, 0)
        async with live_view(officer, cam):
            assert await _figures(admin) == (0, 1)  # a view, not a socket
            hub = _hub(center)
            assert not hub.clients  # offered no bus events
            async with _ws(center, officer) as ws:
                assert json.loads(await ws.recv())["kind"] == "hello"
                assert await _figures(admin) == (1, 1)
        # the view left the hub when it closed

        async def gone() -> bool:
            return await _figures(admin) == (0, 0)

        await eventually(gone, what="the closed view and socket to leave the hub")


@EMBEDDED
@pytest.mark.parametrize("how", ["logout", "disable", "role"])
async def test_ending_the_session_ends_an_open_live_view_at_once(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Only the hub can end it here: the periodic check is pushed out of reach."""
    monkeypatch.setattr("rtcc.api.routes.cameras.LIVE_CHECK_S", 3600.0)
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:
        cam = await city_camera(admin)
        async with live_view(officer, cam) as it:
            hub = _hub(center)
            assert [v.username for v in hub.views] == ["officer1"]
            if how == "logout":
                x = await officer.post("/api/v1/auth/logout")
            elif how == "disable":
                x = await admin.patch("/api/v1/users/officer1", json={"disabled": True})
            else:
                x = await admin.patch("/api/v1/users/officer1", json={"role": "auditor"})
            assert x.status_code in (200, 204), x.text
            await assert_view_ends(it, how)
        assert not hub.views
        assert await _figures(admin) == (0, 0)


def test_end_sessions_ends_views_and_sockets_of_the_session() -> None:
    hub = LiveHub(cast(Any, None), Metrics())
    sock = LiveClient(username="a", role=Role.officer, token_hash="t1")
    view1, view2 = LiveView(username="a", token_hash="t1"), LiveView(username="a", token_hash="t2")
    other = LiveView(username="b", token_hash="t3")
    hub.add(sock)
    for v in (view1, view2, other):
        hub.add_view(v)
    assert hub.end_sessions(username="a", keep_token_hash="t1") == 1  # a's own password change
    assert view2.ended.is_set() and not view1.ended.is_set() and not sock.ended.is_set()
    assert hub.end_sessions(token_hash="t1") == 2  # a signs out
    assert sock.ended.is_set() and view1.ended.is_set() and not other.ended.is_set()
    assert hub.clients == set() and hub.views == {other}


# --- 2. a clip read by a player's Range requests is audited once per person and window ---------


def _clip_reads(center: Running, fr: str) -> list[str]:
    """The actors of the ``read_footage_clip`` entries for request ``fr``, oldest first."""
    rows = store_of(center).run(
        lambda s: list(
            s.scalars(
                select(AuditEntry.actor)
                .where(AuditEntry.action == "read_footage_clip", AuditEntry.record_id == fr)
                .order_by(AuditEntry.seq)
            )
        )
    )
    return cast(list[str], rows)


async def _ranged(client: httpx.AsyncClient, fr: str, clip: bytes, ranges: list[str | None]) -> None:
    for rng in ranges:
        headers = {"range": f"bytes={rng}"} if rng is not None else {}
        r = await client.get(f"/api/v1/footage-requests/{fr}/clip", headers=headers)
        if rng is None:
            assert r.status_code == 200 and r.content == clip
        else:
            assert r.status_code == 206, r.text
            start, _, end = rng.partition("-")
            assert r.content == clip[int(start) : int(end) + 1 if end else None]


@EMBEDDED
async def test_clip_reads_are_audited_once_per_person_and_window(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin, signed_in(center, "analyst1", Role.analyst) as analyst:
        cam, manage = await register_verified_active(center, admin, EMAIL)
        fr, clip = await delivered_clip(center, admin, cam, manage)
        fr2, clip2 = await delivered_clip(center, admin, cam, manage)

        # one viewing: a player's Range requests and a plain download, one entry
        await _ranged(admin, fr, clip, ["0-1", "2-99", "100-", None, "0-"])
        assert _clip_reads(center, fr) == ["admin"]
        # another person's first request, ranged, is audited as theirs
        await _ranged(analyst, fr, clip, ["0-1", "2-"])
        assert _clip_reads(center, fr) == ["admin", "analyst1"]
        # another clip is another record
        await _ranged(admin, fr2, clip2, ["0-1"])
        assert _clip_reads(center, fr2) == ["admin"]

        # the window passed (the entry is older than it): the next request is audited again
        old = datetime.now(UTC) - timedelta(minutes=11)
        await store_of(center).write(
            lambda s: s.execute(
                update(AuditEntry)
                .where(
                    AuditEntry.action == "read_footage_clip",
                    AuditEntry.record_id == fr,
                    AuditEntry.actor == "admin",
                )
                .values(at=old)
            )
        )
        await _ranged(admin, fr, clip, ["0-1", "2-"])
        assert _clip_reads(center, fr) == ["admin", "analyst1", "admin"]
        assert _clip_reads(center, fr2) == ["admin"]


@EMBEDDED
async def test_clip_audit_window_is_the_module_constant(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no window every request is audited: the coalescing reads its length from the constant."""
    monkeypatch.setattr("rtcc.api.routes.cameras.CLIP_AUDIT_WINDOW", timedelta(0), raising=False)
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        cam, manage = await register_verified_active(center, admin, EMAIL)
        fr, clip = await delivered_clip(center, admin, cam, manage)
        await _ranged(admin, fr, clip, ["0-1", "2-"])
        assert _clip_reads(center, fr) == ["admin", "admin"]
