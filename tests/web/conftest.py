"""Fixtures of the browser tests: a real Chromium, a center with a small simulated city."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import Running, StartCenter

CHROMIUM = os.environ.get("RTCC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's assertions wait up to 5 s by default: too short on a loaded 2-core CI machine (a plate
# track once took longer to draw while the whole suite ran). A wait, not a timing assertion.
expect.set_options(timeout=20_000)

SIM = {"enabled": True, "extent_m": 1200, "patrol_units": 3, "heartbeat_s": 1.0}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (set RTCC_TEST_CHROMIUM)"
        if os.environ.get("RTCC_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " but RTCC_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def city(start_center: StartCenter) -> Running:
    """A center running a small, fast simulated city."""
    return await start_center(sim=SIM)
