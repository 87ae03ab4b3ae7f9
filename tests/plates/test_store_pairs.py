"""The pair-token index (migration 0010, SQLite): partial plates without three known characters in a row.

Every pattern's tokens are held by every plate it matches (so the index loses
no match); the SQL spelling of the tokens (triggers, backfill, the migration's
frozen copy) is the Python one; searches give what a plain scan gives (on
PostgreSQL too, through its spelled-out trigrams); the index follows inserts,
duplicates, plate updates and purges; the migration fills it for stored reads.
"""

from __future__ import annotations

import importlib
import random
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from rtcc.plates import reads as repo
from rtcc.store import Store
from rtcc.store.migrate import compare, downgrade, upgrade
from rtcc.store.tables_plates import PlateReadRow
from tests.plates.test_store_keys import T0, read

M0010 = importlib.import_module("rtcc.store.migrations.versions.0010_plate_reads_pairs")
M0011 = importlib.import_module("rtcc.store.migrations.versions.0011_plate_reads_pg_tokens")


def random_plate(rng: random.Random, alphabet: str = repo.PLATE_ALPHABET) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, repo.PLATE_MAX)))


def like_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + r"\Z"
    )


def no_trigram_pattern(rng: random.Random, plate: str) -> str:
    """A LIKE pattern matching ``plate``: some characters unknown, never three known in a row, maybe
    open at either end."""
    chars = [c if rng.random() < 0.55 else "_" for c in plate]
    for i in range(2, len(chars)):
        if "_" not in chars[i - 2 : i + 1]:
            chars[i] = "_"
    pattern = "".join(chars)
    if rng.random() < 0.4:
        pattern = "%" + pattern[rng.randint(0, len(pattern) - 1) :]
    if rng.random() < 0.4:
        pattern = pattern[: rng.randint(1, len(pattern))] + "%"
    return pattern


def test_every_matching_plate_holds_the_pattern_tokens() -> None:
    """Soundness: a plate matching a pattern holds each token of it; chosen tokens are the pattern's."""
    rng = random.Random(1)
    seen = 0
    for _ in range(3000):
        plate = random_plate(rng, "AB12")
        pattern = no_trigram_pattern(rng, plate)
        assert like_regex(pattern).match(plate)
        held = set(repo.plate_pairs(plate))
        tokens = repo.pattern_pairs(pattern)
        assert set(tokens) <= held, (plate, pattern)
        chosen = repo.chosen_pairs(pattern)
        assert set(chosen) <= set(tokens) and len(chosen) <= 3
        assert bool(chosen) == bool(tokens)
        pg_chosen = repo.pg_chosen_tokens(pattern)  # PostgreSQL's smaller token set holds them too
        assert set(pg_chosen) <= set(repo.pg_plate_tokens(plate)) and len(pg_chosen) in (0, 2, 3)
        assert set(repo.pg_plate_tokens(plate)) <= held
        seen += bool(tokens)
    assert seen > 2000
    assert repo.plate_pairs("A") == ["b0Ab", "e0Ae"]
    assert len(repo.plate_pairs("ABC1234")) == 13
    assert repo.chosen_pairs("A_C1%") == ["A2C", "b31b"]  # the rarest, then what pins the 1
    assert repo.pairs_match("ABC_1%") is None  # a trigram: the trigram index serves it


def test_sql_tokens_are_the_python_tokens() -> None:
    """The SQLite expression (triggers, backfill) and the migration's frozen copy give :func:`plate_pairs`."""
    assert M0010.pairs_sql("plate") == repo.pairs_sql("plate")
    rng = random.Random(2)
    plates = [random_plate(rng) for _ in range(300)] + ["A", "AB", "ABC", "X" * repo.PLATE_MAX]
    con = sqlite3.connect(":memory:")
    try:
        for p in plates:
            (got,) = con.execute(f"SELECT {repo.pairs_sql(':p')}", {"p": p}).fetchone()
            assert got.split(" ") == repo.plate_pairs(p), p
    finally:
        con.close()


