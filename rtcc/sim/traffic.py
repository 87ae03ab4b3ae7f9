"""Simulated traffic past the plate cameras, some of it hotlisted, some of it misread.

Vehicles drive the arterials the way patrol cars do (the same movement model,
:class:`rtcc.sim.units.PatrolUnit`: 8–15 m/s, straight on more often than
turning). Each tick the vehicles are moved in steps of :data:`STEP_S`
simulated seconds, and

* a **fixed camera** reads a vehicle when it is within the camera's range
  (35 m) and field of view (40°) around its heading, once per pass;
* a **mobile camera** (on a patrol car) reads the vehicles within its range
  at the end of the tick.

Reads are what an edge recognizer sends (:class:`~rtcc.events.PlateRead`,
posted through the device ingest with the camera's key): the plate text,
confidence, the vehicle's heading and direction of travel. With probability
``misread_rate`` a read is wrong the way real readers are wrong — one
character swapped for a look-alike (0/O/D/Q, 1/I, 2/Z, 5/S, 8/B, 6/G) or,
rarely, one character lost — at a lower confidence.

At start a demo hotlist ``sim-ncic`` (:data:`DEMO_SOURCE`) is imported with a
share of the vehicles' plates (stolen vehicles and plates, a wanted person, a
missing person), so the demo shows reads and hits arriving; the look-alike
matching then also turns many misreads of those plates into hits. Ground
truth (``plate_read`` facts: true plate, read plate, camera, misread) goes
to the truth log.

In the running simulator (:func:`install`) each read goes out with a rendered
photo (:mod:`rtcc.sim.plate_photos`) the way an edge reader uploads one —
``POST /api/v1/plates/images`` with the plate, its box and confidence — so the
center keeps the vehicle image and the plate crop and a hit shows the photo
beside the hotlist entry (:class:`ReadPhotos`). A read whose upload fails goes
through the event ingest without a photo (nothing is lost).
"""

from __future__ import annotations

import logging
import math
import random
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

from rtcc.events import Event, PlateRead, Position
from rtcc.plates.hotlist_import import Category, ParsedEntry
from rtcc.plates.matching import LOOKALIKE_CLASSES
from rtcc.sim.city import City, SimDevice, compass
from rtcc.sim.geometry import Point, bearing_deg, distance
from rtcc.sim.runner import SimRunner, Tick
from rtcc.sim.units import PatrolUnit

log = logging.getLogger(__name__)

STEP_S = 1.0
"""Simulated seconds between the positions checked against the fixed cameras."""

REREAD_AFTER_S = 30.0
"""A camera reads the same vehicle again only after this many simulated seconds (one read per pass)."""

DEMO_SOURCE = "sim-ncic"
"""The hotlist the simulator imports at start."""

Direction = Literal["N", "NE", "E", "SE", "S", "SW", "W", "NW"]

_LOOKALIKE = {c: [o for o in cls if o != c] for cls in LOOKALIKE_CLASSES for c in cls}
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q on most plates


def random_plate(rng: random.Random) -> str:
    """A plate in one of three common US layouts (e.g. ``ABC1234``, ``1AB2345``, ``AB12345``)."""
    digits = string.digits
    style = rng.random()
    if style < 0.5:
        return "".join(rng.choices(_LETTERS, k=3)) + "".join(rng.choices(digits, k=4))
    if style < 0.8:
        return (
            rng.choice("123456789") + "".join(rng.choices(_LETTERS, k=2)) + "".join(rng.choices(digits, k=4))
        )
    return "".join(rng.choices(_LETTERS, k=2)) + "".join(rng.choices(digits, k=5))


def misread(plate: str, rng: random.Random, drop_share: float = 0.15) -> str:
    """``plate`` as a reader gets it wrong: one look-alike swapped, or (``drop_share``) one character lost.

    A plate with no look-alike character loses a character instead.
    """
    swappable = [i for i, c in enumerate(plate) if c in _LOOKALIKE]
    if swappable and rng.random() >= drop_share:
        i = rng.choice(swappable)
        return plate[:i] + rng.choice(_LOOKALIKE[plate[i]]) + plate[i + 1 :]
    i = rng.randrange(len(plate))
    return (plate[:i] + plate[i + 1 :]) or plate


@dataclass
class Vehicle:
    """A car in traffic: its plate and where it drives."""

    plate: str
    car: PatrolUnit
    hotlisted: Category | None = None


