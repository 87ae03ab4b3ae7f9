"""The folder watcher does not keep plate photos for ever: done/ and failed/ are pruned.

Before this, ``done/`` and ``failed/`` grew without end on the camera's computer, so every car that
passed stayed there as a photo long after the center's retention had deleted its read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.plates.test_s13_watch_fixes import Center, Clock, _image, _watcher


def _wall_after(seconds: float) -> float:
    return time.time() + seconds


def test_sent_image_is_deleted_from_done_after_the_keep_time(tmp_path: Path) -> None:
    img = _image(tmp_path, "car-1.jpg")
    img.with_suffix(".json").write_text(json.dumps({"lat": 40.44, "lon": -79.99}))
    clock, wall = Clock(), [time.time()]
    w, _ = _watcher(tmp_path, Center(201), clock=clock, wall=lambda: wall[0], keep_done_s=3600.0)
    w.scan()
    assert w.scan()["done"] == 1
    assert (tmp_path / "done" / "car-1.jpg").is_file()
    assert (tmp_path / "done" / "car-1.json").is_file()

    wall[0] = _wall_after(1800)  # half the keep time: kept
    clock.t += 120
    w.scan()
    assert (tmp_path / "done" / "car-1.jpg").is_file()

    wall[0] = _wall_after(3700)  # past it: the photo and its sidecar go
    clock.t += 120
    w.scan()
    assert not (tmp_path / "done" / "car-1.jpg").exists()
    assert not (tmp_path / "done" / "car-1.json").exists()


def test_keep_zero_deletes_a_sent_image_at_once(tmp_path: Path) -> None:
    _image(tmp_path, "car-2.jpg")
    w, lines = _watcher(tmp_path, Center(201), clock=Clock(), keep_done_s=0.0)
    w.scan()
    assert w.scan()["done"] == 1
    assert not (tmp_path / "car-2.jpg").exists()
    assert not (tmp_path / "done" / "car-2.jpg").exists()
    assert lines[-1][:2] == ("car-2.jpg", "done")


def test_refused_image_stays_in_failed_for_its_own_keep_time(tmp_path: Path) -> None:
    _image(tmp_path, "car-3.jpg")
    clock, wall = Clock(), [time.time()]
    w, _ = _watcher(
        tmp_path, Center(422), clock=clock, wall=lambda: wall[0], keep_done_s=60.0, keep_failed_s=86400.0
    )
    w.scan()
    assert w.scan()["failed"] == 1
    failed = tmp_path / "failed"
    assert (failed / "car-3.jpg").is_file() and (failed / "car-3.jpg.reason.txt").is_file()

    wall[0] = _wall_after(3600)  # past done's keep time, not failed's
    clock.t += 120
    w.scan()
    assert (failed / "car-3.jpg").is_file()

    wall[0] = _wall_after(86400 + 60)
    clock.t += 120
    w.scan()
    assert not (failed / "car-3.jpg").exists()
    assert not (failed / "car-3.jpg.reason.txt").exists()


def test_pruning_waits_between_passes_and_leaves_waiting_files(tmp_path: Path) -> None:
    """A pass prunes at most every ``prune_every_s``; images still to send are never pruned."""
    (tmp_path / "done").mkdir()
    old = tmp_path / "done" / "old.jpg"
    old.write_bytes(b"x")
    waiting = _image(tmp_path, "waiting.jpg")
    clock, wall = Clock(), [_wall_after(10 * 86400)]
    w, _ = _watcher(tmp_path, Center(None), clock=clock, wall=lambda: wall[0], keep_done_s=3600.0)
    w.scan()
    assert not old.exists()  # the first pass prunes
    old.write_bytes(b"x")
    clock.t += 10
    w.scan()
    assert old.exists()  # not again within prune_every_s
    clock.t += 60
    w.scan()
    assert not old.exists()
    assert waiting.is_file()  # the center is down: the image waits in place, untouched
