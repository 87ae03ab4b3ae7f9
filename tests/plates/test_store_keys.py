"""The plate-read store's keys (migration 0009): reads by id, exact and look-alike plates, duplicates.

On SQLite the primary key is stored in time order and ids and look-alike keys
are looked up through the FTS5 index ``plate_reads_fts_keys``; these tests check
that every lookup gives what a plain scan of the table gives, that the index
follows inserts, duplicates, updates and purges (FTS5's own integrity check
compares it with the table), and that the migration keeps stored reads.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select, text

from rtcc.events import PlateRead, Position
from rtcc.plates import reads as repo
from rtcc.plates.matching import skeleton
from rtcc.store import Store
from rtcc.store.migrate import compare, downgrade, upgrade
from rtcc.store.tables_plates import PlateReadRow

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def read(plate: str, minutes: float, device: str = "cam-1") -> PlateRead:
    return PlateRead(
        source=device,
        device=device,
        occurred_at=T0 + timedelta(minutes=minutes),
        pos=Position(lat=41.88, lon=-87.63),
        plate=plate,
        confidence=0.9,
    )


def integrity(store: Store) -> None:
    """FTS5 compares its external-content indexes with the table (SQLite; raises when they differ)."""
    if store.is_sqlite:
        with store.session() as s:
            for fts in ("plate_reads_fts", "plate_reads_fts_keys"):
                s.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))


def lookalike_reads(rng: random.Random, n: int) -> list[PlateRead]:
    """Reads of a few plates spelled with look-alike characters, over a few days, at 3 cameras."""
    bases = ["AB0123", "B8OD5S", "ZZ2Z11", "QO8G6X", "1I1I12", "XY9999"]
    swaps = {"0": "OQD", "O": "0D", "1": "I", "I": "1", "2": "Z", "Z": "2", "5": "S", "S": "5", "8": "B"}
    out = []
    for i in range(n):
        p = list(rng.choice(bases))
        for k, c in enumerate(p):
            if c in swaps and rng.random() < 0.3:
                p[k] = rng.choice(swaps[c])
        out.append(read("".join(p), minutes=i * 7 + rng.uniform(-30, 0), device=f"cam-{rng.randrange(3)}"))
    return out


def test_lookups_equal_a_plain_scan(store: Store) -> None:
    """Exact, look-alike and by-id lookups give what the plain column comparisons give, newest first."""
    rng = random.Random(3)
    made = lookalike_reads(rng, 600)
    for k in range(0, len(made), 150):  # several batches, each with earlier reads repeated
        again = rng.sample(made[:k], min(k, 20))
        assert store.run(lambda s, b=made[k : k + 150] + again: repo.insert_reads(s, b)) == 150
    integrity(store)
    order = (PlateReadRow.read_at.desc(), PlateReadRow.id)

    def plain(s: Any, where: Any, **kw: Any) -> list[str]:
        q = select(PlateReadRow.id).where(where)
        if kw.get("start") is not None:
            q = q.where(PlateReadRow.read_at >= kw["start"])
        if kw.get("device_ids") is not None:
            q = q.where(PlateReadRow.device_id.in_(kw["device_ids"]))
        return [str(i) for i in s.scalars(q.order_by(*order).limit(kw["limit"]))]

    checked = 0
    for plate in {r.plate for r in made[::25]} | {"AB0123", "NOSUCH1"}:
        for kw in (
            {"limit": 500},
            {"limit": 3},
            {"limit": 40, "start": T0 + timedelta(days=2)},
            {"limit": 40, "device_ids": ["cam-1"]},
        ):

            def both(s: Any, p: str = plate, w: dict[str, Any] = kw) -> list[tuple[list[str], list[str]]]:
                exact = [str(r.id) for r in repo.search_reads(s, plate=p, mode="exact", **w)]
                alike = [str(r.id) for r in repo.search_reads(s, plate=p, mode="lookalike", **w)]
                return [
                    (exact, plain(s, PlateReadRow.plate == p, **w)),
                    (alike, plain(s, PlateReadRow.plate_key == skeleton(p), **w)),
                ]

            for got, want in store.run(both):
                assert got == want, (plate, kw)
                checked += len(want) > 1
    assert checked > 20  # look-alike groups with several reads were compared
    for r in rng.sample(made, 30):
        row = store.run(lambda s, r=r: repo.get_read(s, r.event_id))
        assert row is not None and row.id == r.event_id and row.read_at == r.occurred_at
    assert store.run(lambda s: repo.get_read(s, uuid4())) is None


def test_the_keys_follow_updates_hits_and_purges(store: Store) -> None:
    made = [read(f"KEY{i:03d}", minutes=i * 60 * 24) for i in range(40)]  # one a day
    assert store.run(lambda s: repo.insert_reads(s, made)) == 40
    assert store.run(lambda s: repo.mark_hit(s, made[3].event_id)) is True
    assert store.run(lambda s: repo.mark_hit(s, made[3].event_id)) is True  # again: still there
    got = store.run(lambda s: repo.get_read(s, made[3].event_id))
    assert got is not None and got.hit
    # a corrected plate (an operator's fix): exact search follows it, the old plate finds nothing
    with store.session() as s:
        s.execute(
            text("UPDATE plate_reads SET plate = 'FIXED1', plate_key = :k WHERE plate = 'KEY005'"),
            {"k": skeleton("FIXED1")},
        )
    integrity(store)

    def exact(p: str) -> list[str]:
        return [r.plate for r in store.run(lambda s: repo.search_reads(s, plate=p, mode="exact"))]

    assert exact("FIXED1") == ["FIXED1"] and exact("KEY005") == []
    n, _ = store.run(lambda s: repo.purge_reads(s, T0 + timedelta(days=20), keep_ids=[str(made[7].event_id)]))
    assert n == 18  # days 0-19, less the hit (day 3) and the kept one (day 7)
    integrity(store)
    assert store.run(lambda s: repo.get_read(s, made[2].event_id)) is None
    assert store.run(lambda s: repo.mark_hit(s, made[2].event_id)) is False
    assert exact("KEY002") == [] and exact("KEY003") == ["KEY003"] and exact("KEY025") == ["KEY025"]
    assert store.run(repo.count_reads) == 22
    # a purged read sent again is stored again (it is new to the store), once
    assert store.run(lambda s: repo.insert_reads(s, [made[2], made[2], made[30]])) == 1
    integrity(store)


def test_sqlite_keeps_no_random_key_btree(tmp_path: Path) -> None:
    """SQLite: the primary key index is in time order and no index starts with ``id`` or ``plate_key``."""
    db = tmp_path / "layout.db"
    upgrade(f"sqlite:///{db}")
    con = sqlite3.connect(db)
    try:
        firsts = {}
        for (name,) in con.execute("SELECT name FROM pragma_index_list('plate_reads')"):
            cols = [
                c for (c,) in con.execute("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (name,))
            ]
            firsts[name] = cols
        assert firsts["sqlite_autoindex_plate_reads_1"] == ["read_at", "id"]
        assert all(cols[0] not in ("id", "plate_key") for cols in firsts.values()), firsts
        assert con.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'plate_reads_fts_keys'"
        ).fetchone()[0]
    finally:
        con.close()


def test_migration_0009_keeps_the_reads_and_goes_back(tmp_path: Path) -> None:
    """SQLite: reads stored at 0008 keep their rowids and are found by id, plate and partial plate after
    0009; a downgrade brings the 0008 layout back with the same reads."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0008")
    made = lookalike_reads(random.Random(9), 300)
    now = datetime.now(UTC)
    con = sqlite3.connect(tmp_path / "old.db")
    try:  # 0008's insert path: the rows, then their plates into the trigram index
        con.executemany(repo._SQLITE_INSERT, repo.sqlite_rows(made, now))
        con.execute("INSERT INTO plate_reads_fts(rowid, plate) SELECT rowid, plate FROM plate_reads")
        con.commit()
        before = con.execute("SELECT rowid, id, plate FROM plate_reads ORDER BY rowid").fetchall()
    finally:
        con.close()
    upgrade(url)
    assert compare(url) == []
    st = Store(url, pool_size=1)
    try:
        integrity(st)
        with st.session() as s:
            after = s.execute(text("SELECT rowid, id, plate FROM plate_reads ORDER BY rowid")).all()
        assert [tuple(r) for r in after] == before
        for r in made[::37]:
            row = st.run(lambda s, r=r: repo.get_read(s, r.event_id))
            assert row is not None and row.plate == repo.normalize_plate(r.plate)
        alike = st.run(lambda s: repo.search_reads(s, plate="AB0123", mode="lookalike", limit=1000))
        assert len(alike) == sum(skeleton(r.plate) == skeleton("AB0123") for r in made) > 10
        assert st.run(lambda s: repo.search_reads(s, plate="8OD", mode="partial", limit=5))
    finally:
        st.close()
    downgrade(url, "0008")
    con = sqlite3.connect(tmp_path / "old.db")
    try:
        assert con.execute("SELECT rowid, id, plate FROM plate_reads ORDER BY rowid").fetchall() == before
        pk = [
            c for (c,) in con.execute("SELECT name FROM pragma_index_info('sqlite_autoindex_plate_reads_1')")
        ]
        assert pk == ["id", "read_at"]
        names = {n for (n,) in con.execute("SELECT name FROM sqlite_master")}
        assert "ix_plate_reads_key_time" in names and "plate_reads_fts_keys" not in names
        con.execute("INSERT INTO plate_reads_fts(plate_reads_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        con.close()


def test_window_days_follow_the_matches_found() -> None:
    """The next search window holds the matches still missing at the rate found so far, with a margin."""
    assert repo._next_window_days(20, 100, 1.0, 1) == 6  # 20 a day: 80 more in 4 days, x 1.5
    assert repo._next_window_days(99, 100, 0.5, 1) == 1  # at least a whole day
    assert repo._next_window_days(0, 100, 0.1, 1) == 4 and repo._next_window_days(0, 100, 5.0, 4) == 16
    assert repo._next_window_days(1, 100, 30.0, 16) == 65  # beyond 64 days: the last window


def test_postgres_rare_partial_plate_takes_few_queries(store: Store) -> None:
    """PostgreSQL: a partial plate seen 4 times a day for 30 days is found newest first in a few
    queries (the windows grow with the matches found, not by doubling), the same as one plain query."""
    if not store.is_postgres:
        pytest.skip("PostgreSQL only")
    from sqlalchemy import event

    now = datetime.now(UTC).replace(microsecond=0)
    made = [read(f"RQ{i:04d}", minutes=(now - T0).total_seconds() / 60 - i * 360) for i in range(120)]
    made += [read(f"ZZ{i:04d}", minutes=(now - T0).total_seconds() / 60 - i * 7) for i in range(2000)]
    store.run(lambda s: repo.insert_reads(s, made))
    queries: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "plate_reads" in statement and "LIKE" in statement.upper():
            queries.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        got = store.run(lambda s: repo.search_reads(s, plate="RQ", mode="partial", limit=100))
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert [r.plate for r in got] == [f"RQ{i:04d}" for i in range(100)]
    assert 2 <= len(queries) <= 4, len(queries)  # doubling windows (1, 1, 2, 4, 8, 16 days) took 6-7
