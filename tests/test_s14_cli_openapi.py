"""``rtcc openapi -o`` into a folder that does not exist is a message and exit 2, not a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from rtcc.cli.main import app


def test_openapi_to_a_missing_folder_is_a_message(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["openapi", "-o", str(tmp_path / "nope" / "x.json")])
    assert r.exit_code == 2
    assert "cannot write" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["openapi", "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 0 and (tmp_path / "x.json").read_text().startswith("{")
