"""Audit 8: a hit carries the entry's state and the read's region, and says plainly when they differ.

A BOLO for 627WWI (Alabama) and a read of 627WWI on a Washington plate: the same number in another
state is the classic wrong-car stop. Matching stays as it is (the region is often unknown), but the
hit, its API output and the hit view carry both states and flag the difference.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from rtcc.plates.hits import state_mismatch
from rtcc.roles import DeviceType, Role
from tests.conftest import StartCenter
from tests.helpers import eventually
from tests.plates.test_hits import HERE, hits_of, plate_read, post_reads
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import WAIT_MS, js_errors, new_page, open_dashboard
from tests.web.test_operations import open_tab

PLATE = "627WWI"


def test_state_mismatch_needs_both_states() -> None:
    assert state_mismatch("AL", "WA") is True
    assert state_mismatch("AL", "al") is False and state_mismatch("TX", "US-TX") is False
    assert state_mismatch("AL", None) is False and state_mismatch(None, "WA") is False
    assert state_mismatch("", "WA") is False


async def _bolo(admin: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"plate": PLATE, "category": "stolen_vehicle", "reason": "stolen in Birmingham", **extra}
    r = await admin.post("/api/v1/hotlists/entries", json=body)
    assert r.status_code == 201, r.text
    entry: dict[str, Any] = r.json()
    return entry


@pytest.mark.parametrize("backend", ["embedded"])
async def test_hits_carry_both_states_and_flag_a_difference(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates", "operations"))
    c.add_user("officer1", Role.officer)
    admin, officer = await c.login("admin"), await c.login("officer1")
    try:
        await _bolo(admin, state="AL")
        key = await c.center.provision_device("lpr-s1", DeviceType.plate_camera, "LPR", HERE.lat, HERE.lon)
        wa = plate_read(PLATE, "lpr-s1", region="WA")
        al = plate_read(PLATE, "lpr-s1", region="AL")
        unknown = plate_read(PLATE, "lpr-s1")
        await post_reads(c, key, [wa, al, unknown])
        hits = {h["read_id"]: h for h in await hits_of(officer, 3)}
        assert len(hits) == 3 and {h["match"] for h in hits.values()} == {"exact"}  # matching unchanged
        states = {rid: (h["entry_state"], h["read_region"], h["state_mismatch"]) for rid, h in hits.items()}
        assert states == {
            str(wa.event_id): ("AL", "WA", True),
            str(al.event_id): ("AL", "AL", False),
            str(unknown.event_id): ("AL", None, False),
        }

        # the alert in the queue says it first, before anyone opens the hit
        async def titles() -> dict[str, str] | None:
            items = (await officer.get("/api/v1/alerts")).json()["items"]
            got = {str(a["ref_id"]): str(a["title"]) for a in items if a["kind"] == "hotlist_hit"}
            return got if len(got) == 3 else None

        by_hit = await eventually(titles, what="three hit alerts queued")
        hit_of = {rid: h["id"] for rid, h in hits.items()}
        assert "STATE DIFFERS: list AL, plate read WA" in by_hit[str(hit_of[str(wa.event_id)])]
        assert "STATE DIFFERS" not in by_hit[str(hit_of[str(al.event_id)])]
        assert "STATE DIFFERS" not in by_hit[str(hit_of[str(unknown.event_id)])]
        hit_id = hits[str(wa.event_id)]["id"]
        r = await officer.get(f"/api/v1/hits/{hit_id}")
        assert r.status_code == 200, r.text
        detail = r.json()
        assert (detail["entry_state"], detail["read_region"], detail["state_mismatch"]) == ("AL", "WA", True)
        assert detail["entry"]["state"] == "AL" and detail["read"]["region"] == "WA"
        r = await officer.post(
            f"/api/v1/hits/{hit_id}/decision",
            json={"decision": "rejected", "reason": "Washington plate: not the Alabama car"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["state_mismatch"] is True and r.json()["read_region"] == "WA"
    finally:
        await admin.aclose()
        await officer.aclose()


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["embedded"])
async def test_hit_view_warns_of_another_state(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    admin = await running.login("admin")
    async with admin:
        await _bolo(admin, state="AL")
        page = await new_page(browser)
        await open_dashboard(page, running)
        key = await running.center.provision_device(
            "lpr-s2", DeviceType.plate_camera, "LPR", HERE.lat, HERE.lon
        )
        await post_reads(running, key, [plate_read(PLATE, "lpr-s2", region="WA")])
        await open_tab(page, "alerts")
        row = page.locator('li.alert-row[data-kind="hotlist_hit"]')
        await expect(row).to_have_count(1, timeout=WAIT_MS)
        await row.locator('[data-action="open"]').click()
        hit = page.locator("#packet-view .hit-view")
        warning = hit.locator(".state-mismatch")
        await expect(warning).to_be_visible()
        await expect(warning).to_contain_text("the hotlist entry is AL, the camera read WA")
        await expect(hit.locator('tr[data-field="read-state"] td')).to_have_text("WA")
        await expect(hit.locator('tr[data-field="entry-state"] td')).to_have_text("AL")
        assert js_errors(page) == []
