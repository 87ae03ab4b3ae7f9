"""Fixtures for the body-cam tests: a center with the bodycam processor, devices that speak the protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rtcc.bodycam.device import Bodycam, HttpsLink, run_bodycam
from rtcc.roles import DeviceType, Role
from tests.conftest import Running, StartCenter

LAT0, LON0 = 33.5186, -86.8104
M_PER_DEG_LAT = 111_195.0


def north_of(metres: float) -> tuple[float, float]:
    """A point ``metres`` north of (LAT0, LON0)."""
    return LAT0 + metres / M_PER_DEG_LAT, LON0


@dataclass
class Rig:
    """A running center, signed-in clients and simulated body cams."""

    run: Running
    clients: dict[Role, httpx.AsyncClient]
    http: httpx.AsyncClient
    cams: dict[str, Bodycam] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def link(self) -> HttpsLink:
        return HttpsLink(self.http, self.run.url)

    async def add_cam(
        self, device_id: str, at_m: float = 0.0, *, start: bool = True, mqtt: str | None = None, **kw: Any
    ) -> Bodycam:
        """Provision a body cam ``at_m`` metres north of the centre, heartbeat there, and run it."""
        lat, lon = north_of(at_m)
        key = await self.run.center.provision_device(
            device_id, DeviceType.bodycam, f"cam {device_id}", lat, lon
        )
        cam = Bodycam(device_id, key, ack_delay_s=kw.pop("ack_delay_s", 0.05), **kw)
        self.cams[device_id] = cam
        assert await self.link.send(cam, [cam.heartbeat(lat, lon, 80.0)])
        if start:
            ready = asyncio.Event()
            self.tasks.append(
                asyncio.create_task(
                    run_bodycam(
                        cam, self.link, poll_wait_s=5.0, mqtt=mqtt, https_poll=mqtt is None, ready=ready
                    )
                )
            )
            await asyncio.wait_for(ready.wait(), 30)
        return cam

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for c in self.clients.values():
            await c.aclose()
        await self.http.aclose()


MakeRig = Callable[..., Any]


@pytest.fixture
async def make_rig(start_center: StartCenter) -> AsyncIterator[MakeRig]:
    rigs: list[Rig] = []

    async def _make(processors: tuple[str, ...] = ("recorder", "health", "bodycam"), **extra: Any) -> Rig:
        bodycam = {"ack_timeout_s": 0.5, "retry_check_s": 0.05, **extra.pop("bodycam", {})}
        run = await start_center(processors=processors, bodycam=bodycam, **extra)
        clients: dict[Role, httpx.AsyncClient] = {}
        for role in (Role.admin, Role.supervisor, Role.analyst, Role.officer, Role.auditor):
            name = "admin" if role is Role.admin else f"{role.value}1"
            if role is not Role.admin:
                run.add_user(name, role)
            clients[role] = await run.login(name)
        rig = Rig(run, clients, httpx.AsyncClient(timeout=30))
        rigs.append(rig)
        return rig

    yield _make
    for r in rigs:
        await r.close()


async def audit_rows(rig: Rig, action: str) -> list[dict[str, Any]]:
    r = await rig.clients[Role.admin].get("/api/v1/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)
