"""``rtcc report``: the monthly report (HTML and PDF with plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rtcc.cli.output import out


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("report")(report)


def report(
    month: Annotated[str, typer.Option("--month", "-m", help="The month, YYYY-MM (UTC).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory the HTML and PDF are written to.")
    ] = Path("."),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False
        ),
    ] = None,
) -> None:
    """Write the monthly report: alerts per day, outcomes, a hotspot map (HTML and PDF)."""
    from rtcc.cli.admin import _audit_cli, _store
    from rtcc.cli.main import settings_or_exit
    from rtcc.cli.output import fail
    from rtcc.errors import ValidationFailed
    from rtcc.ops.report import gather, month_range, render

    try:
        start, end = month_range(month)
    except ValidationFailed as exc:
        fail(exc.message)
    if output.exists() and not output.is_dir():
        fail(f"--output {output} is a file, not a directory")
    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        data = store.run(lambda s: gather(s, month, start, end))
        try:
            html_path, pdf_path = render(data, output)
        except OSError as exc:
            fail(f"cannot write the report into {output}: {exc.strerror or exc}")
        _audit_cli(store, settings, "report_month", {"month": month, "alerts": data.alert_count})
    finally:
        store.close()
    out.print(
        f"wrote {html_path} and {pdf_path} ({data.alert_count} alerts, {len(data.incidents)} incidents)"
    )
