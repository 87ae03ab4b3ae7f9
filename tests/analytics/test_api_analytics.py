"""``/analytics/hotspots`` and ``/analytics/recommendations`` over incidents in the center's database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import httpx
import pytest

from rtcc.roles import Role
from rtcc.store.tables import GunshotIncidentRow
from tests.analytics import synth
from tests.conftest import Running

HOT_C = (37.7900, -122.2000)  # only dismissed incidents here: must not show


def _rows(now: datetime) -> list[GunshotIncidentRow]:
    rows = synth.incidents(months=4, per_month=60, seed=11)
    shift = (now.replace(tzinfo=None) - rows[-1][0]).days  # whole days: hours of the day stay, none ahead
    out = []
    for i, (t, lat, lon) in enumerate(rows):
        out.append(
            _row(
                (t + timedelta(days=shift)).replace(tzinfo=UTC), lat, lon, "alerted" if i % 2 else "confirmed"
            )
        )
    for j in range(40):
        lat, lon = synth.offset(*HOT_C, j % 5 * 10.0, 0.0)
        out.append(_row(now - timedelta(days=j + 1), lat, lon, "dismissed"))
    out.append(_row(now - timedelta(days=400), *synth.HOT_B, "alerted"))  # outside days=365
    return out


def _row(t: datetime, lat: float, lon: float, status: str) -> GunshotIncidentRow:
    return GunshotIncidentRow(
        id=uuid.uuid4(),
        occurred_at=t,
        lat=lat,
        lon=lon,
        ellipse_major_m=20.0,
        ellipse_minor_m=10.0,
        ellipse_angle_deg=0.0,
        rounds=3,
        intervals_s=[],
        automatic=False,
        multiple_shooters=False,
        label="gunshot",
        confidence=0.9,
        sensors=[],
        pulses={},
        status=status,
    )


async def _seed(center: Running) -> int:
    rows = _rows(datetime.now(UTC))
    store = center.center.store
    assert store is not None

    def add(s: Any) -> None:
        s.add_all(rows)

    await store.write(add)
    return sum(1 for r in rows if r.status != "dismissed") - 1


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_hotspots_and_recommendations(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    counted = await _seed(center)
    analyst = clients[Role.analyst]
    r = await analyst.get("/api/v1/analytics/hotspots", params={"days": 365, "res": 9})
    assert r.status_code == 200, r.text
    geo = r.json()
    assert geo["type"] == "FeatureCollection" and geo["incidents"] == counted and geo["days"] == 365
    cells = {f["properties"]["cell"]: f["properties"] for f in geo["features"]}
    a = cells[h3.latlng_to_cell(*synth.HOT_A, 9)]
    assert a["hotspot"] == "hot" and a["count"] == max(p["count"] for p in cells.values())
    assert h3.latlng_to_cell(*HOT_C, 9) not in cells  # dismissed incidents are not hotspots
    assert sum(geo["hour_of_week"]) == counted

    for role in (Role.supervisor, Role.admin):
        r = await clients[role].get("/api/v1/analytics/recommendations", params={"shift": "night", "k": 2})
        assert r.status_code == 200, r.text
        rec = r.json()
        assert [f["properties"]["rank"] for f in rec["features"]] == [1, 2]
        assert rec["features"][0]["properties"]["cell"] == a["cell"]
    r = await analyst.get("/api/v1/analytics/recommendations", params={"shift": "day", "k": 1})
    assert r.json()["features"][0]["properties"]["cell"] == h3.latlng_to_cell(*synth.HOT_B, 9)
    r = await analyst.get("/api/v1/analytics/recommendations")  # the current shift by default
    assert r.status_code == 200 and r.json()["shift"] in ("day", "evening", "night")


@pytest.mark.parametrize("backend", ["embedded"])
async def test_bad_input_and_roles(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    analyst = clients[Role.analyst]
    for params in ({"tz": "Mars/Olympus"}, {"res": 3}, {"days": 0}, {"shift": "brunch"}, {"k": 500}):
        r = await analyst.get("/api/v1/analytics/recommendations", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
    r = await analyst.get("/api/v1/analytics/hotspots", params={"tz": "Mars/Olympus"})
    assert r.status_code == 422 and "IANA" in r.json()["error"]["message"]
    for role in (Role.officer, Role.auditor):
        r = await clients[role].get("/api/v1/analytics/hotspots")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await center.http.get("/api/v1/analytics/recommendations")
    assert r.status_code == 401
    # an empty database gives an empty map, not an error
    r = await analyst.get("/api/v1/analytics/hotspots", params={"tz": "America/Los_Angeles"})
    assert r.status_code == 200 and r.json()["features"] == [] and r.json()["tz"] == "America/Los_Angeles"


@pytest.mark.parametrize("backend", ["embedded"])
async def test_shifts_are_read_in_the_given_time_zone(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    # 16:00 UTC is the evening shift in UTC but 08:00 or 09:00 (day shift) in Los Angeles
    today = datetime.now(UTC).replace(hour=16, minute=0, second=0, microsecond=0)
    rows = [_row(today - timedelta(days=d + 1), *synth.HOT_B, "confirmed") for d in range(10)]
    store = center.center.store
    assert store is not None
    await store.write(lambda s: s.add_all(rows))
    analyst = clients[Role.analyst]
    cell = h3.latlng_to_cell(*synth.HOT_B, 9)

    async def top(shift: str, tz: str) -> list[str]:
        r = await analyst.get("/api/v1/analytics/recommendations", params={"shift": shift, "tz": tz})
        assert r.status_code == 200, r.text
        return [f["properties"]["cell"] for f in r.json()["features"]]

    assert await top("evening", "UTC") == [cell]
    assert await top("day", "UTC") == []
    assert await top("day", "America/Los_Angeles") == [cell]
    r = await analyst.get("/api/v1/analytics/hotspots", params={"tz": "America/Los_Angeles"})
    how = r.json()["features"][0]["properties"]["peak_hour_of_week"]
    assert how % 24 in (8, 9)
