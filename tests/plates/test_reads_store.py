"""The plate-read repository on SQLite and PostgreSQL: idempotent bulk insert, search, purge."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from rtcc.errors import ValidationFailed
from rtcc.events import PlateRead, Position
from rtcc.plates import reads as repo
from rtcc.plates.media import MediaStore
from rtcc.store import Store
from rtcc.store.tables_plates import PlateReadRow

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CENTRE = (41.8800, -87.6300)


def read(
    plate: str,
    *,
    minutes: float = 0,
    device: str = "cam-1",
    at: tuple[float, float] = CENTRE,
    crop: str | None = None,
    image: str | None = None,
) -> PlateRead:
    return PlateRead(
        source=device,
        device=device,
        occurred_at=T0 + timedelta(minutes=minutes),
        pos=Position(lat=at[0], lon=at[1]),
        plate=plate,
        confidence=0.9,
        crop_ref=crop,
        image_ref=image,
        direction="N",
    )


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat = CENTRE[0] + north_m / 111_195.0
    lon = CENTRE[1] + east_m / (111_195.0 * 0.7443)  # cos(41.88°)
    return lat, lon


def plates(rows: list[PlateReadRow]) -> list[str]:
    return [r.plate for r in rows]


def test_insert_is_idempotent_and_round_trips(store: Store) -> None:
    batch = [read("ABC123", minutes=i) for i in range(3)]
    assert store.run(lambda s: repo.insert_reads(s, batch)) == 3
    # the same events again, and one new among them: only the new one counts
    again = [*batch, read("XYZ987")]
    assert store.run(lambda s: repo.insert_reads(s, again)) == 1
    assert store.run(repo.count_reads) == 4
    got = store.run(lambda s: repo.get_read(s, str(batch[1].event_id)))
    assert got is not None
    assert got.plate == "ABC123" and got.plate_key == "A8C123"  # B folds to 8
    assert got.read_at == batch[1].occurred_at and got.device_id == "cam-1"
    assert got.direction == "N" and got.hit is False
    assert store.run(lambda s: repo.get_read(s, "not-a-uuid")) is None
    assert store.run(lambda s: repo.get_read(s, uuid4())) is None


def test_exact_partial_and_lookalike_search(store: Store) -> None:
    store.run(
        lambda s: repo.insert_reads(
            s,
            [
                read("ABC1234", minutes=1),
                read("XABC99", minutes=2),
                read("A8C1234", minutes=3),  # B read as 8
                read("ZZZ111", minutes=4),
                read("AB0S12", minutes=5),
            ],
        )
    )

    def search(plate: str, mode: repo.SearchMode) -> list[str]:
        return plates(store.run(lambda s: repo.search_reads(s, plate=plate, mode=mode, limit=50)))

    assert search("abc-1234", "exact") == ["ABC1234"]
    assert search("ABC", "partial") == ["XABC99", "ABC1234"]  # substring, newest first
    assert search("A?C*", "partial") == ["A8C1234", "ABC1234"]  # whole-plate wildcards
    assert search("*99", "partial") == ["XABC99"]
    assert search("C12", "partial") == ["A8C1234", "ABC1234"]
    assert search("ABC1234", "lookalike") == ["A8C1234", "ABC1234"]
    assert search("ABOSI2", "lookalike") == ["AB0S12"]  # O~0, I~1
    with pytest.raises(ValidationFailed):
        search("*?", "partial")
    with pytest.raises(ValidationFailed):
        search("--", "exact")


def test_time_device_and_area_filters(store: Store) -> None:
    store.run(
        lambda s: repo.insert_reads(
            s,
            [
                read("NEAR1", minutes=0, at=offset(100, 0)),
                read("NEAR2", minutes=10, at=offset(0, -400), device="cam-2"),
                read("FAR1", minutes=20, at=offset(3000, 3000)),
                read("EDGE1", minutes=30, at=offset(0, 600)),
            ],
        )
    )

    def run(**kw: object) -> list[str]:
        args: dict[str, object] = {"plate": None, "mode": "exact", "limit": 50} | kw
        return plates(store.run(lambda s: repo.search_reads(s, **args)))  # type: ignore[arg-type]

    assert run(start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=25)) == ["FAR1", "NEAR2"]
    assert run(device_ids=["cam-2"]) == ["NEAR2"]
    assert run(device_ids=[]) == []
    assert run(near=(*CENTRE, 500.0)) == ["NEAR2", "NEAR1"]
    assert run(near=(*CENTRE, 700.0)) == ["EDGE1", "NEAR2", "NEAR1"]
    near = store.run(lambda s: repo.reads_near(s, *CENTRE, 500.0, T0, T0 + timedelta(minutes=5)))
    assert plates(near) == ["NEAR1"]
    square = [offset(-200, -500), offset(-200, 200), offset(200, 200), offset(200, -500)]
    assert run(polygon=square) == ["NEAR2", "NEAR1"]
    assert run(polygon=square, plate="NEAR", mode="partial", limit=1) == ["NEAR2"]
    with pytest.raises(ValidationFailed):
        run(polygon=square[:2])
    with pytest.raises(ValidationFailed):
        run(near=(95.0, 0.0, 10.0))
    with pytest.raises(ValidationFailed):
        run(limit=0)


def test_mark_hit_and_purge_keep_hits_cases_and_shared_media(store: Store, tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media")
    shared = media.put(b"vehicle image with two plates", "jpg")
    crop_old = media.put(b"crop old", "jpg")
    crop_hit = media.put(b"crop hit", "jpg")
    crop_new = media.put(b"crop new", "jpg")
    old = read("OLD1", minutes=-60 * 24 * 40, crop=crop_old, image=shared)
    hit = read("HIT1", minutes=-60 * 24 * 40, crop=crop_hit, image=shared)
    case = read("CASE1", minutes=-60 * 24 * 40)
    new = read("NEW1", minutes=0, crop=crop_new)
    store.run(lambda s: repo.insert_reads(s, [old, hit, case, new]))
    assert store.run(lambda s: repo.mark_hit(s, hit.event_id)) is True
    assert store.run(lambda s: repo.mark_hit(s, uuid4())) is False

    n, refs = store.run(lambda s: repo.purge_reads(s, T0 - timedelta(days=30), keep_ids=[str(case.event_id)]))
    assert n == 1
    assert refs == [crop_old]  # the vehicle image is still used by the kept hit
    left = sorted(plates(store.run(lambda s: repo.search_reads(s, plate=None, limit=10))))
    assert left == ["CASE1", "HIT1", "NEW1"]
    # purged reads are gone from partial search too (the trigram index follows deletes)
    assert store.run(lambda s: repo.search_reads(s, plate="OLD", mode="partial", limit=10)) == []
    assert store.run(lambda s: repo.purge_reads(s, T0 - timedelta(days=30), None)) == (1, [])


def test_postgres_layout(store: Store) -> None:
    """PostgreSQL: reads land in their day's partition; the geom column follows lat/lon."""
    if not store.is_postgres:
        pytest.skip("PostgreSQL only")
    # now, not T0: the center keeps day partitions from two days back (a fixed day falls out of them)
    now_min = (datetime.now(UTC) - T0).total_seconds() / 60
    r = read("PART1", minutes=now_min)
    old = read("PART2", minutes=now_min - 60 * 24 * 365)
    store.run(lambda s: repo.insert_reads(s, [r, old]))
    with store.session() as s:
        where = {
            plate: part
            for plate, part in s.execute(text("SELECT plate, tableoid::regclass::text FROM plate_reads"))
        }
        has_geom = s.execute(text("SELECT count(*) FROM plate_reads WHERE geom IS NOT NULL")).scalar_one()
    assert where["PART1"] == f"plate_reads_{r.occurred_at:%Y%m%d}"
    assert where["PART2"] == "plate_reads_default"
    assert has_geom == 2


