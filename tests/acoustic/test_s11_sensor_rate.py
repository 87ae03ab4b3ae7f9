"""``rtcc sensor --stdin --rate 0``: a clear error, not a ZeroDivisionError traceback.

Audit finding (session 11): ``head -c 48000 /dev/zero | rtcc sensor --stdin --rate 0 …`` exited 1
with a traceback from the summary line (samples / rate), hiding the real error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rtcc.cli.sensor import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep `sensor` a named sub-command
    return app


def _args(tmp_path: Path, rate: int) -> list[str]:
    return [
        "sensor",
        "--device-id",
        "ac-s11",
        "--key",
        "not-used",
        "--lat",
        "33.52",
        "--lon",
        "-86.81",
        "--stdin",
        "--rate",
        str(rate),
        "--gpsd",
        "none",
        "--center",
        "http://127.0.0.1:9",  # never reached: nothing is detected
        "--spool-dir",
        str(tmp_path / "spool"),
        "--drain-timeout-s",
        "0",
    ]


@pytest.mark.parametrize("rate", [0, -12000])
def test_a_rate_that_is_no_rate_is_refused_up_front(tmp_path: Path, rate: int) -> None:
    r = CliRunner().invoke(_app(), _args(tmp_path, rate), input=bytes(48000))
    assert r.exit_code == 2, r.output  # an uncaught exception would be exit code 1
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert f"--rate {rate}" in r.stderr and "positive" in r.stderr
    assert not (tmp_path / "spool").exists()  # refused before anything is opened


def test_a_rate_the_detector_refuses_shows_its_real_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(_app(), _args(tmp_path, 100), input=bytes(48000))
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "sample rate 100 Hz is not supported" in r.stderr
