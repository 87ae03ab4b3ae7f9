"""The center's acoustic pipeline, end to end on a real center.

Pulses for a shot at a known position go through the real HTTPS ingest and
bus; the test waits for the ShotLocated, GunshotIncident and Alert on the
live WebSocket and reads the incident back over the API. Positions in metres
east/north of the city centre; tolerances stated where they are asserted.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from rtcc.acoustic.projection import Projection
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    ORIGIN,
    FixedClassifier,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

LOCATE_TOLERANCE_M = 3.0
"""Noise-free arrivals from 9 sensors: the fix must be within 3 m of the shot."""


def _ws(center: Running, client: httpx.AsyncClient) -> Any:
    url = center.url.replace("http", "ws") + "api/v1/ws?types=shot_located,gunshot_incident,alert"
    return websockets.connect(url, additional_headers={"authorization": client.headers["authorization"]})


async def _events(ws: Any, want: dict[str, int], timeout: float = 20.0) -> dict[str, list[dict[str, Any]]]:
    got: dict[str, list[dict[str, Any]]] = {k: [] for k in want}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(len(got[k]) < n for k, n in want.items()):
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - loop.time())))
        if msg["kind"] == "event" and msg["event"]["type"] in got:
            got[msg["event"]["type"]].append(msg["event"])
    return got


def _xy(ev: dict[str, Any]) -> tuple[float, float]:
    x, y, _ = Projection(*ORIGIN).to_xyz(ev["pos"]["lat"], ev["pos"]["lon"])
    return x, y


async def test_shot_is_located_classified_and_alerted(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.97)
    src = (120.0, -80.0)
    async with _ws(center, clients[Role.officer]) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        await post_pulses(center, arr, shot_pulses(arr, src))
        got = await _events(ws, {"shot_located": 1, "gunshot_incident": 1, "alert": 1})
    shot = got["shot_located"][0]
    assert math.dist(_xy(shot), src) <= LOCATE_TOLERANCE_M
    assert len(shot["sensors"]) == len(arr.xy) and len(shot["pulse_ids"]) == len(arr.xy)
    inc = got["gunshot_incident"][0]
    assert inc["rounds"] == 1 and inc["label"] == "gunshot" and inc["confidence"] == pytest.approx(0.97)
    assert math.dist(_xy(inc), src) <= LOCATE_TOLERANCE_M
    alert = got["alert"][0]
    assert alert["kind"] == "gunshot" and alert["severity"] == "critical"
    assert alert["ref_event_id"] == inc["incident_id"]
    # three nearest sensors' audio classified
    assert isinstance(pipe.classifier, FixedClassifier) and pipe.classifier.calls == 3
    # and it is in the store
    listed = (await clients[Role.officer].get("/api/v1/gunshots")).json()["items"]
    assert [i["id"] for i in listed] == [inc["incident_id"]]
    assert listed[0]["status"] == "alerted" and listed[0]["rounds"] == 1
    assert sorted(listed[0]["sensors"]) == sorted(arr.xy)


async def test_burst_counts_rounds_and_flags_automatic_fire(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe_ = pipeline_of(center)
    use_classifier(pipe_, 0.9)
    src = (-150.0, 200.0)
    rounds = (0.0, 0.12, 0.25, 0.37)
    await post_pulses(center, arr, shot_pulses(arr, src, rounds=rounds))
    officer = clients[Role.officer]

    async def one() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items or None

    items = await eventually(one, what="the burst's incident")
    assert len(items) == 1
    inc = items[0]
    assert inc["rounds"] == len(rounds)
    assert inc["intervals_s"] == pytest.approx([0.12, 0.13, 0.12], abs=0.005)
    assert inc["automatic"] is True and inc["multiple_shooters"] is False


async def test_duplicated_pulses_make_no_second_incident(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.95)
    pulses = shot_pulses(arr, (0.0, 0.0))
    await post_pulses(center, arr, pulses)
    admin = clients[Role.admin]

    async def listed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await admin.get("/api/v1/gunshots")).json()["items"]
        return items or None

    await eventually(listed, what="the first incident")
    bus = center.center.bus
    assert bus is not None
    # a redelivery of the same messages (same event ids) straight on the bus
    for p in pulses:
        await bus.publish(p.subject, p.to_json(), msg_id=str(p.event_id))
    # a sensor resending its pulses under new event ids (same onsets)
    resent = [p.model_copy(update={"event_id": uuid.uuid4()}) for p in pulses]
    await post_pulses(center, arr, resent)
    # the same HTTPS batch again: the ingest reports duplicates
    sid = next(iter(arr.keys))
    r = await center.http.post(
        "/api/v1/ingest/events",
        json={"events": [p.model_dump(mode="json") for p in pulses if p.device == sid]},
        headers={"authorization": f"Device {arr.keys[sid]}"},
    )
    assert r.status_code == 409
    await eventually(
        lambda: _true(center.center.metrics.get("acoustic_duplicate_pulses") >= 2 * len(pulses)),
        what="the duplicates to be seen",
    )
    await asyncio.sleep(pipe.settle_s + 0.5)  # any window they could have opened has closed
    items = (await admin.get("/api/v1/gunshots")).json()["items"]
    assert len(items) == 1


async def _true(v: bool) -> bool:
    return v


async def test_two_shots_far_apart_at_once_are_two_incidents(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.9)
    t = datetime.now(UTC) - timedelta(seconds=5)
    a, b = (-300.0, -300.0), (300.0, 300.0)
    await post_pulses(
        center, arr, shot_pulses(arr, a, t_emit=t) + shot_pulses(arr, b, t_emit=t + timedelta(seconds=3))
    )
    admin = clients[Role.admin]

    async def two() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await admin.get("/api/v1/gunshots")).json()["items"]
        return items if len(items) >= 2 else None

    items = await eventually(two, what="two incidents")
    found = sorted(_xy(i | {"pos": {"lat": i["lat"], "lon": i["lon"]}}) for i in items)
    assert len(items) == 2
    assert math.dist(found[0], a) <= LOCATE_TOLERANCE_M and math.dist(found[1], b) <= LOCATE_TOLERANCE_M
