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


def test_an_environment_value_is_blamed_on_its_variable_not_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production audit (session 12): ``RTCC_SERVER__PORT=abc`` was reported at the file's line."""
    toml = tmp_path / "rtcc.toml"
    toml.write_text('[server]\nport = 8000\n[database]\npool_size = 4\n')
    monkeypatch.setenv("RTCC_SERVER__PORT", "abc")
    with pytest.raises(ConfigError) as exc:
        load_settings(toml)
    assert "server.port (environment RTCC_SERVER__PORT)" in exc.value.message
    assert "rtcc.toml:2" not in exc.value.message


@pytest.mark.parametrize(
    ("section", "key", "value", "says"),
    [
        ("database", "url", "mysql://u@h/db", "PostgreSQL"),
        ("bus", "nats_url", "http://127.0.0.1:4222", "not a NATS server address"),
        ("bus", "nats_url", "nats://a:4222, http://b:1", "'http://b:1'"),
        ("server", "public_url", "not a url", "http(s)://"),
    ],
)
def test_values_the_center_cannot_use_are_refused_by_config_check(
    tmp_path: Path, section: str, key: str, value: str, says: str
) -> None:
    """`rtcc config check` said ok to a MySQL URL (then `serve` printed a 91-line traceback)."""
    toml = tmp_path / "rtcc.toml"
    toml.write_text(f'[{section}]\n{key} = "{value}"\n')
    r = CliRunner().invoke(app, ["config", "check", str(toml)])
    assert r.exit_code == 2
    assert f"{section}.{key} ({toml}:2): " in r.output and says in r.output
    assert "Value error" not in r.output


def test_good_addresses_pass(tmp_path: Path) -> None:
    toml = tmp_path / "rtcc.toml"
    toml.write_text(
        '[database]\nurl = "postgresql+psycopg://u:p@db/rtcc"\n'
        '[bus]\nnats_url = "nats://a:4222,tls://b:4222"\n'
        '[server]\npublic_url = "https://rtcc.example.org/"\n'
    )
    s = load_settings(toml)
    assert s.bus.nats_url.startswith("nats://") and s.server.public_url == "https://rtcc.example.org/"
