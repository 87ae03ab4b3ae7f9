"""Simulated city, in-car and community cameras for the demo.

:func:`plan` lays out, deterministically from the city's seed:

* **city cameras** at a third of the arterial intersections, each looking
  along one of its roads (70° view, 80 m); the first two have a live source;
* **in-car cameras** on every patrol unit (forward, 120° view, 40 m),
  following the unit's body cam heartbeats (its position and heading);
* **community cameras** on homes and shops 12–20 m off the roads, facing
  the street (90–110° view, 25–45 m), a quarter of them ``integrated``.

Live sources are ``synthetic://`` streams drawn in the center (no network
needed): the demo's live view works offline. :func:`install` registers the
cameras (once: ids are derived from the seed) when the simulator starts.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from typing import Any

from sqlalchemy.orm import Session

from rtcc.sim.city import City, compass

log = logging.getLogger(__name__)

CITY_FOV_DEG, CITY_RANGE_M = 70.0, 80.0
CAR_FOV_DEG, CAR_RANGE_M = 120.0, 40.0


def _id(city: City, key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"rtcc-sim:{city.seed}:camera:{key}")


def _bearing(dx: float, dy: float) -> float:
    """Bearing of a local (east, north) direction, degrees clockwise from north."""
    return math.degrees(math.atan2(dx, dy)) % 360.0


def plan(city: City) -> list[dict[str, Any]]:
    """The demo's cameras as :class:`~rtcc.store.tables_cameras.CameraRow` fields."""
    rng = random.Random(f"{city.seed}:cameras")
    net = city.network
    out: list[dict[str, Any]] = []
    nodes = sorted(net.intersections(), key=lambda k: (net.nodes[k][1], net.nodes[k][0]))
    chosen = sorted(rng.sample(nodes, max(1, len(nodes) // 3)), key=nodes.index) if nodes else []
    for i, node in enumerate(chosen, start=1):
        edge = net.edges[rng.choice(net.incident[node])]
        ahead = edge.points[1] if edge.a == node else edge.points[-2]
        x, y = net.nodes[node]
        bearing = round(_bearing(ahead[0] - x, ahead[1] - y), 1) % 360.0
        lat, lon = city.to_latlon(x, y)
        cross = sorted(net.node_roads[node] - {edge.road})
        where = f"{edge.road} & {cross[0]}" if cross else edge.road
        out.append(
            {
                "id": _id(city, f"city-{i}"),
                "kind": "city",
                "name": f"CCTV {where}, facing {compass(bearing)}",
                "lat": lat,
                "lon": lon,
                "bearing_deg": bearing,
                "fov_deg": CITY_FOV_DEG,
                "range_m": CITY_RANGE_M,
                "level": "integrated",
                "status": "active",
                "stream_url": f"synthetic://CCTV-{i}?fps=5" if i <= 2 else None,
            }
        )
    for unit in city.units:
        n = unit.id.removeprefix("unit-")
        out.append(
            {
                "id": _id(city, f"car-{unit.id}"),
                "kind": "in_car",
                "name": f"In-car camera, unit {n}",
                "lat": None,
                "lon": None,
                "device_id": unit.bodycam_id,
                "bearing_deg": 0.0,
                "fov_deg": CAR_FOV_DEG,
                "range_m": CAR_RANGE_M,
                "level": "registered",
                "status": "active",
            }
        )
    edges = [e for e in net.edges if e.length_m > 60]
    count = min(len(edges), max(4, len(city.units)))
    for i, edge in enumerate(rng.sample(edges, count) if edges else [], start=1):
        k = rng.randrange(len(edge.points) - 1)
        (x0, y0), (x1, y1) = edge.points[k], edge.points[k + 1]
        t = rng.uniform(0.2, 0.8)
        px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length
        side = rng.choice((-1.0, 1.0))
        off = rng.uniform(12.0, 20.0)
        cx, cy = px + side * off * nx, py + side * off * ny
        if not city.contains_xy(cx, cy):
            continue
        lat, lon = city.to_latlon(cx, cy)
        business = i % 3 == 0
        integrated = i % 4 == 1
        out.append(
            {
                "id": _id(city, f"community-{i}"),
                "kind": "community",
                "name": f"{'Shop' if business else 'Home'} camera on {edge.road}",
                "owner_type": "business" if business else "resident",
                "owner_name": f"Demo owner {i}",
                "contact_email": f"owner{i}@example.org",
                "address": f"{100 + 2 * i} {edge.road}",
                "lat": lat,
                "lon": lon,
                "bearing_deg": round(_bearing(-side * nx, -side * ny), 1) % 360.0,
                "fov_deg": rng.choice((90.0, 100.0, 110.0)),
                "range_m": round(rng.uniform(25.0, 45.0)),
                "level": "integrated" if integrated else "registered",
                "status": "active",
                "stream_url": f"synthetic://Community-{i}?fps=5" if integrated else None,
            }
        )
    return out


def register_all(s: Session, specs: list[dict[str, Any]]) -> int:
    """Add the cameras that are not there yet; returns how many were added."""
    from rtcc.store.tables_cameras import CameraRow

    added = 0
    for spec in specs:
        if s.get(CameraRow, spec["id"]) is None:
            s.add(CameraRow(verify_attempts=0, **spec))
            added += 1
    s.flush()
    return added


def install(city: Any, runner: Any, center: Any) -> None:
    """Simulator hook (see ``rtcc.app.SIM_INSTALLERS``): registers the demo's cameras at start."""
    specs = plan(city)

    async def register() -> None:
        added = await center.store.write(lambda s: register_all(s, specs))
        log.info("simulated cameras: %d planned, %d added", len(specs), added)

    runner.add_task(register)
