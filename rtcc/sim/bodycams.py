"""Simulated body cams speaking the body-cam protocol (docs/bodycam-protocol.md).

Every patrol unit's body cam (``bwc-01``…) listens for the center's commands
on the HTTPS long-poll, as a real device would, obeys valid ones (refusing
replayed, forged and expired commands) and acknowledges them after a short,
seeded delay (0.2–1.0 s). The unit's :attr:`~rtcc.sim.units.PatrolUnit.recording`
follows, so its heartbeats and the map show it recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import httpx

from rtcc.bodycam.device import Bodycam, HttpsLink, run_bodycam

log = logging.getLogger(__name__)

ACK_DELAY_S = (0.2, 1.0)
"""Bounds of a simulated officer's acknowledgement delay, seconds."""


def install(city: Any, runner: Any, center: Any) -> None:
    """Simulator hook (see ``rtcc.app.SIM_INSTALLERS``): run every unit's body cam."""
    units = list(city.units)
    if not units:
        return
    seed = getattr(getattr(runner, "settings", None), "seed", 7)

    async def run_all() -> None:
        rng = random.Random(f"{seed}:bodycams")
        keys: dict[str, str] = runner.keys
        async with httpx.AsyncClient(timeout=60.0) as http:
            link = HttpsLink(http, center.base_url)
            tasks = []
            for unit in units:
                key = keys.get(unit.bodycam_id)
                if key is None:
                    log.warning("body cam %s is not provisioned; it will not hear commands", unit.bodycam_id)
                    continue

                def follow(recording: bool, unit: Any = unit) -> None:
                    unit.recording = recording

                cam = Bodycam(unit.bodycam_id, key, ack_delay_s=rng.uniform(*ACK_DELAY_S), on_change=follow)
                tasks.append(asyncio.create_task(run_bodycam(cam, link), name=f"sim-{unit.bodycam_id}"))
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    runner.add_task(run_all)
