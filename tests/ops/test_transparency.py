"""The public transparency data: no sign-in, aggregates only, no personal data."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from rtcc.ops.transparency import aggregates_only
from rtcc.roles import Role
from tests.conftest import Running
from tests.ops.helpers import make_alert, publish, queued

PLATE = "7XKZ193"
PERSON = "Jane Q. Witness"


def test_aggregates_only_drops_personal_fields() -> None:
    room = {
        "searches_by_purpose": {"stolen_vehicle": 4, "amber_alert": 1},
        "last_plate": PLATE,
        "plate": PLATE,
        "top_users": [{"username": "analyst1", "count": 3}],
        "searched_by": "analyst1",
        "hits": {"confirmed": 3, "rejected": 1},
        "centroid_lat": 33.518612,
        "lon": -86.8104,
        "note": "called " + PERSON,
        "purge": {"deleted": 120, "last_run": "2026-11-01T03:00:00+00:00"},
        "free_text": "x" * 200,
    }
    clean = aggregates_only(room)
    assert clean == {
        "searches_by_purpose": {"stolen_vehicle": 4, "amber_alert": 1},
        "hits": {"confirmed": 3, "rejected": 1},
        "purge": {"deleted": 120, "last_run": "2026-11-01T03:00:00+00:00"},
    }


@pytest.mark.parametrize("backend", ["embedded"])
async def test_public_page_has_aggregates_and_no_personal_data(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer, analyst = clients[Role.officer], clients[Role.analyst]
    alerts = [make_alert(title=f"Hotlist hit {PLATE} near {PERSON}'s house"), make_alert(), make_alert()]
    for a in alerts:
        await publish(center, a)
        await queued(center, officer, a.alert_id)
    case = (
        await officer.post("/api/v1/cases", json={"title": f"Assault on {PERSON}", "number": "T-1"})
    ).json()
    await officer.post(
        "/api/v1/outcomes",
        json={
            "items": [
                {"case_number": "T-1", "ref_type": "alert", "ref_id": str(alerts[0].alert_id),
                 "category": "arrest", "note": f"{PERSON} identified {PLATE}"},
                {"case_number": "T-1", "ref_type": "alert", "ref_id": str(alerts[1].alert_id),
                 "category": "no_evidence_found"},
            ]
        },
    )  # fmt: skip
    await analyst.post(
        f"/api/v1/alerts/{alerts[2].alert_id}/dismiss", json={"reason": f"{PERSON} called it in"}
    )

    async with httpx.AsyncClient(base_url=center.url, timeout=20) as anon:
        r = await anon.get("/api/v1/transparency")
    assert r.status_code == 200, r.text
    page = r.json()
    ops = page["operations"]
    assert ops["alerts_by_kind"] == {"gunshot": 3}
    assert ops["alerts_by_status"] == {"new": 2, "dismissed": 1}
    assert ops["cases"] == {"open": 1, "closed": 0}
    assert ops["outcomes"]["per_category"]["arrest"] == 1
    assert ops["outcomes"]["summary"].startswith("success in 1 case since ")
    gun = ops["gunshot_alerts"]
    assert gun["alerts"] == 3
    assert gun["share_by_outcome"]["arrest"] == pytest.approx(1 / 3, abs=1e-3)
    assert gun["share_by_outcome"]["no_evidence_found"] == pytest.approx(1 / 3, abs=1e-3)
    assert gun["share_no_outcome"] == pytest.approx(1 / 3, abs=1e-3)
    chain = page["audit_chain"]
    assert chain["intact"] is True and chain["entries_checked"] >= 3
    assert chain["head_seq"] >= 3 and len(chain["head_hash"]) == 64  # the head, for outside copies
    for room in ("plates", "cameras", "bodycams"):
        assert isinstance(page[room]["available"], bool)
    if page["plates"]["available"]:  # the plates room reports retention with its purge counts
        assert isinstance(page["plates"]["retention"]["plate_reads_days"], int)

    # no personal data: no plate, no names, no usernames, no case numbers, no positions
    text = json.dumps(page)
    for secret in (PLATE, PERSON, "Jane", "officer1", "analyst1", "admin", case["id"], "T-1",
                   str(alerts[0].alert_id), str(alerts[0].ref_event_id)):  # fmt: skip
        assert secret not in text, secret
    assert "33.51" not in text and "86.81" not in text  # the alerts' positions
    stamps = text.replace(chain["verified_at"], "").replace(page["generated_at"], "")
    assert not re.search(r"\d{2,3}\.\d{3,}", stamps), "a number precise enough to be a coordinate"

    # the audit chain check is cached (not re-run on every visit)
    async with httpx.AsyncClient(base_url=center.url, timeout=20) as anon:
        again = (await anon.get("/api/v1/transparency")).json()
    assert again["audit_chain"]["verified_at"] == chain["verified_at"]
