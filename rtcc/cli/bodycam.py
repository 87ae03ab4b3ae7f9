"""``rtcc bodycam``: body-cam device simulator and commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    return None
