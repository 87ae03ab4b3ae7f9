"""Patrol units driving the road network.

Each unit drives along the arterials at a speed drawn per block from
:data:`MIN_SPEED_MPS`–:data:`MAX_SPEED_MPS` and, at every intersection,
goes straight more often than it turns (a U-turn only at a dead end, such as
the edge of the simulated area). A unit's body cam battery drains slowly and
is swapped for a charged one when low, as at a shift change.

Movement is driven by simulated time (:meth:`PatrolUnit.advance`), never by
the wall clock, and uses the unit's own seeded random generator, so the same
seed and the same sequence of time steps give the same tracks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rtcc.sim.geometry import Point, bearing_deg, normalize_bearing, point_along
from rtcc.sim.roads import Edge, RoadNetwork

MIN_SPEED_MPS = 8.0
"""Slowest cruising speed of a patrol car, m/s (about 18 mph)."""

MAX_SPEED_MPS = 15.0
"""Fastest cruising speed of a patrol car, m/s (about 34 mph)."""

BATTERY_DRAIN_PCT_PER_H = 7.0
"""Body cam battery drain while idle, percent per hour."""

BATTERY_SWAP_BELOW_PCT = 15.0
"""Battery level below which the officer swaps in a charged battery, percent."""

STRAIGHT_WEIGHT = 3.0
"""Relative odds of going straight on at an intersection (a turn has odds 1)."""


@dataclass
class PatrolUnit:
    """A patrol car, the officer's body cam and possibly an in-car plate camera.

    Attributes
    ----------
    id : str
        Unit id, e.g. ``unit-01``.
    bodycam_id : str
        The officer's body-worn camera, e.g. ``bwc-01``.
    plate_camera_id : str or None
        The car's mobile plate camera, when it has one.
    edge : Edge
        The road stretch the unit is on.
    along_m : float
        Distance from the edge's node ``a``, metres.
    forward : bool
        True when driving from node ``a`` towards node ``b``.
    speed_mps : float
        Current speed, m/s.
    odometer_m : float
        Distance driven since the start, metres.
    battery_pct : float
        Body cam battery, percent.
    battery_swaps : int
        Charged batteries swapped in since the start.
    recording : bool
        Whether the officer's body cam records (it obeys the center's
        commands, see :mod:`rtcc.sim.bodycams`).
    """

    id: str
    bodycam_id: str
    plate_camera_id: str | None
    network: RoadNetwork = field(repr=False)
    rng: random.Random = field(repr=False)
    edge: Edge = field(init=False)
    along_m: float = field(init=False)
    forward: bool = field(init=False)
    speed_mps: float = field(init=False)
    odometer_m: float = 0.0
    battery_pct: float = field(init=False)
    battery_swaps: int = 0
    recording: bool = False

    def __post_init__(self) -> None:
        if not self.network.edges:
            raise ValueError("the road network has no drivable road inside the area")
        weights = [e.length_m for e in self.network.edges]
        self.edge = self.rng.choices(self.network.edges, weights=weights)[0]
        self.along_m = self.rng.uniform(0.0, self.edge.length_m)
        self.forward = self.rng.random() < 0.5
        self.speed_mps = self.rng.uniform(MIN_SPEED_MPS, MAX_SPEED_MPS)
        self.battery_pct = self.rng.uniform(70.0, 100.0)

    @property
    def xy(self) -> Point:
        """Current position in local metres (east, north)."""
        return point_along(self.edge.points, self.along_m)[0]

    @property
    def heading_deg(self) -> float:
        """Direction of travel, degrees clockwise from north in ``[0, 360)``."""
        _, b = point_along(self.edge.points, self.along_m)
        return b if self.forward else normalize_bearing(b + 180.0)

    @property
    def road(self) -> str:
        """Name of the road the unit is on."""
        return self.edge.road

    def advance(self, dt_s: float) -> None:
        """Drive for ``dt_s`` simulated seconds along the network.

        Parameters
        ----------
        dt_s : float
            Simulated time step, seconds (>= 0).
        """
        if dt_s < 0:
            raise ValueError("time runs forwards: dt_s must be >= 0")
        self._drain(dt_s)
        remaining = self.speed_mps * dt_s
        while remaining > 0:
            to_node = self.edge.length_m - self.along_m if self.forward else self.along_m
            if remaining < to_node:
                self.along_m += remaining if self.forward else -remaining
                self.odometer_m += remaining
                return
            self.odometer_m += to_node
            remaining -= to_node
            # Time left after reaching the node is spent at the new speed.
            t_left = remaining / self.speed_mps
            self._turn()
            remaining = t_left * self.speed_mps

    def _turn(self) -> None:
        """Choose the next edge at the node just reached and set a new speed."""
        node = self.edge.b if self.forward else self.edge.a
        arriving = self.heading_at_node()
        options = [e for e in self.network.incident[node] if e != self.edge.id]
        if not options:  # dead end: turn around
            self.forward = not self.forward
        else:
            edges = [self.network.edges[e] for e in options]
            weights = []
            for e in edges:
                leaving = _leaving_bearing(e, node)
                turn = abs((leaving - arriving + 180.0) % 360.0 - 180.0)
                weights.append(STRAIGHT_WEIGHT if turn < 30.0 else 1.0)
            nxt = self.rng.choices(edges, weights=weights)[0]
            self.edge = nxt
            self.forward = nxt.a == node
            self.along_m = 0.0 if self.forward else nxt.length_m
        self.speed_mps = self.rng.uniform(MIN_SPEED_MPS, MAX_SPEED_MPS)

    def heading_at_node(self) -> float:
        """Direction of travel on the last stretch before the node ahead, degrees."""
        pts = self.edge.points
        a, b = (pts[-2], pts[-1]) if self.forward else (pts[1], pts[0])
        return bearing_deg(a, b)

    def _drain(self, dt_s: float) -> None:
        self.battery_pct -= BATTERY_DRAIN_PCT_PER_H * dt_s / 3600.0
        if self.battery_pct < BATTERY_SWAP_BELOW_PCT:
            self.battery_pct = 100.0
            self.battery_swaps += 1


def _leaving_bearing(edge: Edge, node: int) -> float:
    """Bearing of the first stretch of ``edge`` when leaving ``node``, degrees."""
    pts = edge.points
    a, b = (pts[0], pts[1]) if edge.a == node else (pts[-1], pts[-2])
    return bearing_deg(a, b)
