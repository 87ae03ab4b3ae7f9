"""Acceptance (issue 6): a reviewer decides a gunshot in the review band from the dashboard.

An incident between ``review_above`` and ``alert_above`` waits for a person; the issue promises
that the reviewer "confirms or dismisses with a reason (audited)". The API does it
(``tests/api/test_gunshots.py``); this walks it in a real browser: the review alert in the queue,
the incident view with its audio and the confirm / dismiss buttons, the reason required, the
incident's status and the audit log afterwards, and no buttons for an officer.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import js_errors, new_page, open_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]


async def pending_incident(running: Running) -> str:
    """Real pulses through the ingest, a classifier answer in the review band: a pending incident."""
    arr = await provision_array(running)
    use_classifier(pipeline_of(running), 0.6)  # review band (0.35 … 0.85)
    await post_pulses(running, arr, shot_pulses(arr, (0.0, -100.0)))
    admin = await running.login("admin")
    async with admin:

        async def pending() -> str | None:
            r = await admin.get("/api/v1/gunshots", params={"status": "pending_review"})
            items = r.json()["items"]
            return str(items[0]["id"]) if items else None

        iid: str = await eventually(pending, what="a pending incident")
    return iid


async def test_reviewer_dismisses_a_pending_gunshot_with_a_reason(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    iid = await pending_incident(running)

    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await page.click('#side-tabs [data-tab="alerts"]')
    row = page.locator('li.alert-row[data-kind="gunshot_review"]')
    await expect(row).to_contain_text("review needed")
    await row.locator('[data-action="open"]').click()
    view = page.locator("#packet-view")
    await expect(view).to_have_attribute("data-kind", "gunshot")
    await expect(view).to_have_attribute("data-ref-id", iid)
    review = view.locator(".gunshot-review")
    await expect(review).to_have_attribute("data-status", "pending_review")
    await expect(review.locator(".verify-banner")).to_contain_text("Waiting for review")

    # dismiss: a reason is required, then the incident is dismissed with it
    await review.locator('[data-action="review-dismiss"]').click()
    form = review.locator('form[data-form="review-dismiss"]')
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".msg")).to_contain_text("reason is required")
    await form.locator("input").fill("fireworks on the audio of all three sensors")
    await form.locator('button[type="submit"]').click()
    await expect(review).to_have_attribute("data-status", "dismissed")
    await expect(view.locator(".gunshot-status")).to_contain_text("fireworks on the audio")
    await expect(review.locator('[data-action="review-confirm"]')).to_have_count(0)

    admin = await running.login("admin")
    async with admin:
        row_now = (await admin.get(f"/api/v1/gunshots/{iid}")).json()
        assert row_now["status"] == "dismissed" and row_now["reviewed_by"] == "analyst1"
        assert row_now["review_reason"] == "fireworks on the audio of all three sensors"
        r = await admin.get("/api/v1/audit", params={"action": "gunshot_dismiss"})
        assert [e["record_id"] for e in r.json()["items"]] == [iid]
    assert js_errors(page) == []


async def test_officer_sees_the_incident_without_review_buttons(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("officer1", Role.officer)
    iid = await pending_incident(running)
    page = await new_page(browser)
    await open_dashboard(page, running, "officer1")
    marker = page.locator(f'.leaflet-marker-icon[data-incident-id="{iid}"]')
    await marker.click()
    await page.locator('.popup-incident [data-action="packet"]').click()
    view = page.locator("#packet-view")
    await expect(view).to_have_attribute("data-ref-id", iid)
    await expect(view.locator(".gunshot-status")).to_contain_text("pending review")
    await expect(view.locator(".gunshot-review")).to_be_attached()
    await expect(view.locator(".gunshot-review button")).to_have_count(0)
    assert js_errors(page) == []
