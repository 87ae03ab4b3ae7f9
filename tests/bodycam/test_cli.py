"""``rtcc bodycam simulate``: provisions body cams through the API and obeys commands, in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.roles import Role
from tests.bodycam.conftest import MakeRig, Rig
from tests.conftest import PASSWORD
from tests.helpers import eventually

RTCC = str(Path(sys.executable).parent / "rtcc")


def test_simulate_refuses_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["bodycam", "simulate", "--units", "2"])
    assert r.exit_code == 2 and "--keys" in r.output
    bad = tmp_path / "keys.json"
    bad.write_text("[1, 2]")
    r = runner.invoke(app, ["bodycam", "simulate", "--keys", str(bad)])
    assert r.exit_code == 2 and "JSON object" in r.output
    r = runner.invoke(app, ["bodycam", "simulate", "--provision"], env={"RTCC_PASSWORD": ""})
    assert r.exit_code == 2 and "password" in r.output


@pytest.mark.parametrize("backend", ["embedded"])
async def test_simulator_process_provisions_and_acknowledges(make_rig: MakeRig, tmp_path: Path) -> None:
    rig: Rig = await make_rig()
    keys = tmp_path / "cams.json"
    proc = await asyncio.create_subprocess_exec(
        RTCC,
        "bodycam",
        "simulate",
        "--center",
        rig.run.url,
        "--provision",
        "--units",
        "3",
        "--keys",
        str(keys),
        "--ack-delay",
        "0.05",
        "--heartbeat-s",
        "2",
        env={**os.environ, "RTCC_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        admin = rig.clients[Role.admin]

        async def online() -> list[dict[str, Any]] | None:
            r = await admin.get("/api/v1/bodycams")
            items = [u for u in r.json()["items"] if u["last_seen_at"] is not None]
            return items if len(items) == 3 else None

        units = await eventually(online, timeout=120, what="3 simulated body cams heard from")
        assert {u["device_id"] for u in units} == {"bwc-sim-0001", "bwc-sim-0002", "bwc-sim-0003"}
        assert set(json.loads(keys.read_text())) == {u["device_id"] for u in units}
        r = await admin.post(
            "/api/v1/bodycams/bwc-sim-0002/commands", json={"command": "start_recording", "reason": "drill"}
        )
        cid = r.json()["id"]

        async def recording() -> bool:
            r = await admin.get("/api/v1/bodycams/commands")
            acked = any(c["id"] == cid and c["status"] == "acked" for c in r.json()["items"])
            r = await admin.get("/api/v1/bodycams")
            rec = [u["device_id"] for u in r.json()["items"] if u["recording"]]
            return acked and rec == ["bwc-sim-0002"]

        await eventually(recording, timeout=120, what="simulated device acknowledged and shows recording")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            _, stderr = await proc.communicate()
            raise AssertionError(f"no exit 30 s after Ctrl-C; stderr: {stderr.decode()[-2000:]}") from None
    assert proc.returncode == 0, stderr.decode()
