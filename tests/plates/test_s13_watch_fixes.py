"""The folder watcher survives bad files, waits for slow copies, backs off, and sends each picture once.

Each test here failed on the watcher before these fixes: a vanished file or a folder it cannot
write stopped it; a half-written copy ended in failed/; a down center was retried every file every
scan; a huge file was read whole; ``cp`` of the same bytes stored the reads again; a sidecar naming
its camera was refused.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.plates import register
from rtcc.plates.watch import CameraConfig, FolderWatcher, SidecarError, read_sidecar
from rtcc.roles import DeviceType
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, jpeg

CFG = CameraConfig(center="http://center.test", camera="lpr-w", key="k" * 20)


class Clock:
    """A clock the test moves by hand (no timed assertions)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Center:
    """A stand-in center answering each upload with ``status`` (or failing to connect)."""

    def __init__(self, status: int | None = 201) -> None:
        self.status = status
        self.requests = 0
        self.on_request: Any = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.on_request is not None:
            self.on_request()
        if self.status is None:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status in (200, 201):
            return httpx.Response(self.status, json={"reads": [{"plate": "ABC1234"}], "duplicate": False})
        return httpx.Response(self.status, json={"error": {"code": "x", "message": f"answer {self.status}"}})


def _watcher(folder: Path, center: Center, **kw: Any) -> tuple[FolderWatcher, list[tuple[str, str, str]]]:
    lines: list[tuple[str, str, str]] = []
    client = httpx.Client(transport=httpx.MockTransport(center))
    kw.setdefault("settle_s", 0.0)
    w = FolderWatcher(folder, CFG, client, lambda *line: lines.append(line), **kw)
    return w, lines


def _old(path: Path, minutes: float = 3) -> None:
    """Give a file a modification time in the past (a finished copy)."""
    t = (datetime.now(UTC) - timedelta(minutes=minutes)).timestamp()
    os.utime(path, (t, t))


def _image(folder: Path, name: str) -> Path:
    p = folder / name
    p.write_bytes(jpeg(car_with_plate("ABC1234", size=(320, 240))) + name.encode())
    _old(p)
    return p


# --- finding 1: one bad file does not stop the watcher ----------------------------------------


def test_a_file_gone_before_its_upload_is_skipped(tmp_path: Path) -> None:
    center = Center()
    w, lines = _watcher(tmp_path, center)
    gone = _image(tmp_path, "gone.jpg")
    gone.unlink()
    assert w.handle(gone) == "skipped"  # before: FileNotFoundError out of the watcher
    assert center.requests == 0 and lines[-1][1] == "skipped"


def test_an_unreadable_file_is_retried_then_failed_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    center, clock = Center(), Clock()
    w, lines = _watcher(tmp_path, center, clock=clock, read_attempts=3)
    locked = _image(tmp_path, "locked.jpg")
    _image(tmp_path, "good.jpg")
    real_open = Path.open

    def guarded(self: Path, *a: Any, **k: Any) -> Any:
        if self.name == "locked.jpg":  # as root a chmod 600 does not lock: the same error, made here
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", guarded)
    w.scan()
    w.scan()  # before: PermissionError out of the watcher, good.jpg never sent
    assert (tmp_path / "done" / "good.jpg").is_file() and locked.is_file()
    for _ in range(6):  # tried again after a growing pause, then filed with its reason
        clock.t += 100
        w.scan()
        w.scan()
    assert not locked.exists()
    reason = (tmp_path / "failed" / "locked.jpg.reason.txt").read_text()
    assert "Permission denied" in reason and "tried 3 times" in reason
    assert [x[1] for x in lines if x[0] == "locked.jpg"] == ["retry", "failed"]  # said once each


def test_a_sent_file_that_cannot_be_moved_is_not_sent_again(tmp_path: Path) -> None:
    center = Center()
    warnings: list[str] = []
    w, lines = _watcher(tmp_path, center, warn=warnings.append)
    (tmp_path / "done").write_text("a file where done/ should be: moving there fails")
    img = _image(tmp_path, "car.jpg")
    for _ in range(5):
        w.scan()  # before: FileExistsError out of the watcher (exit 2, "cannot read <folder>")
    assert center.requests == 1 and img.is_file()
    assert len(warnings) == 1 and "not sent again" in warnings[0]
    assert [x[1] for x in lines] == ["done"]
    assert w.run(once=True, poll_s=0.01)["retry"] == 0  # --once ends: nothing left to send


# --- finding 2: a slow copy is not cut short --------------------------------------------------


def test_a_fresh_file_waits_for_the_settle_time(tmp_path: Path) -> None:
    center, clock = Center(), Clock()
    w, _ = _watcher(tmp_path, center, clock=clock, settle_s=2.0)
    (tmp_path / "slow.jpg").write_bytes(b"\xff\xd8 half of a copy")  # modified just now
    w.scan()
    w.scan()  # same size twice: before, sent here
    assert center.requests == 0
    clock.t += 2.5  # unchanged for the settle time (by the watcher's clock)
    w.scan()
    assert center.requests == 1


