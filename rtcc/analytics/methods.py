"""Hotspot scores per cell from an incident history: the methods compared in the evaluation.

Every method maps a fitting window of incidents to one score per study-area cell (higher = more
incidents expected next period); cells are flagged in decreasing score order.

``naive``
    The baseline: the number of incidents in each cell during the last period (one month).
``counts``
    Incidents per cell over the whole fitting window.
``recency``
    Recency-weighted counts: an incident ``a`` days old weighs ``0.5 ** (a / half_life_days)``.
``kde``
    Gaussian kernel density of the window's positions (``scipy.stats.gaussian_kde``, positions in
    metres, bandwidth factor relative to the data's covariance), averaged over seven points per cell
    and multiplied by the cell area (≈ the expected share per cell); optionally recency-weighted.
    Positions far from the others (:func:`core`: farther than max(10 km, 20 × the median distance)
    from the median position, e.g. geocoding failures) are left out of the fit, so that one stray
    position cannot widen the kernel over the whole map; they still count in the other methods.
``gi_star``
    Getis-Ord Gi* z-scores of the window's counts per cell (``esda.G_Local`` with ``star=True``,
    binary ``libpysal`` weights linking each cell to its H3 neighbours within ``k`` rings).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import numpy.typing as npt

from .grid import StudyArea, project
from .records import FloatArray, Incidents, TimeArray

DAY = np.timedelta64(1, "D")
KDE_BUDGET = 200_000_000
"""Kernel evaluations (points × sample positions) above which the KDE uses cell centres only."""
CORE_MIN_RADIUS_M = 10_000.0
CORE_FACTOR = 20.0
"""The KDE fits the positions within max(CORE_MIN_RADIUS_M, CORE_FACTOR × median distance) of the
median position (:func:`core`)."""


@dataclass(frozen=True)
class Prepared:
    """A record placed on a study area once: each incident's cell and position in metres."""

    area: StudyArea
    t: TimeArray
    cell: npt.NDArray[np.int64]
    xy: npt.NDArray[np.float64]
    cell_xy: npt.NDArray[np.float64]
    sample_xy: npt.NDArray[np.float64]
    sample_cell: npt.NDArray[np.int64]

    @classmethod
    def of(cls, inc: Incidents, area: StudyArea) -> Prepared:
        """Place ``inc`` on ``area``; positions are projected about the median of the cell centres.

        The median, not the mean, keeps the few cells around a stray far-away position from moving
        the projection's centre off the city; and the centre depends on the study area only, never
        on the incidents (a test month's positions cannot change a fit).
        """
        lat0 = float(np.median(area.lat)) if len(area) else 0.0
        lon0 = float(np.median(area.lon)) if len(area) else 0.0
        s_lat, s_lon, s_cell = area.sample_points()
        return cls(
            area=area,
            t=inc.t,
            cell=area.cell_of(inc.lat, inc.lon),
            xy=project(inc.lat, inc.lon, lat0, lon0),
            cell_xy=project(area.lat, area.lon, lat0, lon0),
            sample_xy=project(s_lat, s_lon, lat0, lon0),
            sample_cell=s_cell,
        )

    def span(self, start: np.datetime64, end: np.datetime64) -> slice:
        """The index range of incidents with ``start <= t < end``."""
        lo, hi = np.searchsorted(self.t, [start, end], side="left")
        return slice(int(lo), int(hi))


@dataclass(frozen=True)
class Window:
    """What a method may look at: the fitting window ``[start, end)`` and the last period's start."""

    start: np.datetime64
    last_start: np.datetime64
    end: np.datetime64


def _counts(p: Prepared, sl: slice, weights: FloatArray | None = None) -> FloatArray:
    idx = p.cell[sl]
    inside = idx >= 0
    w = None if weights is None else weights[inside]
    return np.bincount(idx[inside], weights=w, minlength=len(p.area)).astype(np.float64)


def _recency_weights(p: Prepared, sl: slice, end: np.datetime64, half_life_days: float) -> FloatArray:
    age_days = (end - p.t[sl]) / DAY
    return np.asarray(0.5 ** (age_days / half_life_days), dtype=np.float64)


def naive(p: Prepared, w: Window) -> FloatArray:
    """Last period's counts per cell (the baseline)."""
    return _counts(p, p.span(w.last_start, w.end))


def counts(p: Prepared, w: Window) -> FloatArray:
    """Counts per cell over the whole fitting window."""
    return _counts(p, p.span(w.start, w.end))


def recency(p: Prepared, w: Window, half_life_days: float = 90.0) -> FloatArray:
    """Exponentially recency-weighted counts per cell."""
    sl = p.span(w.start, w.end)
    return _counts(p, sl, _recency_weights(p, sl, w.end, half_life_days))


def core(
    pts: FloatArray, min_radius_m: float = CORE_MIN_RADIUS_M, factor: float = CORE_FACTOR
) -> npt.NDArray[np.bool_]:
    """Which 2-D points (metres) lie within a robust radius of their median position.

    Parameters
    ----------
    pts : ndarray, shape (2, n)
        East and north positions, metres.
    min_radius_m, factor
        The radius is ``max(min_radius_m, factor × median distance to the median position)``.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for the points to fit a density on. A city's incidents lie well inside the radius
        (10 km at least); a geocoding failure hundreds of kilometres away does not.
    """
    if pts.shape[1] == 0:
        return np.ones(0, dtype=bool)
    dist = np.hypot(*(pts - np.median(pts, axis=1, keepdims=True)))
    radius = max(min_radius_m, factor * float(np.median(dist)))
    return np.asarray(dist <= radius, dtype=bool)


