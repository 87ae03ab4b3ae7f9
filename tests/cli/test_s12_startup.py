"""A center that cannot start says why, before it starts anything (production audit, session 12).

A port in use printed uvicorn's error and ~190 lines of task tracebacks after the processors had
joined their consumers; a data_dir under a regular file was blamed on the port ("is another center
running?") by `rtcc serve` and was a traceback in `rtcc db upgrade`; a bad plates.media_dir was found
only when the first camera uploaded (500 after the plate was read).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

RTCC = str(Path(sys.executable).parent / "rtcc")


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("RTCC_BUS__ENGINE", None)
    return subprocess.run([RTCC, *args], env=full, capture_output=True, text=True, timeout=120)


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _run(["serve"], RTCC_DATA_DIR=str(tmp_path), RTCC_SERVER__PORT=str(port))
    assert r.returncode == 3
    assert f"127.0.0.1:{port}" in r.stderr and "server.port" in r.stderr
    assert "Traceback" not in r.stderr and "Task exception" not in r.stderr
    assert not (tmp_path / "rtcc.db").exists()  # nothing was started


def test_an_unusable_data_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    bad = str(tmp_path / "file" / "data")
    for args in (["serve"], ["db", "upgrade"]):
        r = _run(args, RTCC_DATA_DIR=bad, RTCC_SERVER__PORT="0")
        assert r.returncode == 2, (args, r.stderr)
        assert "data_dir" in r.stderr and "not a writable directory" in r.stderr
        assert "Traceback" not in r.stderr and "another center" not in r.stderr


def test_an_unusable_media_dir_is_found_at_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = _run(
        ["serve"],
        RTCC_DATA_DIR=str(tmp_path / "data"),
        RTCC_PLATES__MEDIA_DIR=str(tmp_path / "file" / "media"),
        RTCC_SERVER__PORT="0",
    )
    assert r.returncode == 2
    assert "plates.media_dir" in r.stderr and "Traceback" not in r.stderr
