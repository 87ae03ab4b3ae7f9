"""Housekeeping commands that work on the store directly: audit, users, devices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import sqlalchemy.exc
import typer
from rich.progress import Progress
from sqlalchemy.orm import Session

from rtcc.cli.main import ConfigOpt, audit_app, devices_app, settings_or_exit, users_app
from rtcc.cli.output import err, fail, out
from rtcc.errors import RtccError
from rtcc.roles import DeviceType, Role
from rtcc.settings import Settings
from rtcc.store.db import Store


def _store(settings: Settings) -> Store:
    from rtcc.store.migrate import check_current

    try:
        check_current(settings.database_url)
    except RtccError as exc:
        fail(exc.message, 3)
    return Store(settings.database_url)


T = TypeVar("T")


def _append_cli_audit(session: Session, settings: Settings, action: str, details: dict[str, object]) -> None:
    """Append the CLI's audit entry within ``session``'s transaction."""
    from rtcc.oversight.audit import append_audit

    append_audit(
        session,
        secret=settings.security.secret_key.encode(),
        actor="cli",
        role=Role.admin.value,
        action=action,
        resource="cli",
        outcome="ok",
        details=details,
    )


def _db_failed(exc: sqlalchemy.exc.DBAPIError, what: str) -> NoReturn:
    """Exit 3 with a message (not a traceback) when the database refused a write."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    first = (text.splitlines() or [type(exc).__name__])[0][:200]
    fail(
        f"{what} failed: the database refused the write ({first}); "
        "another process may hold it (a running center, a retention run): try again",
        3,
    )


def _run_audited(
    store: Store,
    settings: Settings,
    action: str,
    do: Callable[[Session], T],
    details: Callable[[T], dict[str, object]],
) -> T:
    """Run ``do`` and append its audit entry in ONE transaction: a failed audit undoes the action.

    ``details`` builds the entry's details from ``do``'s result. A database refusal (locked, a
    conflicting append) exits 3 with a message, the action rolled back.
    """

    def _both(s: Session) -> T:
        result = do(s)
        _append_cli_audit(s, settings, action, details(result))
        return result

    try:
        return store.run(_both)
    except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
        _db_failed(exc, action.replace("_", " "))


def _audit_cli(store: Store, settings: Settings, action: str, details: dict[str, object]) -> None:
    """Audit a CLI action that changed nothing in the store (an export, a report)."""
    try:
        store.run(lambda s: _append_cli_audit(s, settings, action, details))
    except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
        _db_failed(exc, f"recording {action.replace('_', ' ')} in the audit log")


@audit_app.command("verify")
def audit_verify(config: ConfigOpt = None) -> None:
    """Check the hash chain; exit 1 and name the first bad entry when it was tampered with."""
    from rtcc.oversight.audit import verify_chain

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        with Progress(transient=True, console=err) as progress:
            progress.add_task("verifying the audit chain", total=None)
            report = store.run(lambda s: verify_chain(s, settings.security.secret_key.encode()))
    finally:
        store.close()
    if report.ok:
        out.print(f"[green]audit chain intact[/]: {report.checked} entries")
        return
    err.print(
        f"[bold red]audit chain broken[/] at entry {report.first_bad_seq} ({report.kind}): {report.message}",
        highlight=False,
    )
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    config: ConfigOpt = None,
) -> None:
    """Write the audit log as CSV."""
    from rtcc.oversight.audit import export_csv

    settings = settings_or_exit(config)
    if output.is_dir():
        fail(f"{output} is a directory; give a file name, e.g. {output / 'audit.csv'}")
    store = _store(settings)
    try:
        try:
            with output.open("w", newline="", encoding="utf-8") as fh:
                n = store.run(lambda s: export_csv(s, fh))
        except OSError as exc:
            # Missing folder, no permission, disk full: say so instead of a traceback.
            fail(f"cannot write {output}: {exc.strerror or exc}")
        _audit_cli(store, settings, "export_audit", {"file": str(output)})
    finally:
        store.close()
    out.print(f"wrote {n} entries to {output}")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, supervisor, analyst, officer or auditor.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    display_name: Annotated[str, typer.Option()] = "",
    config: ConfigOpt = None,
) -> None:
    """Create an account."""
    from rtcc.oversight.accounts import create_user

    if role is Role.public:
        fail("'public' is not a role an account can hold")
    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        _run_audited(
            store,
            settings,
            "create_user",
            lambda s: create_user(s, username, password, role, display_name),
            lambda _: {"username": username, "role": role.value},
        )
    except RtccError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"created {role.value} [bold]{username}[/]")


@users_app.command("unlock")
def users_unlock(username: str, config: ConfigOpt = None) -> None:
    """Lift a lockout after failed logins (and reset the failed-login counter)."""
    from rtcc.oversight.accounts import unlock

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        name = _run_audited(
            store, settings, "unlock_user", lambda s: unlock(s, username).username, lambda n: {"username": n}
        )
    except RtccError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"unlocked [bold]{name}[/]")


@users_app.command("set-password")
def users_set_password(
    username: str,
    password: Annotated[
        str,
        typer.Option(
            prompt="New password",
            hide_input=True,
            confirmation_prompt=True,
            help="Asked for when not given (not echoed).",
        ),
    ],
    config: ConfigOpt = None,
) -> None:
    """Set a new password for someone who forgot theirs (an admin who cannot sign in, too).

    Ends the account's sessions and lifts a lockout. The person should then
    change it themselves (the dashboard's "Change password")."""
    from rtcc.oversight.accounts import set_password

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        name = _run_audited(
            store,
            settings,
            "set_password",
            lambda s: set_password(s, username, password).username,
            lambda n: {"username": n},
        )
    except RtccError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"new password set for [bold]{name}[/]; their sessions ended")


@devices_app.command("add")
def devices_add(
    device_id: str,
    type: Annotated[
        DeviceType, typer.Option("--type", help="acoustic_sensor, plate_camera, bodycam, camera.")
    ],
    lat: Annotated[float, typer.Option(help="Latitude, degrees.")],
    lon: Annotated[float, typer.Option(help="Longitude, degrees.")],
    name: Annotated[str, typer.Option()] = "",
    config: ConfigOpt = None,
) -> None:
    """Register a device and print its key (shown once)."""
    from rtcc.oversight.device_keys import register_device

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        _, key = _run_audited(
            store,
            settings,
            "add_device",
            lambda s: register_device(s, device_id, type, name, lat, lon, None, {}),
            lambda _: {"device": device_id, "type": type.value},
        )
    except RtccError as exc:
        fail(exc.message)
    finally:
        store.close()
    out.print(f"device [bold]{device_id}[/] registered; key (shown once): {key}")
