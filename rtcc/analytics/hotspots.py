"""Hotspot maps and deployment recommendations (top cells per shift) as GeoJSON for the dashboard.

The cells are those holding incidents and two rings around them.

Hotspots: per H3 cell, the number of incidents, the share of the kernel density (scipy
``gaussian_kde``) falling in the cell, and the Getis-Ord Gi* z-score and one-sided p-value (esda
``G_Local``, ``star=True``) with a hot / cold label at 95 %; plus the hour-of-week profile of the
incidents (168 counts, Monday 00:00 first) and each cell's peak hour of the week.

Recommendations: for a shift (local hours, :data:`SHIFTS`), the ``k`` cells with the highest
recency-weighted kernel density of that shift's incidents — the method and parameters that did
best on the tuning months of the real records (see ``docs/analytics.md``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import numpy as np

from rtcc.errors import ValidationFailed

from .grid import StudyArea
from .methods import METHODS, Prepared, Window, gi_star, gi_weights, kde, rank
from .records import Incidents

Shift = Literal["day", "evening", "night"]
SHIFTS: dict[str, tuple[int, int]] = {"day": (7, 15), "evening": (15, 23), "night": (23, 7)}
"""Shift → (first hour, end hour) in local time; ``night`` wraps past midnight."""

RECOMMEND_PARAMS: dict[str, dict[str, Any]] = {
    "kde": {"bandwidth": 0.08, "half_life_days": 60.0},
    "recency": {"half_life_days": 120.0},
    "gi_star": {"k": 1, "half_life_days": 60.0},
    "counts": {},
    "naive": {},
}
"""Parameters per method, as chosen on the tuning months (both cities agreed on the KDE's)."""

Z95 = 1.6448536269514722  # one-sided 95 % normal quantile


def shift_of(hour: int) -> str:
    """The shift a local hour (0–23) belongs to."""
    for name, (a, b) in SHIFTS.items():
        if (a <= hour < b) if a < b else (hour >= a or hour < b):
            return name
    raise AssertionError(hour)  # pragma: no cover - the shifts cover the day


def in_shift(inc: Incidents, shift: str) -> Incidents:
    """The incidents whose local hour falls in ``shift``."""
    if shift not in SHIFTS:
        raise ValidationFailed(f"unknown shift {shift!r}; choose one of: {', '.join(SHIFTS)}")
    a, b = SHIFTS[shift]
    hour = inc.hour_of_week() % 24
    keep = (hour >= a) & (hour < b) if a < b else (hour >= a) | (hour < b)
    return inc.mask(keep)


def _window(inc: Incidents, now: datetime) -> Window:
    end = np.datetime64(now.replace(tzinfo=None), "s") + np.timedelta64(1, "s")
    start = inc.t[0] if len(inc) else end
    return Window(start=start, last_start=end - np.timedelta64(30, "D"), end=end)


def _empty(meta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [], **meta}


def hotspots(inc: Incidents, *, res: int = 9, now: datetime | None = None) -> dict[str, Any]:
    """Hotspot cells of ``inc`` as a GeoJSON FeatureCollection (see the module docstring).

    Only cells holding incidents or with a significant Gi* hot spot are returned as features.
    """
    how = np.bincount(inc.hour_of_week(), minlength=168).astype(int).tolist() if len(inc) else [0] * 168
    meta: dict[str, Any] = {"res": res, "incidents": len(inc), "hour_of_week": how}
    area = StudyArea.around(inc.lat, inc.lon, res)
    if len(inc) == 0 or len(area) == 0:
        return _empty(meta)
    from scipy.stats import norm

    p = Prepared.of(inc, area)
    w = _window(inc, now or inc.t[-1].item())
    count = METHODS["counts"](p, w)
    density = kde(p, w, bandwidth=0.08)
    share = density / density.sum() if density.sum() > 0 else density
    z = gi_star(p, w, weights=gi_weights(area, 1)) if len(area) >= 3 else np.zeros(len(area))
    hw = inc.hour_of_week()
    features = []
    for i in range(len(area)):
        zi = float(z[i]) if np.isfinite(z[i]) else 0.0
        if count[i] <= 0 and zi < Z95:
            continue
        mine = hw[p.cell == i]
        features.append(
            area.feature(
                i,
                {
                    "count": int(count[i]),
                    "kde_share": round(float(share[i]), 5),
                    "gi_z": round(zi, 3),
                    "gi_p": round(float(norm.sf(zi)), 5),
                    "hotspot": "hot" if zi >= Z95 else ("cold" if zi <= -Z95 else "none"),
                    "peak_hour_of_week": int(np.bincount(mine, minlength=168).argmax())
                    if len(mine)
                    else None,
                },
            )
        )
    features.sort(key=lambda f: (-f["properties"]["count"], f["properties"]["cell"]))
    return {**_empty(meta), "features": features}


def recommendations(
    inc: Incidents, *, shift: str, k: int = 5, res: int = 9, method: str = "kde", now: datetime | None = None
) -> dict[str, Any]:
    """The top ``k`` cells to staff during ``shift``, as GeoJSON features with ``rank`` and ``score``.

    ``score`` is the method's score (for ``kde``: expected share of the shift's incidents per
    cell, normalised to sum to 1 over the study area).
    """
    if method not in RECOMMEND_PARAMS:
        raise ValidationFailed(f"unknown method {method!r}; choose one of: {', '.join(RECOMMEND_PARAMS)}")
    mine = in_shift(inc, shift)
    hours = SHIFTS[shift]
    meta: dict[str, Any] = {
        "shift": shift,
        "hours": list(hours),
        "method": method,
        "params": RECOMMEND_PARAMS[method],
        "res": res,
        "incidents": len(mine),
    }
    area = StudyArea.around(mine.lat, mine.lon, res)
    if len(mine) == 0 or len(area) == 0:
        return _empty(meta)
    p = Prepared.of(mine, area)
    w = _window(mine, now or mine.t[-1].item())
    params = dict(RECOMMEND_PARAMS[method])
    if method == "gi_star":
        params["weights"] = gi_weights(area, int(params.get("k", 1)))
    scores = METHODS[method](p, w, **params)
    if method == "kde" and scores.sum() > 0:
        scores = scores / scores.sum()
    count = METHODS["counts"](p, w)
    features = []
    for r, i in enumerate(rank(scores)[:k], start=1):
        if not np.isfinite(scores[i]) or (scores[i] <= 0 and method != "gi_star"):
            break
        features.append(
            area.feature(int(i), {"rank": r, "score": round(float(scores[i]), 5), "count": int(count[i])})
        )
    return {**_empty(meta), "features": features}
