"""Audit appends from two processes on one SQLite file, and CLI actions audited atomically (session 14).

On SQLite, :func:`append_audit` read the chain's tail before the driver opened the transaction (the
driver begins one only at the first write), so two processes — ``rtcc serve`` and a CLI command, say —
read the same tail and both inserted ``seq + 1``: one failed with an IntegrityError (an API 500, a
CLI traceback). And the CLI committed its action in one transaction and the audit entry in another, so
a failed append left an unaudited user, device or hotlist behind.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import func, select
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.oversight.audit import append_audit, verify_chain
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry, Device, User
from rtcc.store.tables_hotlists import HotlistEntryRow

SECRET = b"s14-audit-secret-" + b"z" * 20
PER_PROCESS = 300


def _append_many(url: str, name: str, barrier: Any, errors: Any) -> None:
    """One process appending ``PER_PROCESS`` entries as fast as it can (run in a child process)."""
    store = Store(url, pool_size=1)
    failed = 0
    barrier.wait()
    try:
        for i in range(PER_PROCESS):
            try:
                store.run(
                    lambda s, i=i: append_audit(
                        s,
                        secret=SECRET,
                        actor=name,
                        role="admin",
                        action="test",
                        resource="cli",
                        outcome="ok",
                        details={"i": i},
                    )
                )
            except Exception:
                failed += 1
    finally:
        store.close()
        errors.put(failed)


def test_two_processes_append_to_one_sqlite_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_append_many, args=(url, n, barrier, errors)) for n in ("serve", "cli")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert [errors.get(timeout=10), errors.get(timeout=10)] == [0, 0]
    store = Store(url)
    try:
        assert store.run(lambda s: s.scalar(select(func.count()).select_from(AuditEntry))) == 2 * PER_PROCESS
        report = store.run(lambda s: verify_chain(s, SECRET))
        assert report.ok and report.checked == 2 * PER_PROCESS, report
    finally:
        store.close()


# --- the CLI: an action and its audit entry, one transaction ----------------------------------------

PW = "a sturdy passphrase"
CLI_SECRET = "cli-test-secret-" + "w" * 30
LAT_LON = ["--lat", "52.4", "--lon", "-1.9"]
runner = CliRunner()


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", CLI_SECRET)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    store = Store(url)
    yield store
    store.close()


def _actions(store: Store) -> list[str]:
    return store.run(lambda s: [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))])


def _count(store: Store, table: Any) -> int:
    return int(store.run(lambda s: s.scalar(select(func.count()).select_from(table))))


def _refuse_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the audit append fail as a busy SQLite (another process holding the lock) does."""

    def locked(*_a: Any, **_k: Any) -> None:
        raise sqlalchemy.exc.OperationalError("UPDATE audit_log", {}, Exception("database is locked"))

    monkeypatch.setattr("rtcc.oversight.audit.append_audit", locked)


def test_cli_actions_are_stored_with_their_audit_entries(cli_store: Store, tmp_path: Path) -> None:
    r = runner.invoke(app, ["users", "create", "erin", "--role", "analyst", "--password", PW])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["devices", "add", "s9", "--type", "acoustic_sensor", *LAT_LON])
    assert r.exit_code == 0, r.output
    hot = tmp_path / "hot.csv"
    hot.write_text("plate,state\nABC123,AL\n")
    r = runner.invoke(app, ["hotlist", "import", "-s", "s14", "-f", "csv", str(hot)])
    assert r.exit_code == 0, r.output
    assert _actions(cli_store) == ["create_user", "add_device", "hotlist_import"]
    assert cli_store.run(lambda s: verify_chain(s, CLI_SECRET.encode())).ok


@pytest.mark.parametrize("what", ["users", "devices", "hotlist"])
def test_a_failed_audit_entry_undoes_the_cli_action(
    cli_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    _refuse_audit(monkeypatch)
    if what == "users":
        args, table = ["users", "create", "erin", "--role", "analyst", "--password", PW], User
    elif what == "devices":
        args, table = ["devices", "add", "s9", "--type", "acoustic_sensor", *LAT_LON], Device
    else:
        hot = tmp_path / "hot.csv"
        hot.write_text("plate,state\nABC123,AL\n")
        args, table = ["hotlist", "import", "-s", "s14", "-f", "csv", str(hot)], HotlistEntryRow
    r = runner.invoke(app, args)
    assert r.exit_code == 3, r.output
    assert "database is locked" in r.output and "try again" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    assert _count(cli_store, table) == 0  # rolled back with its audit entry
    assert _actions(cli_store) == []
