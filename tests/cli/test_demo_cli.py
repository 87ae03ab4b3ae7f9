"""`rtcc demo` as a user runs it: a real process, settings from the environment, the address printed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_takes_its_port_and_data_dir_from_the_settings(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "RTCC_SERVER__PORT": str(port),
        "RTCC_DATA_DIR": str(tmp_path / "city"),
        "COLUMNS": "200",
    }
    for key in ("RTCC_BUS__ENGINE", "RTCC_DATABASE__URL", "RTCC_CONFIG"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "rtcc"), "demo"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = None
        deadline = time.monotonic() + 90  # a bound on waiting, not a speed assertion
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, "no answer on the configured port"
        assert (tmp_path / "city" / "rtcc.db").is_file()
        assert (tmp_path / "city" / "first-admin.txt").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/" in output  # the banner names where to open it
    assert proc.returncode == 0, output[-2000:]
