"""The hotlist store on SQLite and PostgreSQL: atomic re-import, BOLOs, expiry, the version row; the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.errors import NotFound, ValidationFailed
from rtcc.plates import hotlists as repo
from rtcc.plates.hotlist_import import Category, ParsedEntry, parse_csv
from rtcc.plates.matching import HotlistMatcher
from rtcc.store import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry
from rtcc.store.tables_hotlists import HotlistEntryRow
from tests.plates.test_hotlists import ncic_line

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def entries(prefix: str, n: int) -> list[ParsedEntry]:
    return [ParsedEntry(i + 1, f"{prefix}{i:04d}", Category.stolen_vehicle) for i in range(n)]


def plates_of(store: Store, source: str) -> set[str]:
    return set(
        store.run(lambda s: s.scalars(select(HotlistEntryRow.plate).where(HotlistEntryRow.source == source)))
    )


def test_reimport_is_atomic_readers_see_old_or_new(store: Store) -> None:
    store.run(lambda s: repo.replace_source(s, "ncic", "ncic", entries("OLD", 300), now=NOW))
    old = plates_of(store, "ncic")
    assert len(old) == 300
    v1 = store.run(repo.hotlist_version)

    # the import's transaction is open (old deleted, new inserted) but not committed
    seen_during: list[set[str]] = []
    inside = threading.Event()
    release = threading.Event()

    def importer() -> None:
        with store.session() as s:
            repo.replace_source(s, "ncic", "ncic", entries("NEW", 500), now=NOW)
            s.flush()
            inside.set()
            assert release.wait(30)

    t = threading.Thread(target=importer)
    t.start()
    assert inside.wait(30)
    seen_during.append(plates_of(store, "ncic"))
    seen_during.append({e.plate for e in store.run(lambda s: repo.active_entries(s, NOW)).entries})
    version_during = store.run(repo.hotlist_version)
    release.set()
    t.join(30)
    assert all(seen == old for seen in seen_during)  # all of the old list, none of the new
    assert version_during == v1
    new = plates_of(store, "ncic")
    assert len(new) == 500 and all(p.startswith("NEW") for p in new)
    assert store.run(repo.hotlist_version) == v1 + 1
    [src] = store.run(repo.list_sources)
    assert (src.name, src.kind, src.entries, src.active) == ("ncic", "ncic", 500, 500)


def test_failed_import_leaves_the_old_list(store: Store) -> None:
    store.run(lambda s: repo.replace_source(s, "state", "state_csv", entries("KEEP", 20), now=NOW))

    def broken(s: Session) -> None:
        repo.replace_source(s, "state", "state_csv", entries("HALF", 50), now=NOW)
        raise RuntimeError("disk full half-way")

    with pytest.raises(RuntimeError):
        store.run(broken)
    assert plates_of(store, "state") == {f"KEEP{i:04d}" for i in range(20)}


def test_bolo_entries_expiry_and_matching(store: Store) -> None:
    soon = NOW + timedelta(hours=1)
    e1 = store.run(
        lambda s: repo.add_entry(
            s, "ab?12*", Category.custom, reason="partial plate from witness", created_by="a", now=NOW
        )
    )
    e2 = store.run(
        lambda s: repo.add_entry(
            s, "XYZ 987", "missing_person", reason="AMBER alert", created_by="a", expires_at=soon, now=NOW
        )
    )
    assert e1.plate == "AB?12*" and e1.source == repo.BOLO_SOURCE
    with pytest.raises(ValidationFailed):
        store.run(lambda s: repo.add_entry(s, "**??", "custom", reason="only wildcards", created_by="a"))
    with pytest.raises(ValidationFailed):
        store.run(
            lambda s: repo.add_entry(
                s, "OLD1", "custom", reason="x", created_by="a", expires_at=NOW - timedelta(days=1), now=NOW
            )
        )
    before = store.run(lambda s: repo.active_entries(s, NOW))
    after = store.run(lambda s: repo.active_entries(s, soon + timedelta(seconds=1)))
    assert {e.plate for e in before.entries} == {"AB?12*", "XYZ987"}
    assert {e.plate for e in after.entries} == {"AB?12*"}  # expired entries don't match
    m = HotlistMatcher(before.entries)
    assert [x.entry.entry_id for x in m.match("ABQ12345")] == [str(e1.id)]
    assert before.expires == {str(e2.id): soon}
    rows = store.run(lambda s: repo.list_entries(s, source=repo.BOLO_SOURCE, now=soon + timedelta(seconds=1)))
    assert [r.plate for r in rows] == ["AB?12*"]
    v = store.run(repo.hotlist_version)
    store.run(lambda s: repo.delete_entry(s, e1.id))
    assert store.run(repo.hotlist_version) == v + 1
    with pytest.raises(NotFound):
        store.run(lambda s: repo.delete_entry(s, e1.id))
    with pytest.raises(ValidationFailed):
        store.run(lambda s: repo.replace_source(s, repo.BOLO_SOURCE, "custom", entries("X", 1)))


def test_bad_lines_reported_rest_imported(store: Store) -> None:
    rep = parse_csv("plate,category\nGOOD1,stolen_plate\n,custom\nGOOD2,\nBAD,unknown\n")
    assert [e.line for e in rep.errors] == [3, 5]
    store.run(lambda s: repo.replace_source(s, "csv1", "state_csv", rep.entries, errors=len(rep.errors)))
    [src] = store.run(repo.list_sources)
    assert (src.entries, src.errors) == (2, 2)
    n = store.run(lambda s: s.scalar(select(func.count()).select_from(HotlistEntryRow)))
    assert n == 2


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "h" * 30)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    st = Store(url)
    yield st
    st.close()


def test_cli_import_reports_bad_lines_and_exits_2(cli_env: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    f = tmp_path / "ncic.txt"
    f.write_text(
        "\n".join(
            [
                ncic_line(plate="ABC1234", state="AL", mke="EV"),
                "short line",
                ncic_line(plate="XYZ99", state="GA", mke="EL"),
            ]
        )
        + "\n"
    )
    r = runner.invoke(app, ["hotlist", "import", "--source", "ncic", "--format", "ncic", str(f)])
    assert r.exit_code == 2
    assert f"{f}:2:" in r.stderr and "2 entries imported" in r.stdout
    assert plates_of(cli_env, "ncic") == {"ABC1234", "XYZ99"}
    good = tmp_path / "ok.csv"
    good.write_text("plate,reason\nQQQ111,stolen 11/2\n")
    r = runner.invoke(app, ["hotlist", "import", "-s", "al-state", "-f", "csv", str(good)])
    assert r.exit_code == 0, r.output
    # a file with nothing usable changes nothing
    empty = tmp_path / "empty.csv"
    empty.write_text("plate\n\n")
    r = runner.invoke(app, ["hotlist", "import", "-s", "al-state", "-f", "csv", str(empty)])
    assert r.exit_code == 2 and "left as it was" in r.stderr
    assert plates_of(cli_env, "al-state") == {"QQQ111"}
    r = runner.invoke(app, ["hotlist", "import", "-s", "x", "-f", "xml", str(good)])
    assert r.exit_code == 2 and "--format" in r.stderr
    r = runner.invoke(app, ["hotlist", "list"])
    assert r.exit_code == 0 and "al-state" in r.stdout and "ncic" in r.stdout
    actions = cli_env.run(lambda s: list(s.scalars(select(AuditEntry.action))))
    assert actions == ["hotlist_import", "hotlist_import"]  # the two imports that changed something


def test_imported_rows_read_back_as_the_orm_writes_them(store: Store) -> None:
    later = NOW + timedelta(days=2)
    parsed = [
        ParsedEntry(
            1, "LIVE1", Category.stolen_plate, "AL", reason="NCIC EL V1", extra={"vin": "1HGCM82633A004352"}
        ),
        ParsedEntry(2, "GONE1", Category.custom, None, reason="x", expires_at=NOW + timedelta(hours=1)),
        ParsedEntry(3, "LATE1", Category.wanted_person, None, reason="y", expires_at=later),
    ]
    store.run(lambda s: repo.replace_source(s, "ncic", "ncic", parsed, by="tester", now=NOW))
    rows = {
        r.plate: r for r in store.run(lambda s: repo.list_entries(s, source="ncic", include_expired=True))
    }
    assert rows["LIVE1"].extra == {"vin": "1HGCM82633A004352"} and rows["LIVE1"].state == "AL"
    assert rows["LATE1"].expires_at == later and rows["LIVE1"].created_at == NOW
    assert rows["LIVE1"].created_by == "tester" and rows["LIVE1"].line == 1
    # expiry compares in SQL as the ORM's own values do
    at = NOW + timedelta(hours=1, seconds=1)
    assert {e.plate for e in store.run(lambda s: repo.active_entries(s, at)).entries} == {"LIVE1", "LATE1"}
    assert [r.plate for r in store.run(lambda s: repo.list_entries(s, source="ncic", now=at))] != []
    [src] = store.run(lambda s: repo.list_sources(s, at))
    assert (src.entries, src.active) == (3, 2)


def test_source_signatures_move_with_every_change(store: Store) -> None:
    t0 = NOW
    store.run(lambda s: repo.add_entry(s, "AAA111", Category.custom, reason="r", created_by="u", now=t0))
    store.run(lambda s: repo.replace_source(s, "ncic", "ncic", entries("NC", 5), now=t0))
    first = store.run(repo.source_signatures)
    e = store.run(
        lambda s: repo.add_entry(
            s, "BBB222", Category.custom, reason="r", created_by="u", now=t0 + timedelta(seconds=1)
        )
    )
    second = store.run(repo.source_signatures)
    store.run(lambda s: repo.delete_entry(s, e.id))
    third = store.run(repo.source_signatures)
    assert first["bolo"] != second["bolo"] != third["bolo"]
    assert first["ncic"] == second["ncic"] == third["ncic"]  # a BOLO change leaves the import alone
    snap = store.run(lambda s: repo.changed_sources(s, {"ncic": first["ncic"], "gone": (1, "x")}, t0))
    assert sorted(snap.changed) == ["bolo"] and snap.gone == ["gone"]
    assert [e.plate for e in snap.changed["bolo"].entries] == ["AAA111"]
