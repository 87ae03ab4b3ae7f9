"""Password screens in a real browser against a real center:

* everyone signed in: the header's "Change password" (a mismatch refused in the page, a wrong current
  password shows the center's message, then the change; the old password no longer signs in);
* the Users tab (admin): "Set password" on another account's row; that account signs in with it.

Chromium comes from ``RTCC_TEST_CHROMIUM``.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from rtcc.roles import Role
from tests.conftest import PASSWORD, StartCenter
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
from tests.web.test_s13_admin_screens import attempt_login

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["embedded"])]

NEW_PASSWORD = "Quiet-harbour-lanterns-at-dusk"
SET_PASSWORD = "Copper-kettles-under-seven-bridges"


async def test_an_analyst_changes_their_password(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("ann.analyst", Role.analyst)
    page = await new_page(browser)
    await open_dashboard(page, running, "ann.analyst")

    opener = page.locator('[data-action="change-password"]')
    await expect(opener).to_have_attribute("aria-expanded", "false")
    await opener.click()
    await expect(opener).to_have_attribute("aria-expanded", "true")
    form = page.locator('#password-panel form.password-form[data-form="change"]')
    await expect(form).to_be_visible()
    current = form.locator('[name="current_password"]')
    new = form.locator('[name="new_password"]')
    repeat = form.locator('[name="repeat_password"]')
    await expect(current).to_have_attribute("autocomplete", "current-password")
    await expect(new).to_have_attribute("autocomplete", "new-password")
    await expect(repeat).to_have_attribute("autocomplete", "new-password")
    assert await no_horizontal_scroll(page)

    # a mismatch: refused in the page, nothing sent
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/v1/auth/password" in r.url else None)
    await current.fill(PASSWORD)
    await new.fill(NEW_PASSWORD)
    await repeat.fill(NEW_PASSWORD + "x")
    await form.locator('[data-action="save-password"]').click()
    await expect(form).to_have_attribute("data-refused", "client")
    await expect(form.locator(".msg")).to_contain_text("differ")
    assert sent == []

    # a wrong current password: the center's message (422), still signed in
    await current.fill("not my password at all")
    await repeat.fill(NEW_PASSWORD)
    async with page.expect_response(lambda r: "/api/v1/auth/password" in r.url) as res:
        await form.locator('[data-action="save-password"]').click()
    assert (await res.value).status == 422
    await expect(form).to_have_attribute("data-refused", "server")
    await expect(form.locator(".msg")).to_contain_text("current password is wrong")
    await expect(page.locator("#app-view")).to_be_visible()

    # the right one: changed, a confirmation, this session stays
    other = await running.login("ann.analyst")  # another session: it ends
    await current.fill(PASSWORD)
    async with page.expect_response(lambda r: "/api/v1/auth/password" in r.url) as res:
        await form.locator('[data-action="save-password"]').click()
    assert (await res.value).status == 204
    await expect(page.locator("#password-done")).to_have_text(
        "Password changed; your other sessions were signed out."
    )
    await page.screenshot(path=str(screenshot_path("s13-change-password.png")))
    async with other:
        assert (await other.get("/api/v1/auth/me")).status_code == 401
    assert await page.evaluate("() => fetch('api/v1/auth/me').then((r) => r.status)") == 200
    await page.click('[data-action="close-password"]')
    await expect(page.locator("#password-panel")).to_be_hidden()
    await expect(page.locator("#app-view")).to_be_visible()

    assert await attempt_login(running, "ann.analyst", PASSWORD) == 401
    assert await attempt_login(running, "ann.analyst", NEW_PASSWORD) == 200
    assert [e for e in js_errors(page) if "status of 422" not in e] == []


async def test_the_change_password_action_fits_a_phone(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    page = await new_page(browser, PHONE)
    await open_dashboard(page, running)
    await page.click('[data-action="change-password"]')
    await expect(page.locator("#password-panel form.password-form")).to_be_visible()
    assert await no_horizontal_scroll(page)
    await page.keyboard.press("Escape")
    await expect(page.locator("#password-panel")).to_be_hidden()
    assert js_errors(page) == []


async def test_an_admin_sets_another_users_password(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("otto.officer", Role.officer)
    page = await new_page(browser)
    await open_dashboard(page, running)
    await open_tab(page, "users")
    rows = page.locator("#user-rows")
    otto = rows.locator('tr[data-username="otto.officer"]')
    # not on your own row: the header's "Change password" is for that
    await expect(rows.locator('tr[data-username="admin"] [data-action="set-password"]')).to_have_count(0)

    # locked by failed logins first: setting the password lifts the lock
    for _ in range(5):
        await attempt_login(running, "otto.officer", "wrong password")
    await page.click('#tab-users [data-action="refresh"]')
    await expect(otto).to_have_attribute("data-locked", "true")

    await otto.locator('[data-action="set-password"]').click()
    form = otto.locator('form.password-form[data-form="set"]')
    await expect(form).to_be_visible()
    await expect(form.locator('[name="new_password"]')).to_have_attribute("autocomplete", "new-password")
    # a mismatch: refused in the page
    await form.locator('[name="new_password"]').fill(SET_PASSWORD)
    await form.locator('[name="repeat_password"]').fill("something else")
    await form.locator('[data-action="save-password"]').click()
    await expect(form).to_have_attribute("data-refused", "client")
    # a weak one: the center's 422 in the form
    await form.locator('[name="new_password"]').fill("abc")
    await form.locator('[name="repeat_password"]').fill("abc")
    await form.locator('[data-action="save-password"]').click()
    await expect(form).to_have_attribute("data-refused", "server")
    await expect(form.locator(".msg")).to_contain_text("password too short")
    # cancel gives the row's buttons back
    await form.locator('[data-action="cancel"]').click()
    await expect(form).to_have_count(0)
    await otto.locator('[data-action="set-password"]').click()
    await form.locator('[name="new_password"]').fill(SET_PASSWORD)
    await form.locator('[name="repeat_password"]').fill(SET_PASSWORD)
    await form.locator('[data-action="save-password"]').click()
    await expect(page.locator("#users-msg")).to_have_attribute("data-kind", "ok")
    await expect(page.locator("#users-msg")).to_contain_text("otto.officer")
    await expect(form).to_have_count(0)
    await expect(otto).to_have_attribute("data-locked", "false")

    assert await attempt_login(running, "otto.officer", SET_PASSWORD) == 200
    assert await attempt_login(running, "otto.officer", PASSWORD) == 401
    assert [e for e in js_errors(page) if "status of 422" not in e] == []
