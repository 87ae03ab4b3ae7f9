"""`rtcc users unlock` and `set-password`, and `rtcc audit export` to a path it cannot write: a
message, no traceback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.oversight.accounts import authenticate, create_user, get_user
from rtcc.roles import Role
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry

SECRET = "cli-test-secret-" + "q" * 30
PW = "a sturdy passphrase"
runner = CliRunner()


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", SECRET)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    store = Store(url)
    store.run(lambda s: create_user(s, "dana", PW, Role.analyst))
    return store


def _no_traceback(r: object) -> None:
    exc = getattr(r, "exception", None)
    assert exc is None or isinstance(exc, SystemExit), exc
    assert "Traceback" not in getattr(r, "output", "")


def test_users_unlock(cli_store: Store) -> None:
    now = datetime.now(UTC)
    for _ in range(5):
        cli_store.run(lambda s: authenticate(s, "dana", "wrong password!", None, now=now))
    assert not cli_store.run(lambda s: authenticate(s, "dana", PW, None, now=now)).ok

    r = runner.invoke(app, ["users", "unlock", "DANA"])
    assert r.exit_code == 0, r.output
    assert "unlocked" in r.output and "dana" in r.output
    user = cli_store.run(lambda s: get_user(s, "dana"))
    assert user is not None and user.locked_until is None and user.failed_logins == 0
    assert cli_store.run(lambda s: authenticate(s, "dana", PW, None, now=now + timedelta(seconds=1))).ok
    actions = cli_store.run(lambda s: [(e.action, e.details) for e in s.scalars(select(AuditEntry))])
    assert ("unlock_user", {"username": "dana"}) in actions


def test_users_unlock_unknown_name(cli_store: Store) -> None:
    r = runner.invoke(app, ["users", "unlock", "ghost"])
    assert r.exit_code == 2
    assert "no user 'ghost'" in r.output
    _no_traceback(r)


def test_audit_export_to_a_missing_folder_or_a_directory(cli_store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "a.csv"
    r = runner.invoke(app, ["audit", "export", "-o", str(missing)])
    assert r.exit_code == 2
    assert "cannot write" in r.output and "No such file or directory" in r.output
    _no_traceback(r)

    r = runner.invoke(app, ["audit", "export", "-o", str(tmp_path)])
    assert r.exit_code == 2
    assert "is a directory" in r.output
    _no_traceback(r)
    # Neither failed export was recorded as done.
    actions = cli_store.run(lambda s: [e.action for e in s.scalars(select(AuditEntry))])
    assert "export_audit" not in actions


NEW_PW = "a brand new sturdy passphrase"


def test_rtcc_users_set_password(cli_store: Store, tmp_path: Path) -> None:
    r = runner.invoke(app, ["users", "set-password", "dana"], input=f"{NEW_PW}\n{NEW_PW}\n")
    assert r.exit_code == 0, r.output
    assert NEW_PW not in r.output  # not echoed
    now = datetime.now(UTC)
    assert cli_store.run(lambda s: authenticate(s, "dana", NEW_PW, None, now=now)).ok
    assert not cli_store.run(lambda s: authenticate(s, "dana", PW, None, now=now)).ok

    r = runner.invoke(app, ["users", "set-password", "ghost", "--password", NEW_PW])
    assert r.exit_code == 2 and "no user 'ghost'" in r.output
    r = runner.invoke(app, ["users", "set-password", "dana", "--password", "dana"])
    assert r.exit_code == 2 and "Traceback" not in r.output
