"""The oversight and account screens in a real browser against a real center:

* the Audit tab (admin, auditor): an action taken in the dashboard shows as an entry, filters narrow
  the list, pages stay put while the log grows, the chain verifies (and a tampered entry shows as a
  red banner naming its seq), the CSV export downloads, a bad filter shows the center's message;
* who sees the tabs: the auditor the Audit tab only, an officer neither;
* the Users tab (admin): create an account, change its role, disable / enable it, unlock it after
  failed logins, reset its MFA after a confirmation; the last enabled admin cannot be disabled (409).

Chromium comes from ``RTCC_TEST_CHROMIUM``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text

from rtcc.oversight.audit import CSV_COLUMNS
from rtcc.roles import Role
from tests.conftest import PASSWORD, Running, StartCenter
from tests.web.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.web.test_dashboard import (
    PHONE,
    js_errors,
    new_page,
    no_horizontal_scroll,
    open_dashboard,
    screenshot_path,
)
from tests.web.test_operations import open_tab

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

ROWS = "#audit-rows tr[data-seq]"


def tamper(running: Running, seq: int) -> None:
    """Edit one audit entry in the database, as someone with write access to it could."""
    assert running.center.store is not None
    running.center.store.run(
        lambda s: s.execute(
            text("UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = :seq"), {"seq": seq}
        )
    )


async def seqs(page: Page) -> list[int]:
    return [int(s) for s in await page.locator(ROWS).evaluate_all("(rows) => rows.map((r) => r.dataset.seq)")]


async def attempt_login(running: Running, username: str, password: str = PASSWORD) -> int:
    async with httpx.AsyncClient(base_url=running.url, timeout=20) as c:
        r = await c.post("/api/v1/auth/login", json={"username": username, "password": password})
    return r.status_code


async def plate_search(page: Page) -> None:
    await open_tab(page, "plates")
    await page.fill("#ps-purpose", "robbery suspect vehicle")
    await page.fill("#ps-case", "2026-004711")
    await page.fill("#ps-plate", "7ABC123")
    async with page.expect_response(lambda r: "/api/v1/plates/search" in r.url) as res:
        await page.click("#ps-submit")
    assert (await res.value).status == 200


# --- the audit log ----------------------------------------------------------------------------


async def test_audit_tab_shows_filters_pages_verifies_and_exports(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    page = await new_page(browser, accept_downloads=True)
    await open_dashboard(page, running)

    # an action taken in the dashboard: a plate search, with its purpose and case number
    await plate_search(page)
    await open_tab(page, "audit")
    search = page.locator(f'{ROWS}[data-action="plate_search"]')
    await expect(search).to_have_count(1)
    await expect(search).to_contain_text("admin")
    await expect(search).to_contain_text("robbery suspect vehicle")
    await expect(page.locator(f'{ROWS}[data-action="login"]').first).to_be_attached()
    # the details are compact and open to the whole JSON
    full = search.locator(".audit-json-full")
    await expect(full).to_be_hidden()
    await search.locator("summary").click()
    await expect(full).to_be_visible()
    await expect(full).to_contain_text('"case_number": "2026-004711"')
    search_seq = int(await search.get_attribute("data-seq") or 0)
    everything = await page.locator(ROWS).count()
    assert everything > 1

    # filtering by action narrows the rows
    await page.fill("#audit-action", "plate_search")
    await page.click("#audit-submit")
    await expect(page.locator(ROWS)).to_have_count(1)
    await expect(page.locator(f'{ROWS}[data-action="plate_search"]')).to_have_count(1)
    await page.fill("#audit-actor", "nobody")
    await page.click("#audit-submit")
    await expect(page.locator(ROWS)).to_have_count(0)
    await expect(page.locator("#audit-rows")).to_contain_text("No entries match")

    # a period that ends before it starts: the center's message, no JS error
    await page.click('[data-action="clear"]')
    await expect(page.locator(ROWS).first).to_be_attached()
    await page.fill("#audit-since", "2026-05-02T10:00")
    await page.fill("#audit-until", "2026-05-01T10:00")
    await page.click("#audit-submit")
    await expect(page.locator("#audit-msg")).to_contain_text("until must be after since")
    await expect(page.locator("#audit-form")).to_have_attribute("data-refused", "server")
    await expect(page.locator(ROWS)).to_have_count(0)
    await page.click('[data-action="clear"]')
    await expect(page.locator("#audit-msg")).to_be_hidden()

    # pages: 25 at a time; every read of the log is itself logged, the pages stay put all the same
    admin = await running.login("admin")
    async with admin:
        for _ in range(60):
            assert (await admin.get("/api/v1/audit", params={"limit": 1})).status_code == 200
    await page.select_option("#audit-limit", "25")
    await page.click("#audit-submit")
    await expect(page.locator(ROWS)).to_have_count(25)
    first = await seqs(page)
    assert first == sorted(first, reverse=True)
    await expect(page.locator('[data-action="newer"]')).to_be_disabled()
    await page.click('[data-action="older"]')
    await expect(page.locator("#audit-page")).to_have_attribute("data-offset", "25")
    await expect(page.locator(ROWS)).to_have_count(25)
    second = await seqs(page)
    assert second[0] == first[-1] - 1  # no entry twice, none left out
    await page.click('[data-action="newer"]')
    await expect(page.locator("#audit-page")).to_have_attribute("data-offset", "0")
    await expect(page.locator(f'{ROWS}[data-seq="{first[0]}"]')).to_be_attached()
    assert await seqs(page) == first

    # verify: intact, with the number of entries checked
    verify = page.locator("#audit-verify")
    await page.click('[data-action="verify"]')
    await expect(verify).to_have_attribute("data-ok", "true")
    entries = int(await verify.get_attribute("data-entries") or 0)
    async with await running.login("admin") as admin:
        r = await admin.get("/api/v1/audit", params={"action": "verify_audit", "limit": 1})
        verified_at = r.json()["items"][0]["seq"]
    assert entries == verified_at - 1  # every entry before the verification's own
    await expect(verify).to_contain_text(f"{entries} entries checked")
    await expect(verify).to_have_class("verify-result verify-ok")

    # the CSV export downloads the log with the session cookie
    async with page.expect_download() as dl:
        await page.click("#audit-export")
    download = await dl.value
    body = Path(await download.path()).read_text(encoding="utf-8")
    table = list(csv.reader(io.StringIO(body)))
    assert tuple(table[0]) == CSV_COLUMNS
    assert any(row[4] == "plate_search" and row[0] == str(search_seq) for row in table[1:])

    # one entry edited in the database: the chain is broken there, shown as a red banner
    tamper(running, search_seq)
    await page.fill("#audit-action", "plate_search")
    await page.click("#audit-submit")
    await expect(page.locator(ROWS)).to_have_count(1)
    await page.click('[data-action="verify"]')
    await expect(verify).to_have_attribute("data-ok", "false")
    await expect(verify).to_have_attribute("data-bad-seq", str(search_seq))
    await expect(verify).to_contain_text(f"BROKEN at entry {search_seq}")
    await expect(verify).to_contain_text("edited")
    await expect(verify).to_have_class("verify-result verify-broken")
    border = await verify.evaluate("(n) => getComputedStyle(n).borderTopColor")
    assert border == "rgb(239, 68, 68)"
    await expect(page.locator(f'{ROWS}[data-seq="{search_seq}"]')).to_have_class("audit-row audit-bad")
    await expect(page.locator(f'{ROWS}[data-seq="{search_seq}"]')).to_contain_text("nothing to see")
    await page.screenshot(path=str(screenshot_path("s13-audit-broken.png")))
    assert [e for e in js_errors(page) if "status of 422" not in e] == []


async def test_the_auditor_has_the_audit_tab_and_an_officer_neither(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("auditor1", Role.auditor)
    running.add_user("officer1", Role.officer)

    # the auditor, on a phone: the Audit tab (not Users), whose table scrolls inside the panel
    page = await new_page(browser, PHONE)
    await open_dashboard(page, running, "auditor1")
    await expect(page.locator('#side-tabs [data-tab="stats"]')).to_be_visible()
    await expect(page.locator('#side-tabs [data-tab="audit"]')).to_be_visible()
    await expect(page.locator('#side-tabs [data-tab="users"]')).to_be_hidden()
    await open_tab(page, "audit")
    await expect(page.locator(f'{ROWS}[data-action="login"][data-actor="auditor1"]')).to_have_count(1)
    await page.click('[data-action="verify"]')
    await expect(page.locator("#audit-verify")).to_have_attribute("data-ok", "true")
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(screenshot_path("s13-audit-phone.png")), full_page=True)
    await expect(page.locator("#user-rows tr")).to_have_count(0)
    assert [e for e in js_errors(page) if "status of 403" not in e] == []

    # an officer: neither tab
    page = await new_page(browser)
    await open_dashboard(page, running, "officer1")
    await expect(page.locator('#side-tabs [data-tab="stats"]')).to_be_visible()
    await expect(page.locator('#side-tabs [data-tab="audit"]')).to_be_hidden()
    await expect(page.locator('#side-tabs [data-tab="users"]')).to_be_hidden()
    await expect(page.locator(ROWS)).to_have_count(0)
    assert js_errors(page) == []


# --- accounts ---------------------------------------------------------------------------------


async def test_users_tab_manages_accounts(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    page = await new_page(browser)
    await open_dashboard(page, running)
    # the admin's eight tabs all show in the 380 px panel (they wrap rather than hide off its edge)
    await expect(page.locator('#side-tabs [data-tab="users"]')).to_be_visible()
    assert await page.evaluate(
        """() => {
            const nav = document.querySelector('#side-tabs').getBoundingClientRect();
            return [...document.querySelectorAll('#side-tabs [data-tab]:not([hidden])')].every((b) => {
                const r = b.getBoundingClientRect();
                return r.left >= nav.left - 0.5 && r.right <= nav.right + 0.5;
            });
        }"""
    )
    await open_tab(page, "users")
    rows = page.locator("#user-rows")
    me = rows.locator('tr[data-username="admin"]')
    await expect(me).to_have_attribute("data-role", "admin")
    await expect(me).to_contain_text("(you)")
    # the roles the API accepts, without `public`
    roles = await page.locator("#user-role-new option").evaluate_all("(o) => o.map((x) => x.value)")
    assert roles == ["admin", "supervisor", "analyst", "officer", "auditor"]

    # create an analyst: it shows in the list and can sign in
    await page.fill("#user-username", "ann.analyst")
    await page.fill("#user-display", "Ann Analyst")
    await page.select_option("#user-role-new", "analyst")
    await page.fill("#user-password", PASSWORD)
    await page.click("#user-submit")
    ann = rows.locator('tr[data-username="ann.analyst"]')
    await expect(ann).to_have_attribute("data-role", "analyst")
    await expect(ann).to_contain_text("Ann Analyst")
    await expect(ann).to_have_attribute("data-disabled", "false")
    await expect(ann).to_have_attribute("data-locked", "false")
    await expect(page.locator("#users-msg")).to_have_attribute("data-kind", "ok")
    assert await attempt_login(running, "ann.analyst") == 200

    # the center's refusals show in the tab: a taken name (409), a weak password (422)
    await page.fill("#user-username", "ann.analyst")
    await page.fill("#user-password", PASSWORD)
    await page.click("#user-submit")
    await expect(page.locator("#users-msg")).to_contain_text("is taken")
    await expect(page.locator("#user-form")).to_have_attribute("data-refused", "server")
    await page.fill("#user-username", "bob")
    await page.fill("#user-password", "abc")
    await page.click("#user-submit")
    await expect(page.locator("#users-msg")).to_have_attribute("data-kind", "error")
    await expect(rows.locator('tr[data-username="bob"]')).to_have_count(0)

    # change its role
    await expect(ann.locator('[data-action="set-role"]')).to_be_disabled()
    await ann.locator('select[name="role"]').select_option("supervisor")
    await ann.locator('[data-action="set-role"]').click()
    await expect(ann).to_have_attribute("data-role", "supervisor")
    async with await running.login("admin") as admin:
        listed = {u["username"]: u for u in (await admin.get("/api/v1/users")).json()["items"]}
    assert listed["ann.analyst"]["role"] == "supervisor"

    # disable: it can no longer sign in; enable: it can again
    await ann.locator('[data-action="disable"]').click()
    await expect(ann).to_have_attribute("data-disabled", "true")
    assert await attempt_login(running, "ann.analyst") == 401
    await ann.locator('[data-action="enable"]').click()
    await expect(ann).to_have_attribute("data-disabled", "false")
    assert await attempt_login(running, "ann.analyst") == 200

    # five bad logins lock it; Unlock (shown only then) lifts the lock
    await expect(ann.locator('[data-action="unlock"]')).to_have_count(0)
    codes = [await attempt_login(running, "ann.analyst", "wrong password") for _ in range(5)]
    assert codes[-1] == 423 or await attempt_login(running, "ann.analyst") == 423
    await page.click('#tab-users [data-action="refresh"]')
    await expect(ann).to_have_attribute("data-locked", "true")
    await ann.locator('[data-action="unlock"]').click()
    await expect(ann).to_have_attribute("data-locked", "false")
    await expect(ann.locator('[data-action="unlock"]')).to_have_count(0)
    assert await attempt_login(running, "ann.analyst") == 200

    # reset MFA, after a confirmation
    async with await running.login("ann.analyst") as c:
        secret = (await c.post("/api/v1/auth/mfa/enrol")).json()["secret"]
        r = await c.post("/api/v1/auth/mfa/confirm", json={"code": pyotp.TOTP(secret).now()})
        assert r.status_code == 200, r.text
    await page.click('#tab-users [data-action="refresh"]')
    await expect(ann).to_have_attribute("data-mfa", "true")
    await ann.locator('[data-action="reset-mfa"]').click()
    await ann.locator('[data-action="cancel"]').click()
    await expect(ann).to_have_attribute("data-mfa", "true")
    await ann.locator('[data-action="reset-mfa"]').click()
    await ann.locator('[data-action="confirm-reset-mfa"]').click()
    await expect(ann).to_have_attribute("data-mfa", "false")
    await expect(ann.locator('[data-action="reset-mfa"]')).to_have_count(0)
    await page.screenshot(path=str(screenshot_path("s13-users.png")))

    # the last enabled admin: neither disabled nor demoted (409), the message shows
    await me.locator('[data-action="disable"]').click()
    await expect(page.locator("#users-msg")).to_contain_text("last enabled admin")
    await expect(me).to_have_attribute("data-disabled", "false")
    await me.locator('select[name="role"]').select_option("auditor")
    await me.locator('[data-action="set-role"]').click()
    await expect(page.locator("#users-msg")).to_contain_text("cannot demote")
    await expect(me).to_have_attribute("data-role", "admin")
    assert await attempt_login(running, "admin") == 200

    # every change is in the audit log
    await open_tab(page, "audit")
    for action in ("create_user", "update_user", "reset_mfa"):
        await expect(page.locator(f'{ROWS}[data-action="{action}"]').first).to_be_attached()
    await expect(page.locator('#side-tabs [data-tab="users"]')).to_be_visible()
    assert [e for e in js_errors(page) if "status of 409" not in e and "status of 422" not in e] == []