def kde(p: Prepared, w: Window, bandwidth: float = 0.1, half_life_days: float | None = None) -> FloatArray:
    """Gaussian KDE (scipy) averaged over each cell (its seven children's centres) × cell area.

    The density is fitted on the window's positions within a robust radius of their median
    position only (:func:`core`: max(10 km, 20 × the median distance to the median position));
    farther positions (geocoding failures) would inflate the data covariance, and with it the
    kernel, over the whole map. They are left out of the density only.

    Parameters
    ----------
    bandwidth
        ``bw_method`` factor of ``scipy.stats.gaussian_kde``: the kernel covariance is the data
        covariance times ``bandwidth**2`` (0.1 on a city-wide spread of ~2 km ≈ 200 m).
    half_life_days
        Recency weighting of the points (None: equal weights).

    Returns
    -------
    ndarray, shape (cells,)
        Mean density over each cell × its area; the window's counts per cell when fewer than
        three positions remain or they have no 2-D spread.
    """
    from scipy.stats import gaussian_kde

    sl = p.span(w.start, w.end)
    pts = p.xy[:, sl]
    weights = None if half_life_days is None else _recency_weights(p, sl, w.end, half_life_days)
    near = core(pts)
    if not near.all():
        pts = pts[:, near]
        weights = None if weights is None else weights[near]
    if pts.shape[1] < 3:
        return counts(p, w)
    if _degenerate(pts):  # all points on one spot or a line: no 2-D density
        return counts(p, w)
    try:
        kernel = gaussian_kde(pts, bw_method=bandwidth, weights=weights)
    except np.linalg.LinAlgError:
        return counts(p, w)
    if pts.shape[1] * p.sample_xy.shape[1] > KDE_BUDGET:  # large history × many cells: centres only
        out = np.asarray(kernel(p.cell_xy) * p.area.area_km2, dtype=np.float64)
    else:
        density = kernel(p.sample_xy)
        n = np.bincount(p.sample_cell, minlength=len(p.area))
        mean = np.bincount(p.sample_cell, weights=density, minlength=len(p.area)) / np.maximum(n, 1)
        out = np.asarray(mean * p.area.area_km2, dtype=np.float64)
    if not np.all(np.isfinite(out)) or out.sum() <= 0:  # a near-singular kernel: fall back to counts
        return counts(p, w)
    return out


def _degenerate(pts: FloatArray, min_spread_m: float = 1.0) -> bool:
    """Whether 2-D points (metres) have (almost) no spread along some direction.

    Rounding in a weighted mean can leave a covariance that is singular in truth but not in
    floating point, and ``gaussian_kde`` then builds a kernel of absurd height; the smallest
    principal standard deviation below ``min_spread_m`` catches that case deterministically.
    """
    centred = pts - pts.mean(axis=1, keepdims=True)
    smallest = np.linalg.svd(centred, compute_uv=False)[-1] / np.sqrt(max(pts.shape[1] - 1, 1))
    return bool(smallest < min_spread_m)


def gi_weights(area: StudyArea, k: int = 1) -> Any:
    """Binary libpysal weights linking each cell to the study-area cells within ``k`` H3 rings."""
    from libpysal.weights import W

    neighbours: dict[int, list[int]] = {}
    for i, c in enumerate(area.cells):
        ring = (area.index.get(n) for n in h3.grid_disk(c, k) if n != c)
        neighbours[i] = [j for j in ring if j is not None]
    return W(neighbours, silence_warnings=True)


def gi_star(
    p: Prepared, w: Window, k: int = 1, half_life_days: float | None = None, weights: Any = None
) -> FloatArray:
    """Getis-Ord Gi* z-scores (esda ``G_Local``, ``star=True``, binary weights) of the window's counts."""
    from esda.getisord import G_Local

    sl = p.span(w.start, w.end)
    y = _counts(p, sl, None if half_life_days is None else _recency_weights(p, sl, w.end, half_life_days))
    if len(y) < 3 or np.all(y == y[0]):
        return y
    wts = weights if weights is not None else gi_weights(p.area, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda warns about islands and zero-variance neighbourhoods
        g = G_Local(y, wts, transform="B", permutations=0, star=True)
    z = np.asarray(g.Zs, dtype=np.float64)
    return np.where(np.isfinite(z), z, -np.inf)


Method = Callable[..., FloatArray]

METHODS: dict[str, Method] = {
    "naive": naive,
    "counts": counts,
    "recency": recency,
    "kde": kde,
    "gi_star": gi_star,
}

GRIDS: dict[str, list[dict[str, Any]]] = {
    "naive": [{}],
    "counts": [{}],
    "recency": [{"half_life_days": h} for h in (14.0, 30.0, 60.0, 120.0, 240.0)],
    "kde": [
        {"bandwidth": b, "half_life_days": h}
        for b in (0.02, 0.04, 0.08, 0.15, 0.3)
        for h in (None, 60.0, 180.0)
    ],
    "gi_star": [{"k": k, "half_life_days": h} for k in (1, 2) for h in (None, 60.0, 180.0)],
}
"""The parameter grid each method is tuned over (on the tuning folds only)."""


def rank(scores: FloatArray) -> npt.NDArray[np.int64]:
    """Cell indices by decreasing score; ties keep the cell order (H3 id), so the choice is stable."""
    return np.asarray(np.argsort(-scores, kind="stable"), dtype=np.int64)
