"""Hotspot cells and per-shift recommendations find planted clusters (library level)."""

from __future__ import annotations

from datetime import datetime

import h3
import numpy as np
import pytest

from rtcc.analytics.hotspots import hotspots, in_shift, recommendations, shift_of
from rtcc.analytics.records import Incidents
from rtcc.errors import ValidationFailed
from tests.analytics import synth


def _inc(months: int = 6) -> Incidents:
    rows = synth.incidents(months=months, per_month=80)
    return Incidents.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def test_shifts_cover_the_day_once() -> None:
    assert [shift_of(h) for h in (6, 7, 14, 15, 22, 23, 0)] == [
        "night",
        "day",
        "day",
        "evening",
        "evening",
        "night",
        "night",
    ]
    inc = _inc(2)
    parts = [len(in_shift(inc, s)) for s in ("day", "evening", "night")]
    assert sum(parts) == len(inc)
    with pytest.raises(ValidationFailed, match="unknown shift"):
        in_shift(inc, "brunch")


def test_hotspots_geojson_marks_the_planted_clusters() -> None:
    inc = _inc()
    geo = hotspots(inc, res=9)
    assert geo["type"] == "FeatureCollection" and geo["incidents"] == len(inc)
    assert len(geo["hour_of_week"]) == 168 and sum(geo["hour_of_week"]) == len(inc)
    by_cell = {f["properties"]["cell"]: f for f in geo["features"]}
    a = by_cell[h3.latlng_to_cell(*synth.HOT_A, 9)]["properties"]
    b = by_cell[h3.latlng_to_cell(*synth.HOT_B, 9)]["properties"]
    # the busiest cell is A's, and both clusters are Gi* hot spots at 95 %
    assert geo["features"][0]["properties"]["cell"] == a["cell"]
    assert a["hotspot"] == "hot" and b["hotspot"] == "hot"
    assert a["gi_z"] > 3 and a["gi_p"] < 0.01
    # 40 % of incidents in a 60 m cluster, spread by a ~200 m kernel: the densest cell by far
    assert a["kde_share"] > 0.05
    assert a["kde_share"] == max(f["properties"]["kde_share"] for f in geo["features"])
    assert a["peak_hour_of_week"] % 24 in (23, 0, 1, 2, 3)  # A is busy at night
    assert 8 <= b["peak_hour_of_week"] % 24 < 14
    ring = geo["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 7 and ring[0] == ring[-1]  # a closed hexagon, (lon, lat)
    assert -123 < ring[0][0] < -122 and 37 < ring[0][1] < 38


def test_recommendations_follow_the_shift() -> None:
    inc = _inc()
    night = recommendations(inc, shift="night", k=3, res=9)
    day = recommendations(inc, shift="day", k=3, res=9)
    assert night["features"][0]["properties"]["cell"] == h3.latlng_to_cell(*synth.HOT_A, 9)
    assert day["features"][0]["properties"]["cell"] == h3.latlng_to_cell(*synth.HOT_B, 9)
    assert [f["properties"]["rank"] for f in night["features"]] == [1, 2, 3]
    scores = [f["properties"]["score"] for f in night["features"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert night["shift"] == "night" and night["hours"] == [23, 7]
    for method in ("recency", "gi_star", "counts", "naive"):
        got = recommendations(inc, shift="night", k=3, res=9, method=method)
        assert len(got["features"]) == 3, method


def test_empty_history_gives_an_empty_collection() -> None:
    empty = Incidents.build([], [], [])
    assert hotspots(empty)["features"] == [] and hotspots(empty)["hour_of_week"] == [0] * 168
    assert recommendations(empty, shift="day")["features"] == []
    one = Incidents.build([datetime(2024, 1, 1, 10)], [synth.HOT_B[0]], [synth.HOT_B[1]])
    assert recommendations(one, shift="day", k=5)["features"][0]["properties"]["count"] == 1


def test_a_stray_geocoding_failure_does_not_inflate_the_map() -> None:
    rows = synth.incidents(months=2, per_month=40)
    rows.append((datetime(2020, 1, 15, 1), 30.0099, -141.218751))  # as in the Oakland record
    inc = Incidents.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    geo = hotspots(inc, res=10)
    assert geo["features"][0]["properties"]["cell"] == h3.latlng_to_cell(*synth.HOT_A, 10)
    assert any(
        f["properties"]["count"] == 1 and f["geometry"]["coordinates"][0][0][1] < 31 for f in geo["features"]
    )


def test_oversized_study_areas_are_refused() -> None:
    from rtcc.analytics.grid import StudyArea

    lat, lon = np.array([37.0, 38.0, 37.5]), np.array([-123.0, -122.0, -121.0])
    with pytest.raises(ValidationFailed, match="coarser resolution"):
        StudyArea.covering(lat, lon, 11)
    assert 0 < len(StudyArea.covering(lat, lon, 6)) < 1000
