"""`rtcc worker` refuses what it cannot do, with a message naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_worker_refuses_the_in_process_bus(tmp_path: Path) -> None:
    env = {**os.environ, "RTCC_DATA_DIR": str(tmp_path)}
    env.pop("RTCC_BUS__ENGINE", None)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "rtcc"), "worker", "recorder"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "bus.engine" in r.stderr


def test_worker_unknown_kind(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(Path(sys.executable).parent / "rtcc"), "worker", "juggler"],
        env={**os.environ, "RTCC_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "recorder" in r.stderr


def test_api_only_refuses_the_in_process_bus(tmp_path: Path) -> None:
    """`rtcc serve --api-only` leaves the processors to workers, which need the NATS bus."""
    env = {**os.environ, "RTCC_DATA_DIR": str(tmp_path)}
    env.pop("RTCC_BUS__ENGINE", None)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "rtcc"), "serve", "--api-only"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "--api-only" in r.stderr and "bus.engine" in r.stderr
