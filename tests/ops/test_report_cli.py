"""``rtcc report --month``: HTML and PDF with plots; a bad month is refused with exit 2."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.errors import ValidationFailed
from rtcc.ops.report import month_range
from rtcc.store.db import Store
from rtcc.store.migrate import upgrade
from rtcc.store.tables import AuditEntry
from rtcc.store.tables_ops import AlertRow, Case, OutcomeRow
from tests.ops.test_packets import _incident_row

SECRET = "report-test-secret-" + "r" * 30
runner = CliRunner()


def test_month_range() -> None:
    start, end = month_range("2026-02", today=date(2026, 11, 21))
    assert (start, end) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert month_range("2025-12", today=date(2026, 1, 5))[1] == datetime(2026, 1, 1, tzinfo=UTC)
    for bad in (
        "2026-13",
        "2026-00",
        "26-01",
        "2026/01",
        "2026-1",
        "1999-12",
        "2026-12",
        "'; DROP TABLE alerts",
    ):
        with pytest.raises(ValidationFailed):
            month_range(bad, today=date(2026, 11, 21))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", SECRET)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    url = f"sqlite:///{tmp_path / 'rtcc.db'}"
    upgrade(url)
    s = Store(url)
    yield s  # type: ignore[misc]
    s.close()


def _seed(store: Store, month_start: datetime) -> None:
    case_id = uuid.uuid4()
    rows: list[object] = [
        Case(id=case_id, number="R-1", title="Shots, Main St", description="", status="open", opened_by="a",
             opened_at=month_start),
    ]  # fmt: skip
    for i in range(12):
        at = month_start + timedelta(days=i % 5, hours=i)
        aid = uuid.uuid4()
        rows.append(
            AlertRow(id=aid, event_id=uuid.uuid4(), occurred_at=at, source="acoustic", kind="gunshot",
                     severity="critical", title=f"Gunfire near PLATE{i}", lat=33.5 + i * 1e-3, lon=-86.8,
                     ref_id=None, status="new", history=[], created_at=at, updated_at=at)
        )  # fmt: skip
        rows.append(_incident_row(at, (33.5 + i * 1e-3, -86.8 - i * 5e-4)))
        if i < 3:
            rows.append(
                OutcomeRow(case_id=case_id, ref_type="alert", ref_id=str(aid), category="arrest" if i else
                           "recovered_gun", note="", recorded_by="a", recorded_at=at)
            )  # fmt: skip
    store.run(lambda s: s.add_all(rows))


def test_report_writes_html_and_pdf(store: Store, tmp_path: Path) -> None:
    today = datetime.now(UTC)
    month = f"{today:%Y-%m}"
    start, _ = month_range(month)
    _seed(store, start)
    out = tmp_path / "reports"
    r = runner.invoke(app, ["report", "--month", month, "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / f"rtcc-report-{month}.html").read_text(encoding="utf-8")
    pdf = (out / f"rtcc-report-{month}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 4  # cover + three plots
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', html)
    assert imgs == ["Alerts per day", "Outcomes", "Hotspot map"]
    assert "<th>Alerts</th><td>12</td>" in html
    assert "success in 1 case since" in html
    assert "PLATE" not in html  # alert titles never reach a report
    # the report is audited
    entries = store.run(
        lambda s: list(s.scalars(select(AuditEntry).where(AuditEntry.action == "report_month")))
    )
    assert len(entries) == 1 and entries[0].details["month"] == month


def test_report_of_an_empty_month(store: Store, tmp_path: Path) -> None:
    r = runner.invoke(app, ["report", "--month", "2024-02", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "<th>Alerts</th><td>0</td>" in (tmp_path / "rtcc-report-2024-02.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("month", ["2026-13", "last month", "2026-1", "9999-01"])
def test_bad_month_exits_2_with_a_message(store: Store, tmp_path: Path, month: str) -> None:
    r = runner.invoke(app, ["report", "--month", month, "-o", str(tmp_path / "x")])
    assert r.exit_code == 2
    assert "error:" in r.output and f"--month {month!r}" in r.output
    assert not (tmp_path / "x").exists()


def test_output_that_is_a_file_is_refused(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me", encoding="utf-8")
    r = runner.invoke(app, ["report", "--month", "2024-02", "-o", str(target)])
    assert r.exit_code == 2 and "is a file" in r.output
    assert target.read_text(encoding="utf-8") == "keep me"
