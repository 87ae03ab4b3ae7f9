"""The event history no longer serves plate reads (auditor's finding 1a, session 9).

Reading stored reads is a search and needs a purpose and a case number; an
explicit ``types=plate_read`` is refused with a pointer to the plate search
and audited as a refused search. Hotlist hits (alerts) stay in the history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rtcc.events import HotlistHit, PlateRead, Position, Pulse
from rtcc.roles import Role
from rtcc.store.events_repo import record_events
from tests.conftest import Running

HERE = Position(lat=33.52, lon=-86.81)
AT = datetime.now(UTC) - timedelta(minutes=5)


def seed(center: Running) -> None:
    read = PlateRead(source="lpr-1", device="lpr-1", occurred_at=AT, pos=HERE, plate="ABC123", confidence=0.9)
    hit = HotlistHit(
        source="hotlist",
        device="lpr-1",
        occurred_at=AT,
        read_id=read.event_id,
        pos=HERE,
        plate="ABC123",
        entry_plate="ABC123",
        category="stolen_plate",
        match="exact",
        hit_id=uuid.uuid4(),
    )
    pulse = Pulse(
        source="ac-1", device="ac-1", occurred_at=AT, pos=HERE, peak_db=90, snr_db=20, duration_ms=5
    )
    store = center.center.store
    assert store is not None
    store.run(lambda s: record_events(s, [read, hit, pulse]))


@pytest.mark.parametrize("backend", ["embedded"])
async def test_plate_reads_are_not_served_by_the_event_history(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    seed(center)
    analyst = clients[Role.analyst]
    for params in ({"types": "plate_read"}, {"types": ["pulse", "plate_read"]}):
        r = await analyst.get("/api/v1/events", params=params)
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert "/api/v1/plates/search" in err["message"] and "purpose" in err["message"]
        assert err["details"]["refused_types"] == ["plate_read"]
    # a filter by camera and time does not bring them back
    r = await analyst.get("/api/v1/events", params={"device_id": "lpr-1", "limit": 1000})
    assert r.status_code == 200 and {e["type"] for e in r.json()["items"]} == {"hotlist_hit"}
    r = await analyst.get("/api/v1/events", params={"limit": 1000})
    assert {e["type"] for e in r.json()["items"]} == {"hotlist_hit", "pulse"}
    # hits stay in the history (the dashboard loads them), for every operations role
    for role in (Role.officer, Role.admin):
        r = await clients[role].get("/api/v1/events", params={"types": "hotlist_hit"})
        assert r.status_code == 200 and [e["plate"] for e in r.json()["items"]] == ["ABC123"]
    # the refusals are audited as refused plate searches
    audit = await clients[Role.admin].get("/api/v1/audit", params={"action": "plate_search_refused"})
    refused = audit.json()["items"]
    assert [(e["actor"], e["outcome"], e["details"]["reason"]) for e in refused] == [
        ("analyst1", "refused", "event_history")
    ] * 2
