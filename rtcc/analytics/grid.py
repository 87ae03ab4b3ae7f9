"""The study area as H3 cells: which cell an incident falls in, cell areas, neighbours, polygons.

For the evaluation, the study area is the set of H3 cells (resolution ``res``) covering the
convex hull of the positions it is built from, plus the cells holding those positions. Built from
every position in a record it approximates the sensors' coverage area, which an operator knows in
advance; only the extent is used, never the counts. The live maps use the cells holding incidents
and two rings around them (:meth:`StudyArea.around`), which a stray position cannot inflate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import shapely

from rtcc.errors import ValidationFailed

from .records import FloatArray

EARTH_RADIUS_M = 6_371_008.8
MIN_RES, MAX_RES = 5, 11
MAX_CELLS = 50_000
"""Study areas larger than this are refused (a city at resolution 9 has a few thousand cells)."""


def check_res(res: int) -> int:
    if not MIN_RES <= res <= MAX_RES:
        raise ValidationFailed(
            f"H3 resolution {res} is out of range {MIN_RES}…{MAX_RES} (8 ≈ 0.74 km² cells)"
        )
    return res


def project(lat: FloatArray, lon: FloatArray, lat0: float, lon0: float) -> npt.NDArray[np.float64]:
    """Local equirectangular projection about (lat0, lon0).

    Returns
    -------
    ndarray, shape (2, n)
        East and north offsets in metres (error < 0.1 % within a city).
    """
    x = EARTH_RADIUS_M * np.cos(np.radians(lat0)) * np.radians(np.asarray(lon) - lon0)
    y = EARTH_RADIUS_M * np.radians(np.asarray(lat) - lat0)
    return np.vstack([x, y])


@dataclass
class StudyArea:
    """H3 cells of one resolution with their areas, centres and neighbour lists."""

    res: int
    cells: list[str]
    index: dict[str, int] = field(init=False)
    area_km2: FloatArray = field(init=False)
    lat: FloatArray = field(init=False)
    lon: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.cells = sorted(set(self.cells))
        self.index = {c: i for i, c in enumerate(self.cells)}
        self.area_km2 = np.array([h3.cell_area(c, unit="km^2") for c in self.cells], dtype=np.float64)
        centres = [h3.cell_to_latlng(c) for c in self.cells]
        self.lat = np.array([c[0] for c in centres], dtype=np.float64)
        self.lon = np.array([c[1] for c in centres], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.cells)

    @classmethod
    def covering(cls, lat: FloatArray, lon: FloatArray, res: int) -> StudyArea:
        """The cells covering the convex hull of the positions (and the positions' own cells)."""
        check_res(res)
        if len(lat) == 0:
            return cls(res, [])
        own = {h3.latlng_to_cell(float(a), float(o), res) for a, o in zip(lat, lon, strict=True)}
        hull = shapely.convex_hull(shapely.MultiPoint(np.column_stack([lon, lat])))
        if isinstance(hull, shapely.Polygon):
            ring = [(y, x) for x, y in hull.exterior.coords[:-1]]
            poly = h3.LatLngPoly(ring)
            xy = project(hull.exterior.xy[1], hull.exterior.xy[0], hull.centroid.y, hull.centroid.x)
            km2 = shapely.Polygon(xy.T).area / 1e6
            if km2 / h3.average_hexagon_area(res, unit="km^2") > MAX_CELLS:
                raise ValidationFailed(
                    f"the incidents span {km2:.0f} km², over {MAX_CELLS} cells at H3 resolution {res}: "
                    "choose a coarser resolution or a shorter period"
                )
            own |= set(h3.polygon_to_cells(poly, res))
        if len(own) > MAX_CELLS:
            raise ValidationFailed(
                f"{len(own)} cells at H3 resolution {res} (limit {MAX_CELLS}): choose a coarser resolution"
            )
        return cls(res, sorted(own))

    @classmethod
    def around(cls, lat: FloatArray, lon: FloatArray, res: int, k: int = 2) -> StudyArea:
        """The cells holding the positions and those within ``k`` rings of them.

        Unlike :meth:`covering`, a stray far-away position adds a few cells, not a huge hull.
        """
        check_res(res)
        own = {h3.latlng_to_cell(float(a), float(o), res) for a, o in zip(lat, lon, strict=True)}
        if len(own) * (3 * k * (k + 1) + 1) > MAX_CELLS:
            raise ValidationFailed(
                f"incidents in {len(own)} cells at H3 resolution {res}: too many, choose a coarser resolution"
            )
        return cls(res, sorted({n for c in own for n in h3.grid_disk(c, k)}))

    def sample_points(self) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
        """Centres of each cell's seven children (resolution ``res + 1``): lat, lon and the cell index.

        Averaging a density over them approximates its mean over the cell better than the centre alone.
        """
        lat: list[float] = []
        lon: list[float] = []
        owner: list[int] = []
        for i, c in enumerate(self.cells):
            for child in h3.cell_to_children(c, self.res + 1):
                a, o = h3.cell_to_latlng(child)
                lat.append(a)
                lon.append(o)
                owner.append(i)
        return np.array(lat), np.array(lon), np.array(owner, dtype=np.int64)

    def cell_of(self, lat: FloatArray, lon: FloatArray) -> npt.NDArray[np.int64]:
        """Index of the cell holding each position, -1 if outside the study area."""
        out = np.full(len(lat), -1, dtype=np.int64)
        for i, (a, o) in enumerate(zip(lat, lon, strict=True)):
            out[i] = self.index.get(h3.latlng_to_cell(float(a), float(o), self.res), -1)
        return out

    def counts(self, lat: FloatArray, lon: FloatArray, weights: FloatArray | None = None) -> FloatArray:
        """(Weighted) number of positions per cell; positions outside the area are ignored."""
        idx = self.cell_of(lat, lon)
        inside = idx >= 0
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[inside]
        return np.bincount(idx[inside], weights=w, minlength=len(self)).astype(np.float64)

    def neighbours(self) -> dict[int, list[int]]:
        """Each cell's adjacent cells (H3 ring 1) that are inside the study area."""
        out: dict[int, list[int]] = {}
        for i, c in enumerate(self.cells):
            ring = (self.index.get(n) for n in h3.grid_ring(c, 1))
            out[i] = [j for j in ring if j is not None]
        return out

    def polygon(self, i: int) -> list[list[list[float]]]:
        """GeoJSON polygon coordinates (lon, lat, closed ring) of cell ``i``."""
        ring = [[round(lon, 7), round(lat, 7)] for lat, lon in h3.cell_to_boundary(self.cells[i])]
        return [[*ring, ring[0]]]

    def feature(self, i: int, properties: dict[str, Any]) -> dict[str, Any]:
        """A GeoJSON feature of cell ``i`` with ``properties`` (and the cell id and area)."""
        props = {"cell": self.cells[i], "area_km2": round(float(self.area_km2[i]), 5), **properties}
        return {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": self.polygon(i)},
            "properties": props,
        }
