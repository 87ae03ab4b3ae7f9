"""A sensor flooding the center with pulses (issue 6, "Bad input": a flood of pulses).

A faulty sensor (a loose cable, a stuck comparator) reports ~300 impulses a second for 20
seconds. Its pulses beyond its token bucket (bursts of ``max_pulse_burst``, refilled at
``max_pulse_rate_hz`` of its own clock) are counted as a flood and not located; the real shot heard
meanwhile by the whole array is located once, where it was fired; the flood makes no incident;
every pulse is still stored as received. A magazine of automatic fire, with its echoes, is not a
flood.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from rtcc.events import Position, Pulse
from rtcc.roles import Role
from rtcc.settings import AcousticSettings
from rtcc.store.tables import EventRecord
from tests.acoustic.test_pipeline_helpers import (
    BOTH,
    SENSOR_ALT_M,
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

FLOOD_RATE_HZ = 300.0
FLOOD_S = 20.0
SETTINGS = AcousticSettings()


def _flood(arr: Array, sid: str, start: datetime, seed: int = 5) -> list[Pulse]:
    """``sid`` reporting FLOOD_RATE_HZ random impulses a second for FLOOD_S seconds from ``start``."""
    rng = random.Random(seed)
    lat, lon = arr.proj.to_latlon(*arr.xy[sid])
    # distinct milliseconds: the same sensor at the same millisecond is a resend, not a flood
    offsets_ms = rng.sample(range(int(FLOOD_S * 1000)), int(FLOOD_RATE_HZ * FLOOD_S * 0.9))
    return [
        Pulse(
            source=sid,
            device=sid,
            occurred_at=start + timedelta(milliseconds=ms),
            pos=Position(lat=lat, lon=lon, alt_m=SENSOR_ALT_M),
            peak_db=rng.uniform(70.0, 110.0),
            snr_db=rng.uniform(6.0, 40.0),
            duration_ms=5.0,
        )
        for ms in offsets_ms
    ]


async def _incidents(officer: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
    return items


async def _stored_pulses(center: Running) -> int:
    def q(s: Any) -> int:
        return int(s.scalar(select(func.count()).select_from(EventRecord).where(EventRecord.type == "pulse")))

    n: int = await center.center.store.read(q)
    return n


@BOTH
async def test_a_flooding_sensor_neither_hides_nor_fakes_a_shot(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    officer = clients[Role.officer]
    bad = "ac-t01"
    start = datetime.now(UTC) - timedelta(seconds=FLOOD_S + 5.0)
    flood = _flood(arr, bad, start)
    src = (120.0, -80.0)
    shot = shot_pulses(arr, src, t_emit=start + timedelta(seconds=FLOOD_S / 2))
    for k in range(0, len(flood), 1000):
        await post_pulses(center, arr, flood[k : k + 1000])
    await post_pulses(center, arr, shot)

    async def one() -> list[dict[str, Any]] | None:
        return await _incidents(officer) or None

    [inc] = await eventually(one, timeout=120.0, what="the incident")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= 3.0
    sent = len(flood) + len(shot)
    stored = await eventually(
        lambda: _at_least(_stored_pulses(center), sent), timeout=120.0, what="every pulse stored"
    )
    assert stored == sent  # none lost
    # at most a burst plus the refill over the flood's span got through; the rest is counted
    metrics = center.center.metrics
    rejected = metrics.get("acoustic_pulse_rejected", reason="flood")
    admitted_at_most = SETTINGS.max_pulse_burst + SETTINGS.max_pulse_rate_hz * FLOOD_S + 1
    assert len(flood) - admitted_at_most <= rejected <= len(flood) + 1
    # the flood made no incident of its own (it is heard by one sensor: nothing to locate)
    await eventually(lambda: _idle(center), timeout=120.0, what="the pipeline idle")
    assert [i["id"] for i in await _incidents(officer)] == [inc["id"]]


@BOTH
async def test_automatic_fire_with_echoes_is_not_a_flood(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.95)
    rounds = tuple(round(0.075 * k, 3) for k in range(30))  # a 30-round magazine at 800 rounds a minute
    src = (-150.0, 200.0)
    pulses = shot_pulses(arr, src, rounds=rounds)
    echoes = [
        p.model_copy(
            update={"occurred_at": p.occurred_at + timedelta(milliseconds=ms), "peak_db": p.peak_db - 12}
        )
        for p in pulses
        for ms in (23, 51)
    ]
    await post_pulses(center, arr, pulses + echoes)  # 90 pulses per sensor in 2.3 s
    officer = clients[Role.officer]

    async def all_rounds() -> list[dict[str, Any]] | None:
        items = await _incidents(officer)
        return items if items and items[0]["rounds"] >= len(rounds) else None

    [inc] = await eventually(all_rounds, timeout=60.0, what="every round counted")
    assert inc["rounds"] == len(rounds) and inc["automatic"] is True
    assert center.center.metrics.get("acoustic_pulse_rejected", reason="flood") == 0


async def _at_least(n: Any, want: int) -> int | None:
    got: int = await n
    return got if got >= want else None


async def _idle(center: Running) -> bool:
    return not pipeline_of(center)._clusters


@BOTH
async def test_a_long_burst_reported_sensor_by_sensor_is_one_incident_with_every_round(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """60 rounds at 1,000 a minute, each sensor's 60 pulses arriving together (a backlog): every
    pulse of the window is held until the window is processed, so the window must hold 540 pulses
    (the pipeline's handlers were 256: the burst was cut into windows of 4-5 sensors, no fix)."""
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.95)
    rounds = tuple(round(0.06 * k, 3) for k in range(60))
    await post_pulses(center, arr, shot_pulses(arr, (-150.0, 200.0), rounds=rounds))
    officer = clients[Role.officer]

    async def all_rounds() -> list[dict[str, Any]] | None:
        items = await _incidents(officer)
        return items if items and items[0]["rounds"] >= len(rounds) else None

    [inc] = await eventually(all_rounds, timeout=90.0, what="one incident with every round")
    assert inc["rounds"] == len(rounds) and inc["automatic"] is True


