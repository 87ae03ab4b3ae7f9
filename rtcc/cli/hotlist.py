"""``rtcc hotlist``: import hotlist files and list the sources.

``rtcc hotlist import --source NAME --format ncic|csv FILE`` replaces the
source's entries in one transaction (a running center picks the new list up
within ``plates.hotlist_refresh_s`` seconds). Bad lines are printed on stderr
with their line numbers and the rest imported; the exit code is then 2. A
file with no usable line changes nothing, nor does a binary file or a CSV with a quote that is
never closed (exit 2, the line named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from rtcc.cli.output import err, fail, out

hotlist_app = typer.Typer(
    help="Hotlists: import NCIC extracts and state CSVs, list sources.", no_args_is_help=True
)

MAX_ERRORS_PRINTED = 200


@hotlist_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="The hotlist file.", show_default=False)],
    source: Annotated[
        str, typer.Option("--source", "-s", help="Source name, e.g. ncic or al-state.", show_default=False)
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="ncic (fixed width) or csv (with a header).", show_default=False),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False
        ),
    ] = None,
) -> None:
    """Replace a hotlist source with the entries of FILE (atomically); bad lines on stderr."""
    import re

    from rtcc.cli.admin import _run_audited, _store
    from rtcc.cli.main import settings_or_exit
    from rtcc.plates.hotlist_import import HotlistRefused, parse_file
    from rtcc.plates.hotlists import BOLO_SOURCE, SOURCE_NAME_PATTERN, replace_source

    if fmt not in ("ncic", "csv"):
        fail(f"--format must be ncic or csv, not {fmt!r}")
    if not re.match(SOURCE_NAME_PATTERN, source) or source == BOLO_SOURCE:
        fail(f"--source {source!r}: use 1-64 letters, digits, '.', '_' or '-' (not {BOLO_SOURCE!r})")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    try:
        report = parse_file(raw, fmt)
    except HotlistRefused as exc:
        where = f"{file}:{exc.line}" if exc.line is not None else str(file)
        fail(f"{escape(where)}: {escape(exc.reason)}; source {escape(repr(source))} left as it was")
    for e in report.errors[:MAX_ERRORS_PRINTED]:
        err.print(f"{escape(str(file))}:{e.line}: {escape(e.reason)}", highlight=False)
    if len(report.errors) > MAX_ERRORS_PRINTED:
        err.print(f"… and {len(report.errors) - MAX_ERRORS_PRINTED} more bad lines", highlight=False)
    for d in report.duplicates[:MAX_ERRORS_PRINTED]:
        err.print(
            f"{escape(str(file))}:{d.line}: duplicate of line {d.first_line} ({escape(d.plate)}"
            f"{' ' + escape(d.state) if d.state else ''}): not imported",
            highlight=False,
        )
    if not report.entries:
        fail(f"no usable entry in {file}; source {source!r} left as it was")
    settings = settings_or_exit(config)
    store = _store(settings)
    kind: Literal["ncic", "state_csv"] = "ncic" if fmt == "ncic" else "state_csv"
    try:
        # the import and its audit entry in one transaction: no import without its entry
        summary = _run_audited(
            store,
            settings,
            "hotlist_import",
            lambda s: replace_source(s, source, kind, report.entries, errors=len(report.errors), by="cli"),
            lambda done: {
                "source": source,
                "format": fmt,
                "entries": done.entries,
                "bad_lines": len(report.errors),
                "duplicate_lines": len(report.duplicates),
            },
        )
    finally:
        store.close()
    out.print(
        f"source [bold]{escape(source)}[/]: {summary.entries} entries imported "
        f"({summary.active} active), {len(report.errors)} bad lines, "
        f"{len(report.duplicates)} duplicate lines left out"
    )
    if report.errors:
        raise typer.Exit(2)


@hotlist_app.command("list")
def list_cmd(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False
        ),
    ] = None,
) -> None:
    """The hotlist sources with their entry counts."""
    from rtcc.cli.admin import _store
    from rtcc.cli.main import settings_or_exit
    from rtcc.plates.hotlists import list_sources

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        rows = store.run(list_sources)
    finally:
        store.close()
    table = Table("source", "kind", "entries", "active", "bad lines", "imported", "by")
    for r in rows:
        table.add_row(
            r.name,
            r.kind,
            str(r.entries),
            str(r.active),
            str(r.errors),
            r.imported_at.isoformat(),
            r.imported_by,
        )
    out.print(table)
    if not rows:
        out.print("no hotlist yet: `rtcc hotlist import --source NAME --format ncic|csv FILE`")


def register(app: typer.Typer) -> None:
    """Add ``rtcc hotlist`` to ``app``."""
    app.add_typer(hotlist_app, name="hotlist")
