"""Plate reads on the bus matched against hotlists.

Placeholder: filled in by its issue's work.
"""

from __future__ import annotations

from typing import Any


class _Idle:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def build(center: Any) -> _Idle:
    """The processor (see ``rtcc.app.PROCESSOR_FACTORIES``)."""
    return _Idle()
