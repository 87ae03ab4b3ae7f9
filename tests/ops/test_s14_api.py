"""Audit findings in operations (API level).

* the dispatch feed skipped an alert stored late (its ``updated_at`` was when it occurred) and the
  second of two alerts changed at the same instant when ``limit`` fell between them;
* a hotlist-hit alert's plate went to the webhooks with no audit entry;
* a webhook URL failing with an error other than ``httpx.HTTPError`` was neither retried, counted
  nor logged;
* a reason holding NUL was committed, then its audit entry refused (422 with the change standing);
* far-off times with a timezone (``0001-01-01T00:00:00+01:00``) were a 500;
* a success outcome on an alert dismissed as fireworks counted as a success on the public page;
* a concurrent duplicate (IntegrityError) was a 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError, StatementError

from rtcc.api.errors import install_error_handlers
from rtcc.api.text import Reason
from rtcc.errors import ValidationFailed
from rtcc.metrics import Metrics
from rtcc.ops.alerts import store_alert
from rtcc.ops.exports import feed_cursor, split_feed_cursor
from rtcc.ops.processor import webhook_hosts
from rtcc.ops.times import checked_time
from rtcc.ops.webhooks import WebhookSender
from rtcc.roles import Role
from rtcc.store.tables_ops import AlertRow
from tests.conftest import Running, StartCenter
from tests.ops.helpers import audit_of, make_alert, publish, queued

HIT_TITLE = "Hotlist hit OJC7449 (stolen vehicle) at lpr-1 — verify before action"


# -- the dispatch feed -----------------------------------------------------------------------


def test_a_new_alert_is_updated_when_stored_not_when_it_occurred() -> None:
    class _S:
        def __init__(self) -> None:
            self.added: list[Any] = []

        def get(self, *_: Any) -> None:
            return None

        def add(self, row: Any) -> None:
            self.added.append(row)

        def flush(self) -> None:
            pass

    s = _S()
    occurred = datetime.now(UTC) - timedelta(minutes=3)
    stored = datetime.now(UTC)
    assert store_alert(s, make_alert(at=occurred), now=stored)  # type: ignore[arg-type]
    row = s.added[0]
    assert row.occurred_at == occurred and row.updated_at == stored and row.created_at == stored


def test_feed_cursor_round_trip() -> None:
    at, aid = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), uuid.uuid4()
    assert split_feed_cursor(feed_cursor(at, aid)) == (at.isoformat(), aid)
    assert split_feed_cursor(feed_cursor(at)) == (at.isoformat(), None)
    with pytest.raises(ValueError):
        split_feed_cursor(f"{at.isoformat()}|not-a-uuid")


async def test_feed_serves_late_alerts_and_every_alert_of_a_tie(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    officer = clients[Role.officer]
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    first = make_alert(title="Gunfire: 3 rounds")
    await publish(center, first)
    await queued(center, officer, first.alert_id)
    feed = (await officer.get("/api/v1/feeds/alerts.json", params={"since": t0.isoformat()})).json()
    assert [i["id"] for i in feed["items"]] == [str(first.alert_id)]
    assert feed["next_since"].endswith(f"|{first.alert_id}")

    # an alert about something 60 s ago (a plate read uploaded late), stored after the poll
    late = make_alert(title="Gunfire: 1 round", at=datetime.now(UTC) - timedelta(seconds=60))
    await publish(center, late)
    await queued(center, officer, late.alert_id)
    feed = (await officer.get("/api/v1/feeds/alerts.json", params={"since": feed["next_since"]})).json()
    assert [i["id"] for i in feed["items"]] == [str(late.alert_id)]
    cursor = feed["next_since"]

    # three alerts changed at the same instant, served one per poll: none is skipped
    same = datetime.now(UTC) + timedelta(seconds=1)
    rows = [
        AlertRow(
            id=uuid.uuid4(),
            event_id=uuid.uuid4(),
            occurred_at=same,
            source="acoustic",
            kind="gunshot",
            severity="critical",
            title=f"Gunfire {i}",
            lat=33.5,
            lon=-86.8,
            ref_id=None,
            status="new",
            history=[],
            created_at=same,
            updated_at=same,
        )
        for i in range(3)
    ]
    assert center.center.store is not None
    center.center.store.run(lambda s: s.add_all(rows))
    served: list[str] = []
    for _ in range(5):
        r = await officer.get("/api/v1/feeds/alerts.json", params={"since": cursor, "limit": 1})
        assert r.status_code == 200, r.text
        served += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_since"]
    assert served == sorted(str(r.id) for r in rows)  # (updated_at, id) order, each once

    # a plain time is still a valid ``since``; a broken cursor or a time without a zone is a 422
    items = (await officer.get("/api/v1/feeds/alerts.json", params={"since": t0.isoformat()})).json()["items"]
    assert len(items) == 5
    for bad in (f"{t0.isoformat()}|nope", "2026-01-01T00:00:00", "yesterday"):
        r = await officer.get("/api/v1/feeds/alerts.json", params={"since": bad})
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed", bad


# -- webhooks --------------------------------------------------------------------------------


def test_webhook_hosts_leave_out_credentials_paths_and_queries() -> None:
    urls = [
        "https://user:pw@cad.example.org:8443/hook?token=s3cret",
        "http://10.0.0.5/x",
        "http://[::1]:99999/",
    ]
    assert webhook_hosts(urls) == ["cad.example.org:8443", "10.0.0.5", "[::1]:99999"]


async def test_a_hit_alert_sent_to_webhooks_is_audited(start_center: StartCenter) -> None:
    url = "http://agent:pw@127.0.0.1:9/hook?token=s3cret"  # nothing listens there: the audit comes first
    center = await start_center(
        operations={"webhook_urls": [url], "webhook_max_attempts": 1, "webhook_backoff_s": 0}
    )
    admin = await center.login("admin")
    try:
        hit = make_alert("hotlist_hit", title=HIT_TITLE)
        shot = make_alert()
        for a in (hit, shot):
            await publish(center, a)
            await queued(center, admin, a.alert_id)
        entries = await audit_of(admin, "webhook_hit_alert")
        assert len(entries) == 1  # the gunshot alert names no plate
        e = entries[0]
        assert e["actor"] == "system:operations" and e["record_id"] == str(hit.alert_id)
        assert e["details"]["alert"] == str(hit.alert_id) and e["details"]["targets"] == ["127.0.0.1:9"]
        text = json.dumps(e)
        assert "s3cret" not in text and "pw@" not in text and "OJC7449" not in text
    finally:
        await admin.aclose()


async def test_a_webhook_error_of_any_kind_is_retried_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "bad.example":
            raise RuntimeError("not an httpx error")
        return httpx.Response(204)

    m = Metrics()
    w = WebhookSender(
        ["http://bad.example/hook", "http://good.example/hook"],
        m,
        max_attempts=2,
        backoff_s=0,
        transport=httpx.MockTransport(handler),
    )
    try:
        with caplog.at_level(logging.WARNING, logger="rtcc.ops.webhooks"):
            assert await w.deliver_all("a-1", {"id": "a-1"}) == [False, True]
    finally:
        await w.close()
    assert m.get("webhook_attempt_failures") == 2 and m.get("webhook_failures") == 1
    assert m.get("webhook_delivered") == 1
    logged = [r for r in caplog.records if "bad.example" in r.getMessage()]
    assert len(logged) == 1 and "RuntimeError" in logged[0].getMessage()

    # a URL the HTTP client refuses (a port out of range) fails the same way, without raising
    m = Metrics()
    w = WebhookSender(["http://127.0.0.1:99999/hook"], m, max_attempts=2, backoff_s=0)
    try:
        assert await w.deliver_all("a-2", {"id": "a-2"}) == [False]
    finally:
        await w.close()
    assert m.get("webhook_failures") == 1 and m.get("webhook_attempt_failures") == 2


# -- reasons ---------------------------------------------------------------------------------


def test_reason_refuses_control_characters_but_tab_and_line_breaks() -> None:
    ta = TypeAdapter(Reason)
    assert ta.validate_python("charged\tby the DA\r\nsee file") == "charged\tby the DA\r\nsee file"
    for bad in ("charged\x00", "fire\x1b[31mworks", "del\x7fete"):
        with pytest.raises(ValidationError, match="control characters"):
            ta.validate_python(bad)


async def test_a_reason_with_nul_changes_nothing(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst, admin = clients[Role.analyst], clients[Role.admin]
    case = (await analyst.post("/api/v1/cases", json={"title": "Shots fired"})).json()
    r = await analyst.post(f"/api/v1/cases/{case['id']}/close", json={"reason": "charged\x00"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
    assert "control characters" in r.json()["error"]["message"]
    assert (await analyst.get(f"/api/v1/cases/{case['id']}")).json()["status"] == "open"
    r = await analyst.post(f"/api/v1/cases/{case['id']}/close", json={"reason": "charged\nby the DA"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert len(await audit_of(admin, "case_close")) == 1

    alert = make_alert()
    await publish(center, alert)
    await queued(center, analyst, alert.alert_id)
    r = await analyst.post(f"/api/v1/alerts/{alert.alert_id}/dismiss", json={"reason": "fireworks\x00"})
    assert r.status_code == 422
    assert (await analyst.get(f"/api/v1/alerts/{alert.alert_id}")).json()["status"] == "new"
    assert await audit_of(admin, "alert_dismiss") == []


# -- far-off times -------------------------------------------------------------------------


def test_checked_time() -> None:
    ok = datetime(2026, 1, 1, tzinfo=UTC)
    assert checked_time(ok, "since") is ok and checked_time(None, "since") is None
    assert checked_time(datetime.fromisoformat("1970-01-01T00:00:00+00:00"), "since") is not None
    for bad in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
    ):
        with pytest.raises(ValidationFailed, match="out of range"):
            checked_time(datetime.fromisoformat(bad), "since")
    with pytest.raises(ValidationFailed, match="needs a timezone"):
        checked_time(datetime(2026, 1, 1), "until")


EXTREMES = [
    ("/api/v1/stats/outcomes", {"since": "0001-01-01T00:00:00+01:00"}),
    ("/api/v1/stats/outcomes", {"since": "9999-12-31T23:59:59-01:00"}),
    ("/api/v1/alerts", {"since": "0001-01-01T00:00:00+01:00"}),
    ("/api/v1/alerts", {"until": "9999-12-31T23:59:59-01:00"}),
    ("/api/v1/feeds/alerts.json", {"since": "0001-01-01T00:00:00+01:00"}),
    ("/api/v1/feeds/alerts.json", {"since": "9999-12-31T23:59:59-01:00"}),
    ("/api/v1/exports/alerts.csv", {"end": "0001-01-05T00:00:00Z"}),
    ("/api/v1/exports/alerts.csv", {"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-05T00:00:00Z"}),
    ("/api/v1/exports/alerts.geojson", {"start": "9999-12-30T00:00:00Z", "end": "9999-12-31T23:59:59-01:00"}),
]


async def test_far_off_times_are_a_422(center: Running, clients: dict[Role, httpx.AsyncClient]) -> None:
    admin = clients[Role.admin]
    for path, params in EXTREMES:
        r = await admin.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert (
            r.json()["error"]["code"] == "validation_failed"
            and "out of range" in r.json()["error"]["message"]
        )
    r = await admin.get("/api/v1/stats/outcomes", params={"since": "1970-01-01T00:00:00Z"})
    assert r.status_code == 200


async def test_error_handlers_map_duplicates_and_date_overflows() -> None:
    app = FastAPI()
    install_error_handlers(app)
    raised: dict[str, Exception] = {
        "dup": IntegrityError("INSERT INTO cases", {}, Exception("UNIQUE constraint failed: cases.number")),
        "bind": StatementError("bind", "SELECT", {}, OverflowError("date value out of range")),
        "calc": OverflowError("date value out of range"),
        "math": OverflowError("math range error"),
    }

    @app.get("/boom/{what}")
    async def boom(what: str) -> None:
        raise raised[what]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        got = {k: (await c.get(f"/boom/{k}")) for k in raised}
    assert got["dup"].status_code == 409 and got["dup"].json()["error"]["code"] == "conflict"
    assert "UNIQUE" not in got["dup"].text  # no database detail in the answer
    for k in ("bind", "calc"):
        assert got[k].status_code == 422 and got[k].json()["error"]["code"] == "validation_failed"
    assert got["math"].status_code == 500 and got["math"].json()["error"]["code"] == "internal_error"


# -- outcomes through the API ------------------------------------------------------------------


async def test_success_on_a_dismissed_alert_is_a_409_and_ids_are_canonical(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    analyst, admin = clients[Role.analyst], clients[Role.admin]
    alert = make_alert()
    await publish(center, alert)
    await queued(center, analyst, alert.alert_id)
    r = await analyst.post(
        f"/api/v1/alerts/{alert.alert_id}/dismiss", json={"reason": "fireworks, not gunfire"}
    )
    assert r.status_code == 200
    case = (await analyst.post("/api/v1/cases", json={"number": "BPD-9", "title": "July 4th"})).json()
    item = {"case_number": "BPD-9", "ref_type": "alert", "ref_id": str(alert.alert_id).upper()}
    r = await analyst.post("/api/v1/outcomes", json={"items": [{**item, "category": "recovered_gun"}]})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert (
        err["code"] == "conflict" and "dismissed" in err["message"] and "no_evidence_found" in err["message"]
    )
    csv = f"case_number,ref_type,ref_id,category\nBPD-9,alert,{alert.alert_id},arrest\n"
    r = await analyst.post("/api/v1/outcomes/import", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 409 and r.json()["error"]["details"]["errors"][0]["line"] == 2
    t = (await center.http.get("/api/v1/transparency")).json()["operations"]["outcomes"]
    assert t["per_category"]["recovered_gun"] == 0 and t["per_category"]["arrest"] == 0

    r = await analyst.post("/api/v1/outcomes", json={"items": [{**item, "category": "no_evidence_found"}]})
    assert r.status_code == 201 and r.json()["items"][0]["ref_id"] == str(alert.alert_id)
    r = await analyst.post(
        f"/api/v1/cases/{case['id']}/links", json={"ref_type": "alert", "ref_id": alert.alert_id.hex.upper()}
    )
    assert r.status_code == 200
    assert [x["ref_id"] for x in r.json()["links"]] == [str(alert.alert_id)]
    links = await audit_of(admin, "case_link")
    assert [e["details"]["ref_id"] for e in links] == [str(alert.alert_id)]
