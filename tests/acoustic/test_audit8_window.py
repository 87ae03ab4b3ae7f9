"""The ingest window is the setting ``server.max_event_age_s`` (needs rtcc/app.py to pass it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.acoustic.test_agent import add_device, clip
from tests.acoustic.test_audit8_agent import _app, _args
from tests.conftest import StartCenter


@pytest.mark.parametrize("backend", ["embedded"])
async def test_the_ingest_window_is_a_setting(start_center: StartCenter, tmp_path: Path) -> None:
    run = await start_center(server={"max_event_age_s": 3600})
    admin = await run.login("admin")
    key = await add_device(admin, "ac-0185")
    args = _args("ac-0185", run.url, tmp_path / "sp", clip(tmp_path), "--clock-offset-s", "-7200")
    r = await asyncio.to_thread(CliRunner().invoke, _app(), [*args, "--key", key])
    assert r.exit_code == 2, r.output
    assert "3 refused" in r.stderr
    kept = [json.loads(f.read_text()) for f in (tmp_path / "sp" / "refused").glob("*.json")]
    assert len(kept) == 3
    assert all(
        "older than the ingest window (3600 s, setting server.max_event_age_s)" in k["reason"] for k in kept
    )
    await admin.aclose()
