"""Acceptance (issue 3): custom BOLO entries made in the UI, matched as reads arrive.

The issue promises "custom BOLO entries made in the UI or API". The API is tested in
``test_hotlists.py``; this walks the dashboard in a real browser: an analyst adds a wildcard
BOLO entry with its category, reason and expiry (refused in the page without a reason), the
entry is listed, a camera's read of a matching plate becomes a hit on it, and removing it is
audited.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from rtcc.roles import DeviceType, Role
from tests.conftest import StartCenter
from tests.helpers import eventually
from tests.plates.render_helpers import car_with_plate, jpeg
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import js_errors, new_page, open_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

PLATE = "7KDR582"  # the rendered plate the recognizer reads in its own tests


async def test_analyst_keeps_bolo_entries_in_the_dashboard(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await page.click('#side-tabs [data-tab="plates"]')
    await page.click("#ps-view-bolo")
    await expect(page.locator("#plate-why")).to_be_hidden()  # keeping a list is not a search
    await expect(page.locator("#bolo-list")).to_contain_text("No BOLO entries")

    # refused in the page without a reason (nothing stored)
    await page.fill("#bolo-plate", "7kdr58*")
    await page.click("#bolo-submit")
    await expect(page.locator("#bolo-msg")).to_contain_text("reason")
    await expect(page.locator("#bolo-form")).to_have_attribute("data-refused", "client")

    # with a category, a reason and an expiry: stored, listed
    await page.select_option("#bolo-category", "stolen_vehicle")
    await page.fill("#bolo-reason", "armed robbery getaway car, partial plate from witness")
    await page.fill("#bolo-state", "al")
    await page.fill("#bolo-expires", "2099-01-01T12:00")
    await page.click("#bolo-submit")
    row = page.locator('#bolo-list li.bolo-row[data-plate="7KDR58*"]')
    await expect(row).to_contain_text("stolen vehicle")
    await expect(row).to_contain_text("armed robbery")

    admin = await running.login("admin")
    async with admin:
        entries = (await admin.get("/api/v1/hotlists/entries", params={"source": "bolo"})).json()["items"]
        assert [(e["plate"], e["category"], e["state"], e["created_by"]) for e in entries] == [
            ("7KDR58*", "stolen_vehicle", "AL", "analyst1")
        ]
        assert entries[0]["expires_at"].startswith("2099-01-01")

        # a camera's read of a matching plate is a hit on the entry, as it arrives
        key = await running.center.provision_device(
            "lpr-b1", DeviceType.plate_camera, "LPR b1", 33.52, -86.80, {}
        )
        r = await running.http.post(
            "/api/v1/plates/images",
            headers={"authorization": f"Device {key}"},
            files={"image": ("frame.jpg", jpeg(car_with_plate(PLATE)), "image/jpeg")},
        )
        assert r.status_code == 201, r.text
        assert [x["plate"] for x in r.json()["reads"]] == [PLATE]

        async def hit() -> dict[str, object] | None:
            items = (await admin.get("/api/v1/hits")).json()["items"]
            return items[0] if items else None

        found = await eventually(hit, what="the hit on the BOLO entry")
        assert found["entry_id"] == entries[0]["id"] and found["match"] == "partial"
        assert found["status"] == "verify"

        # removed from the page: gone from the list and the store, audited
        await row.locator('[data-action="remove"]').click()
        await expect(row).to_have_count(0)
        await expect(page.locator("#bolo-msg")).to_contain_text("removed")
        left = (await admin.get("/api/v1/hotlists/entries", params={"source": "bolo"})).json()["items"]
        assert left == []
        audit = (await admin.get("/api/v1/audit", params={"actor": "analyst1"})).json()["items"]
        assert {(e["action"], e["actor"]) for e in audit} >= {
            ("hotlist_entry_create", "analyst1"),
            ("hotlist_entry_delete", "analyst1"),
        }
    assert js_errors(page) == []
