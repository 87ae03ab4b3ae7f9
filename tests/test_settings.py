"""Settings: environment + TOML, unknown keys rejected with their line, placeholders refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rtcc.cli.main import app
from rtcc.errors import ConfigError
from rtcc.settings import Settings, load_settings

runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rtcc.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_embedded() -> None:
    s = Settings()
    assert s.bus.engine == "memory"
    assert s.database_url.startswith("sqlite:///")
    assert s.security.session_idle_minutes == 30
    assert s.security.lockout_attempts == 5 and s.security.lockout_minutes == 10


def test_toml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, '[server]\nport = 9000\n[bus]\nengine = "nats"\n')
    monkeypatch.setenv("RTCC_SERVER__HOST", "0.0.0.0")
    s = load_settings(p)
    assert s.server.port == 9000 and s.server.host == "0.0.0.0" and s.bus.engine == "nats"
    monkeypatch.setenv("RTCC_SERVER__PORT", "9100")  # environment beats the file
    assert load_settings(p).server.port == 9100


def test_unknown_key_named_with_line(tmp_path: Path) -> None:
    p = write(tmp_path, '[server]\nport = 9000\n\n[bus]\nengnie = "nats"\n')
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    assert "bus.engnie" in ei.value.message
    assert f"{p}:5" in ei.value.message
    assert "unknown key" in ei.value.message


def test_bounds_and_types(tmp_path: Path) -> None:
    p = write(tmp_path, "[server]\nport = 70000\n[security]\nlockout_attempts = 'many'\n")
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    msg = ei.value.message
    assert "server.port" in msg and "65535" in msg
    assert "security.lockout_attempts" in msg


def test_placeholder_secret_refused_in_production(tmp_path: Path) -> None:
    p = write(tmp_path, 'mode = "production"\n[security]\nsecret_key = "change-me"\n')
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    assert "secret_key" in ei.value.message
    p = write(tmp_path, 'mode = "production"\n[security]\nsecret_key = "' + "k" * 40 + '"\n')
    assert load_settings(p).mode.value == "production"


def test_config_check_cli(tmp_path: Path) -> None:
    good = write(tmp_path, "[server]\nport = 9000\n")
    r = runner.invoke(app, ["config", "check", str(good)])
    assert r.exit_code == 0, r.output
    assert "ok" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[sim]\nsensors_per_sq_mile = 0\nfoo = 1\n")
    r = runner.invoke(app, ["config", "check", str(bad)])
    assert r.exit_code == 2
    assert "sim.sensors_per_sq_mile" in r.output and "sim.foo" in r.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nport=")
    r = runner.invoke(app, ["config", "check", str(broken)])
    assert r.exit_code == 2 and "not valid TOML" in r.output
    r = runner.invoke(app, ["config", "check", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_acoustic_thresholds_must_be_ordered(tmp_path: Path) -> None:
    p = write(tmp_path, "[acoustic]\nalert_above = 0.4\nreview_above = 0.6\n")
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    assert "review_above" in ei.value.message
