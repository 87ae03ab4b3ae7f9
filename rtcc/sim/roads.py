"""Main roads of downtown Birmingham, Alabama, and the graph patrol units drive on.

The grid
--------
Birmingham's city-centre grid was laid out along the railroad (the Railroad
Reservation), so it is rotated about 25–30° west of north: the numbered
*streets* run NNW–SSE and the *avenues* ENE–WSW; avenues north of the
tracks are "N", south of them "S", and streets take the suffix of the side
they are on. This module draws a handful of arterials on that grid in
*grid coordinates* ``(u, v)`` (metres along the avenues and along the
streets, relative to the city centre), rotates them by :data:`GRID_ANGLE_DEG`
into local east/north metres and clips them to the simulated square.

Positions are approximate (blocks of :data:`STREET_SPACING_M` by
:data:`AVENUE_SPACING_M`, anchored on Linn Park between 20th and 21st
Streets and 7th and 8th Avenues North); they give a realistic shape, not a
survey.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rtcc.sim.geometry import (
    Point,
    clip_polyline,
    distance,
    polyline_length,
    rotate,
    segment_intersection,
)

GRID_ANGLE_DEG = 29.0
"""Counter-clockwise rotation of the street grid from east/north, degrees.

Avenues run at bearing ``90 - 29 = 61°`` (ENE) and streets at ``331°`` (NNW).
"""

STREET_SPACING_M = 140.0
"""Distance between consecutive numbered streets, measured along an avenue, m."""

AVENUE_SPACING_M = 120.0
"""Distance between consecutive numbered avenues, measured along a street, m."""

U_20TH_ST = 168.0
"""Grid ``u`` of 20th Street (metres east-north-east of the city centre)."""

V_1ST_AVE_N = -543.0
"""Grid ``v`` of 1st Avenue North (metres north-north-west of the city centre)."""

V_RAILROAD = V_1ST_AVE_N - 90.0
"""Grid ``v`` of the railroad's centre line, m."""

V_1ST_AVE_S = V_RAILROAD - 90.0
"""Grid ``v`` of 1st Avenue South, m."""

RoadKind = Literal["arterial", "highway"]


def street_u(n: float) -> float:
    """Grid ``u`` of numbered street ``n``, metres."""
    return U_20TH_ST + (n - 20.0) * STREET_SPACING_M


def avenue_north_v(n: float) -> float:
    """Grid ``v`` of ``n``-th Avenue North, metres."""
    return V_1ST_AVE_N + (n - 1.0) * AVENUE_SPACING_M


def avenue_south_v(n: float) -> float:
    """Grid ``v`` of ``n``-th Avenue South, metres."""
    return V_1ST_AVE_S - (n - 1.0) * AVENUE_SPACING_M


@dataclass(frozen=True)
class Road:
    """One named road piece inside the simulated area.

    Attributes
    ----------
    name : str
        Street name, e.g. ``"20th St N"``.
    kind : {"arterial", "highway"}
        Patrol units and plate cameras use arterials; highways are drawn only.
    points : tuple of Point
        Vertices in local metres (east, north), at least two.
    """

    name: str
    kind: RoadKind
    points: tuple[Point, ...]

    @property
    def length_m(self) -> float:
        """Length of the piece, metres."""
        return polyline_length(self.points)


def _grid_roads(reach: float) -> list[tuple[str, RoadKind, list[Point]]]:
    """The arterials in grid coordinates, each reaching ``reach`` metres out."""
    roads: list[tuple[str, RoadKind, list[Point]]] = []
    for n, name in ((1, "1st"), (3, "3rd"), (5, "5th"), (7, "7th")):
        v = avenue_north_v(n)
        roads.append((f"{name} Ave N", "arterial", [(-reach, v), (reach, v)]))
    for n, name in ((1, "1st"), (4, "4th")):
        v = avenue_south_v(n)
        roads.append((f"{name} Ave S", "arterial", [(-reach, v), (reach, v)]))
    # Morris Avenue: the cobbled avenue between 1st Ave N and the tracks.
    v_morris = (V_1ST_AVE_N + V_RAILROAD) / 2.0
    roads.append(("Morris Ave", "arterial", [(street_u(18), v_morris), (street_u(24), v_morris)]))
    for n in (14, 18, 20, 24):
        u = street_u(n)
        roads.append((f"{n}th St N", "arterial", [(u, V_RAILROAD), (u, reach)]))
        roads.append((f"{n}th St S", "arterial", [(u, -reach), (u, V_RAILROAD)]))
    # I-20/59 skirts the north of downtown beside the BJCC (about 12th Ave N),
    # bending south-west past I-65; I-65 runs between 10th and 11th Streets.
    v_i20 = avenue_north_v(12.3)
    roads.append(
        (
            "I-20/59",
            "highway",
            [
                (-reach, v_i20 - 0.25 * reach),
                (street_u(8), v_i20 - 180.0),
                (street_u(12), v_i20 - 40.0),
                (street_u(22), v_i20),
                (street_u(30), v_i20 + 60.0),
                (reach, v_i20 + 60.0 + 0.05 * reach),
            ],
        )
    )
    u_i65 = street_u(10.5)
    roads.append(("I-65", "highway", [(u_i65, -reach), (u_i65, reach)]))
    return roads


