"""Dashboard load with many markers: sign-in → every device marker on the map, in a real browser.

Starts a center in this process (embedded SQLite, or production PostgreSQL + NATS),
registers ``--devices`` devices (default 10,000: acoustic sensors, plate cameras, city
cameras and body-cam units in the usual proportions) spread over the city, then, for
each of ``--runs`` fresh browser contexts (headless Chromium, Playwright), signs in as
the admin and times:

* ``devices_api_ms`` — the ``GET /api/v1/devices`` request (from the page's resource
  timing: request start → response end);
* ``to_markers_ms`` — from the click on "Sign in" until every device has its marker on
  the map (``#map[data-device-count]``; above ``DOM_MARKER_LIMIT`` devices the fixed
  ones are dots on one canvas, body-cam units stay DOM markers);
* ``to_frame_ms`` — the same, to the next animation frame (the markers painted);
* ``pan_frame_ms`` — one map pan with every marker on it: ``panBy`` → the next frame.

Median and max over the runs. Written to ``bench/results/dashboard_markers.jsonl``.

Usage::

    python bench/dashboard_markers.py --devices 10000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ADMIN_PASSWORD, SECRET, write_result
from playwright.async_api import async_playwright

from rtcc.app import Center
from rtcc.roles import DeviceType
from rtcc.settings import Settings

MIX = ((DeviceType.acoustic_sensor, "ac", 0.70), (DeviceType.plate_camera, "lpr", 0.15),
       (DeviceType.camera, "cam", 0.10), (DeviceType.bodycam, "bwc", 0.05))  # fmt: skip

WAIT_ALL = """(n) => new Promise((ok) => {
  const check = () => {
    const map = document.getElementById('map');
    if (map && Number(map.dataset.deviceCount || 0) >= n) {
      const dom = performance.now();
      requestAnimationFrame(() => ok({ dom, frame: performance.now() }));
    } else requestAnimationFrame(check);
  };
  check();
})"""

PAN = """() => new Promise((ok) => {
  const map = document.getElementById('map');
  const t0 = performance.now();
  map.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', keyCode: 39, bubbles: true }));
  requestAnimationFrame(() => requestAnimationFrame(() => ok(performance.now() - t0)));
})"""


def settings_for(args: argparse.Namespace, data_dir: Path) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "server": {"host": "127.0.0.1", "port": 0},
        "security": {"secret_key": SECRET, "admin_password": ADMIN_PASSWORD},
        "sim": {"enabled": False},
        "log_level": "WARNING",
    }
    if args.mode == "production":
        base["mode"] = "production"
        base["database"] = {"url": args.database_url}
        base["bus"] = {
            "engine": "nats",
            "nats_url": args.nats_url,
            "stream": f"RTCCB{uuid.uuid4().hex[:8].upper()}",
        }
    return Settings(**base)


async def register(center: Center, n: int, seed: int) -> float:
    """Register ``n`` devices on a jittered grid over ~3 × 3 km; seconds taken."""
    from rtcc.oversight.device_keys import register_device

    assert center.store is not None
    rng = random.Random(seed)
    lat0, lon0 = center.settings.sim.center_lat, center.settings.sim.center_lon
    side = math.ceil(math.sqrt(n))
    rows = []
    i = 0
    for dtype, prefix, share in MIX:
        for k in range(round(n * share) if dtype is not MIX[-1][0] else n - i):
            gx, gy = i % side, i // side
            lat = lat0 + (gy / side - 0.5) * 0.027 + rng.uniform(-2e-4, 2e-4)
            lon = lon0 + (gx / side - 0.5) * 0.032 + rng.uniform(-2e-4, 2e-4)
            rows.append((f"{prefix}-{k:05d}", dtype, f"{prefix} {k}", lat, lon))
            i += 1
    t0 = time.perf_counter()
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]

        def _do(s: Any, chunk: list[tuple[str, DeviceType, str, float, float]] = chunk) -> None:
            for did, dtype, name, lat, lon in chunk:
                register_device(s, did, dtype, name, lat, lon, None, {})

        await center.store.write(_do)
    return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_for(args, Path(tempfile.mkdtemp(prefix="rtcc-bench-markers-")))
    center = Center(settings, auto_migrate=True)
    await center.start()
    api_ms: list[float] = []
    dom_ms: list[float] = []
    frame_ms: list[float] = []
    pan_ms: list[float] = []
    try:
        reg_s = await register(center, args.devices, args.seed)
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for _ in range(args.runs):
                context = await browser.new_context(viewport={"width": 1440, "height": 900})
                page = await context.new_page()
                page.set_default_timeout(args.timeout_s * 1000)
                await page.goto(center.base_url)
                await page.fill("#login-username", "admin")
                await page.fill("#login-password", ADMIN_PASSWORD)
                t_click = await page.evaluate("() => performance.now()")
                await page.click("#login-submit")
                t = await page.evaluate(WAIT_ALL, args.devices)
                dom_ms.append(t["dom"] - t_click)
                frame_ms.append(t["frame"] - t_click)
                api = await page.evaluate(
                    """() => performance.getEntriesByType('resource')
                          .filter((e) => /\\/api\\/v1\\/devices$/.test(e.name))
                          .map((e) => e.responseEnd - e.requestStart)"""
                )
                if api:
                    api_ms.append(api[-1])
                await page.focus("#map")
                pan_ms.append(await page.evaluate(PAN))
                await context.close()
            await browser.close()
    finally:
        await center.stop()

    def med(v: list[float]) -> float | None:
        return round(statistics.median(v), 1) if v else None

    return {
        "devices": args.devices,
        "runs": args.runs,
        "register_s": round(reg_s, 2),
        "devices_api_ms_median": med(api_ms),
        "to_markers_ms_median": med(dom_ms),
        "to_markers_ms_max": round(max(dom_ms), 1) if dom_ms else None,
        "to_frame_ms_median": med(frame_ms),
        "to_frame_ms_max": round(max(frame_ms), 1) if frame_ms else None,
        "pan_frame_ms_median": med(pan_ms),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout-s", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chromium", default=os.environ.get("RTCC_TEST_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--database-url", default=os.environ.get("RTCC_BENCH_PG_URL"))
    ap.add_argument("--nats-url", default=os.environ.get("RTCC_TEST_NATS_URL"))
    args = ap.parse_args()
    if args.mode == "production" and not (args.database_url and args.nats_url):
        ap.error("production needs --database-url and --nats-url (or RTCC_BENCH_PG_URL / RTCC_TEST_NATS_URL)")
    figures = asyncio.run(run(args))
    params = {k: v for k, v in vars(args).items() if k not in ("database_url", "nats_url", "chromium")}
    write_result("dashboard_markers", figures, params)


if __name__ == "__main__":
    main()
