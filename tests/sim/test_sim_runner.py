"""The simulator against a center that speaks the device contract.

``FakeCenter`` below is a small Starlette app implementing the ingest
contract (``POST /api/v1/ingest/events`` with ``Authorization: Device
<key>``, events parsed with :func:`rtcc.events.parse_event`, 202 /
4xx error envelope) plus the ``provision`` callable that hands out its keys.
It is reached through ``httpx.ASGITransport``, the same seam the app uses.
No assertion depends on timing; background tests wait for conditions.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rtcc.errors import Conflict
from rtcc.events import DEVICE_SCOPES, DeviceHeartbeat, Event, Position, Pulse, parse_event
from rtcc.roles import DeviceType
from rtcc.settings import SimSettings
from rtcc.sim import SimDevice, SimRunner, Tick, build_city

BASE = "http://center.test/"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": None}, "request_id": "t"},
        status_code=status,
    )


class FakeCenter:
    """Issues device keys and ingests events per the device contract."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, DeviceType]] = {}
        self.provisioned: Counter[str] = Counter()
        self.received: dict[str, Event] = {}
        self.statuses: list[int] = []
        self.fail_status: int | None = None
        self.process_then_fail = False
        self.app = Starlette(routes=[Route("/api/v1/ingest/events", self.ingest, methods=["POST"])])

    async def provision(
        self,
        device_id: str,
        device_type: DeviceType,
        name: str,
        lat: float,
        lon: float,
        attributes: dict[str, Any],
    ) -> str:
        assert name and -90 <= lat <= 90 and -180 <= lon <= 180
        json.dumps(attributes)  # attributes must be JSON-ready
        self.provisioned[device_id] += 1
        key = secrets.token_urlsafe(24)
        self.keys[key] = (device_id, device_type)
        return key

    def of(self, device_id: str) -> list[Event]:
        return [e for e in self.received.values() if e.source == device_id]

    async def ingest(self, request: Request) -> JSONResponse:
        resp = await self._ingest(request)
        self.statuses.append(resp.status_code)
        return resp

    async def _ingest(self, request: Request) -> JSONResponse:
        if self.fail_status is not None:
            return _error(self.fail_status, "unavailable", "the store is down")
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme != "Device" or key not in self.keys:
            return _error(401, "unauthenticated", "device key unknown or revoked")
        device_id, device_type = self.keys[key]
        body = await request.json()
        accepted = duplicates = 0
        refused: list[str] = []
        for raw in body["events"]:
            try:
                event = parse_event(raw)
            except ValidationError as exc:
                refused.append(str(exc))
                continue
            if event.type not in DEVICE_SCOPES[device_type]:
                refused.append("out of scope")
                continue
            if event.source != device_id or event.device_id != device_id:
                refused.append("not this device")
                continue
            eid = str(event.event_id)
            if eid in self.received:
                duplicates += 1
                continue
            self.received[eid] = event
            accepted += 1
        if self.process_then_fail:
            return _error(503, "unavailable", "answer lost after processing")
        if not accepted and refused:
            return _error(422, "validation_failed", refused[0])
        if not accepted and duplicates:
            return _error(409, "conflict", "all events were already accepted")
        return JSONResponse({"accepted": accepted, "duplicates": duplicates}, status_code=202)


@pytest.fixture
def center() -> FakeCenter:
    return FakeCenter()


@pytest.fixture
async def http(center: FakeCenter) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=center.app)) as client:
        yield client


def _runner(
    center: FakeCenter,
    http: httpx.AsyncClient,
    settings: SimSettings | None = None,
    provision: Callable[..., Any] | None = None,
    **kw: Any,
) -> SimRunner:
    settings = settings or SimSettings(patrol_units=6)
    return SimRunner(
        build_city(settings),
        provision=provision or center.provision,
        http=http,
        base_url=BASE,
        settings=settings,
        **kw,
    )


def _invariant(r: SimRunner) -> None:
    c = r.counters
    assert c.sent == c.accepted + c.duplicates + c.rejected + c.backlog + c.dropped + c.in_flight


async def test_every_device_provisioned_exactly_once(center: FakeCenter, http: httpx.AsyncClient) -> None:
    runner = _runner(center, http)
    await runner.provision_all()
    await runner.provision_all()
    ids = {d.id for d in runner.city.devices()}
    assert set(center.provisioned) == ids
    assert set(center.provisioned.values()) == {1}
    assert runner.provision_calls == len(ids)
    assert set(runner.keys) == ids