def birmingham_roads(extent_m: float) -> list[Road]:
    """Downtown Birmingham's main roads inside a square of side ``extent_m`` metres.

    Parameters
    ----------
    extent_m : float
        Side of the simulated square centred on the city centre, metres.

    Returns
    -------
    list of Road
        Road pieces in local metres, clipped to the square; a road that
        leaves and re-enters the square gives several pieces of one name.
    """
    half = extent_m / 2.0
    reach = 4.0 * extent_m
    out: list[Road] = []
    for name, kind, grid_points in _grid_roads(reach):
        local = [rotate(u, v, GRID_ANGLE_DEG) for u, v in grid_points]
        for piece in clip_polyline(local, half):
            out.append(Road(name, kind, tuple(piece)))
    return out


@dataclass(frozen=True)
class Edge:
    """A stretch of road between two graph nodes.

    Attributes
    ----------
    id : int
        Index in :attr:`RoadNetwork.edges`.
    road : str
        Name of the road it belongs to.
    a, b : int
        Node indices at its first and last vertex.
    points : tuple of Point
        Vertices from node ``a`` to node ``b``, metres.
    length_m : float
        Length, metres.
    """

    id: int
    road: str
    a: int
    b: int
    points: tuple[Point, ...]
    length_m: float

    def other(self, node: int) -> int:
        """The node at the other end from ``node``."""
        return self.b if node == self.a else self.a


@dataclass
class RoadNetwork:
    """A graph of intersections (nodes) and road stretches (edges).

    Attributes
    ----------
    nodes : list of Point
        Intersections and road ends, local metres.
    edges : list of Edge
        Road stretches between nodes.
    incident : dict of int to list of int
        Edge ids meeting at each node.
    node_roads : dict of int to set of str
        Names of the roads meeting at each node.
    """

    nodes: list[Point] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    incident: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    node_roads: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    def intersections(self) -> list[int]:
        """Nodes where two or more differently named roads meet (N/S halves count as one)."""

        def base(name: str) -> str:
            return name.removesuffix(" N").removesuffix(" S") if " St " in name else name

        return [n for n, names in self.node_roads.items() if len({base(x) for x in names}) >= 2]


def _node_for(net: RoadNetwork, p: Point, road: str, tol: float = 0.5) -> int:
    for i, q in enumerate(net.nodes):
        if distance(p, q) <= tol:
            net.node_roads[i].add(road)
            return i
    net.nodes.append(p)
    i = len(net.nodes) - 1
    net.node_roads[i].add(road)
    return i


def build_network(roads: Sequence[Road]) -> RoadNetwork:
    """The drivable graph of the arterials among ``roads``.

    Every crossing or T-junction between two arterials, and every road end,
    becomes a node; each road is cut into edges at its nodes. Highways are
    left out (their junctions with the grid are grade-separated).
    """
    arterials = [r for r in roads if r.kind == "arterial"]
    # Cumulative distance of each vertex along each road.
    cum: list[list[float]] = []
    for r in arterials:
        acc = [0.0]
        for i in range(len(r.points) - 1):
            acc.append(acc[-1] + distance(r.points[i], r.points[i + 1]))
        cum.append(acc)
    cuts: list[set[float]] = [{0.0, c[-1]} for c in cum]
    for i, ri in enumerate(arterials):
        for j in range(i + 1, len(arterials)):
            rj = arterials[j]
            for si in range(len(ri.points) - 1):
                for sj in range(len(rj.points) - 1):
                    hit = segment_intersection(
                        ri.points[si], ri.points[si + 1], rj.points[sj], rj.points[sj + 1]
                    )
                    if hit is None:
                        continue
                    t, u = hit
                    seg_i = cum[i][si + 1] - cum[i][si]
                    seg_j = cum[j][sj + 1] - cum[j][sj]
                    cuts[i].add(cum[i][si] + t * seg_i)
                    cuts[j].add(cum[j][sj] + u * seg_j)
    net = RoadNetwork()
    for i, r in enumerate(arterials):
        stops = sorted(cuts[i])
        merged = [stops[0]]
        for s in stops[1:]:
            if s - merged[-1] > 0.5:
                merged.append(s)
        merged[-1] = stops[-1]  # always end at the road's end
        if len(merged) < 2:
            continue
        for k in range(len(merged) - 1):
            pts = _sub_polyline(r.points, cum[i], merged[k], merged[k + 1])
            a = _node_for(net, pts[0], r.name)
            b = _node_for(net, pts[-1], r.name)
            if a == b:
                continue
            edge = Edge(len(net.edges), r.name, a, b, tuple(pts), polyline_length(pts))
            net.edges.append(edge)
            net.incident[a].append(edge.id)
            net.incident[b].append(edge.id)
    return net


def _sub_polyline(points: Sequence[Point], cum: Sequence[float], s0: float, s1: float) -> list[Point]:
    """The part of a polyline between distances ``s0`` and ``s1`` along it, metres."""

    def at(s: float) -> Point:
        for k in range(len(points) - 1):
            if s <= cum[k + 1] or k == len(points) - 2:
                seg = cum[k + 1] - cum[k]
                t = 0.0 if seg <= 0 else (s - cum[k]) / seg
                a, b = points[k], points[k + 1]
                return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
        return points[-1]

    out = [at(s0)]
    out.extend(points[k] for k in range(1, len(points) - 1) if s0 < cum[k] < s1)
    out.append(at(s1))
    return out
