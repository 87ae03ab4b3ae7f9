"""Simulated traffic: cameras read passing vehicles once per pass, misreads are look-alikes, hits arrive."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from rtcc.events import PlateRead
from rtcc.plates.matching import skeleton
from rtcc.settings import SimSettings
from rtcc.sim import build_city
from rtcc.sim.runner import SimRunner, Tick
from rtcc.sim.traffic import DEMO_SOURCE, REREAD_AFTER_S, Traffic, misread, random_plate
from rtcc.sim.truth import TruthLog
from tests.conftest import StartCenter
from tests.helpers import eventually

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_misreads_are_lookalikes_or_a_lost_character() -> None:
    rng = random.Random(3)
    for _ in range(500):
        p = random_plate(rng)
        assert 7 <= len(p) <= 7 and p.isalnum() and p.isupper()
        m = misread(p, rng)
        assert m != p or len(set(p)) == 1
        if len(m) == len(p):
            assert skeleton(m) == skeleton(p) and sum(a != b for a, b in zip(m, p, strict=True)) == 1
        else:
            assert len(m) == len(p) - 1 and any(p[:i] + p[i + 1 :] == m for i in range(len(p)))


def _run(traffic: Traffic, ticks: int, dt: float, truth: TruthLog) -> list[PlateRead]:
    city = traffic.city
    rng = random.Random(1)
    out: list[PlateRead] = []
    for i in range(ticks):
        city.advance(dt)
        now = T0 + timedelta(seconds=(i + 1) * dt)
        evs = traffic.source(Tick(i, (i + 1) * dt, dt, now, city, rng, truth))
        for e in evs:
            assert isinstance(e, PlateRead)
            assert now - timedelta(seconds=dt) <= e.occurred_at <= now  # stamped within its tick, never ahead
            out.append(e)
    return out


def test_cameras_read_passing_traffic_once_per_pass(tmp_path: Path) -> None:
    city = build_city(SimSettings(patrol_units=6))
    truth = TruthLog(tmp_path / "truth.jsonl")
    traffic = Traffic(city, vehicles=80, misread_rate=0.1)
    reads = _run(traffic, ticks=120, dt=10.0, truth=truth)  # 20 simulated minutes
    truth.close()
    facts = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text().splitlines()]
    facts = [f for f in facts if f["kind"] == "plate_read"]
    assert len(facts) == len(reads) > 300
    cams = {d.id for d in city.plate_cameras} | {u.plate_camera_id for u in city.units if u.plate_camera_id}
    assert {r.device for r in reads} <= cams
    assert len({r.device for r in reads if not r.device.startswith("lpr-m")}) >= len(city.plate_cameras) // 2
    # one read per pass: the same vehicle is not read twice by one camera within REREAD_AFTER_S
    last: dict[tuple[str, str], datetime] = {}
    for f in facts:
        at = datetime.fromisoformat(f["at"])
        key = (f["plate"], f["camera"])
        if key in last:
            assert (at - last[key]).total_seconds() >= REREAD_AFTER_S - 1.0
        last[key] = at
    # misreads at about the configured rate, with lower confidence, never the true plate
    wrong = [f for f in facts if f["misread"]]
    assert 0.05 <= len(wrong) / len(facts) <= 0.16
    assert all(f["read"] != f["plate"] for f in wrong)
    plates = {v.plate for v in traffic.vehicles}
    assert {f["plate"] for f in facts} <= plates
    good = [r for r in reads if r.plate in plates]
    assert sum(r.confidence for r in good) / len(good) > 0.85


def test_demo_hotlist_lists_vehicles_in_traffic() -> None:
    city = build_city(SimSettings(patrol_units=0))
    traffic = Traffic(city, vehicles=50, hotlisted_share=0.1)
    entries = traffic.hotlist()
    assert len(entries) == 5
    assert {e.plate for e in entries} <= {v.plate for v in traffic.vehicles}
    assert {e.category.value for e in entries} >= {"stolen_vehicle", "wanted_person", "missing_person"}
    assert Traffic(city, vehicles=50, hotlisted_share=0.1).hotlist() == entries  # seeded


async def test_traffic_through_the_ingest_raises_hits(start_center: StartCenter, tmp_path: Path) -> None:
    c = await start_center(processors=("recorder", "plates"))
    center = c.center
    settings = SimSettings(patrol_units=3, sensors_per_sq_mile=1)
    city = build_city(settings)
    traffic = Traffic(city, vehicles=40, hotlisted_share=0.5)
    async with httpx.AsyncClient(timeout=20) as http:
        runner = SimRunner(
            city, provision=center.provision_device, http=http, base_url=center.base_url, settings=settings
        )
        runner.add_source(traffic.source)
        await traffic.seed_hotlist(center)
        await runner.provision_all()
        rng, truth = random.Random(2), TruthLog(None)
        for i in range(40):  # the plate reads only (no heartbeats), through the device ingest
            city.advance(10.0)
            tick = Tick(i, 10.0 * (i + 1), 10.0, datetime.now(UTC), city, rng, truth)
            await runner.submit(traffic.source(tick))
        await runner.flush()
        assert runner.counters.rejected == 0 and runner.counters.accepted == traffic.reads
    assert traffic.reads > 20
    admin = await c.login("admin")
    try:
        r = await admin.get("/api/v1/hotlists")
        [src] = r.json()["items"]
        assert (src["name"], src["entries"]) == (DEMO_SOURCE, 20)

        async def hits() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await admin.get("/api/v1/hits")).json()["items"]
            return items if len(items) >= 3 else None

        found = await eventually(hits, what="hits from simulated traffic")
        listed = {e.plate for e in traffic.hotlist()}
        assert all(h["entry_plate"] in listed and h["entry_source"] == DEMO_SOURCE for h in found)
    finally:
        await admin.aclose()
