"""Audit s14 findings on cameras: open live views that outlived the camera's consent or the viewer's
session, an admin's delete that destroyed evidence of an open case, two uploads of one request at
once, non-video uploads, extreme visibility times, and the test stream's bad sizes and requests."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import cv2
import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from rtcc.cameras import footage
from rtcc.cameras.live import LiveManager
from rtcc.cameras.rtsp_relay import RtspTestStream
from rtcc.cameras.service import service_of
from rtcc.cli.main import app
from rtcc.errors import Conflict
from rtcc.roles import Role
from rtcc.store.tables import User
from rtcc.store.tables_cameras import CameraRow, FootageRequestRow
from tests.cameras.conftest import mp4_clip
from tests.cameras.helpers import (
    EMAIL,
    END_BOUND_S,
    LIVE,
    LOG,
    assert_case_close_purges,
    assert_view_ends,
    city_camera,
    cli_store,
    delivered_clip,
    footage_request,
    live_view,
    open_case_linking,
    register_verified_active,
    sent,
    signed_in,
    store_of,
)
from tests.conftest import StartCenter
from tests.helpers import eventually

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])
runner = CliRunner()
INTEGRATED = {"level": "integrated", "stream_url": "synthetic://porch?fps=10"}
"""A community camera that can be watched live."""


# --- 1. a live view ends when the camera may no longer be viewed ------------------------------


@EMBEDDED
@pytest.mark.parametrize("action", ["withdraw", "downgrade", "delete", "new_source"])
async def test_open_live_view_ends_when_the_camera_stops_being_live(
    start_center: StartCenter, action: str
) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin:
        cam, manage = await register_verified_active(center, admin, f"{action}@example.org", **INTEGRATED)
        async with live_view(admin, cam) as it:
            if action == "withdraw":
                x = await center.http.delete(f"/api/v1/community/manage/{manage}")
            elif action == "downgrade":
                x = await admin.patch(f"/api/v1/cameras/{cam}", json={"level": "registered"})
            elif action == "delete":
                x = await admin.delete(f"/api/v1/cameras/{cam}")
            else:
                x = await admin.patch(
                    f"/api/v1/cameras/{cam}", json={"stream_url": "synthetic://other?fps=10"}
                )
            assert x.status_code == 200, x.text
            await assert_view_ends(it, action)
        live = service_of(center.center.services, center.settings.cameras).live
        if action != "new_source":
            assert (await admin.get(f"/api/v1/cameras/{cam}/snapshot.jpg")).status_code == 404
            assert UUID(cam) not in live.streams
        else:  # a new viewer watches the new source
            async with live_view(admin, cam, 1):
                pass
            assert live.streams.get(UUID(cam)) is None or live.streams[UUID(cam)].url.startswith(
                "synthetic://other"
            )


@EMBEDDED
async def test_open_live_view_ends_when_another_process_downgrades_the_camera(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop: a change this process did not make (no drop) is seen at the next check."""
    monkeypatch.setattr("rtcc.api.routes.cameras.LIVE_CHECK_S", 0.2, raising=False)
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin:
        cam, _ = await register_verified_active(center, admin, EMAIL, **INTEGRATED)
        async with live_view(admin, cam) as it:
            await store_of(center).write(
                lambda s: s.execute(
                    update(CameraRow).where(CameraRow.id == UUID(cam)).values(level="registered")
                )
            )
            await assert_view_ends(it, "another process downgraded the camera")


async def test_drop_ends_every_viewer_and_a_new_viewer_starts_afresh() -> None:
    live = LiveManager(fps=10, timeout_s=2.0, retries=0)
    cam = uuid4()
    try:
        a = await live.acquire(cam, "synthetic://x?fps=10")
        b = await live.acquire(cam, "synthetic://x?fps=10")
        assert a is b and a.viewers == 2

        async def watch() -> int:
            n = 0
            try:
                async for _ in live.frames(a):
                    n += 1
            except Exception as exc:
                assert getattr(exc, "code", None) == "live_ended", exc
            return n

        watchers = [asyncio.ensure_future(watch()) for _ in range(2)]
        await asyncio.sleep(0)
        assert await live.drop(cam) == 2
        await asyncio.wait_for(asyncio.gather(*watchers), END_BOUND_S)
        assert cam not in live.streams
        # the viewers leave; a new one gets a fresh stream, not the dropped one
        await live.release(a)
        await live.release(b)
        c = await live.acquire(cam, "synthetic://x?fps=10")
        assert c is not a and c.viewers == 1
        await live.release(c)
        assert await live.drop(uuid4()) == 0  # nobody watching: nothing to do
    finally:
        await live.close()


