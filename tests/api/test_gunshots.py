"""The gunshot review queue over the API: list, read, confirm/dismiss with a reason, audio (audited)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import httpx
import pytest
import websockets

from rtcc.events import Pulse
from rtcc.roles import Role
from tests.acoustic.test_pipeline_helpers import (
    bang_flac,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def _pending_incident(center: Running, client: httpx.AsyncClient, src: tuple[float, float]) -> str:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.6)  # in the review band (0.35 … 0.85)
    await post_pulses(center, arr, shot_pulses(arr, src))

    async def pending() -> list[dict[str, Any]] | None:
        r = await client.get("/api/v1/gunshots", params={"status": "pending_review"})
        items: list[dict[str, Any]] = r.json()["items"]
        return items or None

    items = await eventually(pending, what="a pending incident")
    return str(items[0]["id"])


async def test_review_band_waits_and_confirm_alerts(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    supervisor, analyst, officer = clients[Role.supervisor], clients[Role.analyst], clients[Role.officer]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=alert"
    async with websockets.connect(
        url, additional_headers={"authorization": analyst.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        iid = await _pending_incident(center, supervisor, (50.0, 60.0))
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert first["kind"] == "gunshot_review" and first["severity"] == "warning"
        assert first["ref_event_id"] == iid

        row = (await officer.get(f"/api/v1/gunshots/{iid}")).json()
        assert row["status"] == "pending_review" and row["confidence"] == pytest.approx(0.6)

        # a reason is required (the one error envelope)
        r = await analyst.post(f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm"})
        assert r.status_code == 422
        body = r.json()
        assert body["error"]["code"] == "validation_failed" and "reason" in body["error"]["message"]
        r = await analyst.post(f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": "ok"})
        assert r.status_code == 422  # shorter than 3 characters
        # officers do not review
        r = await officer.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": "heard it"}
        )
        assert r.status_code == 403

        reason = "three distinct reports, matches 911 call"
        r = await analyst.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": reason}
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "confirmed" and done["reviewed_by"] == "analyst1"
        assert done["review_reason"] == reason and done["reviewed_at"]
        # the confirmation sends the gunfire alert
        second = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert second["kind"] == "gunshot" and second["severity"] == "critical"
        assert second["ref_event_id"] == iid
        # a person decided, not the model: the title says who, not the review-band confidence
        assert "confirmed by analyst1" in second["title"] and "confidence" not in second["title"]

    # reviewed once only
    r = await supervisor.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "fireworks"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    # audited, with the reason
    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "gunshot_confirm"})).json()[
        "items"
    ]
    assert len(audit) == 1
    assert audit[0]["actor"] == "analyst1" and audit[0]["record_id"] == iid
    assert audit[0]["purpose"] == reason and audit[0]["details"]["reason"] == reason


async def test_dismiss_and_filters(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    supervisor = clients[Role.supervisor]
    iid = await _pending_incident(center, supervisor, (-200.0, 100.0))
    r = await supervisor.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "July 4th fireworks"}
    )
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert (await supervisor.get("/api/v1/gunshots", params={"status": "pending_review"})).json()[
        "items"
    ] == []
    assert (
        len((await supervisor.get("/api/v1/gunshots", params={"status": "dismissed"})).json()["items"]) == 1
    )
    r = await supervisor.get("/api/v1/gunshots", params={"since": "2000-01-01T00:00:00"})
    assert r.status_code == 422  # a time without a timezone
    r = await supervisor.get("/api/v1/gunshots", params={"until": "2000-01-01T00:00:00Z"})
    assert r.json()["items"] == []
    r = await supervisor.get("/api/v1/gunshots/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await clients[Role.auditor].get("/api/v1/gunshots")
    assert r.status_code == 403


async def test_audio_of_a_contributing_sensor_is_served_and_audited(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer = clients[Role.officer]
    iid = await _pending_incident(center, officer, (0.0, -100.0))
    row = (await officer.get(f"/api/v1/gunshots/{iid}")).json()
    sensor = row["sensors"][0]

    async def audio() -> httpx.Response | None:
        r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": sensor})
        return r if r.status_code == 200 else None  # the recorder writes the pulse shortly after

    r = await eventually(audio, what="the pulse's audio")
    assert r.headers["content-type"] == "audio/flac" and r.content[:4] == b"fLaC"
    r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": "not-a-contributor"})
    assert r.status_code == 404
    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "read_gunshot_audio"})).json()
    entries = audit["items"]
    assert (
        len(entries) == 1 and entries[0]["actor"] == "officer1" and entries[0]["details"]["sensor"] == sensor
    )


async def test_a_review_decision_reaches_the_map(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """Dismissing (or confirming) an incident re-publishes it with its new status, so the map and open
    dashboards update without reloading."""
    supervisor = clients[Role.supervisor]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=gunshot_incident"
    async with websockets.connect(
        url, additional_headers={"authorization": supervisor.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        iid = await _pending_incident(center, supervisor, (-60.0, 90.0))
        first = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert first["incident_id"] == iid and first["status"] == "pending_review"
        r = await supervisor.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "construction site"}
        )
        assert r.status_code == 200, r.text
        update = json.loads(await asyncio.wait_for(ws.recv(), 20))["event"]
        assert update["incident_id"] == iid and update["status"] == "dismissed"


async def test_poor_geometry_is_shown_on_the_incident_and_its_alert(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """A shot well outside the array (every sensor on one side) is located with poor geometry: the
    incident says so (``location_quality``) and so does its alert, instead of looking as sure as any."""
    officer = clients[Role.officer]
    url = center.url.replace("http", "ws") + "api/v1/ws?types=alert"
    async with websockets.connect(
        url, additional_headers={"authorization": officer.headers["authorization"]}
    ) as ws:
        assert json.loads(await ws.recv())["kind"] == "hello"
        arr = await provision_array(center)
        use_classifier(pipeline_of(center), 0.95)
        await post_pulses(center, arr, shot_pulses(arr, (1100.0, 0.0)))
        alert = json.loads(await asyncio.wait_for(ws.recv(), 30))["event"]
        assert alert["kind"] == "gunshot" and "poor sensor geometry" in alert["title"]
    [inc] = (await officer.get("/api/v1/gunshots")).json()["items"]
    assert inc["location_quality"] == "poor"
    # inside the array the same code says good
    await post_pulses(center, arr, shot_pulses(arr, (30.0, -40.0)))

    async def second() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items if len(items) == 2 else None

    newest = (await eventually(second, what="the second incident"))[0]
    assert newest["location_quality"] == "good"


def _round_audio(
    pulses: list[Pulse], n_rounds: int, deaf: str
) -> tuple[list[Pulse], dict[tuple[str, int], str]]:
    """Give every pulse its own audio (``shot_pulses`` is sensor by sensor, round by round); ``deaf``
    hears the first round only. Returns the pulses to send and the audio of each (sensor, round)."""
    sent, audio = [], {}
    for i, p in enumerate(pulses):
        n = i % n_rounds + 1
        if p.device == deaf and n > 1:
            continue
        audio[(p.device, n)] = bang_flac(seed=i + 1)
        sent.append(p.model_copy(update={"audio_flac_b64": audio[(p.device, n)]}))
    return sent, audio


async def _incident_with(client: httpx.AsyncClient, rounds: int) -> dict[str, Any]:
    async def one() -> dict[str, Any] | None:
        items: list[dict[str, Any]] = (await client.get("/api/v1/gunshots")).json()["items"]
        return items[0] if items and items[0]["rounds"] == rounds else None

    return await eventually(one, what=f"an incident of {rounds} rounds")


async def test_each_round_of_a_sensor_plays_its_own_audio(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """Two rounds in one window: a sensor's round 1 and round 2 are different pulses with different
    audio; a round the sensor did not hear is a 404 naming the rounds it has audio for."""
    officer = clients[Role.officer]
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.6)
    deaf, both = "ac-t01", "ac-t05"
    sent, audio = _round_audio(shot_pulses(arr, (40.0, -60.0), rounds=(0.0, 0.5)), 2, deaf)
    await post_pulses(center, arr, sent)
    inc = await _incident_with(officer, 2)
    iid = inc["id"]
    listed = {a["sensor"]: a["rounds"] for a in inc["audio"]}
    assert listed == {s: [1] if s == deaf else [1, 2] for s in arr.xy}

    async def flac(sensor: str, n: int | None) -> bytes | None:
        params: dict[str, Any] = {"sensor": sensor} | ({"round": n} if n else {})
        r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params=params)
        return r.content if r.status_code == 200 else None  # the recorder writes the pulse shortly after

    first = await eventually(lambda: flac(both, 1), what="round 1's audio")
    second = await eventually(lambda: flac(both, 2), what="round 2's audio")
    assert first == base64.b64decode(audio[(both, 1)]) and second == base64.b64decode(audio[(both, 2)])
    assert first != second
    assert await flac(both, None) == first  # round 1 by default
    r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": deaf, "round": 2})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "not_found" and err["details"]["rounds"] == [1]
    assert "rounds with its audio: 1" in err["message"]
    r = await officer.get(f"/api/v1/gunshots/{iid}/audio", params={"sensor": both, "round": 0})
    assert r.status_code == 422
    audit = (await clients[Role.admin].get("/api/v1/audit", params={"action": "read_gunshot_audio"})).json()
    assert {(e["details"]["sensor"], e["details"]["round"]) for e in audit["items"]} == {(both, 1), (both, 2)}


async def test_an_incident_without_audio_lists_none(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    """Pulses may come without audio: the incident says there is none (no player to draw)."""
    officer = clients[Role.officer]
    arr = await provision_array(center)
    await post_pulses(center, arr, shot_pulses(arr, (-80.0, 30.0), audio=False))
    inc = await _incident_with(officer, 1)
    assert sorted(inc["sensors"]) == sorted(arr.xy) and inc["audio"] == []
    r = await officer.get(f"/api/v1/gunshots/{inc['id']}/audio", params={"sensor": inc["sensors"][0]})
    assert r.status_code == 404 and r.json()["error"]["details"]["rounds"] == []


def _header_only_flac() -> str:
    """A FLAC stream's header (``fLaC`` and its STREAMINFO, which announces samples) without audio frames."""
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.full(3000, 0.1, dtype=np.float32), 12_000, format="FLAC", subtype="PCM_16")
    whole = buf.getvalue()
    return base64.b64encode(whole[: whole.index(b"\xff\xf8", 4)]).decode()  # the first frame's sync code


async def test_a_pulse_whose_flac_has_no_audio_is_refused(center: Running) -> None:
    arr = await provision_array(center)
    pulse = shot_pulses(arr, (0.0, 0.0))[0]
    body = pulse.model_dump(mode="json") | {"audio_flac_b64": _header_only_flac()}
    r = await center.http.post(
        "/api/v1/ingest/events",
        json={"events": [body]},
        headers={"authorization": f"Device {arr.keys[pulse.device]}"},
    )
    assert r.status_code == 422, r.text
    assert "decodes to no audio sample" in r.text
