"""Pulses replayed after a restart do not re-announce a stored incident (audit s14).

A restarted center has empty in-memory dedupe (ingest's recent ids, the pipeline's done
arrivals), so a sensor spool replaying its pulses reaches the pipeline again. The incident they
make is already stored (its id is derived from the pulse ids): announcing it again sent a fresh
review alert for an incident a reviewer had dismissed, and the alert's random ``alert_id`` made
the ops store hit ``UNIQUE alerts.event_id`` (three handler failures).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from rtcc.acoustic.incidents import IncidentRecord, list_incidents, review_incident
from rtcc.acoustic.pipeline import IncidentOutcome, incident_alert
from rtcc.app import Center
from rtcc.roles import Role
from rtcc.store.tables_ops import AlertRow
from tests.acoustic.test_pipeline_helpers import (
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, make_settings, stop_or_report
from tests.helpers import eventually


def _alert_rows(center: Running) -> list[AlertRow]:
    from rtcc.ops.alerts import list_alerts

    return center.center.store.run(lambda s: list_alerts(s, role=Role.admin))


def _record() -> IncidentRecord:
    return IncidentRecord(
        id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        lat=33.5,
        lon=-86.8,
        ellipse_major_m=10.0,
        ellipse_minor_m=5.0,
        ellipse_angle_deg=0.0,
        rounds=1,
        label="gunshot",
        confidence=0.6,
        status="pending_review",
    )


def test_an_incidents_alert_has_one_id_however_often_it_is_made() -> None:
    rec = _record()
    a, b = incident_alert(rec, review=True), incident_alert(rec, review=True)
    assert a.alert_id == b.alert_id == a.event_id == b.event_id
    gun = incident_alert(rec, review=False)
    assert gun.alert_id == gun.event_id != a.alert_id


async def test_the_same_alert_published_twice_is_stored_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(tmp_path, "embedded", request)
    center = Center(settings, auto_migrate=True)
    await center.start()
    r = Running(center, settings, httpx.AsyncClient(base_url=center.base_url, timeout=20))
    try:
        rec = _record()
        for _ in range(2):
            alert = incident_alert(rec, review=True)  # made anew, as after a restart
            await center.bus.publish(alert.subject, alert.to_json())
        await eventually(lambda: _some(_alert_rows(r)), what="the alert stored")
        await asyncio.sleep(0.5)  # let the second copy be handled too (not a timing assertion)
        rows = _alert_rows(r)
        assert len(rows) == 1
        assert center.bus.stats().handler_errors == 0
    finally:
        await r.http.aclose()
        await stop_or_report(center)


async def _some(rows: list[AlertRow]) -> list[AlertRow] | None:
    return rows or None


async def test_pulses_replayed_after_a_restart_are_not_announced_again(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings(tmp_path, "embedded", request)

    async def boot() -> Running:
        center = Center(settings, auto_migrate=True)
        await center.start()
        return Running(center, settings, httpx.AsyncClient(base_url=center.base_url, timeout=20))

    async def halt(r: Running) -> None:
        await r.http.aclose()
        await stop_or_report(r.center)

    # before the restart: the shot becomes an incident awaiting review, which a reviewer dismisses
    first = await boot()
    try:
        arr = await provision_array(first)
        use_classifier(pipeline_of(first), 0.6)
        pulses = shot_pulses(arr, (120.0, -80.0), t_emit=datetime.now(UTC) - timedelta(seconds=5))
        await post_pulses(first, arr, pulses)

        async def reviewed() -> list[AlertRow] | None:
            rows = _alert_rows(first)
            return rows if rows and rows[0].kind == "gunshot_review" else None

        await eventually(reviewed, what="the review alert stored")
        (row,) = first.center.store.run(lambda s: list_incidents(s))
        assert row.status == "pending_review"
        incident_id = row.id
        first.center.store.run(
            lambda s: review_incident(
                s,
                incident_id,
                decision="dismiss",
                reviewer="sup",
                reason="firing range",
                at=datetime.now(UTC),
            )
        )
    finally:
        await halt(first)

    # after the restart: a fresh pipeline, the same pulses again
    second = await boot()
    try:
        pipe = pipeline_of(second)
        use_classifier(pipe, 0.6)
        await pipe.refresh_registry()
        published: list[dict[str, Any]] = []

        async def grab(subject: str, payload: bytes) -> None:
            published.append(json.loads(payload))

        await second.center.bus.subscribe("rtcc.events.gunshot_incident", grab)
        await second.center.bus.subscribe("rtcc.events.alert", grab)
        await post_pulses(second, arr, pulses)

        async def handled() -> IncidentOutcome | None:
            return pipe.outcomes[-1] if pipe.outcomes else None

        out = await eventually(handled, what="the replayed pulses processed")
        assert out.incident.incident_id == incident_id
        assert out.alert is None
        assert second.center.metrics.get("acoustic_duplicate_incidents") == 1
        await asyncio.sleep(0.5)  # let anything published be delivered (not a timing assertion)
        assert published == []
        (row,) = second.center.store.run(lambda s: list_incidents(s))
        assert row.status == "dismissed"
        assert len(_alert_rows(second)) == 1
        count = second.center.store.run(lambda s: s.scalar(select(func.count()).select_from(AlertRow)))
        assert count == 1
        assert second.center.bus.stats().handler_errors == 0
    finally:
        await halt(second)
