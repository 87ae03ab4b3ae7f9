"""The folder watcher's memory of what it sent outlives a restart.

Before this, the SHA-256 of what was sent lived in the process only: after a restart of the watcher
(a reboot of the camera's computer, a service restart) the same picture copied in again got the
copy's new file time and was stored as a second read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from rtcc.plates.watch import SENT_FILE, CameraConfig, FolderWatcher
from rtcc.roles import DeviceType
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, jpeg
from tests.plates.test_s13_watch_fixes import _old

CFG = CameraConfig(center="http://center.test", camera="lpr-m", key="k" * 20)
DAY = 86400.0


class Center:
    """A stand-in center that takes every upload and notes the camera time each one told."""

    def __init__(self) -> None:
        self.times: list[datetime] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        told = re.search(rb'name="time"\r\n\r\n([^\r]*)\r\n', request.read())
        assert told is not None
        self.times.append(datetime.fromisoformat(told.group(1).decode()))
        return httpx.Response(201, json={"reads": [{"plate": "ABC1234"}], "duplicate": False})


def _watcher(folder: Path, center: Center, **kw: Any) -> tuple[FolderWatcher, list[str]]:
    """A new watcher on ``folder`` (a restart: nothing shared with any earlier one but the folder)."""
    warnings: list[str] = []
    client = httpx.Client(transport=httpx.MockTransport(center))
    w = FolderWatcher(folder, CFG, client, settle_s=0.0, warn=warnings.append, **kw)
    return w, warnings


DATA = jpeg(car_with_plate("ABC1234", size=(320, 240)))


def _drop(folder: Path, name: str, minutes: float, data: bytes = DATA) -> Path:
    """Copy ``data`` into the folder as ``name``, modified ``minutes`` ago (``cp`` sets a new time)."""
    p = folder / name
    p.write_bytes(data)
    _old(p, minutes)
    return p


def _mtime(p: Path) -> datetime:
    return datetime.fromtimestamp(p.stat().st_mtime, UTC)


def _entries(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / SENT_FILE).read_text().splitlines()]


def _entry(data: bytes, sent: float, at: datetime) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return json.dumps({"sha256": digest, "sent": sent, "at": at.isoformat()}) + "\n"


# --- a restart does not forget -------------------------------------------------------------------


def test_the_same_bytes_after_a_restart_keep_their_first_time(tmp_path: Path) -> None:
    center = Center()
    first, _ = _watcher(tmp_path, center)
    a = _drop(tmp_path, "a.jpg", 30)
    first_time = _mtime(a)
    assert first.run(once=True, poll_s=0.01)["done"] == 1

    again, warnings = _watcher(tmp_path, center)  # the service restarted
    _drop(tmp_path, "b.jpg", 1)
    assert again.run(once=True, poll_s=0.01)["done"] == 1
    assert center.times == [first_time, first_time]  # before: the copy's own (new) time
    assert warnings == []
    assert [e["sha256"] for e in _entries(tmp_path)] == [hashlib.sha256(DATA).hexdigest()]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_same_image_copied_in_after_a_restart_is_stored_once(
    center: Running, tmp_path: Path
) -> None:
    from rtcc.plates.reads import search_reads

    key = await center.center.provision_device("lpr-m", DeviceType.plate_camera, "folder cam", 41.88, -87.63)
    data = jpeg(cv2.resize(car_with_plate("7KDR582"), (640, 360), interpolation=cv2.INTER_AREA))
    cfg = CameraConfig(center=center.url, camera="lpr-m", key=key)
    for name, minutes in (("a.jpg", 3), ("b.jpg", 1)):
        lines: list[tuple[str, str, str]] = []
        with httpx.Client(timeout=60) as client:  # a new watcher each time: a restart between
            w = FolderWatcher(tmp_path, cfg, client, lambda *line, to=lines: to.append(line), settle_s=0.0)
            _drop(tmp_path, name, minutes, data)
            totals = await asyncio.to_thread(w.run, poll_s=0.05, once=True)
        assert totals == {"done": 1, "failed": 0, "retry": 0}, lines
        assert json.loads(lines[0][2]) == ["7KDR582"]
    store = center.center.store
    assert store is not None
    rows = await store.read(lambda s: search_reads(s, plate="7KDR582", mode="exact", limit=5))
    assert len(rows) == 1  # before: two reads of the one picture


# --- a damaged memory is not fatal -----------------------------------------------------------------


def test_a_last_line_without_its_end_is_used_and_the_next_entry_starts_a_new_line(tmp_path: Path) -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    (tmp_path / SENT_FILE).write_text(_entry(DATA, time.time() - 60, at).rstrip("\n"))  # cut at the end
    center = Center()
    w, warnings = _watcher(tmp_path, center)
    _drop(tmp_path, "a.jpg", 1)
    _drop(tmp_path, "b.jpg", 1, b"\xff\xd8 another picture")
    assert w.run(once=True, poll_s=0.01)["done"] == 2
    assert center.times[0] == at and warnings == []
    assert len(_entries(tmp_path)) == 2  # before: one line, never added to


def test_a_damaged_memory_file_is_skipped_line_by_line(tmp_path: Path) -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    other = b"\xff\xd8 another picture"
    (tmp_path / SENT_FILE).write_bytes(
        b"not json at all\n"
        + b'{"sha256": "zz", "sent": 1, "at": "2024-05-01T12:00:00+00:00"}\n'  # not a SHA-256
        + b"\x00\xff\xfe binary junk\n"
        + _entry(DATA, time.time() - 60, at).encode()
        + _entry(other, time.time() - 60, at).encode()[:40]  # a write cut short by a crash
    )
    center = Center()
    w, warnings = _watcher(tmp_path, center)
    _drop(tmp_path, "a.jpg", 1)
    b = _drop(tmp_path, "b.jpg", 1, other)
    b_time = _mtime(b)
    assert w.run(once=True, poll_s=0.01)["done"] == 2  # before: the same, but the whole file ignored
    assert sorted(center.times) == sorted([at, b_time])  # the good line is used; the cut one is lost
    assert len(warnings) == 1 and "4 unreadable line(s) skipped" in warnings[0]
    entries = _entries(tmp_path)  # rewritten whole: every line reads, the new entry on its own line
    digests = sorted(hashlib.sha256(d).hexdigest() for d in (DATA, other))
    assert sorted(e["sha256"] for e in entries) == digests


def test_a_memory_file_of_garbage_does_not_stop_the_watcher(tmp_path: Path) -> None:
    (tmp_path / SENT_FILE).write_bytes(bytes(range(256)).replace(b"\n", b"") * 16 + b"\n[1, 2]\n{}\n")
    center = Center()
    w, warnings = _watcher(tmp_path, center)
    a = _drop(tmp_path, "a.jpg", 5)
    a_time = _mtime(a)
    assert w.run(once=True, poll_s=0.01)["done"] == 1
    assert center.times == [a_time] and len(warnings) == 1
    assert [e["sha256"] for e in _entries(tmp_path)] == [hashlib.sha256(DATA).hexdigest()]


def test_a_folder_where_the_memory_cannot_be_kept_is_watched_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(path: Any, *a: Any, **k: Any) -> int:
        if str(path).endswith(SENT_FILE):  # as root a chmod does not stop a write: the error, made here
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    center = Center()
    w, warnings = _watcher(tmp_path, center)
    a = _drop(tmp_path, "a.jpg", 30)
    first_time = _mtime(a)
    for name, minutes in (("a.jpg", 30), ("b.jpg", 10), ("c.jpg", 1)):
        if name != "a.jpg":
            _drop(tmp_path, name, minutes)
        assert w.run(once=True, poll_s=0.01)["done"] == 1
    assert center.times == [first_time] * 3  # remembered while it runs
    assert len(warnings) == 1 and "remembered only while the watcher runs" in warnings[0]
    assert not (tmp_path / SENT_FILE).exists()


def test_a_memory_file_that_cannot_be_read_is_said_once(tmp_path: Path) -> None:
    (tmp_path / SENT_FILE).mkdir()  # reading (and writing) it fails
    center = Center()
    w, warnings = _watcher(tmp_path, center)
    _drop(tmp_path, "a.jpg", 30)
    _drop(tmp_path, "b.jpg", 1, b"\xff\xd8 another picture")
    assert w.run(once=True, poll_s=0.01)["done"] == 2
    assert len(warnings) == 1 and f"cannot read {SENT_FILE}" in warnings[0]


# --- old entries go ------------------------------------------------------------------------------


def test_entries_older_than_the_dedupe_time_are_dropped_at_load(tmp_path: Path) -> None:
    long_ago = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    kept = b"\xff\xd8 a picture sent an hour ago"
    (tmp_path / SENT_FILE).write_text(
        _entry(DATA, time.time() - 2 * DAY, long_ago) + _entry(kept, time.time() - 3600, long_ago)
    )
    center = Center()
    w, warnings = _watcher(tmp_path, center, dedupe_s=DAY)
    a = _drop(tmp_path, "a.jpg", 1)
    a_time = _mtime(a)
    assert w.run(once=True, poll_s=0.01)["done"] == 1
    assert center.times == [a_time]  # forgotten: a new picture with its own time
    assert warnings == []
    entries = _entries(tmp_path)  # before: the file was never read nor rewritten
    assert [e["sha256"] for e in entries] == [hashlib.sha256(d).hexdigest() for d in (kept, DATA)]


def test_the_memory_file_is_rewritten_as_entries_expire(tmp_path: Path) -> None:
    sent = time.time() - 3600
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    (tmp_path / SENT_FILE).write_text("".join(_entry(b"picture %d" % i, sent, at) for i in range(300)))
    center, wall = Center(), [time.time()]
    w, warnings = _watcher(tmp_path, center, dedupe_s=DAY, wall=lambda: wall[0])
    _drop(tmp_path, "a.jpg", 1)
    assert w.run(once=True, poll_s=0.01)["done"] == 1
    assert len(_entries(tmp_path)) == 301  # all still young: appended to

    wall[0] += DAY  # the 300 are past the dedupe time; one more picture is handled
    b = _drop(tmp_path, "b.jpg", 1, b"\xff\xd8 a new picture")
    assert w.run(once=True, poll_s=0.01)["done"] == 1
    entries = _entries(tmp_path)  # before: 300 lines for ever (and never read)
    assert [e["sha256"] for e in entries] == [
        hashlib.sha256(d).hexdigest() for d in (DATA, b"\xff\xd8 a new picture")
    ]
    assert center.times[-1] == _mtime(tmp_path / "done" / b.name) and warnings == []


def test_the_memory_file_is_not_made_in_a_folder_with_nothing_sent(tmp_path: Path) -> None:
    w, _ = _watcher(tmp_path, Center())
    (tmp_path / "notes.txt").write_text("kept")
    assert w.run(once=True, poll_s=0.01) == {"done": 0, "failed": 0, "retry": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
