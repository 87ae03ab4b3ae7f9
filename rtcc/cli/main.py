"""The ``rtcc`` command line: run the center, its workers, and its housekeeping.

Exit codes: 0 success, 1 a check failed (e.g. a broken audit chain), 2 bad
input or settings (the message names the key or argument), 3 a dependency is
unavailable (database, bus).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel

from rtcc.cli.output import err, fail, out
from rtcc.errors import ConfigError, RtccError, Unavailable
from rtcc.settings import Settings, load_settings

app = typer.Typer(
    name="rtcc",
    help="rtcc — open-source Real-Time Crime Center.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
devices_app = typer.Typer(help="Devices and their keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(devices_app, name="devices")


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False),
]


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(exc.message)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run_center(
    settings: Settings, *, demo: bool, processors: list[str] | None = None, with_api: bool = True
) -> None:
    from rtcc.app import PROCESSOR_KINDS, Center

    center = Center(
        settings,
        processors=processors if processors is not None else PROCESSOR_KINDS,
        with_api=with_api,
    )

    async def _main() -> None:
        try:
            await center.start()
        except BaseException:
            await center.stop()
            raise
        try:
            if with_api:
                _banner(center, demo)
            else:
                out.print(f"worker {processors} running on bus {settings.bus.engine}; Ctrl-C stops")
            await center.wait()
        finally:
            await center.stop()

    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
    except Unavailable as exc:
        fail(exc.message, 3)
    except RtccError as exc:
        fail(exc.message, 2)
    except OSError as exc:
        fail(
            f"{exc} (is another center running on port {settings.server.port}? setting server.port)",
            3,
        )


def _banner(center: Any, demo: bool) -> None:
    s: Settings = center.settings
    fa = center.first_admin
    lines = [f"[bold]Open[/]     {center.base_url}"]
    if fa is not None:
        cred = s.data_dir / "first-admin.txt"
        if fa.password is not None:
            lines.append(f"[bold]Sign in[/]  {fa.username} / {fa.password}")
            saved = f"; saved in {cred}" if cred.exists() else ""
            lines.append(f"         (first admin, created now{saved})")
        elif cred.exists():
            user, pw = [*cred.read_text().splitlines(), "", ""][:2]
            lines.append(f"[bold]Sign in[/]  {user} / {pw}  (from {cred})")
        else:
            lines.append(f"[bold]Sign in[/]  with an existing account (first admin: {fa.username})")
    store = "PostgreSQL" if s.database_url.startswith("postgresql") else f"SQLite {s.data_dir}/rtcc.db"
    lines.append(f"[bold]Store[/]    {store}")
    lines.append(f"[bold]Bus[/]      {'NATS JetStream' if s.bus.engine == 'nats' else 'in-process'}")
    if center.with_sim:
        lines.append("[bold]City[/]     simulated (Birmingham, AL) sending through device ingest")
    lines.append("Ctrl-C stops the center.")
    out.print(Panel("\n".join(lines), title="rtcc " + ("demo" if demo else "center"), expand=False))


@app.command()
def demo(
    port: Annotated[
        int | None, typer.Option(help="HTTP port [default: server.port, 8470].", show_default=False)
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind [default: server.host].", show_default=False)
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the SQLite file and media [default: data_dir].", show_default=False),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the center on embedded defaults (SQLite, in-process bus) with the simulated city.

    Options given here win over the settings (environment ``RTCC_SERVER__PORT`` etc. or ``--config``).
    """
    overrides: dict[str, Any] = {"sim": {"enabled": True}}
    if config is None and "RTCC_CONFIG" not in os.environ and "RTCC_ACOUSTIC__LEVELS_SPL" not in os.environ:
        # the simulated sensors report calibrated dB SPL: let the level-against-distance evidence count
        overrides["acoustic"] = {"levels_spl": True}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    server = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if server:
        overrides["server"] = server
    settings = settings_or_exit(config, **overrides)
    _demo_logging(settings.log_level)
    _run_center(settings, demo=True)


NOTIFY_LOGGER = "rtcc.cameras.notify"
"""The demo's notifier logs residents' mails (verification link and code) here, at INFO."""


def _demo_logging(level: str) -> None:
    """The demo's logging: WARNING by default (a quiet console), but residents' notifications shown.

    The demo has no mail server: without the notifier's INFO lines a person
    trying the community registration never sees the link or code to confirm it.
    """
    _setup_logging(level if level != "INFO" else "WARNING")
    if level == "INFO":
        logging.getLogger(NOTIFY_LOGGER).setLevel(logging.INFO)