# --- 2. a live view ends with its viewer's session --------------------------------------------


@EMBEDDED
@pytest.mark.parametrize("how", ["logout", "disable", "role", "password"])
async def test_open_live_view_ends_with_the_viewers_session(start_center: StartCenter, how: str) -> None:
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:
        cam = await city_camera(admin)
        async with live_view(officer, cam) as it:
            if how == "logout":
                x = await officer.post("/api/v1/auth/logout")
            elif how == "disable":
                x = await admin.patch("/api/v1/users/officer1", json={"disabled": True})
            elif how == "role":
                x = await admin.patch("/api/v1/users/officer1", json={"role": "auditor"})
            else:
                x = await admin.post(
                    "/api/v1/users/officer1/password", json={"password": "An0ther-long-passphrase-here"}
                )
            assert x.status_code in (200, 204), x.text
            await assert_view_ends(it, how)
        ctx = center.center.ctx
        assert ctx is not None
        await eventually(
            lambda: _none_left(ctx.hub.views, "officer1"), what="the viewer to leave the live hub"
        )


@EMBEDDED
@pytest.mark.parametrize("change", ["disabled", "role"])
async def test_open_live_view_ends_when_another_process_ends_the_session(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The backstop: a session ended (or a role lost) without this process's hub is seen at the next
    check."""
    monkeypatch.setattr("rtcc.api.routes.cameras.LIVE_CHECK_S", 0.2, raising=False)
    center = await start_center(processors=("recorder",), cameras=LIVE)
    async with signed_in(center) as admin, signed_in(center, "officer1", Role.officer) as officer:
        cam = await city_camera(admin)
        async with live_view(officer, cam) as it:
            values: dict[str, Any] = {"disabled": True} if change == "disabled" else {"role": "auditor"}
            await store_of(center).write(
                lambda s: s.execute(update(User).where(User.username == "officer1").values(**values))
            )
            await assert_view_ends(it, f"the viewer's account changed ({change}) elsewhere")


# --- 3. an admin's delete keeps a clip that is evidence of an open case -----------------------


@EMBEDDED
async def test_admin_delete_keeps_clip_linked_to_open_case_until_it_closes(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        cam, manage = await register_verified_active(center, admin, EMAIL)
        fr, clip = await delivered_clip(center, admin, cam, manage)
        case = await open_case_linking(admin, fr)

        r = await admin.delete(f"/api/v1/cameras/{cam}")
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["deleted"] is True and out["clips_kept"] == 1 and out["clips_deleted"] == 0
        assert "evidence" in out["message"]
        # the clip stays readable for the case; the camera and its owner are out of reach
        r = await admin.get(f"/api/v1/footage-requests/{fr}/clip")
        assert r.status_code == 200 and r.content == clip
        assert (await center.http.get(f"/api/v1/community/manage/{manage}")).status_code == 404
        assert cam not in [c["id"] for c in (await admin.get("/api/v1/cameras")).json()["items"]]
        row = await store_of(center).read(lambda s: s.get(CameraRow, UUID(cam)))
        assert row.status == "withdrawn" and row.contact_email is None and row.owner_name is None
        audit = (await admin.get("/api/v1/audit", params={"action": "delete_camera"})).json()["items"]
        assert audit[0]["details"] == {"clips_deleted": 0, "clips_kept": 1}

        # the case closes: the next retention run deletes the clip and the camera
        await assert_case_close_purges(center, admin, case, cam, fr)


@EMBEDDED
async def test_admin_delete_without_open_case_deletes_everything(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        cam, manage = await register_verified_active(center, admin, EMAIL)
        fr, _ = await delivered_clip(center, admin, cam, manage)
        r = await admin.delete(f"/api/v1/cameras/{cam}")
        assert r.status_code == 200, r.text
        assert r.json()["clips_deleted"] == 1 and r.json()["clips_kept"] == 0
        assert await store_of(center).read(lambda s: s.get(CameraRow, UUID(cam))) is None
        assert (await admin.get(f"/api/v1/footage-requests/{fr}/clip")).status_code == 404
        assert not list((center.settings.data_dir / "media" / "footage").rglob("*"))


# --- 4. two uploads of the same request at once ------------------------------------------------


@EMBEDDED
async def test_two_uploads_at_once_one_wins_and_the_file_matches(
    start_center: StartCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    async with signed_in(center) as admin:
        cam, _ = await register_verified_active(center, admin, EMAIL)
        r = await admin.post("/api/v1/footage-requests", json=footage_request(cam, reason="burglary"))
        fr = r.json()["id"]
    store = store_of(center)
    media = footage.media_dir(center.settings.data_dir)
    # both uploads see the request open before either decides (as on PostgreSQL's writer pool);
    # expire_due's UPDATE would serialize them on SQLite, and matches no row here: left out
    barrier = threading.Barrier(2)
    orig = footage._open_request

    def gated(s: Any, c: UUID, r: UUID, now: datetime) -> Any:
        row = orig(s, c, r, now)
        barrier.wait(30)
        return row

    monkeypatch.setattr(footage, "_open_request", gated)
    monkeypatch.setattr(footage, "expire_due", lambda s, now: 0)
    clips = {"A": mp4_clip(shade=0), "B": mp4_clip(frames=12, shade=100)}
    assert clips["A"] != clips["B"]
    results: dict[str, str] = {}

    def upload(tag: str) -> None:
        try:
            store.run(
                lambda s: footage.store_clip(
                    s, UUID(cam), UUID(fr), clips[tag], "video/mp4", media, now=datetime.now(UTC)
                )
            )
            results[tag] = "ok"
        except Conflict:
            results[tag] = "conflict"
        except Exception as exc:  # reported by the assertion below
            results[tag] = repr(exc)

    threads = [threading.Thread(target=upload, args=(t,), name=t) for t in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        await asyncio.to_thread(t.join)
    assert sorted(results.values()) == ["conflict", "ok"], results
    winner = next(t for t, v in results.items() if v == "ok")
    row = store.run(lambda s: s.get(FootageRequestRow, UUID(fr)))
    assert row.status == "uploaded"
    data = (media / row.clip_path).read_bytes()
    assert data == clips[winner]
    assert hashlib.sha256(data).hexdigest() == row.clip_sha256 and row.clip_bytes == len(data)
    assert [p.name for p in media.rglob("*") if p.is_file()] == [Path(row.clip_path).name]  # no .part left


# --- 5. a non-video upload is refused and the request stays open ------------------------------


@EMBEDDED
async def test_upload_that_is_not_a_video_is_refused(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    anon = center.http
    async with signed_in(center) as admin:
        cam, _ = await register_verified_active(center, admin, EMAIL)

        async def new_request() -> tuple[str, str]:
            body = footage_request(cam, incident_ref="inc-1", reason="shots fired", seconds=5)
            r = await admin.post("/api/v1/footage-requests", json=body)
            assert r.status_code == 201, r.text
            link = re.search(r"footage=([A-Za-z0-9_\-]+)", sent(center).sent[-1].body)
            assert link is not None
            return r.json()["id"], link.group(1)

        rid, up = await new_request()
        ok_png, png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
        ok_jpg, jpg = cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))
        assert ok_png and ok_jpg
        for body, ctype in (
            (b"hello", "video/mp4"),
            (b"<html><script>alert(1)</script></html>", "video/webm"),
            (b"\x00\x00\x00\x18ftypmp42" + bytes(200), "video/mp4"),
            (mp4_clip()[:200], "video/mp4"),
            (png.tobytes(), "image/jpeg"),
            (b"\xff\xd8\xff" + bytes(100), "image/jpeg"),
        ):
            r = await anon.post(
                f"/api/v1/community/footage/{up}/clip", content=body, headers={"content-type": ctype}
            )
            assert r.status_code == 422, (ctype, body[:20], r.text)
            err = r.json()["error"]
            assert err["code"] == "validation_failed" and ctype in err["message"]
        # the request is still open: the owner can send the real clip
        assert (await anon.get(f"/api/v1/community/footage/{up}")).json()["status"] == "notified"
        assert (await admin.get(f"/api/v1/footage-requests/{rid}/clip")).status_code == 404
        assert not [p for p in (center.settings.data_dir / "media" / "footage").rglob("*") if p.is_file()]
        clip = mp4_clip()
        r = await anon.post(
            f"/api/v1/community/footage/{up}/clip", content=clip, headers={"content-type": "video/mp4"}
        )
        assert r.status_code == 200 and r.json()["status"] == "uploaded", r.text
        # a JPEG still is accepted as image/jpeg
        _, up2 = await new_request()
        r = await anon.post(
            f"/api/v1/community/footage/{up2}/clip",
            content=jpg.tobytes(),
            headers={"content-type": "image/jpeg"},
        )
        assert r.status_code == 200, r.text


# --- 6. extreme visibility times -----------------------------------------------------------------

EXTREMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-10:00",
]


@EMBEDDED
async def test_visible_refuses_extreme_times(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",))
    async with signed_in(center) as admin:
        r = await admin.post(
            "/api/v1/devices",
            json={"id": "car-7", "type": "bodycam", "name": "car 7", "lat": 33.52, "lon": -86.81},
        )
        assert r.status_code in (200, 201), r.text
        r = await admin.post(
            "/api/v1/cameras",
            json={"kind": "in_car", "name": "car cam", "device_id": "car-7", "level": "registered"},
        )
        assert r.status_code == 201, r.text
        for at in EXTREMES:
            r = await admin.get("/api/v1/cameras/visible", params={"lat": 33.52, "lon": -86.81, "at": at})
            assert r.status_code == 422, (at, r.text)
            assert r.json()["error"]["code"] == "validation_failed" and "1970" in r.json()["error"]["message"]
        r = await admin.get(
            "/api/v1/cameras/visible", params={"lat": 33.52, "lon": -86.81, "at": "2026-01-01T00:00:00Z"}
        )
        assert r.status_code == 200


@pytest.mark.parametrize("at", EXTREMES)
def test_cli_visible_refuses_extreme_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    camera = {"kind": "in_car", "name": "car cam", "device_id": "car-7", "fov_deg": 360.0}
    cli_store(tmp_path, monkeypatch, **camera, level="registered").close()
    r = runner.invoke(app, ["cameras", "visible", "--at", at, "--", "33.52", "-86.81"])
    assert r.exit_code == 2, r.output
    assert "out of range" in r.output and "Traceback" not in r.output


# --- 7. the test stream: bad sizes, failed starts, bad requests ----------------------------------


@pytest.mark.parametrize("size", ["15x15", "0x0", "99999x99999", "641x360"])
def test_test_stream_refuses_bad_sizes(size: str) -> None:
    r = runner.invoke(app, ["cameras", "test-stream", "--size", size])
    assert r.exit_code == 2, r.output
    assert "even numbers from 16 to 4096" in r.output and "Traceback" not in r.output


async def test_test_stream_that_fails_to_start_cleans_up() -> None:
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    stream = RtspTestStream(size=(15, 15), fps=10)  # libx264 refuses odd sides: FFmpeg exits
    with pytest.raises(RuntimeError):
        await stream.start()
    assert not stream._tmp.exists()
    assert stream._proc is None and stream._udp is None and stream._server is None


async def test_relay_answers_400_to_a_bad_content_length() -> None:
    if not RtspTestStream.available():
        pytest.skip("ffmpeg is not installed (CI installs it)")
    loop = asyncio.get_running_loop()
    errors: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    stream = RtspTestStream(size=(160, 120), fps=10)
    await stream.start()
    try:
        for length, status in (("abc", b"400"), ("-5", b"400"), ("99999999999", b"413")):
            reader, writer = await asyncio.open_connection("127.0.0.1", stream.port)
            writer.write(
                f"DESCRIBE {stream.url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: {length}\r\n\r\n".encode()
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(200), 30)
            assert answer.split(b"\r\n")[0] == b"RTSP/1.0 " + status + (
                b" Bad Request" if status == b"400" else b" Request Entity Too Large"
            ), answer
            assert await asyncio.wait_for(reader.read(), 30) == b""  # and hangs up
            writer.close()
        # a good request still works
        reader, writer = await asyncio.open_connection("127.0.0.1", stream.port)
        writer.write(f"OPTIONS {stream.url} RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode())
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(200), 30)).startswith(b"RTSP/1.0 200 OK")
        writer.close()
        await asyncio.sleep(0.2)  # the server's handlers finish (an exception would be reported)
    finally:
        await stream.stop()
        loop.set_exception_handler(None)
    assert errors == []


async def _none_left(clients: Any, username: str) -> bool:
    return not [c for c in clients if c.username == username]
