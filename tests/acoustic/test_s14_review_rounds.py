"""Later rounds of a reviewed incident announce the reviewer's decision, not the old status (audit s14).

The dashboard replays ``gunshot_incident`` events: the update a later round publishes must say
``dismissed`` (or ``confirmed``) once a reviewer decided, else the incident shows as awaiting
review again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from rtcc.acoustic.incidents import list_incidents, review_incident
from rtcc.acoustic.pipeline import IncidentOutcome
from tests.acoustic.test_pipeline_helpers import (
    pipeline_of,
    post_pulses,
    provision_array,
    shot_pulses,
    use_classifier,
)
from tests.conftest import StartCenter
from tests.helpers import eventually

pytestmark = pytest.mark.parametrize("backend", ["embedded"])


@pytest.mark.parametrize(("decision", "status"), [("dismiss", "dismissed"), ("confirm", "confirmed")])
async def test_later_rounds_announce_the_reviewers_decision(
    start_center: StartCenter, decision: Literal["confirm", "dismiss"], status: str
) -> None:
    center = await start_center(acoustic={"levels_spl": True})
    arr = await provision_array(center)
    pipe = pipeline_of(center)
    use_classifier(pipe, 0.6)
    published: list[dict[str, Any]] = []

    async def grab(subject: str, payload: bytes) -> None:
        published.append(json.loads(payload))

    await center.center.bus.subscribe("rtcc.events.gunshot_incident", grab)
    src, t0 = (60.0, 150.0), datetime.now(UTC) - timedelta(seconds=5)
    await post_pulses(center, arr, shot_pulses(arr, src, t_emit=t0, source_db=145.0))

    async def first() -> IncidentOutcome | None:
        return pipe.outcomes[0] if pipe.outcomes else None

    out = await eventually(first, what="the first round's incident")
    assert out.status == "pending_review"
    center.center.store.run(
        lambda s: review_incident(
            s,
            out.incident.incident_id,
            decision=decision,
            reviewer="sup",
            reason="checked on scene",
            at=datetime.now(UTC),
        )
    )
    await post_pulses(center, arr, shot_pulses(arr, src, t_emit=t0, rounds=(0.31, 0.64), source_db=145.0))

    async def joined() -> IncidentOutcome | None:
        return pipe.outcomes[-1] if pipe.outcomes[-1].incident.rounds == 3 else None

    last = await eventually(joined, what="the later rounds joining the incident")
    assert last.alert is None  # no new alert for a decided incident
    assert last.status == status

    async def announced() -> dict[str, Any] | None:
        mine = [e for e in published if e["incident_id"] == str(out.incident.incident_id)]
        return mine[-1] if mine and mine[-1]["rounds"] == 3 else None

    update = await eventually(announced, what="the update of the later rounds on the bus")
    assert update["status"] == status
    if decision == "confirm":
        assert update["label"] == "gunshot"
    (row,) = center.center.store.run(lambda s: list_incidents(s))
    assert row.status == status and row.rounds == 3