@app.command()
def serve(
    config: ConfigOpt = None,
    api_only: Annotated[
        bool,
        typer.Option(
            "--api-only", help="Serve the API and dashboard only; run the processors as `rtcc worker KIND`."
        ),
    ] = False,
) -> None:
    """Run the center from settings (production: PostgreSQL + PostGIS, NATS JetStream)."""
    settings = settings_or_exit(config)
    if api_only and settings.bus.engine != "nats":
        fail(
            '--api-only needs the NATS bus (bus.engine = "nats"): on the in-process bus no worker '
            "process could take the events"
        )
    _setup_logging(settings.log_level)
    _run_center(settings, demo=False, processors=[] if api_only else None)


@app.command()
def worker(
    kind: Annotated[
        str,
        typer.Argument(
            help="recorder, health, ingest (the MQTT bridge), acoustic, plates, bodycam, cameras, "
            "operations or retention."
        ),
    ],
    config: ConfigOpt = None,
) -> None:
    """Run one kind of processor on its own; start more to scale out (JetStream queue groups).

    Acoustic is the exception: one acoustic processor takes the pulses (a bang's pulses must meet
    in one place); more of them stand by and take over when it stops.
    """
    from rtcc.app import PROCESSOR_KINDS

    if kind not in PROCESSOR_KINDS:
        fail(f"unknown worker kind {kind!r}; choose one of: {', '.join(PROCESSOR_KINDS)}")
    settings = settings_or_exit(config)
    if settings.bus.engine != "nats":
        fail(
            'workers run as separate processes only on the NATS bus; set bus.engine = "nats" '
            "(RTCC_BUS__ENGINE=nats) — the in-process bus runs every processor inside `rtcc serve`"
        )
    _setup_logging(settings.log_level)
    _run_center(settings, demo=False, processors=[kind], with_api=False)


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the API's OpenAPI document."""
    from rtcc.api import create_app

    doc = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if output:
        try:
            output.write_text(doc, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}", 2)
    else:
        sys.stdout.write(doc)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the Alembic migrations."""
    from rtcc.app import writable_dir
    from rtcc.store.migrate import current, upgrade

    settings = settings_or_exit(config)
    try:
        writable_dir(settings.data_dir, "data_dir")
    except RtccError as exc:
        fail(exc.message, 2)
    try:
        upgrade(settings.database_url, revision)
        out.print(f"database at revision [bold]{current(settings.database_url)}[/]")
    except Exception as exc:
        fail(f"migration failed: {exc}", 3)


@db_app.command("current")
def db_current(config: ConfigOpt = None) -> None:
    """Show the database's migration revision."""
    from rtcc.store.migrate import current, head

    settings = settings_or_exit(config)
    try:
        cur = current(settings.database_url)
    except Exception as exc:
        fail(f"cannot read the database: {exc}", 3)
    out.print(f"current: {cur or '(empty)'} · head: {head()}")


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="TOML settings file.")]) -> None:
    """Validate a settings file; names each offending key, its line and why."""
    try:
        s = load_settings(file)
    except ConfigError as exc:
        err.print(f"[bold red]{file}: invalid[/]", highlight=False)
        for line in exc.details or [exc.message]:
            err.print(f"  {line}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"{file}: ok (mode {s.mode.value}, store {s.database_url.split('@')[-1]}, bus {s.bus.engine})")


@config_app.command("docs")
def config_docs() -> None:
    """Print every setting with its units, bounds and description (Markdown)."""
    from rtcc.settings import settings_markdown

    sys.stdout.write(settings_markdown() + "\n")


from rtcc.cli import admin as _admin  # noqa: E402  (registers audit/users/devices commands)
from rtcc.cli.acoustic import acoustic_app  # noqa: E402
from rtcc.cli.plates import register as _register_plates  # noqa: E402
from rtcc.cli.sensor import register as _register_sensor  # noqa: E402

_ = _admin
app.add_typer(acoustic_app, name="acoustic")
_register_sensor(app)
_register_plates(app)
for _name in ("hotlist", "retention", "cameras", "bodycam", "report", "analytics"):
    importlib.import_module(f"rtcc.cli.{_name}").register(app)


def main() -> None:
    app()
