"""Running the simulated city against a center, through its public device API.

:class:`SimRunner` provisions every device once, then every
``heartbeat_s / speedup`` real seconds runs a *tick*: it advances the patrol
units by the simulated time that passed, makes each device's heartbeat, asks
every registered source for more events, and posts each device's events in
one request (concurrently, over one shared HTTP client) exactly as a real
device would.

Hooks for later simulations
---------------------------
``add_source(source)``
    ``source(tick)`` is called at every tick with a :class:`Tick` and returns
    (or awaits to) the events it generated; each event is sent by the
    device named in its ``source`` (e.g. acoustic pulses for a shot, plate
    reads of passing traffic).
``add_task(factory)``
    ``factory()`` makes a coroutine that runs beside the ticks from
    :meth:`SimRunner.start` to :meth:`SimRunner.stop` (for sources that keep
    their own time); it sends with :meth:`SimRunner.submit`.
``add_devices(devices)``
    provisions extra devices (e.g. community cameras); they heartbeat like
    the others.
``truth.record(kind, **fields)``
    writes a ground-truth fact.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from rtcc.errors import Conflict
from rtcc.events import Event, utcnow
from rtcc.roles import DeviceType
from rtcc.settings import SimSettings
from rtcc.sim.city import City, SimDevice
from rtcc.sim.delivery import Batch, Delivery, SimCounters
from rtcc.sim.heartbeats import heartbeat
from rtcc.sim.truth import TruthLog

log = logging.getLogger(__name__)

Provision = Callable[[str, DeviceType, str, float, float, dict[str, Any]], Awaitable[str]]
"""``provision(device_id, device_type, name, lat, lon, attributes) -> key``.