async def test_heartbeats_arrive_parsed_and_valid(center: FakeCenter, http: httpx.AsyncClient) -> None:
    runner = _runner(center, http)
    await runner.provision_all()
    n = len(runner.devices)
    for _ in range(3):
        assert await runner.tick(10.0) == n
    assert len(center.received) == 3 * n
    assert all(s == 202 for s in center.statuses)
    assert len(center.statuses) == 3 * n  # one request per device per tick
    c = runner.counters
    assert (c.sent, c.accepted, c.rejected, c.backlog, c.dropped) == (3 * n, 3 * n, 0, 0, 0)
    for d in runner.devices:
        beats = center.of(d.id)
        assert len(beats) == 3, d.id
        for hb in beats:
            assert isinstance(hb, DeviceHeartbeat)
            assert hb.device == d.id and hb.device_type is d.type
            assert hb.pos is not None
            if d.type is DeviceType.acoustic_sensor:
                assert hb.gps_lock is True and hb.clock_quality == "gps_pps"
                assert hb.noise_floor_db is not None and 45.0 <= hb.noise_floor_db <= 60.0
                assert hb.pos.alt_m is not None and hb.pos.alt_m > 150.0
                assert (hb.pos.lat, hb.pos.lon) == (d.lat, d.lon)
            elif d.type is DeviceType.bodycam:
                assert hb.recording is False
                assert hb.battery_pct is not None and 0 < hb.battery_pct <= 100
                assert hb.heading_deg is not None
    # Body cams report their unit's position of the latest tick.
    for u in runner.city.units:
        last = max(center.of(u.bodycam_id), key=lambda e: e.occurred_at)
        assert last.position is not None
        x, y = runner.city.to_xy(last.position.lat, last.position.lon)
        assert abs(x - u.xy[0]) < 0.01 and abs(y - u.xy[1]) < 0.01  # metres


async def test_wrong_key_is_refused_and_counted(center: FakeCenter, http: httpx.AsyncClient) -> None:
    async def provision(device_id: str, *args: Any) -> str:
        key = await center.provision(device_id, *args)
        return "not-the-right-key-000" if device_id == "ac-0001" else key

    runner = _runner(center, http, provision=provision)
    await runner.provision_all()
    n = len(runner.devices)
    await runner.tick()
    await runner.tick()
    assert center.statuses.count(401) == 2
    assert not center.of("ac-0001")
    c = runner.counters
    assert c.rejected == 2 and c.accepted == 2 * (n - 1) and c.backlog == 0
    _invariant(runner)


async def test_backlog_holds_events_through_an_outage(center: FakeCenter, http: httpx.AsyncClient) -> None:
    runner = _runner(center, http)
    await runner.provision_all()
    n = len(runner.devices)
    center.fail_status = 503
    await runner.tick()
    requests_in_outage = len(center.statuses)
    assert requests_in_outage == n and set(center.statuses) == {503}
    await runner.tick()
    await runner.tick()
    # While failing, new events queue behind the backlog instead of hammering the center.
    assert len(center.statuses) == requests_in_outage
    assert runner.counters.backlog == 3 * n and runner.delivery.failing
    assert await runner.flush() is False  # still down
    assert runner.counters.backlog == 3 * n
    _invariant(runner)

    center.fail_status = None
    assert await runner.flush() is True
    c = runner.counters
    assert (c.sent, c.accepted, c.backlog, c.dropped, c.rejected) == (3 * n, 3 * n, 0, 0, 0)
    assert len(center.received) == 3 * n  # nothing lost
    for d in runner.devices:
        assert len(center.of(d.id)) == 3
    assert not runner.delivery.failing
    await runner.tick()  # back to direct sending
    assert runner.counters.accepted == 4 * n


async def test_backlog_bound_drops_oldest_and_counts(center: FakeCenter, http: httpx.AsyncClient) -> None:
    runner = _runner(center, http, backlog_limit=50)
    await runner.provision_all()
    n = len(runner.devices)
    center.fail_status = 500
    await runner.tick()
    await runner.tick()
    c = runner.counters
    assert c.backlog == 50 and c.dropped == 2 * n - 50
    center.fail_status = None
    assert await runner.flush()
    c = runner.counters
    assert c.accepted == 50 and len(center.received) == 50
    _invariant(runner)
    # The newest events survived: all of them come from the second tick.
    second = {e.occurred_at for e in center.received.values()}
    assert len(second) == 1


async def test_retry_of_a_delivered_batch_counts_duplicates(
    center: FakeCenter, http: httpx.AsyncClient
) -> None:
    runner = _runner(center, http)
    await runner.provision_all()
    n = len(runner.devices)
    center.process_then_fail = True  # stored, but the answer is lost
    await runner.tick()
    assert runner.counters.backlog == n and len(center.received) == n
    center.process_then_fail = False
    assert await runner.flush()
    c = runner.counters
    assert c.duplicates == n and c.accepted == 0 and c.backlog == 0
    assert len(center.received) == n
    _invariant(runner)


