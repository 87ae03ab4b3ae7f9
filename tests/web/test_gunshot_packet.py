"""The gunshot section of the incident packet in a real browser: a player per (sensor, round) that
has audio, a plain statement when no audio was sent, and the location's facts (position, round
intervals, the temperature behind the speed of sound and where it came from)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    bang_flac,
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

DEAF, BOTH = "ac-t01", "ac-t05"
"""DEAF hears the first of the two rounds only; BOTH hears both."""


async def _pending(running: Running, *, audio: bool) -> dict[str, object]:
    """A two-round incident in the review band, from real pulses through the ingest."""
    arr = await provision_array(running)
    pulses = shot_pulses(arr, (40.0, -60.0), rounds=(0.0, 0.5), audio=audio)
    if audio:
        use_classifier(pipeline_of(running), 0.6)  # review band (0.35 … 0.85)
        pulses = [
            p.model_copy(update={"audio_flac_b64": bang_flac(seed=i + 1)})
            for i, p in enumerate(pulses)
            if not (p.device == DEAF and i % 2 == 1)
        ]
    # without audio the confidence is acoustic.no_audio_confidence (0.5): the review band too
    await post_pulses(running, arr, pulses)
    admin = await running.login("admin")
    async with admin:

        async def pending() -> dict[str, object] | None:
            r = await admin.get("/api/v1/gunshots", params={"status": "pending_review"})
            items = r.json()["items"]
            return items[0] if items and items[0]["rounds"] == 2 else None

        inc: dict[str, object] = await eventually(pending, what="a pending two-round incident")
    return inc


async def _open_from_queue(page: Page, iid: object) -> None:
    await page.click('#side-tabs [data-tab="alerts"]')
    await page.locator('li.alert-row[data-kind="gunshot_review"] [data-action="open"]').click()
    await expect(page.locator("#packet-view")).to_have_attribute("data-ref-id", str(iid))


async def test_each_round_a_sensor_heard_has_its_player(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    inc = await _pending(running, audio=True)
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await _open_from_queue(page, inc["id"])
    view = page.locator("#packet-view")
    audio = view.locator('[data-section="audio"]')
    both = audio.locator(f'.audio-row[data-sensor="{BOTH}"] .audio-round')
    await expect(both).to_have_count(2)
    await expect(both.nth(1)).to_have_attribute("data-round", "2")
    await expect(both.nth(1)).to_contain_text("round 2")
    await expect(audio.locator(f'.audio-row[data-sensor="{DEAF}"] .audio-round')).to_have_count(1)
    await expect(audio.locator("audio")).to_have_count(9 * 2 - 1)
    # the player's address serves that round's FLAC (no dead player)
    src = await both.nth(1).locator("audio").get_attribute("src")
    assert src is not None and "round=2" in src

    async def served() -> bool:
        status = await page.evaluate("(u) => fetch(u).then((r) => r.status)", src)
        return bool(status == 200)

    await eventually(served, what="round 2's audio")
    await expect(view.locator(".verify-banner")).to_contain_text("listen to the sensors' audio")
    # the location's facts
    await expect(view.locator(".gunshot-intervals")).to_contain_text("0.50 s")
    await expect(view.locator(".gunshot-position")).to_have_text(f"{inc['lat']:.5f}, {inc['lon']:.5f}")
    await expect(view.locator(".gunshot-temperature")).to_have_text("20.0 °C (configured value)")
    assert js_errors(page) == []


async def test_no_audio_is_said_and_no_player_drawn(
    browser: Browser,  # noqa: F811
    start_center: StartCenter,
) -> None:
    running = await start_center()
    running.add_user("analyst1", Role.analyst)
    inc = await _pending(running, audio=False)
    page = await new_page(browser)
    await open_dashboard(page, running, "analyst1")
    await _open_from_queue(page, inc["id"])
    view = page.locator("#packet-view")
    await expect(view.locator('[data-section="audio"]')).to_contain_text(
        "No audio was sent for this incident"
    )
    await expect(view.locator("audio")).to_have_count(0)
    banner = view.locator(".verify-banner")
    await expect(banner).to_contain_text("no audio was sent")
    await expect(banner).not_to_contain_text("listen")
    assert js_errors(page) == []
