"""A pass the center refuses for good is filed in ``refused/`` with the reason, never deleted."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from rtcc.devices.buffer import Spool
from rtcc.plates.outbox import PassOutbox
from rtcc.plates.watch import CameraConfig
from rtcc.roles import DeviceType
from tests.conftest import Running

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])


def _body(at: datetime, plate: str) -> dict[str, object]:
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 200, 3), 128, np.uint8))
    assert ok
    line = {"camera": "cam-old", "time": at.isoformat(), "plate": plate}
    form = {"plate": plate, "box": "10,10,90,40", "confidence": "0.9"}
    return {"line": line, "form": form, "jpeg_b64": base64.b64encode(bytes(jpeg)).decode("ascii")}


@EMBEDDED
async def test_a_pass_older_than_the_ingest_window_is_kept_in_refused(
    center: Running, tmp_path: Path
) -> None:
    key = await center.center.provision_device("cam-old", DeviceType.plate_camera, "pole", 41.88, -87.63)
    cfg = CameraConfig(center=center.url, camera="cam-old", key=key, lat=41.88, lon=-87.63)
    spool = Spool(tmp_path / "buf")
    refused: list[tuple[str, str]] = []
    with httpx.Client(timeout=30) as client:
        outbox = PassOutbox(
            spool, client, cfg, refused=lambda line, why: refused.append((line["plate"], why))
        )
        old = datetime.now(UTC) - timedelta(days=8)
        outbox.put("pass-old", _body(old, "OLD123"))
        outcome = await asyncio.to_thread(outbox.deliver_oldest)
    assert outcome == "refused" and outbox.n_refused == 1
    assert refused and refused[0][0] == "OLD123" and "older than the ingest window" in refused[0][1]
    assert len(spool) == 0  # out of the queue (it can never succeed) ...
    kept = json.loads((tmp_path / "buf" / "refused" / "pass-old.json").read_text())
    assert kept["id"] == "pass-old" and "older than the ingest window" in kept["reason"]  # ... but kept
    assert kept["body"]["line"]["plate"] == "OLD123" and base64.b64decode(kept["body"]["jpeg_b64"])
    assert spool.refused_count() == 1
    spool.close()


def test_spool_refuse_keeps_the_item_until_its_file_is_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "sp")
    spool.put("a/1", json.dumps({"x": 1}))
    spool.put("b", json.dumps({"x": 2}))
    (tmp_path / "sp" / "refused").write_text("not a folder")  # the file cannot be written
    with pytest.raises(OSError):
        spool.refuse("a/1", "HTTP 422: too old")
    assert len(spool) == 2  # still queued: nothing lost
    (tmp_path / "sp" / "refused").unlink()
    where = spool.refuse("a/1", "HTTP 422: too old")
    assert where is not None and where.name == "a_1.json"
    assert json.loads(where.read_text())["body"] == {"x": 1}
    assert [i for i, _ in spool.peek(5)] == ["b"] and spool.refuse("gone", "x") is None
    assert [i for _, i, _ in spool.peek_after(0, 5)] == ["b"]
    spool.close()


def test_a_spool_folder_that_is_a_file_is_an_os_error(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(OSError, match="not a folder"):
        Spool(target)
