"""Plate searches that cannot mean anything: a reversed time range, a polygon with no area.

Audit findings (session 11): ``start`` after ``end`` answered 200 with 0 reads and was recorded
(and counted on the transparency page) as a real search; a straight-line polygon was refused
with "the polygon crosses itself".
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rtcc.errors import ValidationFailed
from rtcc.plates.reads import search_reads
from rtcc.plates.transparency import stats
from rtcc.roles import Role
from rtcc.store import Store
from tests.conftest import StartCenter
from tests.plates.test_search import WHY, _audit, _setup

LATE, EARLY = "2026-11-23T00:00:00Z", "2025-01-01T00:00:00Z"


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_reversed_time_range_is_422_and_not_recorded(start_center: StartCenter) -> None:
    c, cl = await _setup(start_center)
    analyst = cl[Role.analyst]
    try:
        for path, extra in (
            ("/api/v1/plates/search", {"plate": "TGT100"}),
            ("/api/v1/plates/track", {"plate": "TGT100"}),
            ("/api/v1/plates/cotravel", {"plate": "TGT100"}),
        ):
            for start, end in ((LATE, EARLY), (LATE, LATE)):
                r = await analyst.get(path, params={**extra, "start": start, "end": end, **WHY})
                assert r.status_code == 422, (path, r.text)
                error = r.json()["error"]
                assert error["code"] == "validation_failed" and "must be before end" in error["message"]
        r = await analyst.get("/api/v1/plates/search", params={"start": EARLY, "end": LATE, **WHY})
        assert r.status_code == 200, r.text  # the right way round still searches
        assert c.center.store is not None
        fig = c.center.store.run(lambda s: stats(s, retention=c.settings.retention))
        assert fig["searches"]["total"] == 1
        assert len(await _audit(cl[Role.admin], "plate_search")) == 1
    finally:
        for x in cl.values():
            await x.aclose()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_polygon_without_area_says_so(start_center: StartCenter) -> None:
    c, cl = await _setup(start_center)
    analyst = cl[Role.analyst]
    try:
        r = await analyst.get("/api/v1/plates/search", params={"polygon": "1,2;3,4;5,6", **WHY})
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "no area" in message and "crosses" not in message
        bowtie = "0,0;1,1;0,1;1,0"  # (lat, lon) corners whose edges cross
        r = await analyst.get("/api/v1/plates/search", params={"polygon": bowtie, **WHY})
        assert r.status_code == 422 and "crosses itself" in r.json()["error"]["message"]
        assert c.center.store is not None
        fig = c.center.store.run(lambda s: stats(s, retention=c.settings.retention))
        assert fig["searches"]["total"] == 0
    finally:
        for x in cl.values():
            await x.aclose()


def test_the_store_refuses_them_on_either_dialect(store: Store) -> None:
    late, early = datetime(2026, 11, 23, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationFailed, match="must be before end"):
        store.run(lambda s: search_reads(s, plate="ABC123", start=late, end=early))
    with pytest.raises(ValidationFailed, match="no area"):
        store.run(lambda s: search_reads(s, plate=None, polygon=[(1, 2), (3, 4), (5, 6)]))
    with pytest.raises(ValidationFailed, match="crosses itself"):
        store.run(lambda s: search_reads(s, plate=None, polygon=[(0, 0), (1, 1), (0, 1), (1, 0)]))
    assert store.run(lambda s: search_reads(s, plate=None, polygon=[(0, 0), (0, 1), (1, 1)])) == []
