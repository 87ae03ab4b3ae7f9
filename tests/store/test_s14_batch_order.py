"""An update recorded in the same batch as what it updates lists after it (session 14).

The recorder writes what arrives within its linger window in one batch, and ``record_events``
stamped one ``received_at`` on the whole batch; ``list_events`` breaks ties on ``occurred_at`` by
``received_at`` and then by the random ``event_id``, so an incident and its update (the same
incident, the same time) came out in either order — replayed oldest first, as the dashboard does,
half of them ended on the stale version. The rows of a batch now keep the order they were given in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rtcc.events import GunshotIncident, Position
from rtcc.store import Store, list_events, record_events

from .conftest import DIALECTS

pytestmark = pytest.mark.parametrize("store", DIALECTS, indirect=True)

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _incident(incident_id: uuid.UUID, at: datetime, rounds: int) -> GunshotIncident:
    return GunshotIncident(
        source="acoustic",
        incident_id=incident_id,
        occurred_at=at,
        pos=Position(lat=52.48, lon=-1.89),
        ellipse_major_m=10.0,
        ellipse_minor_m=5.0,
        rounds=rounds,
        label="gunshot",
        confidence=0.9,
        sensors=["a", "b", "c"],
    )


def test_an_update_in_the_same_batch_lists_before_its_original(store: Store) -> None:
    pairs = []
    for i in range(50):
        inc, at = uuid.uuid4(), T0 + timedelta(seconds=i)
        original, update = _incident(inc, at, 1), _incident(inc, at, 2)
        assert store.run(lambda s, o=original, u=update: record_events(s, [o, u])) == 2  # type: ignore[misc]
        pairs.append((original.event_id, update.event_id))
    listed = store.run(lambda s: list_events(s, types=["gunshot_incident"], limit=1000))
    position = {r.event_id: n for n, r in enumerate(listed)}
    # newest first (what the API returns): each update before its original
    assert all(position[u] < position[o] for o, u in pairs)
    latest: dict[str, int] = {}
    for r in reversed(listed):  # replayed oldest first, as the dashboard does
        latest[r.payload["incident_id"]] = r.payload["rounds"]
    assert set(latest.values()) == {2}


def test_a_batch_of_simultaneous_events_keeps_its_order_and_pages_stably(store: Store) -> None:
    inc = uuid.uuid4()
    batch = [_incident(inc, T0, rounds) for rounds in range(1, 21)]
    assert store.run(lambda s: record_events(s, batch, received_at=T0 + timedelta(minutes=5))) == 20
    listed = store.run(lambda s: list_events(s, limit=100))
    assert [r.payload["rounds"] for r in listed] == list(range(20, 0, -1))
    assert listed[-1].received_at == T0 + timedelta(minutes=5)  # the first row keeps the stamp given
    pages: list[uuid.UUID] = []
    cursor: uuid.UUID | None = None
    while page := store.run(lambda s, c=cursor: list_events(s, limit=7, before_id=c)):  # type: ignore[misc]
        pages += [r.event_id for r in page]
        cursor = page[-1].event_id
    assert pages == [r.event_id for r in listed]
