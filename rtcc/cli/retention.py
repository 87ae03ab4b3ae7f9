"""``rtcc retention run``: purge what is past its keeping period (see :mod:`rtcc.oversight.retention`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rtcc.cli.output import out

retention_app = typer.Typer(help="Retention: delete data past its keeping period.", no_args_is_help=True)


@retention_app.command("run")
def run_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file (default: $RTCC_CONFIG).", show_default=False
        ),
    ] = None,
) -> None:
    """Delete what is past its retention period: plate reads (and images) that hit nothing, their
    event-log copies, pulse audio, device heartbeats (officers' positions) and delivered footage clips.

    Reads linked to an open case, and hit reads the hit still needs (undecided, or tied to an open
    case; confirmed ones for retention.confirmed_hit_days), are kept; so are a gunshot incident's
    pulse audio and clips an open case links. The run is recorded and, unless dry, audited with its
    counts (actor system:retention).
    """
    from rtcc.cli.admin import _store
    from rtcc.cli.main import settings_or_exit
    from rtcc.oversight.retention import run_once

    settings = settings_or_exit(config)
    store = _store(settings)
    try:
        # audited in the purge's own transaction, before the media files are deleted
        rep = run_once(store, settings, dry_run=dry_run, via="cli")
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps(rep.counts()))
        return
    verb = "would delete" if dry_run else "deleted"
    strip = "would strip" if dry_run else "stripped"
    removed = "would remove" if dry_run else "removed"
    out.print(
        f"{verb} {rep.reads_deleted} plate reads older than {rep.plate_reads_days} days "
        f"(before {rep.cutoff.isoformat(timespec='seconds')}) and {rep.media_deleted} media files; "
        f"kept {rep.kept_for_hits} with a hit and {rep.kept_for_cases} linked to an open case"
        + (
            f"; {rep.hit_reads_released} hit reads released (misreads, closed cases)"
            if rep.hit_reads_released
            else ""
        )
        + f"; {verb} {rep.plate_read_events_deleted + rep.hotlist_hit_events_deleted} event-log copies of "
        f"reads and hits and {rep.plate_alert_events_deleted} of hit alerts; {removed} "
        f"{rep.packet_reads_removed} reads from {rep.packets_updated} incident packets; {verb} "
        f"{rep.heartbeat_events_deleted} device heartbeats (positions) older than {rep.heartbeat_days} days; "
        f"{strip} the audio of {rep.pulse_audio_stripped} pulses older than {rep.pulse_audio_days} days "
        f"({rep.pulse_audio_kept_for_incidents} kept as incident evidence)"
        + (
            f"; {verb} {rep.footage_clips_deleted} delivered footage clips older than "
            f"{rep.footage_days} days ({rep.footage_clips_kept_for_cases} kept for open cases)"
            if rep.footage_days is not None
            else ""
        )
        + (
            f"; {verb} {rep.media_resumed} media files an interrupted earlier run left"
            if rep.media_resumed
            else ""
        )
    )


def register(app: typer.Typer) -> None:
    """Add ``rtcc retention`` to ``app``."""
    app.add_typer(retention_app, name="retention")