Registers a device with the center and returns its key. For a device that
already exists it issues a new key (so a restarted simulator can go on).
"""


@dataclass(frozen=True)
class Tick:
    """What a source sees at one tick.

    Attributes
    ----------
    index : int
        Tick number (0 is the one at start).
    sim_time_s : float
        Simulated seconds since start, at the end of this tick.
    dt_s : float
        Simulated seconds since the previous tick.
    now : datetime
        UTC time the devices stamp on this tick's events (the wall clock:
        the center refuses events from its future).
    city : City
        The city, units already moved to this tick.
    rng : random.Random
        The runner's seeded generator.
    truth : TruthLog
        Where to record ground truth.
    """

    index: int
    sim_time_s: float
    dt_s: float
    now: datetime
    city: City
    rng: random.Random
    truth: TruthLog


EventSource = Callable[[Tick], Iterable[Event] | Awaitable[Iterable[Event]]]
"""A generator of events, called at each tick."""


class SimRunner:
    """Drives a simulated city's devices against a center.

    Parameters
    ----------
    city : City
        The city (see :func:`rtcc.sim.city.build_city`).
    provision : Provision
        Registers a device and returns its key.
    http : httpx.AsyncClient
        Shared client; ``httpx.AsyncClient(transport=httpx.ASGITransport(app))``
        runs in-process.
    base_url : str
        The center's address, e.g. ``http://127.0.0.1:8470/``.
    settings : SimSettings
        ``heartbeat_s`` (simulated s between heartbeats), ``speedup``
        (simulated s per real s) and ``seed``.
    truth_path : Path or None
        JSON-lines file for ground truth (see :mod:`rtcc.sim.truth`).
    concurrency : int
        Most requests (and provisioning calls) in flight at once.
    backlog_limit : int
        Most events held for retry while the center is unreachable.
    max_batch : int
        Most events in one request.
    backoff_initial_s, backoff_max_s : float
        First and longest wait between retries, real seconds.
    clock : callable
        UTC time stamped on events (tests may fix it).
    """

    def __init__(
        self,
        city: City,
        *,
        provision: Provision,
        http: httpx.AsyncClient,
        base_url: str,
        settings: SimSettings,
        truth_path: Path | None = None,
        concurrency: int = 16,
        backlog_limit: int = 100_000,
        max_batch: int = 1000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.city = city
        self.settings = settings
        self.base_url = base_url.rstrip("/") + "/"
        self.truth = TruthLog(truth_path)
        self.rng = random.Random(f"{settings.seed}:runner")
        self._provision = provision
        self._clock = clock
        self._concurrency = concurrency
        self._keys: dict[str, str] = {}
        self.unprovisioned: dict[str, str] = {}
        """Devices the center would not provision (id to reason); they stay silent."""
        self.provision_calls = 0
        """How many times the provision callable was called."""
        self._devices: dict[str, SimDevice] = {d.id: d for d in city.devices()}
        self._sources: list[EventSource] = []
        self._task_factories: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._provision_lock = asyncio.Lock()
        self._started = False
        self._tick_index = -1
        self._sim_time_s = 0.0
        self.delivery = Delivery(
            http,
            base_url,
            self._keys,
            concurrency=concurrency,
            backlog_limit=backlog_limit,
            max_batch=max_batch,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )

    # -- state --------------------------------------------------------------------

    @property
    def counters(self) -> SimCounters:
        """Event counts: sent, accepted, duplicates, rejected, backlog, dropped, …"""
        return self.delivery.counters

    @property
    def keys(self) -> dict[str, str]:
        """Device id to key, for the devices provisioned so far (a copy)."""
        return dict(self._keys)

    @property
    def devices(self) -> list[SimDevice]:
        """Every device the runner drives (the city's and any added)."""
        return list(self._devices.values())

    @property
    def sim_time_s(self) -> float:
        """Simulated seconds since start."""
        return self._sim_time_s

    @property
    def running(self) -> bool:
        """Whether the background tasks are running."""
        return bool(self._tasks)

    # -- hooks ----------------------------------------------------------------------

    def add_source(self, source: EventSource) -> None:
        """Call ``source(tick)`` at every tick and send the events it returns."""
        self._sources.append(source)

    def add_task(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``factory()`` from :meth:`start` until :meth:`stop` (started at once if running)."""
        self._task_factories.append(factory)
        if self._tasks:
            self._tasks.append(asyncio.create_task(factory()))

    async def add_devices(self, devices: Iterable[SimDevice]) -> None:
        """Add devices; they are provisioned now if the runner has started, else at start."""
        for d in devices:
            self._devices.setdefault(d.id, d)
        if self._started:
            await self.provision_all()

    # -- provisioning -------------------------------------------------------------------

    async def provision_all(self) -> None:
        """Provision every device not provisioned yet (each exactly once).

        A device the provision callable refuses with
        :class:`rtcc.errors.Conflict` is logged, listed in
        :attr:`unprovisioned` and left silent.
        """
        async with self._provision_lock:
            todo = [
                d for d in self._devices.values() if d.id not in self._keys and d.id not in self.unprovisioned
            ]
            sem = asyncio.Semaphore(self._concurrency)

            async def one(d: SimDevice) -> None:
                async with sem:
                    self.provision_calls += 1
                    try:
                        key = await self._provision(d.id, d.type, d.name, d.lat, d.lon, dict(d.attributes))
                    except Conflict as exc:
                        log.warning("device %s not provisioned: %s", d.id, exc.message)
                        self.unprovisioned[d.id] = exc.message
                        return
                self._keys[d.id] = key
                x, y = self.city.to_xy(d.lat, d.lon)
                self.truth.record("device", **d.to_dict(), x=round(x, 3), y=round(y, 3))

            await asyncio.gather(*(one(d) for d in todo))
            self.truth.flush()

    # -- ticks ----------------------------------------------------------------------------

    async def tick(self, dt_s: float | None = None) -> int:
        """Advance the city by ``dt_s`` simulated seconds and send this tick's events.

        Parameters
        ----------
        dt_s : float, optional
            Simulated seconds since the last tick; default ``settings.heartbeat_s``.

        Returns
        -------
        int
            Number of events handed to delivery.
        """
        dt = self.settings.heartbeat_s if dt_s is None else dt_s
        self.city.advance(dt)
        self._sim_time_s += dt
        self._tick_index += 1
        now = self._clock()
        t = Tick(self._tick_index, self._sim_time_s, dt, now, self.city, self.rng, self.truth)
        self._record_units(t)
        events: list[Event] = [
            heartbeat(d, self.city, now, self.rng) for d in self._devices.values() if d.id in self._keys
        ]
        for source in self._sources:
            out = source(t)
            if inspect.isawaitable(out):
                out = await out
            events.extend(out)
        self.truth.flush()
        return await self.submit(events)

    async def submit(self, events: Iterable[Event]) -> int:
        """Send events now, each by the device named in its ``source``.

        Events from devices that are not provisioned are counted as
        ``unroutable`` and not sent.

        Returns
        -------
        int
            Number of events handed to delivery.
        """
        by_device: dict[str, list[dict[str, Any]]] = {}
        unroutable = 0
        for e in events:
            if e.source not in self._keys:
                unroutable += 1
                continue
            by_device.setdefault(e.source, []).append(e.model_dump(mode="json"))
        if unroutable:
            self.delivery.count_unroutable(unroutable)
            log.debug("%d event(s) name no provisioned device; not sent", unroutable)
        await self.delivery.send(Batch(dev, evs) for dev, evs in by_device.items())
        return sum(len(v) for v in by_device.values())

    async def upload_plate_image(self, device_id: str, image: bytes, fields: dict[str, str]) -> bool:
        """Upload a plate camera's picture (``POST /api/v1/plates/images``) with its device key.

        ``fields`` are the form fields (``time``, ``plate``, ``box``, ``confidence``, …). True when
        the center took it (201, or 200 for a repeat); False when the device has no key, the
        center is unreachable or refused it (the caller then sends the read another way).
        """
        key = self._keys.get(device_id)
        if key is None:
            return False
        try:
            resp = await self.delivery.http.post(
                self.base_url + "api/v1/plates/images",
                files={"image": ("read.jpg", image, "image/jpeg")},
                data=fields,
                headers={"Authorization": f"Device {key}"},
            )
        except httpx.TransportError as exc:
            log.debug("plate image of %s not uploaded: %s", device_id, exc)
            return False
        if resp.status_code not in (200, 201):
            log.debug("plate image of %s refused: HTTP %d %s", device_id, resp.status_code, resp.text[:200])
            return False
        return True

    async def flush(self) -> bool:
        """Try to deliver the backlog now; True when it is empty afterwards."""
        return await self.delivery.flush()

    def _record_units(self, t: Tick) -> None:
        if not self.truth.enabled:
            return
        for u in self.city.units:
            x, y = u.xy
            lat, lon = self.city.to_latlon(x, y)
            self.truth.record(
                "unit",
                tick=t.index,
                sim_t=round(t.sim_time_s, 3),
                unit=u.id,
                lat=round(lat, 7),
                lon=round(lon, 7),
                x=round(x, 3),
                y=round(y, 3),
                heading_deg=round(u.heading_deg, 1),
                speed_mps=round(u.speed_mps, 2),
                road=u.road,
                odometer_m=round(u.odometer_m, 2),
                battery_pct=round(u.battery_pct, 2),
            )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Provision every device, send a first heartbeat, then run in the background.

        Calling it again while running does nothing.
        """
        if self._tasks:
            return
        self._started = True
        s = self.settings
        self.truth.record(
            "start",
            city=self.city.name,
            seed=s.seed,
            center=[self.city.center_lat, self.city.center_lon],
            extent_m=self.city.extent_m,
            heartbeat_s=s.heartbeat_s,
            speedup=s.speedup,
        )
        await self.provision_all()
        self._tasks = [
            asyncio.create_task(self._run_ticks(), name="sim-ticks"),
            asyncio.create_task(self.delivery.run_retries(), name="sim-retries"),
        ]
        self._tasks.extend(asyncio.create_task(f()) for f in self._task_factories)

    async def stop(self) -> None:
        """Cancel the background tasks and wait for them; close the truth file.

        Events not yet answered stay in the backlog (see :attr:`counters`);
        calling it again does nothing.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, Exception):
                log.error("simulator task ended with an error: %r", r)
        if self._started:
            self._started = False
            self.truth.record("stop", counters=asdict(self.counters))
        self.truth.close()

    async def _run_ticks(self) -> None:
        """Tick every ``heartbeat_s / speedup`` real seconds, moving by the time that passed."""
        loop = asyncio.get_running_loop()
        period = self.settings.heartbeat_s / self.settings.speedup
        await self._safe_tick(0.0)
        last = loop.time()
        next_at = last + period
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = loop.time()
            dt_sim = (now - last) * self.settings.speedup
            last = now
            next_at += period
            if next_at < now:  # fell behind: skip missed ticks rather than burst
                next_at = now + period
            await self._safe_tick(dt_sim)

    async def _safe_tick(self, dt_s: float) -> None:
        try:
            await self.tick(dt_s)
        except Exception:
            log.exception("simulator tick failed; going on with the next")
