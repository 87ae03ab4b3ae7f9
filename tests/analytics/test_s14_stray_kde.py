"""One far stray position must not flatten the kernel density of the whole map.

Audit finding (session 14): ``gaussian_kde`` takes its bandwidth from the covariance of every
fitted position, so one geocoding failure 2,000 km away (as in the Oakland record) widened the
kernel until hotspot A held under 1 % of the density and the night recommendation lost A.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import h3
import numpy as np

from rtcc.analytics.hotspots import hotspots, recommendations
from rtcc.analytics.records import Incidents
from tests.analytics import synth

STRAY = (datetime(2020, 1, 15, 1), 30.0099, -141.218751)  # the Oakland record's geocoding failure


def _build(rows: list[tuple[datetime, float, float]]) -> Incidents:
    return Incidents.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _cells(geo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["cell"]: f["properties"] for f in geo["features"]}


def test_a_stray_position_does_not_flatten_the_density() -> None:
    rows = synth.incidents(months=2, per_month=40)
    a = h3.latlng_to_cell(*synth.HOT_A, 9)
    clean, stray = _build(rows), _build([*rows, STRAY])

    for inc in (clean, stray):
        cells = _cells(hotspots(inc, res=9))
        assert cells[a]["kde_share"] > 0.05
        assert cells[a]["kde_share"] == max(c["kde_share"] for c in cells.values())
        rec = recommendations(inc, shift="night", k=3, res=9)
        assert rec["features"][0]["properties"]["cell"] == a
    geo = hotspots(stray, res=9)
    assert _cells(geo)[a]["kde_share"] == _cells(hotspots(clean, res=9))[a]["kde_share"]
    # the stray is left out of the density only: it still counts, in its own cell
    far = _cells(geo)[h3.latlng_to_cell(*STRAY[1:], 9)]
    assert far["count"] == 1 and far["kde_share"] == 0.0
    assert geo["incidents"] == len(rows) + 1


def test_core_keeps_a_city_and_drops_what_is_far_off() -> None:
    from rtcc.analytics.methods import core

    rng = np.random.default_rng(3)
    city = rng.normal(0, 3_000, (2, 500))  # a city ~3 km across: all kept (radius ≥ 10 km)
    assert core(city).all()
    pts = np.hstack([city, [[2_000_000.0, 60_000.0], [0.0, 80_000.0]]])
    keep = core(pts)
    assert keep[:500].all() and not keep[500:].any()
    assert core(np.zeros((2, 0))).shape == (0,)
