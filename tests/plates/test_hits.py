"""Hits through a running center: a camera read hits a hotlist, alerts, and is decided (audited)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rtcc.events import Alert, HotlistHit, PlateRead, Position, parse_event
from rtcc.plates.hotlist_import import Category, ParsedEntry
from rtcc.plates.hotlists import replace_source
from rtcc.roles import DeviceType, Role
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

HERE = Position(lat=33.5186, lon=-86.8104)
CROP = "a" * 64 + ".jpg"
IMAGE = "b" * 64 + ".jpg"


def plate_read(plate: str, device: str = "lpr-t1", **kw: Any) -> PlateRead:
    return PlateRead(source=device, device=device, pos=HERE, plate=plate, confidence=0.91, **kw)


async def post_reads(center: Running, key: str, reads: list[PlateRead]) -> None:
    body = {"events": [json.loads(r.to_json()) for r in reads]}
    r = await center.http.post("/api/v1/ingest/events", json=body, headers={"authorization": f"Device {key}"})
    assert r.status_code == 202, r.text


async def hits_of(client: httpx.AsyncClient, n: int, **params: Any) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        r = await client.get("/api/v1/hits", params=params)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items if len(items) >= n else None

    return await eventually(probe, what=f"{n} hits")


async def test_read_hits_alerts_and_is_decided(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates"))
    assert c.center.bus is not None
    c.add_user("officer1", Role.officer)
    c.add_user("analyst1", Role.analyst)
    admin, officer, analyst = await c.login("admin"), await c.login("officer1"), await c.login("analyst1")
    seen: list[Any] = []

    async def on_event(subject: str, payload: bytes) -> None:
        seen.append(parse_event(payload))

    subs = [
        await c.center.bus.subscribe("rtcc.events.alert", on_event),
        await c.center.bus.subscribe("rtcc.events.hotlist_hit", on_event),
    ]
    try:
        # a state list (one bad line) and a partial BOLO
        csv = b"plate,category,reason\nABC1234,stolen_vehicle,stolen 2026-11-02\n,custom,no plate\n"
        r = await admin.post(
            "/api/v1/hotlists/al-state/import", params={"format": "csv"}, files={"file": ("al.csv", csv)}
        )
        assert r.status_code == 200, r.text
        assert r.json()["imported"] == 1 and r.json()["errors"] == [
            {"line": 3, "reason": "no usable plate: ''"}
        ]
        r = await analyst.post(
            "/api/v1/hotlists/entries",
            json={"plate": "XY?12*", "category": "wanted_person", "reason": "witness saw part of the plate"},
        )
        assert r.status_code == 201, r.text
        bolo = r.json()
        r = await officer.post(
            "/api/v1/hotlists/entries", json={"plate": "QQ1", "category": "custom", "reason": "x y z"}
        )
        assert r.status_code == 403  # officers decide hits; they don't keep the lists

        key = await c.center.provision_device(
            "lpr-t1", DeviceType.plate_camera, "LPR test", HERE.lat, HERE.lon
        )
        lookalike = plate_read("A8C1234", crop_ref=CROP, image_ref=IMAGE)  # 8 for B: a look-alike
        partial = plate_read("XYQ1299")
        miss = plate_read("NOHIT77")
        await post_reads(c, key, [lookalike, partial, miss])

        hits = await hits_of(officer, 2, status="verify")
        by_plate = {h["plate"]: h for h in hits}
        assert set(by_plate) == {"A8C1234", "XYQ1299"}
        lk, pa = by_plate["A8C1234"], by_plate["XYQ1299"]
        assert (lk["match"], lk["entry_plate"], lk["category"]) == ("lookalike", "ABC1234", "stolen_vehicle")
        assert (pa["match"], pa["entry_id"], pa["category"]) == ("partial", bolo["id"], "wanted_person")
        assert lk["read_id"] == str(lookalike.event_id) and lk["status"] == "verify"

        async def alerts() -> list[Alert] | None:
            got = [e for e in seen if isinstance(e, Alert) and e.kind == "hotlist_hit"]
            return got if len(got) >= 2 else None

        got = await eventually(alerts, what="two hit alerts")
        assert {str(a.ref_event_id) for a in got} == {lk["id"], pa["id"]}
        assert all("verify before action" in a.title for a in got)
        assert {a.severity.value for a in got} == {"warning", "critical"}  # wanted person: critical
        hit_events = [e for e in seen if isinstance(e, HotlistHit)]
        assert {str(e.hit_id) for e in hit_events} >= {lk["id"]}

        # the read's photos beside the entry; the read is marked as a hit (retention keeps it)
        r = await officer.get(f"/api/v1/hits/{lk['id']}")
        assert r.status_code == 200, r.text
        detail = r.json()
        assert detail["crop_ref"] == CROP and detail["image_ref"] == IMAGE
        assert detail["entry"]["plate"] == "ABC1234" and detail["entry"]["reason"] == "stolen 2026-11-02"
        assert detail["read"]["hit"] is True and detail["read"]["crop_ref"] == CROP
        assert detail["photos"] == {  # served for hit review through the hit, audited with it
            "crop": f"/api/v1/hits/{lk['id']}/image?kind=crop",
            "vehicle": f"/api/v1/hits/{lk['id']}/image?kind=vehicle",
        }

        # decisions need a reason; one decision per hit
        url = f"/api/v1/hits/{lk['id']}/decision"
        r = await officer.post(url, json={"decision": "rejected"})
        assert r.status_code == 422 and "reason" in r.json()["error"]["message"]
        reason = "misread: the plate is A8C1234, a different car"
        r = await officer.post(url, json={"decision": "rejected", "reason": reason})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "rejected" and r.json()["decided_by"] == "officer1"
        r = await analyst.post(url, json={"decision": "confirmed", "reason": "looks right to me"})
        assert r.status_code == 409
        r = await analyst.post(
            f"/api/v1/hits/{pa['id']}/decision", json={"decision": "confirmed", "reason": "driver matches"}
        )
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        assert [
            h["id"] for h in (await admin.get("/api/v1/hits", params={"status": "verify"})).json()["items"]
        ] == []

        audit = (await admin.get("/api/v1/audit", params={"action": "hit_rejected"})).json()["items"]
        assert len(audit) == 1
        assert audit[0]["actor"] == "officer1" and audit[0]["record_id"] == lk["id"]
        assert audit[0]["purpose"] == reason and audit[0]["details"]["reason"] == reason
        reads = (await admin.get("/api/v1/audit", params={"action": "read_hit"})).json()["items"]
        assert [e["actor"] for e in reads] == ["officer1"]
        imports = (await admin.get("/api/v1/audit", params={"action": "hotlist_import"})).json()["items"]
        assert imports[0]["record_id"] == "al-state" and imports[0]["details"]["bad_lines"] == 1

        # redelivery of a read stores no second hit and republishes the same ids
        processor = c.center.services["plates"]
        again = await processor.process(lookalike)
        assert [(str(h.row.id), h.created) for h in again] == [(lk["id"], False)]
        all_hits = (await admin.get("/api/v1/hits")).json()["items"]
        assert len(all_hits) == 2
    finally:
        for s in subs:
            await s.stop()
        for cl in (admin, officer, analyst):
            await cl.aclose()


@pytest.mark.parametrize("backend", ["embedded"])
async def test_expired_and_removed_entries_stop_matching(start_center: StartCenter) -> None:
    c = await start_center(processors=("plates",), plates={"lookalike_distance": 0, "hotlist_refresh_s": 0.2})
    admin = await c.login("admin")
    try:
        soon = datetime.now(UTC) + timedelta(seconds=30)
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={
                "plate": "EXP123",
                "category": "stolen_plate",
                "reason": "short-lived",
                "expires_at": soon.isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={"plate": "DEL123", "category": "custom", "reason": "to be removed"},
        )
        gone = r.json()["id"]
        processor = c.center.services["plates"]
        assert [m.entry.plate for m in processor.matches("EXP123")] == ["EXP123"]
        assert processor.matches("EXP123", soon + timedelta(seconds=1)) == []  # expired since the rebuild
        assert processor.matches("EXPI23") != [] and processor.matches("EXP1234") == []  # distance 0
        r = await admin.delete(f"/api/v1/hotlists/entries/{gone}")
        assert r.status_code == 200
        assert processor.matches("DEL123") == []  # the API refreshed this process's matcher
        r = await admin.delete(f"/api/v1/hotlists/entries/{gone}")
        assert r.status_code == 404
        r = await admin.get("/api/v1/hotlists")
        [src] = r.json()["items"]
        assert (src["name"], src["kind"], src["entries"]) == ("bolo", "custom", 1)
        # a file with nothing usable is refused and changes nothing
        r = await admin.post(
            "/api/v1/hotlists/ncic/import", params={"format": "ncic"}, files={"file": ("x.txt", b"short\n")}
        )
        assert r.status_code == 422 and r.json()["error"]["details"]["errors"][0]["line"] == 1
        assert [s["name"] for s in (await admin.get("/api/v1/hotlists")).json()["items"]] == ["bolo"]

        # another process (here: the store directly, as `rtcc hotlist import` does) changes a list:
        # the version row moves and the matcher is rebuilt by polling
        assert c.center.store is not None and processor.matches("OTHER9") == []
        listed = [ParsedEntry(1, "OTHER9", Category.stolen_vehicle)]
        await c.center.store.write(lambda s: replace_source(s, "cli-list", "state_csv", listed))

        async def picked_up() -> list[Any] | None:
            return processor.matches("OTHER9") or None

        await eventually(picked_up, what="the poll to pick up the new list")
    finally:
        await admin.aclose()