def test_a_refused_image_that_changed_while_sent_is_tried_again(tmp_path: Path) -> None:
    center = Center(422)
    w, lines = _watcher(tmp_path, center)
    img = _image(tmp_path, "slow.jpg")
    center.on_request = lambda: (img.open("ab").write(b"the rest of the copy"), _old(img, 1))
    w.scan()
    w.scan()
    assert img.is_file() and not (tmp_path / "failed").exists()  # before: moved to failed/
    assert lines[-1][1] == "retry" and "changed while it was sent" in lines[-1][2]
    center.on_request, center.status = None, 201
    w.scan()
    w.scan()
    assert (tmp_path / "done" / "slow.jpg").is_file()


# --- finding 3: a down center is said once and retried with a pause ----------------------------


def test_a_down_center_is_said_once_and_backed_off(tmp_path: Path) -> None:
    center, clock = Center(None), Clock()
    said: list[tuple[bool, str]] = []
    w, lines = _watcher(tmp_path, center, clock=clock, on_center=lambda up, why: said.append((up, why)))
    for i in range(5):
        _image(tmp_path, f"car-{i}.jpg")
    w.scan()
    for _ in range(10):
        w.scan()  # before: 5 requests and 5 "retry" lines per scan
    assert center.requests == 1 and len(lines) == 1 and lines[0][1] == "retry"
    assert [up for up, _ in said] == [False]
    clock.t += 1.5
    w.scan()
    w.scan()
    assert center.requests == 2 and len(lines) == 1  # tried again after the pause, not said again
    center.status = 201
    clock.t += 100
    w.scan()
    assert [up for up, _ in said] == [False, True]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [f"car-{i}.jpg" for i in range(5)]


# --- finding 4: a file over the upload limit is not read -------------------------------------


def test_a_file_over_the_limit_is_failed_without_being_sent(tmp_path: Path) -> None:
    center = Center()
    w, _ = _watcher(tmp_path, center, max_bytes=1000)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * 5000)
    _old(big)
    w.scan()
    w.scan()
    assert center.requests == 0
    assert "over the upload limit of 1000" in (tmp_path / "failed" / "big.jpg.reason.txt").read_text()


def test_the_cli_takes_max_bytes(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * 5000)
    _old(big)
    args = ["plates", "watch", str(tmp_path), "--camera", "lpr-w", "--center", "http://127.0.0.1:9"]
    result = CliRunner().invoke(
        app, [*args, "--key", "k" * 20, "--once", "--poll", "0.05", "--max-bytes", "2000"]
    )
    assert result.exit_code == 0, result.stderr  # before: no such option (exit 2)
    assert json.loads(result.stdout.splitlines()[0])["outcome"] == "failed"
    assert (tmp_path / "failed" / "big.jpg").is_file()


# --- finding 5: the same bytes dropped again are one picture ----------------------------------


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_same_image_copied_again_is_stored_once(center: Running, tmp_path: Path) -> None:
    from rtcc.plates.reads import search_reads

    key = await center.center.provision_device("lpr-w", DeviceType.plate_camera, "folder cam", 41.88, -87.63)
    data = jpeg(cv2.resize(car_with_plate("7KDR582"), (640, 360), interpolation=cv2.INTER_AREA))
    cfg = CameraConfig(center=center.url, camera="lpr-w", key=key)
    lines: list[tuple[str, str, str]] = []
    with httpx.Client(timeout=60) as client:
        w = FolderWatcher(tmp_path, cfg, client, lambda *line: lines.append(line), settle_s=0.0)
        for name, minutes in (("a.jpg", 3), ("b.jpg", 1)):  # cp gives the copy a new time
            (tmp_path / name).write_bytes(data)
            _old(tmp_path / name, minutes)
            totals = await asyncio.to_thread(w.run, poll_s=0.05, once=True)
            assert totals == {"done": 1, "failed": 0, "retry": 0}, lines
    assert [json.loads(x[2]) for x in lines] == [["7KDR582"], ["7KDR582"]]
    store = center.center.store
    assert store is not None
    rows = await store.read(lambda s: search_reads(s, plate="7KDR582", mode="exact", limit=5))
    assert len(rows) == 1  # before: two reads of the one picture


# --- finding 6: a sidecar may name its own camera ---------------------------------------------


def test_a_sidecar_may_name_its_own_camera_not_another(tmp_path: Path) -> None:
    side = tmp_path / "car.json"
    side.write_text(json.dumps({"camera": "lpr-w", "lat": 41.9, "lon": -87.7}))
    assert read_sidecar(side, "lpr-w")[1]["lat"] == "41.9"  # before: "unknown key(s) camera"
    side.write_text(json.dumps({"camera": "car-7"}))
    with pytest.raises(SidecarError, match="--camera"):
        read_sidecar(side, "lpr-w")