@dataclass(frozen=True)
class FixedCamera:
    """A fixed plate camera in local metres."""

    device: SimDevice
    xy: Point
    heading_deg: float
    fov_deg: float
    range_m: float

    def sees(self, p: Point) -> bool:
        """Whether ``p`` (metres) is within range and inside the field of view."""
        d = distance(self.xy, p)
        if d > self.range_m or d < 1.0:
            return False
        off = abs((bearing_deg(self.xy, p) - self.heading_deg + 180.0) % 360.0 - 180.0)
        return off <= self.fov_deg / 2.0


class Traffic:
    """A source of plate reads for :class:`~rtcc.sim.runner.SimRunner` (see the module docstring).

    Parameters
    ----------
    city : City
        The city (roads, cameras, patrol units).
    vehicles : int
        Vehicles in traffic.
    hotlisted_share : float
        Share of the vehicles on the demo hotlist.
    misread_rate : float
        Share of reads that are wrong.
    seed : int or str or None
        Seed (default: derived from the city's).
    """

    def __init__(
        self,
        city: City,
        *,
        vehicles: int = 80,
        hotlisted_share: float = 0.1,
        misread_rate: float = 0.08,
        seed: int | str | None = None,
    ) -> None:
        self.city = city
        self.rng = random.Random(f"{city.seed}:traffic" if seed is None else seed)
        self.misread_rate = misread_rate
        self.cameras = [
            FixedCamera(
                d,
                city.to_xy(d.lat, d.lon),
                float(d.attributes.get("heading_deg", 0.0)),
                float(d.attributes.get("fov_deg", 40.0)),
                float(d.attributes.get("range_m", 35.0)),
            )
            for d in city.plate_cameras
        ]
        self.vehicles: list[Vehicle] = []
        if city.network.edges:
            plates: set[str] = set()
            while len(plates) < vehicles:
                plates.add(random_plate(self.rng))
            for i, plate in enumerate(sorted(plates)):
                car = PatrolUnit(
                    f"car-{i:04d}",
                    "",
                    None,
                    network=city.network,
                    rng=random.Random(f"{city.seed}:car:{plate}"),
                )
                self.vehicles.append(Vehicle(plate, car))
        cats = [
            Category.stolen_vehicle,
            Category.stolen_plate,
            Category.wanted_person,
            Category.missing_person,
        ]
        for i, v in enumerate(self.rng.sample(self.vehicles, round(hotlisted_share * len(self.vehicles)))):
            v.hotlisted = cats[i % len(cats)]
        self._last: dict[tuple[str, str], float] = {}
        self._sim_t = 0.0
        self.reads = 0
        self.misreads = 0

    # -- the hotlist -------------------------------------------------------------------------

    def hotlist(self) -> list[ParsedEntry]:
        """The demo hotlist: the hotlisted vehicles' plates."""
        listed = [(v.plate, v.hotlisted) for v in self.vehicles if v.hotlisted is not None]
        return [
            ParsedEntry(i + 1, plate, cat, "AL", reason=f"simulated {cat.value.replace('_', ' ')} (demo)")
            for i, (plate, cat) in enumerate(listed)
        ]

    async def seed_hotlist(self, center: Any) -> None:
        """Import :meth:`hotlist` as :data:`DEMO_SOURCE` and have the matcher pick it up."""
        from rtcc.plates.hotlists import replace_source

        entries = self.hotlist()
        await center.store.write(lambda s: replace_source(s, DEMO_SOURCE, "ncic", entries, by="simulator"))
        svc = center.services.get("plates")
        if svc is not None:
            await svc.refresh()
        log.info("simulator: %d plates on hotlist %s", len(entries), DEMO_SOURCE)

    # -- reads -------------------------------------------------------------------------------

    def _read(self, v: Vehicle, cam: SimDevice, lat: float, lon: float, at: Any, tick: Tick) -> PlateRead:
        plate = v.plate
        wrong = self.rng.random() < self.misread_rate
        if wrong:
            plate = misread(plate, self.rng)
            self.misreads += 1
        self.reads += 1
        heading = round(v.car.heading_deg, 1) % 360.0
        conf = self.rng.uniform(0.55, 0.85) if wrong else self.rng.uniform(0.85, 0.99)
        tick.truth.record(
            "plate_read",
            camera=cam.id,
            plate=v.plate,
            read=plate,
            misread=wrong,
            hotlisted=v.hotlisted.value if v.hotlisted else None,
            at=at.isoformat(),
        )
        return PlateRead(
            source=cam.id,
            device=cam.id,
            occurred_at=at,
            pos=Position(lat=lat, lon=lon),
            plate=plate,
            region="AL",
            confidence=round(conf, 3),
            heading_deg=heading,
            direction=cast(Direction, compass(heading)),
        )

    def _due(self, v: Vehicle, cam_id: str, t: float) -> bool:
        key = (v.plate, cam_id)
        last = self._last.get(key)
        if last is not None and t - last < REREAD_AFTER_S:
            return False
        self._last[key] = t
        return True

    def source(self, tick: Tick) -> list[Event]:
        """Move the traffic by the tick's time and return the reads the cameras made."""
        out: list[Event] = []
        steps = max(1, math.ceil(tick.dt_s / STEP_S)) if tick.dt_s > 0 else 0
        step = tick.dt_s / steps if steps else 0.0
        for k in range(1, steps + 1):
            t = self._sim_t + k * step
            at = tick.now - timedelta(seconds=tick.dt_s - k * step)
            for v in self.vehicles:
                v.car.advance(step)
                p = v.car.xy
                for cam in self.cameras:
                    if cam.sees(p) and self._due(v, cam.device.id, t):
                        d = cam.device
                        out.append(self._read(v, d, d.lat, d.lon, at, tick))
        self._sim_t += tick.dt_s
        for unit in self.city.units:
            if unit.plate_camera_id is None:
                continue
            ux = unit.xy
            lat, lon = self.city.to_latlon(*ux)
            mobile = next(d for d in self.city.unit_devices(unit) if d.id == unit.plate_camera_id)
            reach = float(mobile.attributes.get("range_m", 20.0))
            for v in self.vehicles:
                if distance(ux, v.car.xy) <= reach and self._due(v, mobile.id, self._sim_t):
                    out.append(self._read(v, mobile, lat, lon, tick.now, tick))
        return out


