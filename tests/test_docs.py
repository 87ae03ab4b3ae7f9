"""Docs and contracts can't drift: settings, OpenAPI, CLI commands, events."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rtcc.api import create_app
from rtcc.cli.main import app as cli
from rtcc.events import EVENT_TYPES, LIVE_ROLES
from rtcc.settings import Section, Settings, settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    def walk(model: type[Section] | type[Settings], prefix: str) -> None:
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, Section):
                walk(ann, f"{prefix}{name}.")
            else:
                assert info.description, f"setting {prefix}{name} has no description"

    walk(Settings, "")
    committed = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed.strip() == settings_markdown().strip(), (
        "docs/settings.md is stale: run `rtcc config docs > docs/settings.md`"
    )


def test_openapi_matches_committed_copy() -> None:
    committed = json.loads((ROOT / "rtcc" / "api" / "openapi.json").read_text(encoding="utf-8"))
    current = json.loads(json.dumps(create_app().openapi(), sort_keys=True))
    assert committed == current, "rtcc/api/openapi.json is stale: run `rtcc openapi -o rtcc/api/openapi.json`"


def test_openapi_cli_prints_the_document() -> None:
    r = CliRunner().invoke(cli, ["openapi"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["info"]["title"] == "rtcc"
    assert "/api/v1/ingest/events" in doc["paths"]


def test_readme_names_every_cli_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in (
        "rtcc demo",
        "rtcc serve",
        "rtcc worker",
        "rtcc db upgrade",
        "rtcc config check",
        "rtcc openapi",
        "rtcc audit verify",
        "rtcc audit export",
    ):
        assert command in readme, f"README does not mention `{command}`"
    assert readme.index("scripts/run.sh") < readme.index("scripts/test.sh") < 1200


def test_every_event_type_has_a_live_audience() -> None:
    assert set(EVENT_TYPES) == set(LIVE_ROLES)
    for name, cls in EVENT_TYPES.items():
        assert cls.__doc__, f"event {name} has no docstring"
