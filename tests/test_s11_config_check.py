"""``rtcc config check`` / ``rtcc serve -c`` on a file that is not UTF-8 TOML, or a directory.

Audit finding (session 11): ``rtcc config check FILE`` on the bytes ``\\xff\\xfe\\x00`` crashed with
a UnicodeDecodeError traceback (from ``load_settings``), and ``rtcc config check /tmp`` said the
settings file "does not exist".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.errors import ConfigError
from rtcc.settings import load_settings

runner = CliRunner()


@pytest.fixture
def not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "utf16.toml"
    path.write_bytes(b"\xff\xfe\x00")
    return path


def test_load_settings_names_the_fault(not_utf8: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(not_utf8)
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path)


def test_config_check_is_a_clear_error(not_utf8: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["config", "check", str(not_utf8)])
    assert r.exit_code == 2, r.output  # an uncaught exception would be exit code 1
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "not UTF-8" in r.stderr
    r = runner.invoke(app, ["config", "check", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.stderr and "does not exist" not in r.stderr


def test_serve_with_a_bad_file_fails_the_same_way(not_utf8: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTCC_CONFIG", raising=False)
    r = runner.invoke(app, ["serve", "-c", str(not_utf8)])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "not UTF-8" in r.stderr
