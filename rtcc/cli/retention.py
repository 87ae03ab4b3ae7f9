"""``rtcc retention run``: purge what is past its keeping period."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    return None
