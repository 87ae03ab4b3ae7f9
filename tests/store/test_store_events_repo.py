"""The event log on both dialects: idempotent recording, listing, near-point search."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from rtcc.errors import NotFound
from rtcc.events import Alert, Event, GunshotIncident, PlateRead, Position, Pulse
from rtcc.store import Store, count_events, events_near, events_repo, list_events, record_events, to_event
from rtcc.store.events_repo import EARTH_RADIUS_M, _haversine_m

from .conftest import DIALECTS

CENTRE = (33.5186, -86.8104)  # Birmingham, Alabama
T0 = datetime.now(UTC).replace(microsecond=123456) - timedelta(hours=1)

pytestmark = pytest.mark.parametrize("store", DIALECTS, indirect=True)


def destination(lat: float, lon: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    """The point ``dist_m`` metres from (lat, lon) on ``bearing_deg`` (great circle)."""
    p1, l1, th = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    d = dist_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(th))
    l2 = l1 + math.atan2(math.sin(th) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def pulse(i: int, *, at: datetime | None = None, device: str = "ac-1") -> Pulse:
    return Pulse(
        source=device,
        device=device,
        occurred_at=at or T0 + timedelta(seconds=i),
        pos=Position(lat=CENTRE[0], lon=CENTRE[1]),
        peak_db=120.0,
        snr_db=30.0,
        duration_ms=2.0,
    )


def incident(
    lat: float, lon: float, *, at: datetime | None = None, label: str = "gunshot"
) -> GunshotIncident:
    return GunshotIncident(
        source="locator",
        occurred_at=at or T0,
        pos=Position(lat=lat, lon=lon),
        ellipse_major_m=20.0,
        ellipse_minor_m=10.0,
        rounds=3,
        label=label,
        confidence=0.9,
        sensors=["ac-1", "ac-2", "ac-3"],
    )


def record(st: Store, events: list[Event] | list[Pulse] | list[GunshotIncident]) -> int:
    return st.run(lambda s: record_events(s, list(events)))


def test_record_is_idempotent(store: Store) -> None:
    batch = [pulse(i) for i in range(50)]
    assert record(store, batch) == 50
    assert record(store, batch) == 0
    assert store.run(count_events) == 50


def test_mixed_batch_counts_only_new(store: Store) -> None:
    old = [pulse(i) for i in range(10)]
    assert record(store, old) == 10
    new = [pulse(100 + i) for i in range(5)]
    mixed: list[Event] = [*old[:3], *new, new[0], old[9]]  # dups stored and within the batch
    assert record(store, mixed) == 5
    assert store.run(count_events) == 15


def test_same_id_at_another_time_is_another_row(store: Store) -> None:
    ev = pulse(0)
    later = ev.model_copy(update={"occurred_at": ev.occurred_at + timedelta(seconds=1)})
    assert record(store, [ev]) == 1
    assert record(store, [later]) == 1
    assert record(store, [ev, later]) == 0


def test_big_batch_over_several_pages(store: Store) -> None:
    batch = [pulse(i, at=T0 - timedelta(milliseconds=i)) for i in range(2500)]
    assert record(store, batch) == 2500
    assert record(store, [*batch[:1200], pulse(9999)]) == 1
    assert store.run(count_events) == 2501


def test_empty_batch(store: Store) -> None:
    assert record(store, []) == 0


def test_stored_columns_and_round_trip(store: Store) -> None:
    rx = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    read = PlateRead(
        source="lpr-7",
        device="lpr-7",
        pos=Position(lat=33.5, lon=-86.8, alt_m=180.0),
        plate="ABC123",
        confidence=0.97,
        occurred_at=T0,
    )
    alert = Alert(source="rules", kind="test", title="no position", occurred_at=T0 - timedelta(seconds=1))
    assert store.run(lambda s: record_events(s, [read, alert], received_at=rx)) == 2
    recs = store.run(lambda s: list_events(s))
    assert [r.event_id for r in recs] == [read.event_id, alert.event_id]
    r0, r1 = recs
    assert (r0.type, r0.source, r0.device_id, r0.lat, r0.lon) == ("plate_read", "lpr-7", "lpr-7", 33.5, -86.8)
    assert r0.occurred_at == read.occurred_at and r0.occurred_at.tzinfo is not None
    assert r0.received_at == rx
    assert r0.payload == read.model_dump(mode="json")
    assert to_event(r0) == read
    assert (r1.lat, r1.lon, r1.device_id) == (None, None, None)
    assert to_event(r1) == alert


def test_received_at_must_be_aware(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.run(lambda s: record_events(s, [pulse(0)], received_at=datetime(2030, 1, 1)))


def test_list_filters_and_paging(store: Store) -> None:
    pulses = [pulse(i, device="ac-1" if i % 2 else "ac-2") for i in range(20)]
    gun = [incident(*CENTRE, at=T0 + timedelta(seconds=i, milliseconds=500)) for i in range(5)]
    record(store, [*pulses, *gun])

    everything = store.run(lambda s: list_events(s, limit=1000))
    times = [r.occurred_at for r in everything]
    assert len(everything) == 25 and times == sorted(times, reverse=True)

    only_gun = store.run(lambda s: list_events(s, types=["gunshot_incident"]))
    assert {r.event_id for r in only_gun} == {e.event_id for e in gun}
    assert store.run(lambda s: count_events(s, "gunshot_incident")) == 5
    assert store.run(lambda s: count_events(s, type="pulse")) == 20

    ac1 = store.run(lambda s: list_events(s, device_id="ac-1", types={"pulse"}))
    assert {r.event_id for r in ac1} == {p.event_id for p in pulses[1::2]}

    window = store.run(
        lambda s: list_events(s, since=T0 + timedelta(seconds=5), until=T0 + timedelta(seconds=10))
    )  # since inclusive, until exclusive; the incidents (0.5 s to 4.5 s) fall outside
    assert [r.occurred_at for r in window] == [T0 + timedelta(seconds=i) for i in range(9, 4, -1)]

    pages: list[UUID] = []
    cursor: UUID | None = None
    while True:
        page = store.run(lambda s, c=cursor: list_events(s, limit=7, before_id=c))  # type: ignore[misc]
        if not page:
            break
        pages += [r.event_id for r in page]
        cursor = page[-1].event_id
    assert pages == [r.event_id for r in everything]

    by_offset = store.run(lambda s: list_events(s, limit=7, offset=7))
    assert [r.event_id for r in by_offset] == pages[7:14]


def test_list_pages_ties_in_submission_order(store: Store) -> None:
    """Events of one time written in one batch list newest-submitted first and page without gaps."""
    same_time = [pulse(0, at=T0) for _ in range(6)]
    record(store, same_time)
    first = store.run(lambda s: list_events(s, limit=3))
    rest = store.run(lambda s: list_events(s, limit=10, before_id=first[-1].event_id))
    ids = [r.event_id for r in first + rest]
    assert ids == [e.event_id for e in reversed(same_time)]


def test_an_update_at_the_same_time_lists_after_its_original(store: Store) -> None:
    """A reviewed incident is re-published with the shot's time; replayed oldest first, the history
    must end on the review (ties used to fall by random event id, so a map drew it unreviewed)."""
    rx = datetime.now(UTC).replace(microsecond=0)
    first = [incident(*CENTRE, at=T0, label="gunshot") for _ in range(4)]
    later = [incident(*CENTRE, at=T0, label="non_gunshot") for _ in range(4)]
    store.run(lambda s: record_events(s, first, received_at=rx))
    store.run(lambda s: record_events(s, later, received_at=rx + timedelta(seconds=30)))
    listed = store.run(lambda s: list_events(s, types=["gunshot_incident"]))
    assert [r.payload["label"] for r in listed] == ["non_gunshot"] * 4 + ["gunshot"] * 4
    page = store.run(lambda s: list_events(s, limit=3))
    rest = store.run(lambda s: list_events(s, limit=10, before_id=page[-1].event_id))
    assert [r.event_id for r in page + rest] == [r.event_id for r in listed]


def test_list_unknown_cursor(store: Store) -> None:
    with pytest.raises(NotFound):
        store.run(lambda s: list_events(s, before_id=uuid4()))


def test_events_near_known_distances(store: Store) -> None:
    at_100 = incident(*destination(*CENTRE, 0.0, 100.0), label="a")
    at_900 = incident(*destination(*CENTRE, 90.0, 900.0), label="b")
    at_1500 = incident(*destination(*CENTRE, 225.0, 1500.0), label="c")
    no_pos = Alert(source="rules", kind="k", title="t", occurred_at=T0)
    record(store, [at_1500, at_900, at_100, no_pos])

    near = store.run(lambda s: events_near(s, *CENTRE, 1000.0))
    assert [n.record.event_id for n in near] == [at_100.event_id, at_900.event_id]
    assert near[0].distance_m == pytest.approx(100.0, abs=0.01)
    assert near[1].distance_m == pytest.approx(900.0, abs=0.01)

    wide = store.run(lambda s: events_near(s, *CENTRE, 2000.0))
    assert [n.distance_m for n in wide] == pytest.approx([100.0, 900.0, 1500.0], abs=0.01)
    assert store.run(lambda s: events_near(s, *CENTRE, 50.0)) == []
    assert len(store.run(lambda s: events_near(s, *CENTRE, 2000.0, limit=1))) == 1


def test_events_near_filters(store: Store) -> None:
    here = destination(*CENTRE, 10.0, 300.0)
    old = incident(*here, at=T0 - timedelta(days=1))
    new = incident(*here, at=T0)
    p = pulse(0)  # at the centre
    record(store, [old, new, p])
    got = store.run(lambda s: events_near(s, *CENTRE, 500.0, types=["gunshot_incident"]))
    assert [n.record.event_id for n in got] == [new.event_id, old.event_id]  # equal distance: newest first
    got = store.run(lambda s: events_near(s, *CENTRE, 500.0, since=T0 - timedelta(hours=1)))
    assert [n.record.event_id for n in got] == [p.event_id, new.event_id]
    got = store.run(lambda s: events_near(s, *CENTRE, 500.0, until=T0))
    assert [n.record.event_id for n in got] == [old.event_id]


def test_events_near_across_the_antimeridian(store: Store) -> None:
    west = incident(-17.0, 179.9995)
    east = incident(-17.0, -179.9995)
    record(store, [west, east])
    got = store.run(lambda s: events_near(s, -17.0, 179.9995, 500.0))
    assert [n.record.event_id for n in got] == [west.event_id, east.event_id]
    assert got[1].distance_m == pytest.approx(_haversine_m(-17.0, 179.9995, -17.0, -179.9995), abs=0.01)


def test_events_near_rejects_bad_input(store: Store) -> None:
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            store.run(lambda s, r=bad: events_near(s, *CENTRE, r))  # type: ignore[misc]
    with pytest.raises(ValueError):
        store.run(lambda s: events_near(s, 91.0, 0.0, 10.0))


def test_sessions_do_not_commit(store: Store) -> None:
    with store.sessions() as s:
        assert record_events(s, [pulse(0)]) == 1
        s.rollback()
    assert store.run(count_events) == 0


def test_batches_split_into_several_statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_repo, "_PG_CHUNK_ROWS", 7)
    batch = [pulse(i) for i in range(30)]
    assert record(store, batch[:10]) == 10
    assert record(store, batch) == 20
    monkeypatch.setattr(events_repo, "_PG_CHUNK_BYTES", 1)  # one row a statement
    assert record(store, [*batch[25:], pulse(31), pulse(32)]) == 2
    assert store.run(count_events) == 32


def test_floats_and_times_are_stored_exactly(store: Store) -> None:
    lat, lon = destination(*CENTRE, 33.3, 1234.5678)
    at = datetime(2031, 5, 6, 7, 8, 9, 987654, tzinfo=UTC)
    ev = incident(lat, lon, at=at)
    record(store, [ev])
    (rec,) = store.run(lambda s: list_events(s))
    assert (rec.lat, rec.lon, rec.occurred_at) == (lat, lon, at)
    assert to_event(rec) == ev


def test_nul_characters_do_not_fail_the_batch(store: Store) -> None:
    bad = Alert(source="rules", kind="k", title="a\x00b", occurred_at=T0)
    good = pulse(0)
    assert record(store, [bad, good]) == 2
    rec = store.run(lambda s: list_events(s, types=["alert"]))[0]
    assert rec.payload["title"] in ("a\x00b", "a\ufffdb")  # PostgreSQL's jsonb cannot hold U+0000
