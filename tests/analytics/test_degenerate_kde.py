"""Recommendations stay right when every incident of a shift is at one spot (a singular KDE)."""

from __future__ import annotations

from datetime import datetime, timedelta

import h3
import numpy as np

from rtcc.analytics.hotspots import recommendations
from rtcc.analytics.methods import _degenerate
from rtcc.analytics.records import Incidents
from tests.analytics import synth


def test_degenerate_spread_is_detected() -> None:
    rng = np.random.default_rng(3)
    spot = np.tile([[1234.5], [987.25]], (1, 10))
    line = np.vstack([np.linspace(0, 500, 10), np.full(10, 42.0)])
    cloud = rng.normal(0, 200, size=(2, 10))
    assert _degenerate(spot) and _degenerate(line) and not _degenerate(cloud)


def test_one_spot_recommended_whatever_the_time() -> None:
    day = datetime(2026, 11, 21, 16, 0)
    times = [day - timedelta(days=d + 1) for d in range(10)]
    inc = Incidents.build(times, [synth.HOT_B[0]] * 10, [synth.HOT_B[1]] * 10)
    cell = h3.latlng_to_cell(*synth.HOT_B, 9)
    # the recency weights change with "now"; so did the rounding that once made the kernel absurd
    for minutes in range(0, 24 * 60, 7):
        now = day + timedelta(minutes=minutes)
        out = recommendations(inc, shift="evening", k=3, res=9, now=now)
        assert [f["properties"]["cell"] for f in out["features"]] == [cell], now
