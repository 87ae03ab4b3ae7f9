"""The acoustic pipeline on the production backend: PostgreSQL/PostGIS store and NATS JetStream bus."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from rtcc.acoustic.projection import Projection
from rtcc.roles import Role
from tests.acoustic.test_pipeline import later_rounds_raise
from tests.acoustic.test_pipeline_helpers import (
    ORIGIN,
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import Running, StartCenter
from tests.helpers import eventually

pytestmark = [pytest.mark.parametrize("backend", ["production"]), pytest.mark.postgres, pytest.mark.nats]


async def test_shot_to_incident_on_postgres_and_jetstream(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    arr = await provision_array(center)
    use_classifier(pipeline_of(center), 0.95)
    src = (-60.0, 140.0)
    pulses = shot_pulses(arr, src)
    await post_pulses(center, arr, pulses)
    officer = clients[Role.officer]

    async def listed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await officer.get("/api/v1/gunshots")).json()["items"]
        return items or None

    items = await eventually(listed, what="the incident")
    assert len(items) == 1 and items[0]["status"] == "alerted"
    x, y, _ = Projection(*ORIGIN).to_xyz(items[0]["lat"], items[0]["lon"])
    assert math.dist((x, y), src) <= 3.0
    # the generated PostGIS point follows lat/lon
    eng = create_engine(center.settings.database_url)
    try:
        with eng.connect() as c:
            row = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM gunshot_incidents")).one()
    finally:
        eng.dispose()
    assert row[0] == pytest.approx(items[0]["lon"]) and row[1] == pytest.approx(items[0]["lat"])
    # a redelivery of the pulses (same ids) makes no second incident
    bus = center.center.bus
    assert bus is not None
    for p in pulses:
        await bus.publish(p.subject, p.to_json())
    await eventually(
        lambda: _true(center.center.metrics.get("acoustic_duplicate_pulses") >= len(pulses)),
        what="the redelivered pulses to be seen",
    )
    assert len((await officer.get("/api/v1/gunshots")).json()["items"]) == 1


async def _true(v: bool) -> bool:
    return v


async def test_later_rounds_raise_the_status_on_postgres(start_center: StartCenter) -> None:
    """The conditional status upgrade (later rounds re-score an incident) on PostgreSQL and NATS."""
    await later_rounds_raise(await start_center(acoustic={"levels_spl": True}))
