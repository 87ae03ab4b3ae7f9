"""Cases, links and the outcome ledger: the seed's table, CSV import all-or-nothing with line numbers."""

from __future__ import annotations

import httpx
import pytest

from rtcc.ops.ledger import OUTCOME_CATEGORIES, SUCCESS_CATEGORIES
from rtcc.roles import Role
from tests.conftest import Running
from tests.ops.helpers import audit_of, make_alert, publish, queued


def test_the_seed_categories() -> None:
    assert len(SUCCESS_CATEGORIES) == 11 and OUTCOME_CATEGORIES[-1] == "no_evidence_found"
    assert {"arrest", "recovered_gun", "located_missing_person", "assisted_other_agency"} <= set(
        SUCCESS_CATEGORIES
    )


async def test_cases_links_outcomes_and_stats(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst, officer, admin = clients[Role.analyst], clients[Role.officer], clients[Role.admin]
    alerts = [make_alert(), make_alert(), make_alert("gunshot", title="Gunfire: 1 round")]
    for a in alerts:
        await publish(center, a)
    for a in alerts:
        await queued(center, analyst, a.alert_id)
    a1, a2, a3 = (str(a.alert_id) for a in alerts)

    # open cases
    r = await officer.post("/api/v1/cases", json={"title": "Shots fired on 5th Ave"})
    assert r.status_code == 201, r.text
    case1 = r.json()
    assert (
        case1["status"] == "open" and case1["number"].endswith("-00001") and case1["opened_by"] == "officer1"
    )
    r = await analyst.post("/api/v1/cases", json={"number": "BPD-26-77", "title": "Drive-by, Ensley"})
    assert r.status_code == 201
    case2 = r.json()
    r = await analyst.post("/api/v1/cases", json={"number": "BPD-26-77", "title": "again"})
    assert r.status_code == 409
    r = await analyst.post("/api/v1/cases", json={"number": "../etc/passwd", "title": "forged"})
    assert r.status_code == 422
    r = await analyst.post("/api/v1/cases", json={"title": "x" * 301})
    assert r.status_code == 422

    # links
    r = await officer.post(f"/api/v1/cases/{case1['id']}/links", json={"ref_type": "alert", "ref_id": a1})
    assert r.status_code == 200, r.text
    assert [(x["ref_type"], x["ref_id"]) for x in r.json()["links"]] == [("alert", a1)]
    r = await officer.post(
        f"/api/v1/cases/{case1['id']}/links",
        json={"ref_type": "alert", "ref_id": "00000000-0000-4000-8000-000000000000"},
    )
    assert r.status_code == 404
    r = await officer.post(f"/api/v1/cases/{case1['id']}/links", json={"ref_type": "warrant", "ref_id": a1})
    assert r.status_code == 422

    # outcomes (JSON), all or none
    r = await officer.post(
        "/api/v1/outcomes",
        json={
            "items": [
                {"case_number": case1["number"], "ref_type": "alert", "ref_id": a1, "category": "arrest"},
                {
                    "case_number": case1["number"],
                    "ref_type": "alert",
                    "ref_id": a1,
                    "category": "recovered_gun",
                },
                {
                    "case_number": "BPD-26-77",
                    "ref_type": "alert",
                    "ref_id": a2,
                    "category": "no_evidence_found",
                },
            ]
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["recorded"] == 3
    r = await officer.post(
        "/api/v1/outcomes",
        json={
            "items": [{"case_number": "BPD-26-77", "ref_type": "alert", "ref_id": a3, "category": "lucky"}]
        },
    )
    assert r.status_code == 422

    before = (await analyst.get("/api/v1/stats/outcomes")).json()

    # a malformed CSV: each error names its line, and nothing is recorded
    bad = (
        "case_number,ref_type,ref_id,category,note\n"
        f"NO-SUCH-CASE,alert,{a3},arrest,\n"
        f"BPD-26-77,alert,{a3},parking_ticket,\n"
        f"BPD-26-77,alert,{a3}\n"
    )
    r = await analyst.post("/api/v1/outcomes/import", content=bad, headers={"content-type": "text/csv"})
    assert r.status_code == 422
    errors = r.json()["error"]["details"]["errors"]
    assert [e["line"] for e in errors] == [4]  # malformed shape is reported first
    bad = bad.rsplit("\n", 2)[0] + "\n"
    r = await analyst.post("/api/v1/outcomes/import", content=bad, headers={"content-type": "text/csv"})
    assert r.status_code == 422
    body = r.json()["error"]
    assert "nothing was recorded" in body["message"]
    assert [e["line"] for e in body["details"]["errors"]] == [2, 3]
    assert "NO-SUCH-CASE" in body["details"]["errors"][0]["errors"][0]
    assert "parking_ticket" in body["details"]["errors"][1]["errors"][0]
    r = await analyst.post(
        "/api/v1/outcomes/import", content="case,kind\nx,y\n", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("line 1: missing column")
    r = await analyst.post(
        "/api/v1/outcomes/import", content=b"\xff\xfe\x00garbage", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422
    assert (await analyst.get("/api/v1/stats/outcomes")).json() == before  # nothing lost, nothing added
    # officers record outcomes one by one but do not bulk-import
    r = await officer.post("/api/v1/outcomes/import", content=bad, headers={"content-type": "text/csv"})
    assert r.status_code == 403

    good = (
        f'case_number,ref_type,ref_id,category,note\r\nBPD-26-77,alert,{a2},vehicle_info,"plate, colour"\r\n'
    )
    r = await analyst.post("/api/v1/outcomes/import", content=good, headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text

    # the seed's table
    stats = (await officer.get("/api/v1/stats/outcomes")).json()
    assert stats["success_cases"] == 2
    assert stats["summary"].startswith("success in 2 cases since ")
    assert stats["per_category"]["arrest"] == 1 and stats["per_category"]["recovered_gun"] == 1
    assert stats["per_category"]["vehicle_info"] == 1 and stats["per_category"]["no_evidence_found"] == 1
    assert set(stats["per_category"]) == set(OUTCOME_CATEGORIES)
    assert stats["alerts"] == 3 and stats["alerts_no_outcome"] == 1
    assert stats["share_no_outcome"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["alerts_no_evidence"] == 0  # alert 2 has no_evidence_found *and* vehicle_info
    r = await officer.get("/api/v1/stats/outcomes", params={"since": "2999-01-01T00:00:00Z"})
    assert r.json()["success_cases"] == 0 and r.json()["alerts"] == 0
    assert (await officer.get("/api/v1/stats/outcomes", params={"since": "2026-01-01"})).status_code == 422

    # the case shows its links and outcomes
    full = (await officer.get(f"/api/v1/cases/{case2['id']}")).json()
    assert {(x["ref_type"], x["ref_id"]) for x in full["links"]} == {("alert", a2)}  # linked by the outcome
    assert sorted(o["category"] for o in full["outcomes"]) == ["no_evidence_found", "vehicle_info"]

    # closing: with a reason; a closed case takes no more links or outcomes
    r = await analyst.post(f"/api/v1/cases/{case2['id']}/close", json={})
    assert r.status_code == 422
    r = await analyst.post(f"/api/v1/cases/{case2['id']}/close", json={"reason": "suspect charged"})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closed_by"] == "analyst1"
    r = await analyst.post(f"/api/v1/cases/{case2['id']}/close", json={"reason": "again please"})
    assert r.status_code == 409
    r = await officer.post(f"/api/v1/cases/{case2['id']}/links", json={"ref_type": "alert", "ref_id": a3})
    assert r.status_code == 409
    r = await officer.post(
        "/api/v1/outcomes",
        json={
            "items": [{"case_number": "BPD-26-77", "ref_type": "alert", "ref_id": a3, "category": "arrest"}]
        },
    )
    assert r.status_code == 422 and "closed" in str(r.json()["error"]["details"])
    listed = (await officer.get("/api/v1/cases", params={"status": "open"})).json()["items"]
    assert [c["number"] for c in listed] == [case1["number"]]

    # audited; the auditor reads statistics but does not work cases
    assert {e["actor"] for e in await audit_of(admin, "case_open")} == {"officer1", "analyst1"}
    assert len(await audit_of(admin, "outcomes_record")) == 2
    assert (await audit_of(admin, "case_close"))[0]["purpose"] == "suspect charged"
    auditor = clients[Role.auditor]
    assert (await auditor.get("/api/v1/stats/outcomes")).status_code == 200
    assert (await auditor.get("/api/v1/cases")).status_code == 403
    assert (await auditor.post("/api/v1/cases", json={"title": "not mine"})).status_code == 403


def test_outcome_csv_parser_refuses_bad_files_with_line_numbers() -> None:
    from rtcc.errors import ValidationFailed
    from rtcc.ops.ledger import parse_outcome_csv

    head = "case_number,ref_type,ref_id,category,note\n"
    ok = head + 'C-1,alert,a1,arrest,\n\nC-1,gunshot,g1,recovered_gun,"two, guns"\n'
    items, lines = parse_outcome_csv(ok, max_rows=10)
    assert [i.category for i in items] == ["arrest", "recovered_gun"] and lines == [2, 4]
    assert items[1].note == "two, guns"
    with pytest.raises(ValidationFailed, match=r"operations\.outcome_import_max_rows"):
        parse_outcome_csv(head + "C-1,alert,a1,arrest,\n" * 3, max_rows=2)
    with pytest.raises(ValidationFailed, match="empty"):
        parse_outcome_csv("", max_rows=10)
    with pytest.raises(ValidationFailed, match="no rows"):
        parse_outcome_csv(head, max_rows=10)
    with pytest.raises(ValidationFailed) as err:
        parse_outcome_csv(head + "C-1,alert,a1,arrest,\nC-1,alert\nC-1,alert,a1,arrest,x,y\n", max_rows=10)
    assert [e["line"] for e in err.value.details["errors"]] == [3, 4]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_oversized_import_is_refused_and_nothing_recorded(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst = clients[Role.analyst]
    # an import is an upload (server.max_upload_bytes); past the row limit it is refused whole
    head = "case_number,ref_type,ref_id,category,note\n"
    rows = center.settings.operations.outcome_import_max_rows + 1
    big = head + "C-1,alert,a1,arrest,x\n" * rows
    r = await analyst.post("/api/v1/outcomes/import", content=big, headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "outcome_import_max_rows" in r.json()["error"]["message"]
    stats = (await analyst.get("/api/v1/stats/outcomes")).json()
    assert sum(stats["per_category"].values()) == 0
