"""Session 9 audit fixes: a decision settles the alerts that announced what was decided; reasons must
say something; vague partial BOLOs, unplayable pulse audio and a heartbeat naming the wrong device
type are refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from rtcc.roles import DeviceType, Role
from tests.acoustic.test_pipeline_helpers import (
    bang_flac,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually
from tests.plates.test_hits import HERE, hits_of, plate_read, post_reads

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

BLANKS = ("   ", "\u200b\u200b\u200b", " a\u200b ")
"""Reasons that passed a plain length check and said nothing."""


async def _alerts(client: httpx.AsyncClient, kind: str, ref: str, n: int = 1) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        items = (await client.get("/api/v1/alerts")).json()["items"]
        got = [a for a in items if a["kind"] == kind and a["ref_id"] == ref]
        return got if len(got) >= n else None

    return await eventually(probe, what=f"{n} {kind} alert(s) for {ref}")


async def _incident(center: Running, client: httpx.AsyncClient, confidence: float, status: str) -> str:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), confidence)
    await post_pulses(center, arr, shot_pulses(arr, (50.0, 60.0)))

    async def probe() -> list[dict[str, Any]] | None:
        items = (await client.get("/api/v1/gunshots", params={"status": status})).json()["items"]
        return items or None

    return str((await eventually(probe, what=f"a {status} incident"))[0]["id"])


async def test_a_review_settles_the_review_alert_and_labels_confirmed_gunfire(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst = clients[Role.analyst]
    iid = await _incident(center, analyst, 0.6, "pending_review")
    [review] = await _alerts(analyst, "gunshot_review", iid)
    assert review["status"] == "new"
    # dismissing the reviewer's alert would leave the incident pending: decide it instead
    r = await analyst.post(f"/api/v1/alerts/{review['id']}/dismiss", json={"reason": "fireworks, heard it"})
    assert r.status_code == 409 and iid in r.json()["error"]["message"]
    for blank in BLANKS:
        r = await analyst.post(
            f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": blank}
        )
        assert r.status_code == 422, blank
    r = await analyst.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "confirm", "reason": "three shots on the audio"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["label"]) == ("confirmed", "gunshot")
    done = (await analyst.get(f"/api/v1/alerts/{review['id']}")).json()
    assert done["status"] == "closed" and done["history"][-1]["by"] == "analyst1"
    [gunfire] = await _alerts(analyst, "gunshot", iid)
    assert gunfire["status"] == "new"  # the confirmed incident's alert is work for dispatch


async def test_dismissing_an_alerted_incident_dismisses_its_alert(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    supervisor, officer = clients[Role.supervisor], clients[Role.officer]
    iid = await _incident(center, supervisor, 0.97, "alerted")
    [alert] = await _alerts(officer, "gunshot", iid)
    assert alert["status"] == "new"
    r = await supervisor.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "range practice, announced"}
    )
    assert r.status_code == 200, r.text
    after = (await officer.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert after["status"] == "dismissed"
    assert after["dismiss_reason"] == "incident dismissed in review: range practice, announced"


async def test_pulse_audio_must_be_a_flac_stream(center: Running) -> None:
    arr = await provision_array(center)
    sid = next(iter(arr.xy))
    good = json.loads(shot_pulses(arr, (0.0, 0.0))[0].to_json())
    assert good["device"] == sid

    async def post(audio: str) -> httpx.Response:
        body = {"events": [{**good, "event_id": None, "audio_flac_b64": audio}]}
        body["events"][0].pop("event_id")
        return await center.http.post(
            "/api/v1/ingest/events", json=body, headers={"authorization": f"Device {arr.keys[sid]}"}
        )

    for bad in ("!!!!not base64 at all", "AAAAAAAAAAAA", base64.b64encode(b"RIFF....WAVE").decode()):
        r = await post(bad)
        assert r.status_code == 422, (bad, r.text)
        assert "FLAC" in r.text or "base64" in r.text
    assert (await post(bang_flac())).status_code == 202


async def test_a_heartbeat_must_name_the_registered_device_type(center: Running) -> None:
    arr = await provision_array(center)
    sid = next(iter(arr.xy))
    hb = {"type": "device_heartbeat", "source": sid, "device": sid, "device_type": "plate_camera"}
    auth = {"authorization": f"Device {arr.keys[sid]}"}
    r = await center.http.post("/api/v1/ingest/events", json={"events": [hb]}, headers=auth)
    assert r.status_code == 422 and "registered as 'acoustic_sensor'" in r.text
    hb["device_type"] = "acoustic_sensor"
    r = await center.http.post("/api/v1/ingest/events", json={"events": [hb]}, headers=auth)
    assert r.status_code == 202, r.text


async def test_hit_decisions_settle_their_alerts_and_vague_bolos_are_refused(
    start_center: StartCenter,
) -> None:
    c = await start_center(processors=("recorder", "plates", "operations"))
    c.add_user("analyst1", Role.analyst)
    c.add_user("officer1", Role.officer)
    analyst, officer = await c.login("analyst1"), await c.login("officer1")
    try:
        for vague in ("A*", "AB?*", "??1*"):
            r = await analyst.post(
                "/api/v1/hotlists/entries", json={"plate": vague, "category": "custom", "reason": "witness"}
            )
            assert r.status_code == 422 and "known characters" in r.text, vague
        csv = b"plate,category,reason\nA*,custom,too vague\nABC1234,stolen_vehicle,stolen\n"
        admin = await c.login("admin")
        r = await admin.post(
            "/api/v1/hotlists/st/import", params={"format": "csv"}, files={"file": ("st.csv", csv)}
        )
        assert r.json()["imported"] == 1 and "known characters" in r.json()["errors"][0]["reason"]
        await admin.aclose()
        for plate in ("KZ?91*", "QRS777"):
            r = await analyst.post(
                "/api/v1/hotlists/entries",
                json={"plate": plate, "category": "wanted_person", "reason": "bolo"},
            )
            assert r.status_code == 201, r.text
        key = await c.center.provision_device("lpr-t1", DeviceType.plate_camera, "LPR", HERE.lat, HERE.lon)
        await post_reads(c, key, [plate_read("KZA9100"), plate_read("QRS777")])
        hits = {h["plate"]: h for h in await hits_of(officer, 2, status="verify")}
        misread, real = hits["KZA9100"], hits["QRS777"]
        [a_misread] = await _alerts(officer, "hotlist_hit", misread["id"])
        [a_real] = await _alerts(officer, "hotlist_hit", real["id"])
        assert "verify before action" in a_real["title"]

        for blank in BLANKS:
            r = await officer.post(
                f"/api/v1/hits/{misread['id']}/decision", json={"decision": "rejected", "reason": blank}
            )
            assert r.status_code == 422, blank
        r = await officer.post(
            f"/api/v1/hits/{misread['id']}/decision",
            json={"decision": "rejected", "reason": "misread: KZA9108"},
        )
        assert r.status_code == 200, r.text
        gone = (await officer.get(f"/api/v1/alerts/{a_misread['id']}")).json()
        assert gone["status"] == "dismissed" and gone["dismiss_reason"] == "hit rejected: misread: KZA9108"

        r = await officer.post(
            f"/api/v1/hits/{real['id']}/decision",
            json={"decision": "confirmed", "reason": "plate and car match"},
        )
        assert r.status_code == 200, r.text
        kept = (await officer.get(f"/api/v1/alerts/{a_real['id']}")).json()
        assert kept["status"] == "acknowledged"  # still work: a confirmed hit is acted on
        assert kept["title"].startswith("CONFIRMED hotlist hit QRS777") and "verify" not in kept["title"]
    finally:
        await analyst.aclose()
        await officer.aclose()


async def test_an_outcome_reaches_its_incident(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst = clients[Role.analyst]
    iid = await _incident(center, analyst, 0.97, "alerted")
    assert (await analyst.get(f"/api/v1/gunshots/{iid}")).json()["outcome"] is None
    [alert] = await _alerts(analyst, "gunshot", iid)
    case = (
        await analyst.post("/api/v1/cases", json={"number": "BPD-26-901", "title": "Shots, 5th Ave"})
    ).json()
    for ref_type, ref_id, category in (("gunshot", iid, "recovered_gun"), ("alert", alert["id"], "arrest")):
        r = await analyst.post(
            "/api/v1/outcomes",
            json={
                "items": [
                    {
                        "case_number": case["number"],
                        "ref_type": ref_type,
                        "ref_id": ref_id,
                        "category": category,
                    }
                ]
            },
        )
        assert r.status_code == 201, r.text
        assert (await analyst.get(f"/api/v1/gunshots/{iid}")).json()["outcome"] == category
