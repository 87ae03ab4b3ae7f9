"""Replayed pulses do not re-announce their shots; a re-survey is seen at once (audit s15).

1. After a restart a sensor spool re-delivers pulses the center already located. Session 14 stopped
   the stored incident and its alert from going out again, but every replayed round was still
   published as a new ``shot_located`` (the dashboard drew the shots again and the event feed
   listed them twice). A round whose pulses are already stored in its incident is now counted
   (``acoustic_duplicate_shots``) and not published; the same holds for later rounds that joined
   the incident from a window of their own.
2. A sensor re-surveyed within :data:`~rtcc.acoustic.pipeline.RECHECK_S` of its own last
   mismatched pulse was judged by the cached old position until a pulse after those 5 s: the
   shot right after the re-survey flagged the sensor again and located its pulse at the old place.
   The ``device_position`` event of the re-survey now clears that sensor's throttle and reloads
   the registry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtcc.acoustic.incidents import list_incidents
from rtcc.acoustic.pipeline import IncidentOutcome
from rtcc.app import Center
from rtcc.bus.memory import MemoryBus
from rtcc.events import Position, Pulse
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    SENSOR_ALT_M,
    Array,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, make_settings, stop_or_report
from tests.helpers import eventually

SRC = (120.0, -80.0)
"""Where the shot is fired, metres east/north of the array's origin."""

LOCATE_TOLERANCE_M = 3.0
"""Noise-free arrivals from 9 sensors at their (new) registered positions: within 3 m."""

MOVE_M = 250.0
"""How far east the re-surveyed sensor now stands (well beyond position_tolerance_m)."""


async def _boot(settings: Any) -> Running:
    center = Center(settings, auto_migrate=True)
    await center.start()
    return Running(center, settings, httpx.AsyncClient(base_url=center.base_url, timeout=20))


async def _halt(r: Running) -> None:
    await r.http.aclose()
    await stop_or_report(r.center)


async def _grab(r: Running, kind: str) -> list[dict[str, Any]]:
    """Every ``kind`` event published on ``r``'s bus from now on."""
    got: list[dict[str, Any]] = []

    async def _on(subject: str, payload: bytes) -> None:
        got.append(json.loads(payload))

    await r.center.bus.subscribe(f"rtcc.events.{kind}", _on)
    return got


def _outcomes(r: Running, n: int) -> Callable[[], Awaitable[list[IncidentOutcome] | None]]:
    async def _check() -> list[IncidentOutcome] | None:
        out = pipeline_of(r).outcomes
        return out if len(out) >= n else None

    return _check


async def _deliver(r: Running, arr: Array, windows: list[list[Pulse]]) -> list[IncidentOutcome]:
    """Post each window's pulses once the previous one has been processed (one outcome each)."""
    for n, pulses in enumerate(windows, start=1):
        await post_pulses(r, arr, pulses)
        await eventually(_outcomes(r, n), what=f"window {n} processed")
    return pipeline_of(r).outcomes


async def _replay(tmp_path: Path, request: pytest.FixtureRequest, rounds: tuple[float, ...]) -> None:
    """Locate a shot of ``rounds`` (one window per round), restart, replay the same pulses."""
    settings = make_settings(tmp_path, "embedded", request)
    t_emit = datetime.now(UTC) - timedelta(seconds=10)
    first = await _boot(settings)
    try:
        arr = await provision_array(first)
        use_classifier(pipeline_of(first), 0.97)
        windows = [shot_pulses(arr, SRC, t_emit=t_emit + timedelta(seconds=r)) for r in rounds]
        shots = await _grab(first, "shot_located")
        await _deliver(first, arr, windows)
        await eventually(lambda: _at_least(shots, len(rounds)), what="the shots published")
        before = len(shots)
        assert before == len(rounds)
        (row,) = first.center.store.run(lambda s: list_incidents(s))
        assert row.rounds == len(rounds)
    finally:
        await _halt(first)

    second = await _boot(settings)  # a fresh pipeline: its in-memory dedupe is empty
    try:
        pipe = pipeline_of(second)
        use_classifier(pipe, 0.97)
        await pipe.refresh_registry()
        shots = await _grab(second, "shot_located")
        incidents = await _grab(second, "gunshot_incident")
        out = await _deliver(second, arr, windows)
        assert sum(len(o.shots) for o in out) == len(rounds)  # located again ...
        # ... but published no more: what a window publishes is queued before its outcome is
        # recorded, so once the in-process bus has handled its queues every copy has arrived
        bus = second.center.bus
        assert isinstance(bus, MemoryBus)
        await bus.drain()
        assert before + len(shots) == before, shots  # shot_located on the bus: as many as before
        assert second.center.metrics.get("acoustic_duplicate_shots") == len(rounds)
        assert second.center.metrics.get("acoustic_shots") == 0
        assert incidents == []
        (row,) = second.center.store.run(lambda s: list_incidents(s))
        assert row.rounds == len(rounds)
        assert second.center.bus.stats().handler_errors == 0
    finally:
        await _halt(second)


