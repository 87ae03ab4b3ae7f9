"""One vehicle, one entry: duplicate hotlist lines collapse; NCIC plates are never silently altered.

Audit finding (session 10): a state CSV listing ``AUDC888``, ``AUDC888`` and ``audc-888``
imported 3 entries, and one read then made 3 hits and 3 "verify before action" alerts; an NCIC
plate field ``A*B`` lost its ``*`` and became the entry ``AB``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rtcc.events import PlateRead, Position
from rtcc.plates.hotlist_import import Duplicate, parse_csv, parse_ncic
from rtcc.roles import DeviceType, Role
from tests.conftest import Running
from tests.helpers import eventually
from tests.plates.test_hotlists import ncic_line

HERE = Position(lat=33.5186, lon=-86.8104)

CSV = (
    "plate,state,category,reason\n"
    "AUDC888,,stolen_vehicle,first\n"  # line 2: kept
    "AUDC888,,stolen_vehicle,again\n"  # 3: the same
    "audc-888,,wanted_person,spelt otherwise\n"  # 4: the same plate once normalized
    "XYZ123,TX,stolen_vehicle,texas car\n"  # 5: kept
    "XYZ123,,stolen_vehicle,any state\n"  # 6: kept (no state: another entry)
    "xyz 123,tx,stolen_plate,texas again\n"  # 7: the same as line 5
    ",,custom,no plate\n"  # 8: a bad line, still an error
)


def test_csv_duplicates_collapse_into_the_first_line() -> None:
    rep = parse_csv(CSV)
    assert [(e.line, e.plate, e.state, e.reason) for e in rep.entries] == [
        (2, "AUDC888", None, "first"),
        (5, "XYZ123", "TX", "texas car"),
        (6, "XYZ123", None, "any state"),
    ]
    assert rep.duplicates == [
        Duplicate(3, 2, "AUDC888", None),
        Duplicate(4, 2, "AUDC888", None),
        Duplicate(7, 5, "XYZ123", "TX"),
    ]
    assert [e.line for e in rep.errors] == [8]


def test_ncic_plate_with_other_characters_is_a_bad_line_not_altered() -> None:
    lines = [
        ncic_line(plate="A*B", state="AL", mke="EV"),
        ncic_line(plate="AB", state="AL", mke="EV"),  # a real 2-character plate stays fine
        ncic_line(plate="XYZ-99", state="GA", mke="EL"),  # dashes and blanks are separators
        ncic_line(plate="XYZ 99", state="GA", mke="EL"),  # ... so this is line 3 again
        ncic_line(plate="AB?12", state="TN", mke="EW"),
        ncic_line(plate="CD.34", state="TN", mke="EW"),
    ]
    rep = parse_ncic(lines)
    assert [(e.line, e.plate) for e in rep.entries] == [(2, "AB"), (3, "XYZ99")]
    assert rep.duplicates == [Duplicate(4, 3, "XYZ99", "GA")]
    assert [e.line for e in rep.errors] == [1, 5, 6]
    assert "'*'" in rep.errors[0].reason and "A*B" in rep.errors[0].reason
    assert "'?'" in rep.errors[1].reason and "'.'" in rep.errors[2].reason


@pytest.mark.parametrize("backend", ["embedded"])
async def test_api_import_reports_duplicates_and_one_read_makes_one_hit(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    admin, officer = clients[Role.admin], clients[Role.officer]
    r = await admin.post(
        "/api/v1/hotlists/al-state/import", params={"format": "csv"}, files={"file": ("al.csv", CSV.encode())}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 3 and body["error_count"] == 1
    assert body["duplicate_count"] == 3
    assert [(d["line"], d["first_line"], d["plate"]) for d in body["duplicates"]] == [
        (3, 2, "AUDC888"),
        (4, 2, "AUDC888"),
        (7, 5, "XYZ123"),
    ]
    [src] = (await admin.get("/api/v1/hotlists")).json()["items"]
    assert src["entries"] == 3
    entries = (await admin.get("/api/v1/hotlists/entries", params={"plate": "AUDC"})).json()["items"]
    assert [(e["plate"], e["reason"]) for e in entries] == [("AUDC888", "first")]

    # one read of the car: one hit, one alert
    key = await center.center.provision_device(
        "lpr-d1", DeviceType.plate_camera, "LPR d1", HERE.lat, HERE.lon
    )
    read = PlateRead(source="lpr-d1", device="lpr-d1", pos=HERE, plate="AUDC888", confidence=0.9)
    r = await center.http.post(
        "/api/v1/ingest/events",
        json={"events": [json.loads(read.to_json())]},
        headers={"authorization": f"Device {key}"},
    )
    assert r.status_code == 202, r.text

    async def hits() -> list[dict[str, Any]] | None:
        items = (await officer.get("/api/v1/hits")).json()["items"]
        return [h for h in items if h["read_id"] == str(read.event_id)] or None

    found = await eventually(hits, what="the read's hits")  # a read's hits are stored together
    assert len(found) == 1 and found[0]["reason"] == "first"

    async def alerts() -> list[dict[str, Any]] | None:
        items = (await officer.get("/api/v1/alerts")).json()["items"]
        return [a for a in items if a["kind"] == "hotlist_hit"] or None

    got = await eventually(alerts, what="the hit's alert")
    assert [a["ref_id"] for a in got] == [found[0]["id"]]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_second_active_bolo_for_the_same_plate_is_refused(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst, supervisor = clients[Role.analyst], clients[Role.supervisor]
    first = await analyst.post(
        "/api/v1/hotlists/entries",
        json={"plate": "BOL-0777", "category": "stolen_vehicle", "reason": "stolen from Main St"},
    )
    assert first.status_code == 201, first.text
    again = await supervisor.post(
        "/api/v1/hotlists/entries",
        json={"plate": "bol 0777", "category": "wanted_person", "reason": "driver wanted"},
    )
    assert again.status_code == 409, again.text
    err = again.json()["error"]
    assert err["code"] == "conflict" and first.json()["id"] in err["message"]
    existing = err["details"]["existing_entry"]
    assert (existing["id"], existing["created_by"], existing["reason"]) == (
        first.json()["id"],
        "analyst1",
        "stolen from Main St",
    )
    # the same number from another state is another vehicle; a removed entry no longer blocks
    other = await supervisor.post(
        "/api/v1/hotlists/entries",
        json={"plate": "BOL0777", "category": "stolen_vehicle", "reason": "texas car", "state": "TX"},
    )
    assert other.status_code == 201, other.text
    assert (await analyst.delete(f"/api/v1/hotlists/entries/{first.json()['id']}")).status_code == 200
    replaced = await supervisor.post(
        "/api/v1/hotlists/entries",
        json={"plate": "BOL0777", "category": "wanted_person", "reason": "stolen car, driver wanted"},
    )
    assert replaced.status_code == 201, replaced.text
