"""Audit findings on cameras: malformed stream URLs, expired registrations, the per-IP quota,
blank or unknown input, visibility in time, unit-location reads, the demo's notifications,
the CLI, and a withdrawal that must keep a clip linked to an open case."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from rtcc.cameras.processor import build as build_cameras
from rtcc.cameras.sources import BadStreamUrl, open_source, redact
from rtcc.cli.main import app
from rtcc.oversight.retention import build as build_retention
from rtcc.roles import Role
from rtcc.store.tables_cameras import CameraRow
from tests.cameras.helpers import (
    EMAIL,
    LOG,
    REG,
    assert_case_close_purges,
    cli_store,
    delivered_clip,
    footage_request,
    open_case_linking,
    register_verified_active,
    registration,
    signed_in,
    store_of,
)
from tests.conftest import StartCenter

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) >= {"code", "message", "details"}
    return err


# --- 1. malformed stream URLs --------------------------------------------------------------


def test_open_source_and_redact_raise_no_value_error() -> None:
    for url in ("http://[::1", "rtsp://[bad", "synthetic://x?fps=abc", "rtsp://cam:99999/x"):
        with pytest.raises(BadStreamUrl):
            open_source(url, timeout_s=1.0)
    assert redact("rtsp://user:secret@[bad") == "rtsp://***@[bad"
    assert redact("http://[::1") == "http://[::1"


@EMBEDDED
async def test_malformed_stream_url_refused_and_a_stored_one_breaks_nothing(
    start_center: StartCenter,
) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        city = {"kind": "city", "name": "cam", "lat": 33.52, "lon": -86.81}
        for url in ("http://[::1", "synthetic://x?fps=abc", "rtsp://cam:99999/x"):
            err = _error(await admin.post("/api/v1/cameras", json={**city, "stream_url": url}), 422)
            assert err["code"] == "validation_failed" and "stream_url" in err["message"]
        err = _error(
            await center.http.post(REG, json=registration(level="integrated", stream_url="rtsp://[bad")), 422
        )
        assert "stream_url" in err["message"] and "malformed" in err["message"]
        good = (
            await admin.post("/api/v1/cameras", json={**city, "stream_url": "synthetic://ok?fps=5"})
        ).json()
        err = _error(
            await admin.patch(f"/api/v1/cameras/{good['id']}", json={"stream_url": "http://[::1"}), 422
        )
        assert "stream_url" in err["message"]

        # a row stored before URLs were checked
        bad_id = uuid4()
        await store_of(center).write(
            lambda s: s.add(
                CameraRow(
                    id=bad_id, kind="city", name="old", lat=33.52, lon=-86.81, bearing_deg=0.0, fov_deg=90.0,
                    range_m=30.0, level="integrated", status="active", stream_url="http://[::1",
                    verify_attempts=0,
                )
            )
        )  # fmt: skip
        err = _error(await admin.get(f"/api/v1/cameras/{bad_id}/snapshot.jpg"), 502)
        assert err["code"] == "bad_stream_url"
        _error(await admin.get(f"/api/v1/cameras/{bad_id}/live.mjpeg"), 502)
        # the health round still updates every camera: the bad one offline, the good one online
        events = await build_cameras(center.center).probe_all()
        assert {(str(e.camera_id), e.status) for e in events} == {
            (str(bad_id), "offline"),
            (good["id"], "online"),
        }
        assert (await admin.get(f"/api/v1/cameras/{good['id']}")).json()["online"] is True


# --- 2. expired registrations ----------------------------------------------------------------


@EMBEDDED
async def test_expired_registrations_do_not_lock_out_and_are_purged(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras={**LOG, "register_per_contact": 2})
    store = store_of(center)
    async with signed_in(center) as admin:
        ids = []
        for _ in range(2):
            r = await center.http.post(REG, json=registration())
            assert r.status_code == 201, r.text
            ids.append(UUID(r.json()["registration_id"]))
        assert (await center.http.post(REG, json=registration())).status_code == 429
        # both expire unverified
        past = datetime.now(UTC) - timedelta(minutes=1)

        def expire(s: Any) -> None:
            for i in ids:
                s.get(CameraRow, i).verify_expires_at = past

        await store.write(expire)
        stats = (await admin.get("/api/v1/cameras/stats")).json()
        assert stats["cameras"]["pending"] == 0
        # the retention run deletes them (and says how many in its audit entry)
        rep = await build_retention(center.center).run()
        assert rep.camera_registrations_expired == 2

        def left(s: Any) -> int:
            return int(s.scalar(select(func.count()).select_from(CameraRow).where(CameraRow.id.in_(ids))))

        assert await store.read(left) == 0
        audit = (await admin.get("/api/v1/audit", params={"action": "retention_purge"})).json()["items"]
        assert audit[0]["details"]["camera_registrations_expired"] == 2

        # registering again works; the resident's own expired ones go at once too
        r = await center.http.post(REG, json=registration())
        assert r.status_code == 201
        first = UUID(r.json()["registration_id"])
        await store.write(lambda s: setattr(s.get(CameraRow, first), "verify_expires_at", past))
        r = await center.http.post(REG, json=registration())
        assert r.status_code == 201
        assert await store.read(lambda s: s.get(CameraRow, first)) is None


# --- 3. refused registrations do not use the per-IP quota ---------------------------------


@EMBEDDED
async def test_refused_registrations_do_not_use_the_ip_quota(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",),
        cameras={**LOG, "register_per_ip_per_hour": 2, "service_area": (33.4, -86.9, 33.6, -86.7)},
    )
    for _ in range(10):
        err = _error(await center.http.post(REG, json=registration(lat=40.7, lon=-74.0)), 422)
        assert "service area" in err["message"]
    assert (await center.http.post(REG, json=registration(email="a@example.org"))).status_code == 201
    assert (await center.http.post(REG, json=registration(email="b@example.org"))).status_code == 201
    err = _error(await center.http.post(REG, json=registration(email="c@example.org")), 429)
    assert err["details"]["reason"] == "per_ip"


# --- 4. blank names, unknown devices ---------------------------------------------------------


@EMBEDDED
async def test_blank_names_and_unknown_device_refused(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        for field in ("name", "owner_name"):
            err = _error(await center.http.post(REG, json=registration(**{field: "   "})), 422)
            assert field in err["message"] and "blank" in err["message"]
        city = {"kind": "city", "name": "  ", "lat": 33.52, "lon": -86.81}
        err = _error(await admin.post("/api/v1/cameras", json=city), 422)
        assert "name" in err["message"]
        car = {"kind": "in_car", "name": "car", "device_id": "no-such-device"}
        err = _error(await admin.post("/api/v1/cameras", json=car), 422)
        assert "no-such-device" in err["message"] and err["details"]["field"] == "device_id"
        # names are stored without surrounding spaces
        r = await center.http.post(REG, json=registration(name="  Porch  "))
        assert r.status_code == 201
        cam = (await admin.get(f"/api/v1/cameras/{r.json()['registration_id']}")).json()
        assert cam["name"] == "Porch"  # (the verification mail quotes no name: see test_s13)


# --- 5. visibility and footage requests in time ------------------------------------------------


@EMBEDDED
async def test_cameras_are_visible_only_when_they_existed(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        body = {"kind": "city", "name": "new", "lat": 33.52, "lon": -86.81, "fov_deg": 360.0}
        cam = (await admin.post("/api/v1/cameras", json=body)).json()["id"]
        point = {"lat": 33.52005, "lon": -86.81}
        r = await admin.get("/api/v1/cameras/visible", params={**point, "at": "2020-01-01T00:00:00Z"})
        assert r.json()["items"] == []
        r = await admin.get("/api/v1/cameras/visible", params=point)
        assert [i["camera_id"] for i in r.json()["items"]] == [cam]

        reg, _ = await register_verified_active(center, admin, EMAIL)
        req = {
            "camera_id": reg,
            "incident_ref": "case-1",
            "window_start": "2020-01-01T00:00:00Z",
            "window_end": "2020-01-01T00:05:00Z",
            "reason": "before the camera was registered",
        }
        err = _error(await admin.post("/api/v1/footage-requests", json=req), 422)
        assert "registered" in err["message"] and err["details"]["field"] == "window_end"


# --- 6. in-car camera positions are unit locations --------------------------------------------


@EMBEDDED
async def test_in_car_positions_are_audited(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:
        r = await admin.post(
            "/api/v1/devices", json={"id": "bc-7", "type": "bodycam", "lat": 33.52, "lon": -86.81}
        )
        assert r.status_code == 201, r.text
        car = {"kind": "in_car", "name": "car 7", "device_id": "bc-7", "level": "registered"}
        assert (await admin.post("/api/v1/cameras", json=car)).status_code == 201
        items = (await officer.get("/api/v1/cameras")).json()["items"]
        assert items[0]["lat"] == pytest.approx(33.52)
        audit = (await admin.get("/api/v1/audit", params={"action": "read_unit_locations"})).json()["items"]
        assert [(a["actor"], a["details"]["count"]) for a in audit] == [("officer1", 1)]


# --- 7. the demo shows residents' notifications -------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    logger = logging.getLogger("rtcc.cameras.notify")
    level = logger.level
    yield
    logger.setLevel(level)


def test_demo_logging_shows_notifications(restore_logging: None) -> None:
    from rtcc.cli.main import _demo_logging

    _demo_logging("INFO")
    assert logging.getLogger("rtcc.cameras.notify").isEnabledFor(logging.INFO)
    assert not logging.getLogger("rtcc.cameras.live").isEnabledFor(logging.INFO)


# --- 8. CLI ---------------------------------------------------------------------------------


def test_cli_bad_url_negative_longitude_unknown_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = {"kind": "city", "name": "Main", "lat": 33.515, "lon": -86.805, "fov_deg": 360.0}
    cli_store(tmp_path, monkeypatch, **camera, level="registered").close()
    runner = CliRunner()
    r = runner.invoke(app, ["cameras", "probe", "http://[::1"])
    assert r.exit_code == 2 and "malformed" in r.output and r.exception is not None
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["cameras", "visible", "33.5152", "-86.805"])
    assert r.exit_code == 0 and "Main" in r.output, r.output
    r = runner.invoke(app, ["cameras", "visible", "--", "33.5152", "-86.805"])  # the old form still works
    assert r.exit_code == 0 and "Main" in r.output
    r = runner.invoke(app, ["cameras", "list", "--status", "bogus"])
    assert r.exit_code == 2 and "unknown status" in r.output
    r = runner.invoke(app, ["cameras", "list", "--status", "active"])
    assert r.exit_code == 0 and "Main" in r.output


# --- 9. withdrawal keeps a clip that is evidence of an open case ------------------------------


@EMBEDDED
async def test_withdrawal_keeps_clip_linked_to_open_case_until_it_closes(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    anon = center.http
    async with signed_in(center) as admin:
        cam, manage = await register_verified_active(center, admin, EMAIL)
        req = footage_request(cam)
        fr, clip = await delivered_clip(center, admin, cam, manage, req)
        case = await open_case_linking(admin, fr)

        r = await anon.delete(f"/api/v1/community/manage/{manage}")
        assert r.status_code == 200
        out = r.json()
        assert out["clips_kept"] == 1 and out["clips_deleted"] == 0 and "evidence" in out["message"]
        # the clip stays readable for the case; the camera and its owner are out of reach
        r = await admin.get(f"/api/v1/footage-requests/{fr}/clip")
        assert r.status_code == 200 and r.content == clip
        assert (await anon.get(f"/api/v1/community/manage/{manage}")).status_code == 404
        assert cam not in [c["id"] for c in (await admin.get("/api/v1/cameras")).json()["items"]]
        assert (await admin.post("/api/v1/footage-requests", json=req)).status_code == 409
        row = await store_of(center).read(lambda s: s.get(CameraRow, UUID(cam)))
        assert row.status == "withdrawn" and row.contact_email is None and row.owner_name is None

        # the case closes: the next retention run deletes the clip and the camera
        await assert_case_close_purges(center, admin, case, cam, fr)
