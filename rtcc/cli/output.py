"""The command line's consoles and its one way to fail (message on stderr, exit code)."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2 bad input, 3 unavailable)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
