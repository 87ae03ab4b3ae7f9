"""Exports (CSV, GeoJSON), OASIS CAP 1.2 per alert, and the JSON feed for dispatch systems."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import httpx
import pytest

from rtcc.events import AlertSeverity
from rtcc.ops.exports import CAP_NS
from rtcc.roles import Role
from tests.conftest import Running
from tests.ops.helpers import POINT, audit_of, make_alert, publish, queued

pytestmark = pytest.mark.parametrize("backend", ["embedded"])

NS = {"cap": CAP_NS}
CAP_ALERT_ORDER = ["identifier", "sender", "sent", "status", "msgType", "source", "scope", "restriction",
                   "addresses", "code", "note", "references", "incidents", "info"]  # fmt: skip
CAP_INFO_ORDER = ["language", "category", "event", "responseType", "urgency", "severity", "certainty",
                  "audience", "eventCode", "effective", "onset", "expires", "senderName", "headline",
                  "description", "instruction", "web", "contact", "parameter", "resource",
                  "area"]  # fmt: skip
CAP_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


def check_cap_1_2(xml: bytes) -> ET.Element:
    """Validate the CAP 1.2 structure: namespace, required elements, their order and enumerations."""
    root = ET.fromstring(xml)
    assert root.tag == f"{{{CAP_NS}}}alert"
    names = [child.tag.split("}")[1] for child in root]
    for required in ("identifier", "sender", "sent", "status", "msgType", "scope"):
        assert names.count(required) == 1, f"<{required}> must appear once"
    assert names == sorted(names, key=CAP_ALERT_ORDER.index), "alert elements out of the schema's order"

    def text(el: ET.Element, tag: str) -> str:
        found = el.find(f"cap:{tag}", NS)
        assert found is not None and found.text, f"<{tag}> missing or empty"
        return found.text

    assert CAP_DATETIME.match(text(root, "sent"))
    assert " " not in text(root, "identifier") and "," not in text(root, "identifier")
    assert text(root, "status") in {"Actual", "Exercise", "System", "Test", "Draft"}
    assert text(root, "msgType") in {"Alert", "Update", "Cancel", "Ack", "Error"}
    assert text(root, "scope") in {"Public", "Restricted", "Private"}
    if text(root, "scope") == "Restricted":
        text(root, "restriction")
    if text(root, "msgType") in {"Update", "Cancel"}:
        refs = text(root, "references").split(" ")
        for ref in refs:
            sender, ident, sent = ref.split(",")
            assert sender and ident and CAP_DATETIME.match(sent)
    infos = root.findall("cap:info", NS)
    assert infos
    for info in infos:
        inames = [c.tag.split("}")[1] for c in info]
        assert inames == sorted(inames, key=CAP_INFO_ORDER.index), "info elements out of the schema's order"
        for required in ("category", "event", "urgency", "severity", "certainty"):
            text(info, required)
        assert text(info, "category") in {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health",
                                          "Env", "Transport", "Infra", "CBRNE", "Other"}  # fmt: skip
        assert text(info, "urgency") in {"Immediate", "Expected", "Future", "Past", "Unknown"}
        assert text(info, "severity") in {"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
        assert text(info, "certainty") in {"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
        for area in info.findall("cap:area", NS):
            text(area, "areaDesc")
            for circle in area.findall("cap:circle", NS):
                point, radius = (circle.text or "").split(" ")
                lat, lon = (float(x) for x in point.split(","))
                assert -90 <= lat <= 90 and -180 <= lon <= 180 and float(radius) >= 0
    return root


async def test_exports_csv_and_geojson(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    analyst, officer = clients[Role.analyst], clients[Role.officer]
    a1 = make_alert(title='=HYPERLINK("http://evil")')  # a spreadsheet formula must not run
    a2 = make_alert("hotlist_hit", pos=None, severity=AlertSeverity.warning, title="Hotlist hit")
    for a in (a1, a2):
        await publish(center, a)
        await queued(center, analyst, a.alert_id)

    r = await analyst.get("/api/v1/exports/alerts.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["id"] for row in rows} == {str(a1.alert_id), str(a2.alert_id)}
    titled = next(row for row in rows if row["id"] == str(a1.alert_id))
    assert titled["title"].startswith("'=") and float(titled["lat"]) == pytest.approx(POINT[0])

    r = await analyst.get("/api/v1/exports/alerts.geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    by_id = {f["id"]: f for f in fc["features"]}
    assert by_id[str(a1.alert_id)]["geometry"] == {"type": "Point", "coordinates": [POINT[1], POINT[0]]}
    assert by_id[str(a2.alert_id)]["geometry"] is None

    # forged or oversized requests: clear errors
    now = datetime.now(UTC)
    too_long = {"start": (now - timedelta(days=400)).isoformat(), "end": now.isoformat()}
    r = await analyst.get("/api/v1/exports/alerts.csv", params=too_long)
    assert r.status_code == 422 and "operations.export_max_days" in r.json()["error"]["message"]
    r = await analyst.get(
        "/api/v1/exports/alerts.csv", params={"start": now.isoformat(), "end": "2000-01-01T00:00:00Z"}
    )
    assert r.status_code == 422
    r = await analyst.get("/api/v1/exports/alerts.csv", params={"start": "2026-01-01T00:00:00"})
    assert r.status_code == 422
    r = await analyst.get("/api/v1/exports/alerts.geojson", params={"start": "yesterday"})
    assert r.status_code == 422
    r = await analyst.get("/api/v1/exports/alerts.csv", params={"start": "2026-01-01T00:00:00Z" + "0" * 5000})
    assert r.status_code in (414, 422, 431)
    # exports are for analysts and supervisors; and audited
    assert (await officer.get("/api/v1/exports/alerts.csv")).status_code == 403
    entries = await audit_of(clients[Role.admin], "export_alerts")
    assert [e["details"]["format"] for e in entries] == ["geojson", "csv"]
    assert entries[1]["details"]["rows"] == 2


async def test_cap_and_feed(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    officer, analyst = clients[Role.officer], clients[Role.analyst]
    alert = make_alert()
    review = make_alert("gunshot_review", severity=AlertSeverity.warning)
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    for a in (alert, review):
        await publish(center, a)
        await queued(center, analyst, a.alert_id)

    r = await officer.get(f"/api/v1/feeds/cap/{alert.alert_id}.xml")
    assert r.status_code == 200 and r.headers["content-type"] == "application/cap+xml"
    root = check_cap_1_2(r.content)
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert root.findtext("cap:identifier", namespaces=NS) == str(alert.alert_id)
    assert root.findtext("cap:info/cap:severity", namespaces=NS) == "Severe"
    circle = root.findtext("cap:info/cap:area/cap:circle", namespaces=NS)
    assert circle is not None and circle.startswith(f"{POINT[0]:.6f},{POINT[1]:.6f} ")

    await officer.post(f"/api/v1/alerts/{alert.alert_id}/assign", json={"unit": "B-12"})
    root = check_cap_1_2((await officer.get(f"/api/v1/feeds/cap/{alert.alert_id}.xml")).content)
    assert root.findtext("cap:msgType", namespaces=NS) == "Update"
    assert str(alert.alert_id) in (root.findtext("cap:references", namespaces=NS) or "")
    await analyst.post(f"/api/v1/alerts/{review.alert_id}/dismiss", json={"reason": "car backfiring"})
    root = check_cap_1_2((await analyst.get(f"/api/v1/feeds/cap/{review.alert_id}.xml")).content)
    assert root.findtext("cap:msgType", namespaces=NS) == "Cancel"
    # review work is not published to officers
    assert (await officer.get(f"/api/v1/feeds/cap/{review.alert_id}.xml")).status_code == 404
    assert (await clients[Role.auditor].get(f"/api/v1/feeds/cap/{alert.alert_id}.xml")).status_code == 403

    # the JSON feed: changed since a time, oldest first, with the cursor for the next poll
    r = await officer.get("/api/v1/feeds/alerts.json", params={"since": t0.isoformat()})
    assert r.status_code == 200
    feed = r.json()
    assert [i["id"] for i in feed["items"]] == [str(alert.alert_id)]
    assert feed["items"][0]["status"] == "assigned" and feed["items"][0]["assigned_unit"] == "B-12"
    r = await officer.get("/api/v1/feeds/alerts.json", params={"since": feed["next_since"]})
    assert r.json()["items"] == []
    items = (await analyst.get("/api/v1/feeds/alerts.json", params={"since": t0.isoformat()})).json()["items"]
    assert len(items) == 2
    assert (await officer.get("/api/v1/feeds/alerts.json", params={"since": "2026-01-01"})).status_code == 422
    async with httpx.AsyncClient(base_url=center.url) as anon:
        assert (await anon.get("/api/v1/feeds/alerts.json")).status_code == 401
