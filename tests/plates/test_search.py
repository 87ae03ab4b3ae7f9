"""Accountable search: refused without purpose and case, audited with its terms; track; co-travel."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rtcc.events import PlateRead, Position
from rtcc.plates.analysis import Sighting, cotravel
from rtcc.plates.reads import insert_reads
from rtcc.plates.transparency import stats
from rtcc.roles import Role
from tests.conftest import Running, StartCenter

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
CAMS = {
    "c1": (33.5100, -86.8100),
    "c2": (33.5150, -86.8100),
    "c3": (33.5200, -86.8100),
    "c4": (33.5300, -86.7900),
}

# (plate, camera, seconds after T0)
CONSTRUCTED = [
    ("TGT100", "c1", 0),
    ("TGT100", "c2", 300),
    ("TGT100", "c3", 600),
    ("BUD200", "c1", 10),  # travels with the target: 10 s, 5 s and 40 s apart
    ("BUD200", "c2", 295),
    ("BUD200", "c3", 640),
    ("ONE300", "c1", 5),  # twice at one camera: one camera only
    ("ONE300", "c1", 8),
    ("LATE400", "c1", 100),  # 100 s after the target at c1, 1 s at c2
    ("LATE400", "c2", 301),
    ("ELSE500", "c4", 0),  # elsewhere
]


def make_reads() -> list[PlateRead]:
    return [
        PlateRead(
            source=cam,
            device=cam,
            occurred_at=T0 + timedelta(seconds=s),
            pos=Position(lat=CAMS[cam][0], lon=CAMS[cam][1]),
            plate=plate,
            confidence=0.9,
        )
        for plate, cam, s in CONSTRUCTED
    ]


def sightings() -> list[Sighting]:
    return [Sighting(p, c, T0 + timedelta(seconds=s), f"r{i}") for i, (p, c, s) in enumerate(CONSTRUCTED)]


def test_cotravel_on_a_constructed_set() -> None:
    every = sightings()
    target = [s for s in every if s.plate == "TGT100"]

    def plates(window_s: float, min_cameras: int) -> list[tuple[str, int]]:
        return [
            (c.plate, len(c.cameras))
            for c in cotravel(target, every, window_s=window_s, min_cameras=min_cameras)
        ]

    assert plates(30, 2) == [("BUD200", 2)]
    assert plates(30, 3) == []
    assert plates(60, 3) == [("BUD200", 3)]
    assert plates(120, 2) == [("BUD200", 3), ("LATE400", 2)]
    assert plates(30, 1) == [("BUD200", 2), ("ONE300", 1), ("LATE400", 1)]  # ONE300: 2 sightings, 1 camera
    with pytest.raises(ValueError):
        cotravel(target, every, window_s=10, min_cameras=0)


def test_cotravel_agrees_with_brute_force() -> None:
    rng = random.Random(5)
    cams = [f"k{i}" for i in range(6)]
    target = [
        Sighting("T", rng.choice(cams), T0 + timedelta(seconds=rng.uniform(0, 3600))) for _ in range(15)
    ]
    others = [
        Sighting(
            f"P{rng.randrange(40)}", rng.choice(cams), T0 + timedelta(seconds=rng.uniform(0, 3600)), f"o{i}"
        )
        for i in range(800)
    ]
    for window, need in ((20, 1), (60, 2), (300, 3)):
        got = {
            c.plate: sorted(c.cameras) for c in cotravel(target, others, window_s=window, min_cameras=need)
        }
        want: dict[str, set[str]] = {}
        for o in others:
            if any(t.device == o.device and abs((t.at - o.at).total_seconds()) <= window for t in target):
                want.setdefault(o.plate, set()).add(o.device)
        assert got == {p: sorted(c) for p, c in want.items() if len(c) >= need}


WHY = {"purpose": "armed robbery, getaway car seen on Main St", "case_number": "2026-001234"}


async def _setup(start_center: StartCenter) -> tuple[Running, dict[Role, httpx.AsyncClient]]:
    c = await start_center(processors=())
    assert c.center.store is not None
    c.center.store.run(lambda s: insert_reads(s, make_reads()))
    clients = {Role.admin: await c.login("admin")}
    for role in (Role.analyst, Role.officer, Role.supervisor):
        c.add_user(f"{role.value}1", role)
        clients[role] = await c.login(f"{role.value}1")
    return c, clients


async def _audit(admin: httpx.AsyncClient, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_search_needs_purpose_and_case_and_is_audited(start_center: StartCenter) -> None:
    _, cl = await _setup(start_center)
    analyst, admin = cl[Role.analyst], cl[Role.admin]
    try:
        for params in ({"plate": "TGT100"}, {"plate": "TGT100", "purpose": WHY["purpose"]}):
            r = await analyst.get("/api/v1/plates/search", params=params)
            assert r.status_code == 422
            err = r.json()["error"]
            assert "purpose" in err["message"] and "case number" in err["message"]
        r = await analyst.get("/api/v1/plates/track", params={"plate": "TGT100", "case_number": "2026-1"})
        assert r.status_code == 422 and r.json()["error"]["details"]["missing"] == ["purpose"]
        # a case number that names no case, a purpose that states none (the auditor's tries)
        for case, purpose in (
            ("x", WHY["purpose"]),
            ("n/a", WHY["purpose"]),
            ("-", WHY["purpose"]),
            ("none", WHY["purpose"]),
            (WHY["case_number"], "aaaaa"),
            (WHY["case_number"], "n/a n/a"),
        ):
            r = await analyst.get(
                "/api/v1/plates/search", params={"plate": "TGT100", "purpose": purpose, "case_number": case}
            )
            assert r.status_code == 422, (case, purpose)
            assert ("names no case" if purpose == WHY["purpose"] else "states no purpose") in r.json()[
                "error"
            ]["message"]
        refused = await _audit(admin, "plate_search_refused")
        assert len(refused) == 9 and {e["outcome"] for e in refused} == {"refused"}
        r = await cl[Role.officer].get("/api/v1/plates/search", params={"plate": "TGT100", **WHY})
        assert r.status_code == 403  # officers decide hits; they don't search

        r = await analyst.get(
            "/api/v1/plates/search", params={"plate": "tgt-100", "purpose_category": "stolen_vehicle", **WHY}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 3 and {i["device"] for i in body["items"]} == {"c1", "c2", "c3"}
        [entry] = await _audit(admin, "plate_search")
        assert entry["actor"] == "analyst1" and entry["purpose"] == f"stolen_vehicle: {WHY['purpose']}"
        assert entry["details"]["case_number"] == WHY["case_number"]
        assert (
            entry["details"]["terms"]["plate"] == "tgt-100" and entry["details"]["terms"]["mode"] == "exact"
        )
        assert entry["details"]["result_count"] == 3 and entry["details"]["search_id"] == body["search_id"]

        async def count(**params: Any) -> set[str]:
            r = await analyst.get("/api/v1/plates/search", params={**params, **WHY})
            assert r.status_code == 200, r.text
            return {i["plate"] for i in r.json()["items"]}

        assert await count(plate="TGT*", mode="partial") == {"TGT100"}
        assert await count(plate="GT1", mode="partial") == {"TGT100"}
        assert await count(plate="TGTI0O", mode="lookalike") == {"TGT100"}
        assert await count(plate="BUD200", camera=["c1", "c3"]) == {"BUD200"}
        lat, lon = CAMS["c4"]
        assert await count(lat=lat, lon=lon, radius_m=100) == {"ELSE500"}
        poly = f"{lat - 0.001},{lon - 0.001};{lat - 0.001},{lon + 0.001};{lat + 0.001},{lon + 0.001}"
        assert await count(polygon=poly) == {"ELSE500"}
        assert await count(start=(T0 + timedelta(seconds=500)).isoformat()) == {"TGT100", "BUD200"}
        r = await analyst.get("/api/v1/plates/search", params={"lat": 33.5, **WHY})
        assert r.status_code == 422  # a radius needs lat, lon and radius_m
        r = await analyst.get(
            "/api/v1/plates/search", params={"plate": "X", "start": "2026-01-01T00:00:00", **WHY}
        )
        assert r.status_code == 422  # a time without a timezone
    finally:
        for x in cl.values():
            await x.aclose()


async def test_track_and_cotravel_over_the_api(start_center: StartCenter) -> None:
    c, cl = await _setup(start_center)
    sup = cl[Role.supervisor]
    try:
        r = await sup.get("/api/v1/plates/track", params={"plate": "TGT100", **WHY})
        assert r.status_code == 200, r.text
        track = r.json()
        assert [i["device"] for i in track["items"]] == ["c1", "c2", "c3"]  # oldest first
        lines = [f for f in track["geojson"]["features"] if f["geometry"]["type"] == "LineString"]
        assert len(lines) == 1 and len(lines[0]["geometry"]["coordinates"]) == 3
        assert lines[0]["geometry"]["coordinates"][0] == [CAMS["c1"][1], CAMS["c1"][0]]

        r = await sup.get(
            "/api/v1/plates/cotravel", params={"plate": "TGT100", "min_cameras": 2, "window_s": 120, **WHY}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["target_reads"] == 3
        assert [(i["plate"], i["cameras"]) for i in body["items"]] == [
            ("BUD200", ["c1", "c2", "c3"]),
            ("LATE400", ["c1", "c2"]),
        ]
        [entry] = await _audit(cl[Role.admin], "plate_cotravel")
        assert entry["details"]["terms"] == {"plate": "TGT100", "min_cameras": 2, "window_s": 120.0}
        assert entry["details"]["result_count"] == 2

        # the transparency figures: searches by purpose, no personal data
        assert c.center.store is not None
        fig = c.center.store.run(lambda s: stats(s, retention=c.settings.retention))
        assert fig["searches"]["total"] == 2
        assert fig["searches"]["by_kind"] == {"search": 0, "track": 1, "cotravel": 1}
        assert fig["searches"]["by_purpose"]["criminal_investigation"] == 2
        assert fig["retention"]["plate_reads_days"] == 30
        text = str(fig)
        assert "TGT100" not in text and WHY["case_number"] not in text and "supervisor1" not in text
    finally:
        for x in cl.values():
            await x.aclose()