class ReadPhotos:
    """Sends the traffic's reads as plate-camera uploads with a rendered photo.

    :meth:`source` is an event source for :meth:`SimRunner.add_source`: it moves the traffic
    (:meth:`Traffic.source`), uploads each read with its photo through
    :meth:`SimRunner.upload_plate_image` and returns the reads it could not upload, which the
    runner then sends as plain events (retried while the center is down).
    """

    def __init__(self, traffic: Traffic, runner: SimRunner) -> None:
        self.traffic = traffic
        self.runner = runner
        self.fixed = {c.device.id for c in traffic.cameras}
        self.uploaded = 0
        self.fallbacks = 0

    def fields(self, read: PlateRead, box: tuple[int, int, int, int]) -> dict[str, str]:
        """The upload's form fields: the edge read, and the position of a moving camera."""
        out = {
            "time": read.occurred_at.isoformat(),
            "plate": read.plate,
            "box": ",".join(str(v) for v in box),
            "confidence": str(read.confidence),
        }
        if read.region:
            out["region"] = read.region
        if read.direction:
            out["direction"] = read.direction
        if read.device not in self.fixed:  # a camera on a patrol car tells where it is
            out.update(lat=str(read.pos.lat), lon=str(read.pos.lon))
        return out

    async def source(self, tick: Tick) -> list[Event]:
        from rtcc.sim.plate_photos import render_read_photo

        rest: list[Event] = []
        for e in self.traffic.source(tick):
            if isinstance(e, PlateRead):
                photo, box = render_read_photo(e.plate, f"{e.plate}:{e.device}:{tick.index}")
                if await self.runner.upload_plate_image(e.device, photo, self.fields(e, box)):
                    self.uploaded += 1
                    continue
                self.fallbacks += 1
            rest.append(e)
        return rest


def install(city: City, runner: SimRunner, center: Any) -> None:
    """Simulator hook (see ``rtcc.app.SIM_INSTALLERS``): traffic past the plate cameras, a demo hotlist."""
    traffic = Traffic(city)
    if not traffic.vehicles:
        return
    runner.add_source(ReadPhotos(traffic, runner).source)

    async def seed() -> None:
        try:
            await traffic.seed_hotlist(center)
        except Exception:
            log.exception("simulator: importing the demo hotlist failed; reads arrive without hits")

    runner.add_task(seed)