def test_pair_search_equals_the_plain_query(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patterns without a trigram, through the pair index, find what a plain LIKE scan finds, newest
    first, for limits below and above the matches and with a time window."""
    monkeypatch.setattr(repo, "_FTS_FIRST_PAGE", 8)
    monkeypatch.setattr(repo, "_FTS_PAGE_MAX", 64)
    rng = random.Random(3)
    alphabet = "AB12X"
    made = [
        read(random_plate(rng, alphabet)[: rng.randint(2, 9)], minutes=i * 9 + rng.uniform(-60, 0))
        for i in range(2500)
    ]
    for k in range(0, len(made), 500):
        store.run(lambda s, b=made[k : k + 500]: repo.insert_reads(s, b))
    patterns = [no_trigram_pattern(rng, rng.choice(made).plate) for _ in range(60)]
    patterns += ["%A_1%", "A_1%", "%1_B", "_B_2%", "A%", "%2", "_1_", "A__1%", "%X_X%"]

    def plain(s: Any, pattern: str, limit: int, start: datetime | None) -> list[str]:
        q = select(PlateReadRow.id).where(PlateReadRow.plate.like(pattern))
        if start is not None:
            q = q.where(PlateReadRow.read_at >= start)
        q = q.order_by(PlateReadRow.read_at.desc(), PlateReadRow.id).limit(limit)
        return [str(i) for i in s.scalars(q)]

    checked = via_pairs = via_pg_tokens = 0
    for pattern in patterns:
        query = pattern.replace("%", "*").replace("_", "?")
        if not query.strip("*?") or ("*" not in query and "?" not in query):
            continue  # nothing known (refused), or a plain substring (%…%: the trigram tests)
        assert repo.partial_pattern(query) == pattern
        via_pairs += repo.pairs_match(pattern) is not None
        via_pg_tokens += bool(repo.pg_chosen_tokens(pattern))
        for limit in (1, 10, 500):
            for start in (None, T0 + timedelta(days=10)):

                def both(s: Any, q: str = query, n: int = limit, t: datetime | None = start) -> Any:
                    got = repo.search_reads(s, plate=q, mode="partial", limit=n, start=t)
                    return [str(r.id) for r in got], plain(s, repo.partial_pattern(q), n, t)

                got, want = store.run(both)
                assert got == want, (pattern, limit, start)
                checked += bool(want)
    assert via_pairs > 40 and via_pg_tokens > 15 and checked > 200


def vocabulary(con: sqlite3.Connection) -> Counter[str]:
    """SQLite: documents per token in ``plate_reads_fts_pairs`` (FTS5's own vocabulary table)."""
    con.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.pairs_vocab "
        "USING fts5vocab(main, plate_reads_fts_pairs, row)"
    )
    return Counter({term: n for term, n in con.execute("SELECT term, doc FROM temp.pairs_vocab")})


def expected_vocabulary(con: sqlite3.Connection) -> Counter[str]:
    """Documents per token the stored plates give (FTS5's ``ascii`` tokenizer folds case)."""
    out: Counter[str] = Counter()
    for (plate,) in con.execute("SELECT plate FROM plate_reads"):
        out.update({t.lower() for t in repo.plate_pairs(plate)})
    return out


def test_sqlite_pair_index_follows_inserts_updates_and_purges(tmp_path: Path) -> None:
    """SQLite: the contentless index holds exactly the tokens of the stored plates after duplicate
    inserts, a plate corrected in place and a purge (the triggers spell the forgotten tokens)."""
    db = tmp_path / "pairs.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    st = Store(url, pool_size=1)
    rng = random.Random(4)
    made = [read(random_plate(rng)[:8], minutes=i) for i in range(400)]
    try:
        assert st.run(lambda s: repo.insert_reads(s, made[:300])) == 300
        assert st.run(lambda s: repo.insert_reads(s, made[250:])) == 100  # 50 already stored
        with st.session() as s:
            s.execute(text("UPDATE plate_reads SET plate = 'QQ7QQ' WHERE rowid % 7 = 0"))
        con = sqlite3.connect(db)
        try:
            assert vocabulary(con) == expected_vocabulary(con)
        finally:
            con.close()
        got = st.run(lambda s: repo.search_reads(s, plate="Q?7*", mode="partial", limit=1000))
        order = (PlateReadRow.read_at.desc(), PlateReadRow.id)
        want = st.run(
            lambda s: list(
                s.scalars(select(PlateReadRow.id).where(PlateReadRow.plate.like("Q_7%")).order_by(*order))
            )
        )
        # every corrected plate, found by its new tokens
        assert [r.id for r in got] == want and len(want) >= 400 // 7
        deleted, _ = st.run(lambda s: repo.purge_reads(s, T0 + timedelta(minutes=200)))
        assert deleted == 200
        con = sqlite3.connect(db)
        try:
            assert vocabulary(con) == expected_vocabulary(con)
            con.execute("INSERT INTO plate_reads_fts_pairs(plate_reads_fts_pairs) VALUES ('integrity-check')")
        finally:
            con.close()
    finally:
        st.close()


def test_migration_0010_fills_the_index_for_stored_reads(tmp_path: Path) -> None:
    """SQLite: reads stored at 0009 are indexed by the migration and found through it; a downgrade
    removes the index and its triggers and keeps the reads."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0009")
    rng = random.Random(6)
    made = [read(random_plate(rng, "AC37")[:7], minutes=i) for i in range(300)]
    con = sqlite3.connect(tmp_path / "old.db")
    try:  # 0009's insert path: the rows, their plates, ids and keys
        con.executemany(repo._SQLITE_INSERT, repo.sqlite_rows(made, datetime.now(UTC)))
        con.execute("INSERT INTO plate_reads_fts(rowid, plate) SELECT rowid, plate FROM plate_reads")
        con.execute(
            "INSERT INTO plate_reads_fts_keys(rowid, id, plate_key) "
            "SELECT rowid, id, plate_key FROM plate_reads"
        )
        con.commit()
    finally:
        con.close()
    upgrade(url)
    assert compare(url) == []
    con = sqlite3.connect(tmp_path / "old.db")
    try:
        assert vocabulary(con) == expected_vocabulary(con) and sum(vocabulary(con).values()) > 1000
    finally:
        con.close()
    st = Store(url, pool_size=1)
    try:
        got = st.run(lambda s: repo.search_reads(s, plate="A?3*", mode="partial", limit=1000))
        want = [r for r in made if re.match("A.3", r.plate)]
        assert len(got) == len(want) > 5
    finally:
        st.close()
    downgrade(url, "0009")
    con = sqlite3.connect(tmp_path / "old.db")
    try:
        names = {n for (n,) in con.execute("SELECT name FROM sqlite_master")}
        assert not any(n.startswith("plate_reads_fts_pairs") for n in names)
        assert con.execute("SELECT count(*) FROM plate_reads").fetchone()[0] == 300
        con.execute("DELETE FROM plate_reads WHERE rowid < 10")  # no trigger left behind to fail
    finally:
        con.close()


@pytest.mark.postgres
def test_postgres_tokens_are_the_python_tokens_and_serve_the_search(pg_url: str) -> None:
    """PostgreSQL: reads stored at 0010 get their tokens from migration 0011 (the generated column, a
    frozen copy of :func:`pg_tokens_sql`), new ones at insert (COPY, and the duplicate path); both are
    :func:`pg_plate_tokens`. A pattern with two tokens is asked of the token index; the results equal
    a plain scan; a downgrade drops the column and keeps the reads."""
    assert M0011.tokens_sql("plate") == repo.pg_tokens_sql("plate")
    rng = random.Random(7)
    old = [read(random_plate(rng, "AC37"), minutes=i) for i in range(200)]
    new = [read(random_plate(rng, "AC37")[:8], minutes=300 + i) for i in range(300)]
    new += [read(p, minutes=700 + i) for i, p in enumerate(["A", "AB", "ABC", "X" * repo.PLATE_MAX])]
    upgrade(pg_url, "0010")
    st = Store(pg_url, pool_size=1)
    try:
        assert st.run(lambda s: repo.insert_reads(s, old)) == 200
    finally:
        st.close()
    upgrade(pg_url)
    assert compare(pg_url) == []
    st = Store(pg_url, pool_size=1)
    try:
        assert st.run(lambda s: repo.insert_reads(s, new[:250])) == 250
        assert st.run(lambda s: repo.insert_reads(s, new[200:])) == len(new) - 250  # 50 already stored
        with st.session() as s:
            stored = s.execute(text("SELECT plate, plate_tokens FROM plate_reads")).all()
            query_sql = select(PlateReadRow.id).where(repo._plate_filter(s, "A?C7*", "partial"))
            compiled = query_sql.compile(dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True})
            s.execute(text("SET LOCAL enable_seqscan = off"))  # 500 rows: the plan the index would give
            plan = "\n".join(r[0] for r in s.connection().exec_driver_sql(f"EXPLAIN {compiled}"))
        assert len(stored) == 200 + len(new)
        assert all(tokens == repo.pg_plate_tokens(plate) for plate, tokens in stored)
        assert "Bitmap Index Scan on plate_reads_" in plan and "plate_tokens_idx" in plan, plan
        assert "trgm" not in plan, plan
        for query in ("A?C7*", "?C?3???", "*A?3*", "A??3*"):
            pattern = repo.partial_pattern(query)
            got = st.run(lambda s, q=query: repo.search_reads(s, plate=q, mode="partial", limit=1000))
            want = sorted(
                (r for r in [*old, *new] if like_regex(pattern).match(r.plate)),
                key=lambda r: (-r.occurred_at.timestamp(), str(r.event_id)),
            )
            assert [r.id for r in got] == [r.event_id for r in want] and (want or query == "*A?3*"), query
    finally:
        st.close()
    downgrade(pg_url, "0010")
    st = Store(pg_url, pool_size=1)
    try:
        with st.session() as s:
            cols = s.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'plate_reads'")
            ).all()
            assert ("plate_tokens",) not in cols
            assert repo.count_reads(s) == 200 + len(new)
    finally:
        st.close()
