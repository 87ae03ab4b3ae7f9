"""Audit findings in operations.

* ``rtcc report --month 2026-10`` showed "success in 1 case since 2026-10-01" and "95.7 % no
  outcome", both from November: the ledger's figures were not bounded by the month's end;
* the dispatch feed missed a hit confirmed after its alert was assigned: the title became
  "CONFIRMED …" but ``updated_at`` did not move, so ``/feeds/alerts.json?since=`` returned ``[]``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.ops.report import gather, month_range
from rtcc.roles import DeviceType, Role
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables_ops import AlertRow, Case, OutcomeRow
from tests.api.test_s9_decisions import _alerts
from tests.conftest import StartCenter
from tests.plates.test_hits import HERE, hits_of, plate_read, post_reads

SECRET = "report-s11-secret-" + "r" * 30
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", SECRET)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    s = Store(url)
    yield s  # type: ignore[misc]
    s.close()


def _alert(at: datetime, ref: str | None = None) -> AlertRow:
    return AlertRow(id=uuid.uuid4(), event_id=uuid.uuid4(), occurred_at=at, source="acoustic", kind="gunshot",
                    severity="critical", title="Gunfire", lat=33.5, lon=-86.8, ref_id=ref, status="new",
                    history=[], created_at=at, updated_at=at)  # fmt: skip


def _outcome(case: uuid.UUID, ref_type: str, ref_id: str, category: str, at: datetime) -> OutcomeRow:
    return OutcomeRow(case_id=case, ref_type=ref_type, ref_id=ref_id, category=category, note="",
                      recorded_by="a", recorded_at=at)  # fmt: skip


def _seed(store: Store, october: datetime, november: datetime) -> None:
    """October: 2 alerts, one with an arrest (case A). November: 20 alerts, none with an outcome, an
    arrest on an October alert (case B) and a recovered gun on a November alert's incident (case B)."""
    case_a, case_b = uuid.uuid4(), uuid.uuid4()
    rows: list[object] = [
        Case(id=c, number=n, title="t", description="", status="open", opened_by="a", opened_at=october)
        for c, n in ((case_a, "A-1"), (case_b, "B-1"))
    ]
    oct_alerts = [_alert(october + timedelta(days=i + 1)) for i in range(2)]
    incident = str(uuid.uuid4())
    nov_alerts = [_alert(november + timedelta(hours=i + 1), incident if i == 0 else None) for i in range(20)]
    rows += [*oct_alerts, *nov_alerts]
    rows.append(_outcome(case_a, "alert", str(oct_alerts[0].id), "arrest", october + timedelta(days=3)))
    rows.append(_outcome(case_b, "alert", str(oct_alerts[1].id), "arrest", november + timedelta(days=2)))
    rows.append(_outcome(case_b, "gunshot", incident, "recovered_gun", november + timedelta(days=2)))
    store.run(lambda s: s.add_all(rows))


def test_a_past_month_report_holds_only_that_month(store: Store, tmp_path: Path) -> None:
    october, november = month_range("2025-10")[0], month_range("2025-11")[0]
    _seed(store, october, november)
    data = store.run(lambda s: gather(s, "2025-10", *month_range("2025-10")))
    assert data.alert_count == 2
    assert data.outcomes["arrest"] == 1 and data.outcomes["recovered_gun"] == 0
    led = data.ledger
    assert led["success_cases"] == 1 and led["alerts"] == 2
    assert led["alerts_no_outcome"] == 1 and led["share_no_outcome"] == 0.5  # November's 20 are not here
    assert led["per_category"]["arrest"] == 1 and led["per_category"]["recovered_gun"] == 0
    assert led["summary"] == "success in 1 case since 2025-10-01 until 2025-10-31"
    # the CLI's HTML says the same
    r = runner.invoke(app, ["report", "--month", "2025-10", "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "out" / "rtcc-report-2025-10.html").read_text(encoding="utf-8")
    assert "success in 1 case since 2025-10-01 until 2025-10-31" in html
    assert "<th>Share of alerts with no outcome</th><td>50.0 %</td>" in html
    # November on its own: its alerts, its outcomes (an outcome on its incident counts for its alert)
    nov = store.run(lambda s: gather(s, "2025-11", *month_range("2025-11"))).ledger
    assert (nov["alerts"], nov["alerts_no_outcome"], nov["success_cases"]) == (20, 19, 1)


@pytest.mark.parametrize("backend", ["embedded"])
async def test_feed_shows_a_hit_confirmed_after_its_alert_was_assigned(start_center: StartCenter) -> None:
    c = await start_center(processors=("recorder", "plates", "operations"))
    c.add_user("officer1", Role.officer)
    officer, admin = await c.login("officer1"), await c.login("admin")
    try:
        entry = {"plate": "OJC7449", "category": "stolen_vehicle", "reason": "bolo"}
        assert (await admin.post("/api/v1/hotlists/entries", json=entry)).status_code == 201
        key = await c.center.provision_device("lpr-t1", DeviceType.plate_camera, "LPR", HERE.lat, HERE.lon)
        await post_reads(c, key, [plate_read("OJC7449")])
        [hit] = await hits_of(officer, 1, status="verify")
        [alert] = await _alerts(officer, "hotlist_hit", hit["id"])
        r = await officer.post(f"/api/v1/alerts/{alert['id']}/assign", json={"unit": "2A12"})
        assert r.status_code == 200, r.text
        before = r.json()["history"][-1]["at"]  # the dispatcher has seen everything up to the assignment
        feed = await officer.get("/api/v1/feeds/alerts.json", params={"since": before})
        assert feed.status_code == 200 and feed.json()["items"] == []
        decision = {"decision": "confirmed", "reason": "plate and car match"}
        assert (await officer.post(f"/api/v1/hits/{hit['id']}/decision", json=decision)).status_code == 200
        feed = await officer.get("/api/v1/feeds/alerts.json", params={"since": before})
        assert feed.status_code == 200, feed.text
        [item] = feed.json()["items"]
        assert item["id"] == alert["id"] and item["title"].startswith("CONFIRMED")
        assert item["status"] == "assigned" and item["assigned_unit"] == "2A12"
        assert datetime.fromisoformat(item["updated_at"]) > datetime.fromisoformat(before)
        assert datetime.fromisoformat(item["updated_at"]) <= datetime.now(UTC)
    finally:
        await officer.aclose()
        await admin.aclose()
