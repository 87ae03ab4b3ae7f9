"""A fleet of simulated body cams: provision them, place them, run them against a center.

Used by ``rtcc bodycam simulate`` and ``bench/bodycam_activation.py``. Each
device runs :func:`rtcc.bodycam.device.run_bodycam` (HTTPS long-poll, and
MQTT when given), heartbeats its position (a slow random walk) and
acknowledges commands after ``ack_delay_s``; a seeded share never acknowledges.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import dataclass, field

import httpx

from rtcc.bodycam.device import Bodycam, HttpsLink, run_bodycam

DEVICES_PER_CLIENT = 25
"""Simulated devices sharing one HTTP connection pool."""

M_PER_DEG_LAT = 111_195.0
"""Metres per degree of latitude (mean sphere)."""


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``, ``north_m`` metres from (lat, lon) (local flat approximation)."""
    return lat + north_m / M_PER_DEG_LAT, lon + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat)))


def scatter(n: int, lat: float, lon: float, spread_m: float, rng: random.Random) -> list[tuple[float, float]]:
    """``n`` positions uniform in a square of side ``spread_m`` centred on (lat, lon)."""
    h = spread_m / 2
    return [offset(lat, lon, rng.uniform(-h, h), rng.uniform(-h, h)) for _ in range(n)]


async def provision(
    http: httpx.AsyncClient,
    center: str,
    token: str,
    ids: list[str],
    positions: list[tuple[float, float]],
) -> dict[str, str]:
    """Register body cams through ``POST /api/v1/devices`` (an admin's token); rotate keys of existing ones.

    Raises
    ------
    httpx.HTTPStatusError
        When the center refuses (e.g. the token is not an admin's).
    """
    base = center.rstrip("/") + "/api/v1/devices"
    headers = {"authorization": f"Bearer {token}"}
    keys: dict[str, str] = {}
    sem = asyncio.Semaphore(16)

    async def one(device_id: str, pos: tuple[float, float]) -> None:
        async with sem:
            body = {
                "id": device_id,
                "type": "bodycam",
                "name": f"Simulated body cam {device_id}",
                "lat": pos[0],
                "lon": pos[1],
                "attributes": {"simulated": True},
            }
            r = await http.post(base, json=body, headers=headers)
            if r.status_code == 409:
                r = await http.post(f"{base}/{device_id}/rotate-key", headers=headers)
            r.raise_for_status()
            keys[device_id] = str(r.json()["key"])

    await asyncio.gather(*(one(d, p) for d, p in zip(ids, positions, strict=True)))
    return {d: keys[d] for d in ids}


@dataclass
class Fleet:
    """Simulated body cams running against one center.

    Parameters
    ----------
    center : str
        The center's base URL.
    keys : dict
        Device id to device key.
    positions : dict
        Device id to its starting (lat, lon).
    mqtt : str or None
        ``host:port`` of the NATS MQTT listener, to hear commands on MQTT too.
    ack_delay_s : float
        Seconds before a device acknowledges.
    no_ack_share : float
        Share of devices (seeded) that never acknowledge.
    heartbeat_s : float or None
        Seconds between heartbeats (None: one heartbeat at start only).
    walk_mps : float
        Speed of each device's random walk, m/s.
    seed : int
        Random seed.
    """

    center: str
    keys: dict[str, str]
    positions: dict[str, tuple[float, float]]
    mqtt: str | None = None
    ack_delay_s: float = 0.3
    no_ack_share: float = 0.0
    heartbeat_s: float | None = 10.0
    walk_mps: float = 0.0
    seed: int = 7
    poll_wait_s: float = 20.0
    cams: dict[str, Bodycam] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def start(self) -> None:
        """Send each device's first heartbeat, then run every device in the background."""
        rng = random.Random(self.seed)
        # one small connection pool per DEVICES_PER_CLIENT devices (like separate devices, and
        # cheaper than one pool juggling hundreds of connections)
        n_clients = max(1, math.ceil(len(self.keys) / DEVICES_PER_CLIENT))
        self._clients = [
            httpx.AsyncClient(
                timeout=60.0,
                limits=httpx.Limits(
                    max_connections=2 * DEVICES_PER_CLIENT + 4,
                    max_keepalive_connections=2 * DEVICES_PER_CLIENT + 4,
                ),
            )
            for _ in range(n_clients)
        ]
        links = [HttpsLink(c, self.center) for c in self._clients]
        for device_id, key in self.keys.items():
            self.cams[device_id] = Bodycam(
                device_id, key, ack_delay_s=self.ack_delay_s, never_ack=rng.random() < self.no_ack_share
            )
        links_of = {d: links[i // DEVICES_PER_CLIENT] for i, d in enumerate(self.cams)}
        sem = asyncio.Semaphore(32)

        async def first(cam: Bodycam) -> None:
            async with sem:
                lat, lon = self.positions[cam.device_id]
                await links_of[cam.device_id].send(
                    cam, [cam.heartbeat(lat, lon, round(rng.uniform(40, 100), 1))]
                )

        await asyncio.gather(*(first(c) for c in self.cams.values()))
        readies = []
        for cam in self.cams.values():
            ready = asyncio.Event()
            readies.append(ready)
            self._tasks.append(
                asyncio.create_task(
                    run_bodycam(
                        cam,
                        links_of[cam.device_id],
                        mqtt=self.mqtt,
                        poll_wait_s=self.poll_wait_s,
                        position=self._walker(cam.device_id, rng) if self.heartbeat_s else None,
                        heartbeat_s=self.heartbeat_s,
                        ready=ready,
                    ),
                    name=f"bodycam-{cam.device_id}",
                )
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)

    def _walker(self, device_id: str, rng: random.Random) -> _Walk:
        return _Walk(
            self.positions[device_id],
            rng.uniform(0, 2 * math.pi),
            self.walk_mps * (self.heartbeat_s or 0.0),
            rng,
        )

    @property
    def recording(self) -> int:
        """Devices recording now."""
        return sum(c.recording for c in self.cams.values())

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for c in self._clients:
            await c.aclose()
        self._clients.clear()


class _Walk:
    """A slow random walk: each call moves ``step_m`` with a wandering heading."""

    def __init__(self, start: tuple[float, float], heading: float, step_m: float, rng: random.Random) -> None:
        self.pos = start
        self.heading = heading
        self.step_m = step_m
        self.rng = rng

    def __call__(self) -> tuple[float, float]:
        if self.step_m > 0:
            self.heading += self.rng.gauss(0, 0.5)
            lat, lon = self.pos
            self.pos = offset(
                lat, lon, self.step_m * math.sin(self.heading), self.step_m * math.cos(self.heading)
            )
        return self.pos
