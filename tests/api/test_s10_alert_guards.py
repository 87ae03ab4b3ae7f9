"""Session 10 audit: an alert is not taken off the queue while what it announces waits for a decision.

Acknowledge then close used to remove a review alert (the incident stayed pending for ever, nobody
reviewed it); a hit alert could be dismissed or closed with the hit still "verify" (a later
confirmation then had no open alert for dispatch).
"""

from __future__ import annotations

import httpx
import pytest

from rtcc.roles import DeviceType, Role
from tests.api.test_s9_decisions import _alerts, _incident
from tests.conftest import Running, StartCenter
from tests.plates.test_hits import HERE, hits_of, plate_read, post_reads

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


async def test_a_pending_review_alert_cannot_be_closed_around_the_review(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst = clients[Role.analyst]
    iid = await _incident(center, analyst, 0.6, "pending_review")
    [review] = await _alerts(analyst, "gunshot_review", iid)
    listed = (await analyst.get("/api/v1/alerts")).json()["items"]
    assert [a["awaits_decision"] for a in listed if a["id"] == review["id"]] == ["review"]  # the UI offers it
    r = await analyst.post(f"/api/v1/alerts/{review['id']}/acknowledge")
    assert r.status_code == 200, r.text  # "I am on it" is fine
    assert r.json()["awaits_decision"] == "review"
    r = await analyst.post(f"/api/v1/alerts/{review['id']}/close")
    assert r.status_code == 409 and f"/gunshots/{iid}/review" in r.json()["error"]["message"]
    assert (await analyst.get(f"/api/v1/alerts/{review['id']}")).json()["status"] == "acknowledged"
    r = await analyst.post(
        f"/api/v1/gunshots/{iid}/review", json={"decision": "dismiss", "reason": "fireworks on the audio"}
    )
    assert r.status_code == 200, r.text
    assert (await analyst.get(f"/api/v1/alerts/{review['id']}")).json()["status"] in ("closed", "dismissed")


async def test_a_hit_alert_is_settled_by_the_hit_decision_not_around_it(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates", "operations"))
    c.add_user("officer1", Role.officer)
    officer, admin = await c.login("officer1"), await c.login("admin")
    try:
        entry = {"plate": "QRS777", "category": "stolen_vehicle", "reason": "bolo"}
        r = await admin.post("/api/v1/hotlists/entries", json=entry)
        assert r.status_code == 201, r.text
        key = await c.center.provision_device("lpr-t1", DeviceType.plate_camera, "LPR", HERE.lat, HERE.lon)
        await post_reads(c, key, [plate_read("QRS777")])
        [hit] = await hits_of(officer, 1, status="verify")
        [alert] = await _alerts(officer, "hotlist_hit", hit["id"])
        one = (await officer.get(f"/api/v1/alerts/{alert['id']}")).json()
        assert one["awaits_decision"] == "hit"  # the dashboard offers the decision, not Dismiss/Close
        r = await officer.post(f"/api/v1/alerts/{alert['id']}/dismiss", json={"reason": "busy right now"})
        assert r.status_code == 409 and f"/hits/{hit['id']}/decision" in r.json()["error"]["message"]
        r = await officer.post(f"/api/v1/alerts/{alert['id']}/assign", json={"unit": "2A12"})
        assert r.status_code == 200, r.text  # sending a unit to verify is allowed
        r = await officer.post(f"/api/v1/alerts/{alert['id']}/close")
        assert r.status_code == 409
        decision = {"decision": "confirmed", "reason": "plate and car match"}
        r = await officer.post(f"/api/v1/hits/{hit['id']}/decision", json=decision)
        assert r.status_code == 200, r.text
        kept = (await officer.get(f"/api/v1/alerts/{alert['id']}")).json()
        assert kept["status"] != "dismissed" and "verify" not in kept["title"]
        assert kept["awaits_decision"] is None
        r = await officer.post(f"/api/v1/alerts/{alert['id']}/close")
        assert r.status_code == 200, r.text  # decided: the alert can now be closed
    finally:
        await officer.aclose()
        await admin.aclose()