def test_partial_search_newest_first_across_days(store: Store) -> None:
    """Partial matches spread over 200 days: the newest come first, and all are found."""
    now = datetime.now(UTC).replace(microsecond=0)
    made = [
        read("QRT" + f"{i:03d}", minutes=(now - T0).total_seconds() / 60 - i * 60 * 24 * 7.3)
        for i in range(28)
    ]
    store.run(lambda s: repo.insert_reads(s, made))

    def find(limit: int, **kw: object) -> list[str]:
        args: dict[str, object] = {"plate": "QRT", "mode": "partial", "limit": limit} | kw
        return plates(store.run(lambda s: repo.search_reads(s, **args)))  # type: ignore[arg-type]

    assert find(3) == ["QRT000", "QRT001", "QRT002"]
    assert find(100) == [f"QRT{i:03d}" for i in range(28)]
    window = {"start": now - timedelta(days=30), "end": now - timedelta(days=10)}
    assert find(100, **window) == ["QRT002", "QRT003", "QRT004"]
    assert find(1, end=now - timedelta(days=150)) == ["QRT021"]


@pytest.mark.parametrize("verify", ["time_index", "fts"])
def test_partial_search_walk_equals_the_plain_query(
    store: Store, verify: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest-first partial search (SQLite: FTS pages + a check by time) gives the plain query's answer.

    4 000 reads over 40 days arrive mostly in time order with jitter, plus a late backlog of old
    reads and a clock-skewed camera whose reads are newer than their insertion order; many share a
    time (ties ordered by id). Small FTS pages force walks of several pages. The patterns include
    ones without three known characters in a row, which the trigram indexes cannot answer alone.
    """
    import random

    from sqlalchemy import select

    monkeypatch.setattr(repo, "_FTS_FIRST_PAGE", 8)
    monkeypatch.setattr(repo, "_FTS_PAGE_MAX", 64)
    monkeypatch.setattr(repo, "_TIME_INDEX_RATIO", 1e18 if verify == "time_index" else 0.0)
    rng = random.Random(5)
    letters, digits = "ABCX", "1237"

    def plate() -> str:
        return "".join(rng.choice(letters) for _ in range(2)) + "".join(rng.choice(digits) for _ in range(3))

    span = 40 * 24 * 60
    made = [
        read(plate(), minutes=round(span * i / 3600 + rng.uniform(-90, 0)), device=f"cam-{rng.randrange(4)}")
        for i in range(3600)
    ]
    backlog = [read(plate(), minutes=rng.uniform(0, span), device="cam-late") for _ in range(200)]
    skewed = [read(plate(), minutes=span - rng.uniform(0, 600), device="cam-skew") for _ in range(200)]

    def insert(batch: list[PlateRead]) -> None:
        store.run(lambda s: repo.insert_reads(s, batch))

    insert(skewed[:100])
    for k in range(0, len(made), 400):
        insert(made[k : k + 400])
        if k == 1600:
            insert(skewed[100:])
    insert(backlog)

    def plain(s: Any, query: str, limit: int, **kw: Any) -> list[str]:
        q = select(PlateReadRow.id).where(PlateReadRow.plate.like(repo.partial_pattern(query)))
        if kw.get("start") is not None:
            q = q.where(PlateReadRow.read_at >= kw["start"])
        if kw.get("end") is not None:
            q = q.where(PlateReadRow.read_at < kw["end"])
        if kw.get("device_ids") is not None:
            q = q.where(PlateReadRow.device_id.in_(kw["device_ids"]))
        order = (PlateReadRow.read_at.desc(), PlateReadRow.id)
        return [str(i) for i in s.scalars(q.order_by(*order).limit(limit))]

    windows: list[dict[str, Any]] = [
        {},
        {"start": T0 + timedelta(days=20)},
        {"end": T0 + timedelta(days=39, hours=20)},
        {"start": T0 + timedelta(days=3), "end": T0 + timedelta(days=9)},
        {"device_ids": ["cam-skew", "cam-late"]},
        {"device_ids": ["cam-2"], "start": T0 + timedelta(days=30)},
    ]
    checked = 0
    # no three known characters in a row ("A?3*", "?B?2?", "*3?1"): the pair tokens of migration 0010
    # (tests/plates/test_store_pairs.py); "12", "?1": no index narrows them
    queries = ("AB1", "X7", "C", "B12", "CX", "2", "A?3*", "??1*", "XA777", "Q1")
    no_trigram = ("?B?2?", "C?2*", "*3?1", "A?C?7", "X??2*", "12", "?1", "AB?12", "A*2?3")
    for query in (*queries, *no_trigram):
        for limit in (1, 7, 50, 400, 5000):
            for kw in windows:

                def both(s: Any, q: str = query, n: int = limit, w: dict[str, Any] = kw) -> tuple[Any, Any]:
                    got = [str(r.id) for r in repo.search_reads(s, plate=q, mode="partial", limit=n, **w)]
                    return got, plain(s, q, n, **w)

                got, want = store.run(both)
                assert got == want, (query, limit, kw)
                checked += bool(want)
    assert checked > 300  # most combinations find something


def test_pg_windows_spell_out_the_trigrams_of_a_pattern() -> None:
    """PostgreSQL: a pattern without a trigram is asked of pg_trgm as windows with one unknown, each a
    regular expression of the 36 trigrams it can be."""
    assert repo.unknown_windows("_B_2_") == ["B_2"]
    assert repo.unknown_windows("A_C1%") == ["A_C", "_C1"]
    assert repo.unknown_windows("ABC_1%") == [] and repo.unknown_windows("A__1%") == []
    regex = repo.window_regex("A_C")
    assert regex.startswith("A(0|1|") and regex.endswith("|Z)C") and regex.count("|") == 35
    assert repo.has_trigram("%B12%") and not repo.has_trigram("A_C1%")


def test_radius_search_is_the_geodesic_distance(store: Store) -> None:
    """PostgreSQL: the radius search (a box through the geometry index, then the geodesic test) finds
    exactly the reads PostGIS puts within the radius — at mid and high latitudes and at the antimeridian."""
    if not store.is_postgres:
        pytest.skip("PostgreSQL only")
    import random

    from sqlalchemy import select

    rng = random.Random(11)
    radius = 3000.0
    centres = [(41.88, -87.63), (69.65, 18.95), (-54.8, -68.3), (0.5, 179.99), (88.2, 10.0)]
    made = []
    for lat, lon in centres:
        for _ in range(120):
            dy, dx = rng.uniform(-1.6, 1.6) * radius, rng.uniform(-1.6, 1.6) * radius
            plat = lat + dy / 111_195.0
            plon = (lon + dx / (111_195.0 * math.cos(math.radians(lat))) + 180.0) % 360.0 - 180.0
            made.append(read("GEO1", at=(plat, plon)))
    store.run(lambda s: repo.insert_reads(s, made))
    for lat, lon in centres:

        def both(s: Any, lat: float = lat, lon: float = lon) -> tuple[set[Any], set[Any]]:
            got = {r.id for r in repo.search_reads(s, plate=None, near=(lat, lon, radius), limit=1000)}
            within = text(
                "ST_Distance(plate_reads.geom::geography, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) <= :r"
            ).bindparams(lat=lat, lon=lon, r=radius)
            return got, set(s.scalars(select(PlateReadRow.id).where(within)))

        got, want = store.run(both)
        assert got == want, (lat, lon)
        assert 15 < len(want) < 100  # some inside, some outside
    assert repo.radius_box(0.5, 179.99, radius) is None  # across the antimeridian: no single box
    assert repo.radius_box(88.99, 10.0, radius) is None  # within a degree of a pole
