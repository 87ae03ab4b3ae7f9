"""The weather feed: temperature observations parsed from the feeds a city can point at, polled
over real HTTP, aged out, and used by the center's localizer for the speed of sound."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtcc.acoustic.weather import Observation, WeatherError, WeatherFeed, parse_observation
from rtcc.roles import Role
from tests.acoustic.test_pipeline import _events, _ws, _xy
from tests.acoustic.test_pipeline_helpers import (
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import StartCenter
from tests.helpers import eventually

NOW = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)

AWC = [  # aviationweather.gov/api/data/metar?ids=KPIT&format=json (fields trimmed), newest last here
    {"icaoId": "KPIT", "obsTime": 1795448760, "reportTime": "2026-11-22T16:00:00.000Z", "temp": 1.1},
    {"icaoId": "KPIT", "obsTime": 1795452360, "reportTime": "2026-11-22T17:00:00.000Z", "temp": -2.2},
]
NWS = {
    "type": "Feature",
    "properties": {
        "timestamp": "2026-11-22T17:51:00+00:00",
        "temperature": {"unitCode": "wmoUnit:degC", "value": -2.2, "qualityControl": "V"},
    },
}
METAR = "KPIT 221751Z 27008KT 10SM FEW250 M02/M09 A3012 RMK AO2 SLP214 T10221089\n"


def test_parses_the_three_feeds() -> None:
    awc = parse_observation(json.dumps(AWC).encode(), NOW)
    assert awc == Observation(-2.2, datetime.fromtimestamp(1795452360, UTC))
    nws = parse_observation(json.dumps(NWS).encode(), NOW)
    assert nws == Observation(-2.2, datetime(2026, 11, 22, 17, 51, tzinfo=UTC))
    f = json.loads(json.dumps(NWS))
    f["properties"]["temperature"] = {"unitCode": "wmoUnit:degF", "value": 28.04}
    assert parse_observation(json.dumps(f).encode(), NOW).temperature_c == pytest.approx(-2.2)
    # the remark group's tenths win over the body's whole degrees
    assert parse_observation(METAR.encode(), NOW) == Observation(
        -2.2, datetime(2026, 11, 22, 17, 51, tzinfo=UTC)
    )
    plain = parse_observation(b"KPIT 221751Z 27008KT 10SM M02/M09 A3012", NOW)
    assert plain.temperature_c == -2.0
    warm = parse_observation(b"METAR KPIT 221751Z 27008KT 9999 24/18 Q1013", NOW)
    assert warm.temperature_c == 24.0


def test_a_metar_from_the_end_of_last_month_is_dated_last_month() -> None:
    obs = parse_observation(
        b"KPIT 302355Z 00000KT 10SM M05/M10 A3000", datetime(2026, 12, 1, 0, 10, tzinfo=UTC)
    )
    assert obs.observed_at == datetime(2026, 11, 30, 23, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Service unavailable</body></html>",
        b"[]",
        b'{"properties": {"temperature": {"value": null}, "timestamp": "2026-11-22T17:51:00Z"}}',
        b'{"properties": {"temperature": {"value": 200}, "timestamp": "2026-11-22T17:51:00Z"}}',
        b'{"properties": {"temperature": {"value": 5}, "timestamp": "yesterday"}}',
        b'{"temp": 5}',
        b"[{not json",
    ],
)
def test_bad_answers_are_weather_errors(body: bytes) -> None:
    with pytest.raises(WeatherError):
        parse_observation(body, NOW)


class _Feed(BaseHTTPRequestHandler):
    body = b""
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(type(self).body)))
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[tuple[str, type[_Feed]]]:
    handler = type("Feed", (_Feed,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metar", handler
    server.shutdown()
    server.server_close()


async def test_feed_over_http_ages_out_and_survives_a_bad_poll(feed_server: tuple[str, type[_Feed]]) -> None:
    url, handler = feed_server
    now = [datetime(2026, 11, 22, 17, 55, tzinfo=UTC)]
    feed = WeatherFeed(url, fallback_c=20.0, max_age_s=3600, clock=lambda: now[0])
    assert feed.current() == (20.0, "settings")  # nothing polled yet
    handler.body = json.dumps(NWS).encode()
    assert await feed.poll_once() is not None
    assert feed.current() == (-2.2, "feed")
    handler.status, handler.body = 503, b"busy"
    assert await feed.poll_once() is None
    assert feed.failures == 1 and feed.last_error is not None and "503" in feed.last_error
    assert feed.current() == (-2.2, "feed")  # the last good observation is still fresh
    now[0] += timedelta(hours=2)
    assert feed.current() == (20.0, "settings")  # too old: the fixed value
    await feed.stop()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_center_locates_with_the_feeds_temperature(
    start_center: StartCenter, tmp_path: Path
) -> None:
    """A cold night (-25 °C: sound at 315 m/s, not the 343 m/s of 20 °C). With the station's METAR
    as the feed, the center's fix is within 0.5 m; the same pulses at the fixed 20 °C are further off
    (here: not located at all — no source fits them at 343 m/s within the residual limit)."""
    stamp = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%d%H%M")
    metar = tmp_path / "KPIT.txt"
    metar.write_text(f"KPIT {stamp}Z 00000KT 10SM SKC M25/M30 A3050 RMK AO2 T12501300\n")
    errors = {}
    for name, acoustic in (("feed", {"weather_url": str(metar)}), ("fixed", {})):
        center = await start_center(data_dir=tmp_path / name, acoustic={"temperature_c": 20.0, **acoustic})
        arr = await provision_array(center)
        pipe = pipeline_of(center)
        use_classifier(pipe, 0.97)
        src = (420.0, 310.0)  # outside the middle of the array, where the speed of sound matters
        center.add_user("officer9", Role.officer)
        client = await center.login("officer9")
        async with _ws(center, client) as ws:
            assert json.loads(await ws.recv())["kind"] == "hello"
            await post_pulses(center, arr, shot_pulses(arr, src, temperature_c=-25.0))
            try:
                got = await _events(ws, {"shot_located": 1}, timeout=20.0 if name == "feed" else 8.0)
            except TimeoutError:  # arrival differences that no source fits at 343 m/s: no fix
                errors[name] = math.inf
            else:
                errors[name] = math.dist(_xy(got["shot_located"][0]), src)
        if name == "feed":
            assert pipe.temperature_source == "feed" and pipe.temperature_c == -25.0

            async def stored(client: httpx.AsyncClient = client) -> dict[str, Any] | None:
                r = await client.get("/api/v1/gunshots")
                items = r.json()["items"]
                return items[0] if items else None

            inc = await eventually(stored, what="the incident over the API")
            assert (inc["temperature_c"], inc["temperature_source"]) == (-25.0, "feed")
        else:
            assert pipe.temperature_source == "settings" and pipe.temperature_c == 20.0
        await client.aclose()
    assert errors["feed"] <= 0.5
    assert errors["fixed"] > 2 * errors["feed"] + 1.0