async def _at_least(items: list[Any], n: int) -> list[Any] | None:
    return items if len(items) >= n else None


async def test_a_replayed_shot_is_not_published_again(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    await _replay(tmp_path, request, (0.0,))


async def test_replayed_later_rounds_are_not_published_again(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The second round, 2 s later, is its own window and joins the incident (7. of the pipeline)."""
    await _replay(tmp_path, request, (0.0, 2.0))


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_resurvey_right_after_a_mismatched_pulse_is_seen_at_once(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.97)
    admin, officer = clients[Role.admin], clients[Role.officer]
    sid = "ac-t05"  # the centre sensor: its pulse matters to the geometry
    nx, ny = arr.xy[sid][0] + MOVE_M, arr.xy[sid][1]
    lat, lon = arr.proj.to_latlon(nx, ny)
    moved = Array(arr.keys, {**arr.xy, sid: (nx, ny)}, arr.proj)
    metrics = center.center.metrics

    # the pole has moved, the registry not yet: the sensor's pulse is a real mismatch (and the
    # pipeline reloads the registry for it, which starts that sensor's RECHECK_S throttle)
    lone = Pulse(
        source=sid,
        device=sid,
        occurred_at=datetime.now(UTC) - timedelta(seconds=60),  # far from the shot below: no link
        pos=Position(lat=lat, lon=lon, alt_m=SENSOR_ALT_M),
        peak_db=100.0,
        snr_db=40.0,
        duration_ms=40.0,
    )
    await post_pulses(center, moved, [lone])
    await eventually(
        lambda: _true(metrics.get("acoustic_pulse_position_mismatch", sensor=sid) == 1),
        what="the mismatch counted",
    )

    # the operator re-surveys it at once (well within RECHECK_S of that pulse), then a shot
    r = await admin.put(
        f"/api/v1/devices/{sid}/position",
        json={"lat": lat, "lon": lon, "alt_m": SENSOR_ALT_M, "reason": "re-surveyed after the pole moved"},
    )
    assert r.status_code == 200, r.text
    pulses = shot_pulses(moved, SRC)
    pulses.sort(key=lambda p: p.device != sid)  # posted first: in the window, never a late straggler
    await post_pulses(center, moved, pulses)

    async def one() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items or None

    [inc] = await eventually(one, what="the incident")
    x, y, _ = arr.proj.to_xyz(inc["lat"], inc["lon"])
    assert math.dist((x, y), SRC) <= LOCATE_TOLERANCE_M
    [shot] = pipe.outcomes[0].shots
    assert sorted(shot.sensors) == sorted(arr.xy)  # every sensor used, the moved one included
    assert metrics.get("acoustic_pulse_position_mismatch", sensor=sid) == 1  # the lone pulse only
    dev = (await admin.get(f"/api/v1/devices/{sid}")).json()
    assert dev["position_mismatch"] is False


async def _true(ok: bool) -> bool | None:
    return True if ok else None


async def test_a_burst_replayed_round_by_round_is_not_a_new_incident(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Located as one window the first time (both rounds, 0.5 s apart), replayed one round at a time.

    The incident id is derived from the pulses of the window that formed it, so the replay's first
    round alone made another id, and a settled shot was stored and announced again as a new
    incident with a new alert. The stored incident holding the replayed pulses is now found.
    """
    settings = make_settings(tmp_path, "embedded", request)
    t_emit = datetime.now(UTC) - timedelta(seconds=10)
    first = await _boot(settings)
    try:
        arr = await provision_array(first)
        use_classifier(pipeline_of(first), 0.97)
        rounds = [shot_pulses(arr, SRC, t_emit=t_emit + timedelta(seconds=r)) for r in (0.0, 0.5)]
        (out,) = await _deliver(first, arr, [rounds[0] + rounds[1]])
        assert out.status == "alerted" and len(out.shots) == 2
        (row,) = first.center.store.run(lambda s: list_incidents(s))
        assert row.rounds == 2
    finally:
        await _halt(first)

    second = await _boot(settings)
    try:
        pipe = pipeline_of(second)
        use_classifier(pipe, 0.97)
        await pipe.refresh_registry()
        shots = await _grab(second, "shot_located")
        incidents = await _grab(second, "gunshot_incident")
        alerts = await _grab(second, "alert")
        await _deliver(second, arr, [rounds[0], rounds[1]])
        bus = second.center.bus
        assert isinstance(bus, MemoryBus)
        await bus.drain()
        assert (shots, incidents, alerts) == ([], [], [])
        rows = second.center.store.run(lambda s: list_incidents(s))
        assert [(r.id, r.rounds) for r in rows] == [(row.id, 2)]
        assert second.center.metrics.get("acoustic_duplicate_shots") == 2
    finally:
        await _halt(second)
