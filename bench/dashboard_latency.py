"""Dashboard latency: an alert published on the bus → its marker on the map in a real browser.

Starts a center in this process (embedded: SQLite + in-process bus; or production:
PostgreSQL/PostGIS + NATS JetStream), opens the dashboard in headless Chromium
(Playwright) signed in as the admin, waits for the live WebSocket, then publishes
``--alerts`` alerts one after another (``--gap-s`` apart) at random positions in view.

The page watches the map with a ``MutationObserver``: when a marker with the alert's
``data-alert-id`` appears it records the wall clock (``performance.timeOrigin +
performance.now()``), and again at the next animation frame — the frame that paints it.
Publisher and browser share the machine's clock.

Figures (milliseconds): ``to_dom_*`` (publish → marker in the DOM) and ``to_frame_*``
(publish → the frame that shows it), p50 / p90 / p99 / max, plus how many were missed.
Written to ``bench/results/dashboard_latency.jsonl``.

Usage::

    python bench/dashboard_latency.py --alerts 200
    eval "$(bash scripts/services.sh start)"
    python bench/dashboard_latency.py --mode production
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
from rtcc.events import Alert, Position, subject_for
from rtcc.settings import Settings

WATCH = """() => {
  window.__seen = {};
  const note = (node) => {
    const id = node.dataset && node.dataset.alertId;
    if (!id || window.__seen[id]) return;
    const dom = performance.timeOrigin + performance.now();
    window.__seen[id] = { dom };
    requestAnimationFrame(() => { window.__seen[id].frame = performance.timeOrigin + performance.now(); });
  };
  new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes') note(m.target);
      for (const n of m.addedNodes || []) if (n.nodeType === 1) note(n);
    }
  }).observe(document.getElementById('map'), { subtree: true, childList: true, attributes: true,
                                               attributeFilter: ['data-alert-id'] });
}"""


def pct(v: list[float], q: float) -> float | None:
    if not v:
        return None
    s = sorted(v)
    return round(s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))], 1)


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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    settings = settings_for(args, Path(tempfile.mkdtemp(prefix="rtcc-bench-dash-")))
    center = Center(settings, auto_migrate=True)
    await center.start()
    assert center.bus is not None
    lat0, lon0 = settings.sim.center_lat, settings.sim.center_lon
    to_dom: list[float] = []
    to_frame: list[float] = []
    missed = 0
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
            await page.goto(center.base_url)
            await page.fill("#login-username", "admin")
            await page.fill("#login-password", ADMIN_PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_selector('#ws-status[data-state="live"]', timeout=30_000)
            await page.wait_for_timeout(500)
            await page.evaluate(WATCH)
            sent: dict[str, float] = {}
            for i in range(args.warmup + args.alerts):
                pos = Position(lat=lat0 + rng.uniform(-0.004, 0.004), lon=lon0 + rng.uniform(-0.004, 0.004))
                alert = Alert(
                    source="bench", kind="bench", severity="warning", title=f"bench alert {i}", pos=pos
                )
                t0 = time.time() * 1000.0
                await center.bus.publish(subject_for("alert"), alert.to_json(), msg_id=str(alert.event_id))
                if i >= args.warmup:
                    sent[str(alert.alert_id)] = t0
                await asyncio.sleep(args.gap_s)
            await page.wait_for_timeout(int(args.timeout_s * 1000))
            seen: dict[str, dict[str, float]] = await page.evaluate("() => window.__seen")
            for aid, t0 in sent.items():
                s = seen.get(aid)
                if not s:
                    missed += 1
                    continue
                to_dom.append(s["dom"] - t0)
                if "frame" in s:
                    to_frame.append(s["frame"] - t0)
            await browser.close()
    finally:
        await center.stop()
    return {
        "alerts": args.alerts,
        "missed": missed,
        **{f"to_dom_p{q}_ms": pct(to_dom, q) for q in (50, 90, 99)},
        "to_dom_max_ms": round(max(to_dom), 1) if to_dom else None,
        **{f"to_frame_p{q}_ms": pct(to_frame, q) for q in (50, 90, 99)},
        "to_frame_max_ms": round(max(to_frame), 1) if to_frame else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--gap-s", type=float, default=0.2, help="pause between alerts, s")
    ap.add_argument("--timeout-s", type=float, default=5.0, help="wait for the last markers, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chromium", default=os.environ.get("RTCC_TEST_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--database-url", default=os.environ.get("RTCC_BENCH_PG_URL"))
    ap.add_argument("--nats-url", default=os.environ.get("RTCC_TEST_NATS_URL"))
    args = ap.parse_args()
    if args.mode == "production" and not (args.database_url and args.nats_url):
        ap.error("production needs --database-url and --nats-url (or RTCC_BENCH_PG_URL / RTCC_TEST_NATS_URL)")
    figures = asyncio.run(run(args))
    params = {k: v for k, v in vars(args).items() if k not in ("database_url", "nats_url", "chromium")}
    write_result("dashboard_latency", figures, params)


if __name__ == "__main__":
    main()