async def test_transport_errors_are_retried(center: FakeCenter) -> None:
    down = True

    async def handler(request: httpx.Request) -> httpx.Response:
        if down:
            raise httpx.ConnectError("connection refused", request=request)
        return await httpx.ASGITransport(app=center.app).handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        runner = _runner(center, client)
        await runner.provision_all()
        n = len(runner.devices)
        await runner.tick()
        assert runner.counters.backlog == n and runner.counters.failures == n
        down = False
        assert await runner.flush()
        assert runner.counters.accepted == n and len(center.received) == n


async def test_provision_conflict_leaves_device_silent(center: FakeCenter, http: httpx.AsyncClient) -> None:
    async def provision(device_id: str, *args: Any) -> str:
        if device_id == "lpr-001":
            raise Conflict("device lpr-001 exists and is revoked")
        return await center.provision(device_id, *args)

    runner = _runner(center, http, provision=provision)
    await runner.provision_all()
    await runner.provision_all()  # not asked again
    assert runner.provision_calls == len(runner.devices)
    assert "lpr-001" in runner.unprovisioned and "lpr-001" not in runner.keys
    await runner.tick()
    assert not center.of("lpr-001")
    assert runner.counters.rejected == 0


async def test_sources_and_added_devices(center: FakeCenter, http: httpx.AsyncClient) -> None:
    runner = _runner(center, http)
    seen: list[Tick] = []

    def pulses(tick: Tick) -> list[Event]:
        seen.append(tick)
        sensor = tick.city.sensors[0]
        tick.truth.record("test", tick=tick.index)
        return [
            Pulse(
                source=sensor.id,
                device=sensor.id,
                occurred_at=tick.now,
                pos=Position(lat=sensor.lat, lon=sensor.lon),
                peak_db=120.0,
                snr_db=40.0,
                duration_ms=3.0,
            ),
            Pulse(  # names no device: not sent, counted
                source="ac-9999",
                device="ac-9999",
                occurred_at=tick.now,
                pos=Position(lat=sensor.lat, lon=sensor.lon),
                peak_db=120.0,
                snr_db=40.0,
                duration_ms=3.0,
            ),
        ]

    async def later(tick: Tick) -> list[Event]:
        await asyncio.sleep(0)
        return []

    runner.add_source(pulses)
    runner.add_source(later)
    await runner.provision_all()
    await runner.tick(5.0)
    await runner.tick(5.0)
    assert [t.index for t in seen] == [0, 1]
    assert seen[-1].sim_time_s == 10.0 and seen[-1].dt_s == 5.0
    assert len([e for e in center.of("ac-0001") if isinstance(e, Pulse)]) == 2
    assert runner.counters.unroutable == 2

    cam = SimDevice(
        "cam-0001", DeviceType.camera, "Corner store camera", 33.52, -86.81, {"kind": "community"}
    )
    await runner.add_devices([cam])  # not started: provisioned with the others
    assert center.provisioned["cam-0001"] == 0
    await runner.provision_all()
    assert center.provisioned["cam-0001"] == 1
    await runner.tick()
    (hb,) = center.of("cam-0001")
    assert isinstance(hb, DeviceHeartbeat) and hb.device_type is DeviceType.camera


async def _until(cond: Callable[[], bool]) -> None:
    """Wait for ``cond`` (a liveness guard, not a timing assertion)."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout=60.0)


async def test_start_runs_until_stop_and_recovers_from_an_outage(
    center: FakeCenter, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = SimSettings(patrol_units=3, extent_m=1600.0, heartbeat_s=1.0, speedup=1000.0)
    truth = tmp_path / "truth" / "sim.jsonl"
    runner = _runner(center, http, settings, truth_path=truth, backoff_initial_s=0.001, backoff_max_s=0.01)
    await runner.start()
    await runner.start()  # already running: nothing happens
    ids = {d.id for d in runner.devices}
    assert set(center.provisioned.values()) == {1} and set(center.provisioned) == ids
    await _until(lambda: all(len(center.of(i)) >= 3 for i in ids))

    center.fail_status = 503
    await _until(lambda: runner.counters.backlog > 0)
    center.fail_status = None
    await _until(lambda: runner.counters.backlog == 0 and not runner.delivery.failing)
    await runner.stop()
    await runner.stop()  # idempotent
    assert not runner.running

    c = runner.counters
    assert c.in_flight == 0 and c.dropped == 0 and c.rejected == 0
    assert c.sent == c.accepted + c.duplicates + c.backlog
    assert c.accepted == len(center.received)
    assert runner.sim_time_s > 0

    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    kinds = Counter(x["kind"] for x in lines)
    assert kinds["start"] == 1 and kinds["stop"] == 1
    assert {x["id"] for x in lines if x["kind"] == "device"} == ids
    units = [x for x in lines if x["kind"] == "unit"]
    assert {x["unit"] for x in units} == {u.id for u in runner.city.units}
    assert all(8.0 <= x["speed_mps"] <= 15.0 for x in units)
    assert lines[-1]["counters"]["sent"] == c.sent
