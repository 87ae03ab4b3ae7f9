"""A read stored while a new list was on its way is matched once the list arrives (audit, session 12).

A plate camera read ``NEW111`` a second after another process imported a list holding it: this
process still matched with the old lists (they are checked every ``plates.hotlist_refresh_s``), and
nothing matched the read again, so the plate passed unflagged.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from rtcc.plates.hotlist_import import Category, ParsedEntry
from rtcc.plates.hotlists import replace_source
from rtcc.roles import DeviceType, Role
from rtcc.store.tables_plates import PlateReadRow
from tests.conftest import StartCenter
from tests.helpers import eventually
from tests.plates.test_hits import hits_of, plate_read, post_reads

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_reads_stored_before_the_rebuild_are_matched_after_it(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates"), plates={"hotlist_refresh_s": 3600})
    c.add_user("officer1", Role.officer)
    officer = await c.login("officer1")
    store = c.center.store
    assert store is not None
    proc: Any = c.center.services["plates"]
    try:
        await proc.refresh()  # the check before the change (as the poll makes)
        key = await c.center.provision_device("lpr-cu", DeviceType.plate_camera, "pole", 33.5, -86.8)
        # another process imports the list: the version moves, this process has not looked yet
        entry = ParsedEntry(2, "NEW111", Category.stolen_vehicle, "WA", reason="taken")
        store.run(lambda s: replace_source(s, "wa-state", "csv", [entry]))
        await post_reads(c, key, [plate_read("NEW111", "lpr-cu"), plate_read("OLD222", "lpr-cu")])

        async def stored() -> bool:
            q = select(func.count()).select_from(PlateReadRow)
            return await store.read(lambda s: s.scalar(q)) == 2

        await eventually(stored, what="both reads stored")
        assert (await officer.get("/api/v1/hits")).json()["items"] == []  # matched with the old lists

        assert await proc.refresh()  # the next check finds the new list
        [hit] = await hits_of(officer, 1)
        assert hit["plate"] == "NEW111" and hit["entry_source"] == "wa-state"
        assert c.center.metrics.get("hotlist_hits_caught_up") == 1
        assert await proc.refresh() is False  # nothing new: no second hit
        assert len((await officer.get("/api/v1/hits")).json()["items"]) == 1
    finally:
        await officer.aclose()