@BOTH
async def test_a_flooding_sensor_is_quarantined_then_heard_again(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """Once over its rate, every pulse of the sensor is a flood until it has sent none over the rate
    for ``flood_hold_s``: the trickle its refilling bucket lets through is not located either (it
    would keep one window open that every nearby shot joins). A shot after that hears it again."""
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.95)
    bad = "ac-t01"
    start = datetime.now(UTC) - timedelta(seconds=FLOOD_S + 40.0)
    flood = sorted(_flood(arr, bad, start), key=lambda p: p.occurred_at)  # reported in time order
    for k in range(0, len(flood), 1000):
        await post_pulses(center, arr, flood[k : k + 1000])
    metrics = center.center.metrics
    # only the first burst (and the refill while it drained) got through, not the refill over the
    # 20 s (another 400 pulses)
    want = len(flood) - SETTINGS.max_pulse_burst - 20
    await eventually(
        lambda: _at_least(_value(metrics.get("acoustic_pulse_rejected", reason="flood")), want),
        timeout=60.0,
        what="the whole flood but its first burst counted",
    )
    later = start + timedelta(seconds=FLOOD_S + SETTINGS.flood_hold_s + 5.0)
    src = (-150.0, 200.0)
    await post_pulses(center, arr, shot_pulses(arr, src, t_emit=later))
    officer = clients[Role.officer]

    async def heard_by_all() -> dict[str, Any] | None:
        for inc in await _incidents(officer):
            detail = (await officer.get(f"/api/v1/gunshots/{inc['id']}")).json()
            if bad in detail.get("sensors", []):
                return dict(detail)
        return None

    inc = await eventually(heard_by_all, timeout=60.0, what="the shot heard by the sensor again")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), src) <= 3.0


async def test_a_sensor_clicking_within_its_rate_does_not_hold_a_window_open(
    center: Running,
) -> None:
    """A sensor that keeps clicking faster than the window's quiet time (a fan, a jackhammer: 10 a
    second, under the flood rate) never lets its window go quiet. The window is processed after
    ``max_window_s`` all the same, and its pulses, held over, are not taken back by the sensor's
    own next clicks, so no window grows with the clicking."""
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    pipe.max_window_s = 1.5
    sid = "ac-t05"
    lat, lon = arr.proj.to_latlon(*arr.xy[sid])
    sizes: list[int] = []
    for k in range(60):  # 6 s of clicks, posted as they happen
        click = Pulse(
            source=sid,
            device=sid,
            occurred_at=datetime.now(UTC),
            pos=Position(lat=lat, lon=lon, alt_m=SENSOR_ALT_M),
            peak_db=90.0,
            snr_db=20.0,
            duration_ms=3.0,
        )
        await post_pulses(center, arr, [click])
        await asyncio.sleep(0.1)
        if k >= 30:
            sizes.append(max((len(cl.pulses) for cl in pipe._clusters), default=0))
    assert center.center.metrics.get("acoustic_pulse_rejected", reason="flood") == 0
    # at 10 clicks a second a window holds at most ~1.5 s of them (plus a tick), never the 3-6 s sent
    assert sizes and max(sizes) <= 20, sizes


async def _value(n: float) -> float:
    return n
