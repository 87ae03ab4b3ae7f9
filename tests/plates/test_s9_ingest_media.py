"""An uploaded image in which no plate was read is not kept (auditor's finding 2, session 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rtcc.oversight.retention import media_root
from tests.conftest import Running
from tests.plates.render_helpers import car_with_plate, jpeg, road
from tests.plates.test_camera_ingest import camera, upload


def files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_image_with_no_plate_is_not_kept_and_retries_stay_idempotent(center: Running) -> None:
    key = await camera(center)
    root = media_root(center.settings)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    empty = jpeg(road())
    for _ in range(2):  # sent again (a retry): the same answer, still nothing kept
        r = await upload(center, key, empty, at=at)
        assert r.status_code == 201, r.text
        assert r.json()["reads"] == [] and r.json()["published"] == 0
        assert files(root) == set()

    # an image with a plate is kept (the vehicle image and the plate crop), once
    img = jpeg(car_with_plate("7KDR582"))
    first = await upload(center, key, img, at=at)
    assert first.status_code == 201 and first.json()["duplicate"] is False
    kept = files(root)
    assert len(kept) == 2
    again = await upload(center, key, img, at=at)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert [x["id"] for x in again.json()["reads"]] == [x["id"] for x in first.json()["reads"]]
    assert files(root) == kept
