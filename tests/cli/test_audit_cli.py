"""`rtcc audit verify` catches an edited, inserted or deleted entry; `rtcc audit export` writes CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.oversight.audit import append_audit
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade

SECRET = "cli-test-secret-" + "z" * 30
runner = CliRunner()


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", SECRET)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    store = Store(url)
    for i in range(20):
        store.run(
            lambda s, i=i: append_audit(
                s,
                secret=SECRET.encode(),
                actor=f"analyst{i % 3}",
                role="analyst",
                action="search_plates",
                resource="plate_reads",
                record_id=None,
                outcome="ok",
                purpose=f"case 2026-{i:04d}: stolen vehicle",
                details={"terms": f"ABC{i}"},
            )
        )
    return store


def test_verify_intact_then_edited(audited: Store) -> None:
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0, r.output
    assert "intact" in r.output and "20" in r.output
    with audited.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 7"))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1
    assert "broken at entry 7" in r.output and "edited" in r.output


def test_verify_catches_deletion(audited: Store) -> None:
    with audited.engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq = 12"))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1
    assert "deleted" in r.output


def test_verify_catches_insertion(audited: Store) -> None:
    with audited.engine.begin() as c:
        row = c.execute(text("SELECT * FROM audit_log WHERE seq = 20")).mappings().one()
        forged = dict(row)
        forged.update(seq=21, actor="intruder", prev_hash=row["hash"], hash="f" * 64)
        cols = ", ".join(forged)
        c.execute(
            text(f"INSERT INTO audit_log ({cols}) VALUES ({', '.join(':' + k for k in forged)})"), forged
        )
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1
    assert "21" in r.output


def test_export_csv(audited: Store, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    r = runner.invoke(app, ["audit", "export", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 20
    assert rows[3]["purpose"].startswith("case 2026-0003")
    # the export itself is audited, and the chain stays intact
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "21 entries" in r.output


def test_verify_on_a_database_never_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 3
    assert "rtcc db upgrade" in r.output
