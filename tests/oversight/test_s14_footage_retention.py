"""Delivered footage clips are deleted after ``retention.footage_days``, unless an open case links them.

Before, a clip a resident's camera delivered was kept for ever (only a withdrawal deleted it): video
of a street and the people in it, outside every retention rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.oversight.retention import build as build_retention
from rtcc.store.migrate import upgrade
from rtcc.store.tables_cameras import FootageRequestRow
from tests.cameras.conftest import mp4_clip
from tests.cameras.helpers import LOG, register_verified_active, store_of
from tests.conftest import StartCenter


@pytest.mark.parametrize("backend", ["embedded"])
async def test_old_clips_go_case_clips_stay_until_the_case_closes(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG, retention={"footage_days": 30})
    admin = await center.login("admin")
    anon = center.http
    try:
        cam, manage = await register_verified_active(center, admin, "owner@example.org")
        w0 = datetime.now(UTC).replace(microsecond=0)
        ids = []
        for ref in ("C-1", "C-2", "C-3"):
            req = {
                "camera_id": cam,
                "incident_ref": ref,
                "window_start": w0.isoformat(),
                "window_end": (w0 + timedelta(seconds=1)).isoformat(),
                "reason": "burglary next door",
            }
            r = await admin.post("/api/v1/footage-requests", json=req)
            assert r.status_code == 201, r.text
            fr = r.json()["id"]
            r = await anon.post(
                f"/api/v1/community/manage/{manage}/requests/{fr}/clip",
                content=mp4_clip(),
                headers={"content-type": "video/mp4"},
            )
            assert r.status_code == 200, r.text
            ids.append(fr)
        old, in_case, recent = ids
        case = (await admin.post("/api/v1/cases", json={"number": "C-2", "title": "Burglary"})).json()
        link = {"ref_type": "footage", "ref_id": in_case}
        r = await admin.post(f"/api/v1/cases/{case['id']}/links", json=link)
        assert r.status_code == 200, r.text

        def age(s: object, rid: str, days: float) -> None:
            row = s.get(FootageRequestRow, UUID(rid))  # type: ignore[attr-defined]
            row.responded_at = datetime.now(UTC) - timedelta(days=days)

        await store_of(center).write(lambda s: age(s, old, 31))
        await store_of(center).write(lambda s: age(s, in_case, 31))
        await store_of(center).write(lambda s: age(s, recent, 29))

        retention = build_retention(center.center)
        dry = await retention.run(dry_run=True)
        assert (dry.footage_clips_deleted, dry.footage_clips_kept_for_cases) == (1, 1)
        assert (await admin.get(f"/api/v1/footage-requests/{old}/clip")).status_code == 200  # dry: kept

        rep = await retention.run()
        assert (rep.footage_clips_deleted, rep.footage_clips_kept_for_cases, rep.footage_days) == (1, 1, 30)
        assert (await admin.get(f"/api/v1/footage-requests/{old}/clip")).status_code == 404
        assert (await admin.get(f"/api/v1/footage-requests/{in_case}/clip")).status_code == 200
        assert (await admin.get(f"/api/v1/footage-requests/{recent}/clip")).status_code == 200
        listed = {r["id"]: r for r in (await admin.get("/api/v1/footage-requests")).json()["items"]}
        assert listed[old]["status"] == "purged" and listed[old]["clip_sha256"]  # the record stays
        assert len(list((center.settings.data_dir / "media" / "footage").rglob("*.mp4"))) == 2

        # the purge is audited with its counts; the transparency page sums them
        audit = (await admin.get("/api/v1/audit", params={"action": "retention_purge"})).json()["items"]
        assert audit[0]["details"]["footage_clips_deleted"] == 1
        page = (await anon.get("/api/v1/transparency")).json()
        assert page["plates"]["retention"]["footage_clips_deleted"] == 1
        assert page["plates"]["retention"]["footage_days"] == 30

        # the case closes: the next run deletes its clip too
        r = await admin.post(f"/api/v1/cases/{case['id']}/close", json={"reason": "closed: suspect charged"})
        assert r.status_code == 200, r.text
        rep = await retention.run()
        assert (rep.footage_clips_deleted, rep.footage_clips_kept_for_cases) == (1, 0)
        assert (await admin.get(f"/api/v1/footage-requests/{in_case}/clip")).status_code == 404
    finally:
        await admin.aclose()


def test_cli_summary_names_footage_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTCC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RTCC_SECURITY__SECRET_KEY", "cli-test-secret-" + "r" * 30)
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    upgrade(f"sqlite:///{tmp_path / 'rtcc.db'}")
    r = CliRunner().invoke(app, ["retention", "run", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "delivered footage clips older than 90 days" in r.output
