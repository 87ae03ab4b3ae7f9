"""Shared set-up for the camera tests: a community registration body, a camera registered, verified
and approved, a footage request answered with a clip, a signed-in client, an open live view, and a
CLI database holding one camera. One place each, so the tests say only what they check."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from rtcc.cameras.notify import LogNotifier
from rtcc.cameras.service import service_of
from rtcc.oversight.retention import build as build_retention
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables_cameras import CameraRow, FootageRequestRow
from tests.cameras.conftest import mp4_clip
from tests.conftest import Running

EMAIL = "pat.resident@example.org"
REG = "/api/v1/community/registrations"
LOG = {"notifier": "log", "open_timeout_s": 2.0, "open_retries": 0}
"""Camera settings for tests that read the residents' mail from the log notifier."""
LIVE = {**LOG, "live_fps": 10.0}
END_BOUND_S = 60.0
"""Generous bound on waiting for an open live view to end (a hang guard, not a timing assertion)."""


def registration(**extra: Any) -> dict[str, Any]:
    """A community registration body (a resident's porch camera), with ``extra`` fields changed."""
    body: dict[str, Any] = {
        "name": "Front porch",
        "owner_type": "resident",
        "owner_name": "Pat Resident",
        "email": EMAIL,
        "phone": "+1 205 555 0100",
        "address": "1 Example St",
        "lat": 33.5190,
        "lon": -86.8100,
        "bearing_deg": 10.0,
        "fov_deg": 100.0,
        "range_m": 40.0,
    }
    body.update(extra)
    return body


def store_of(center: Running) -> Any:
    assert center.center.store is not None
    return center.center.store


def sent(center: Running) -> LogNotifier:
    """The log notifier of a center started with :data:`LOG`: what it mailed is in ``.sent``."""
    notifier = service_of(center.center.services, center.settings.cameras).notifier
    assert isinstance(notifier, LogNotifier)
    return notifier


@asynccontextmanager
async def signed_in(
    center: Running, username: str = "admin", role: Role | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as ``username`` (created first with ``role`` when given), closed on exit."""
    if role is not None:
        center.add_user(username, role)
    client = await center.login(username)
    try:
        yield client
    finally:
        await client.aclose()


async def register_verified_active(
    center: Running, admin: httpx.AsyncClient, email: str, **extra: Any
) -> tuple[str, str]:
    """A community camera registered (``extra`` changes the body), verified by the mailed link and
    approved: (its id, the owner's manage token). The center must use the log notifier."""
    r = await center.http.post(REG, json=registration(email=email, **extra))
    assert r.status_code == 201, r.text
    token = re.search(r"verify=([A-Za-z0-9_\-]+)", sent(center).sent[-1].body)
    assert token is not None
    r = await center.http.post("/api/v1/community/verify", json={"token": token.group(1)})
    assert r.status_code == 200, r.text
    cam, manage = r.json()["registration_id"], r.json()["manage_token"]
    assert (await admin.post(f"/api/v1/cameras/{cam}/approve", json={})).status_code == 200
    return str(cam), str(manage)


def footage_request(
    cam: str, *, incident_ref: str = "C-1", reason: str = "burglary next door", seconds: int = 1
) -> dict[str, Any]:
    """A footage request body for a window starting now (after the camera was registered)."""
    w0 = datetime.now(UTC).replace(microsecond=0)
    return {
        "camera_id": cam,
        "incident_ref": incident_ref,
        "window_start": w0.isoformat(),
        "window_end": (w0 + timedelta(seconds=seconds)).isoformat(),
        "reason": reason,
    }


async def delivered_clip(
    center: Running, admin: httpx.AsyncClient, cam: str, manage: str, req: dict[str, Any] | None = None
) -> tuple[str, bytes]:
    """A footage request of ``cam`` (``req``, or :func:`footage_request`'s) answered by its owner with a
    real clip: (the request's id, the clip)."""
    body = req if req is not None else footage_request(cam)
    fr = (await admin.post("/api/v1/footage-requests", json=body)).json()["id"]
    clip = mp4_clip()  # a real video: uploads are probed for a decodable frame
    r = await center.http.post(
        f"/api/v1/community/manage/{manage}/requests/{fr}/clip",
        content=clip,
        headers={"content-type": "video/mp4"},
    )
    assert r.status_code == 200, r.text
    return str(fr), clip


async def open_case_linking(admin: httpx.AsyncClient, fr: str) -> str:
    """An open case C-1 with footage request ``fr`` linked as evidence: the case's id."""
    case = (await admin.post("/api/v1/cases", json={"number": "C-1", "title": "Burglary"})).json()
    r = await admin.post(f"/api/v1/cases/{case['id']}/links", json={"ref_type": "footage", "ref_id": fr})
    assert r.status_code == 200, r.text
    return str(case["id"])


async def assert_case_close_purges(
    center: Running, admin: httpx.AsyncClient, case: str, cam: str, fr: str
) -> None:
    """The case closes: the next retention run deletes the kept clip and the withdrawn camera."""
    r = await admin.post(f"/api/v1/cases/{case}/close", json={"reason": "closed: suspect charged"})
    assert r.status_code == 200, r.text
    rep = await build_retention(center.center).run()
    assert rep.withdrawn_clips_deleted == 1
    assert (await admin.get(f"/api/v1/footage-requests/{fr}/clip")).status_code == 404
    assert await store_of(center).read(lambda s: s.get(CameraRow, UUID(cam))) is None
    assert await store_of(center).read(lambda s: s.get(FootageRequestRow, UUID(fr))) is None
    assert not list((center.settings.data_dir / "media" / "footage").rglob("*.mp4"))


async def city_camera(admin: httpx.AsyncClient) -> str:
    """A city camera on a synthetic 10 fps stream: its id."""
    r = await admin.post(
        "/api/v1/cameras",
        json={"kind": "city", "name": "c", "lat": 33.5, "lon": -86.8, "stream_url": "synthetic://c?fps=10"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def frames(it: AsyncIterator[bytes], n: int) -> None:
    """Read until ``n`` more frame boundaries arrived."""
    seen = 0
    while seen < n:
        seen += (await it.__anext__()).count(b"--rtccframe")


@asynccontextmanager
async def live_view(client: httpx.AsyncClient, cam: str, n: int = 2) -> AsyncIterator[AsyncIterator[bytes]]:
    """An open live view of ``cam`` that has shown ``n`` frames: its raw byte iterator (kept: a
    dropped iterator closes the response)."""
    async with client.stream("GET", f"/api/v1/cameras/{cam}/live.mjpeg") as r:
        assert r.status_code == 200
        it = r.aiter_raw()
        await frames(it, n)
        yield it


async def _until_end(it: AsyncIterator[bytes]) -> None:
    async for _ in it:
        pass


async def assert_view_ends(it: AsyncIterator[bytes], what: str) -> None:
    try:
        await asyncio.wait_for(_until_end(it), END_BOUND_S)
    except TimeoutError:
        raise AssertionError(f"the open live view kept streaming after {what}") from None


def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **camera: Any) -> Store:
    """A migrated SQLite database where the CLI finds it (``RTCC_DATA_DIR``), holding one active camera
    made on 2026-01-01 (``camera`` gives its other columns). The caller closes the store."""
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    store = Store(url)
    row = {
        "id": uuid4(),
        "bearing_deg": 0.0,
        "range_m": 80.0,
        "status": "active",
        "verify_attempts": 0,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        **camera,
    }
    store.run(lambda s: s.add(CameraRow(**row)))
    return store
