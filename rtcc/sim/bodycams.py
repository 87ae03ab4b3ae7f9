"""Simulated body cams speaking the MQTT body-cam protocol.

Placeholder: filled in by its issue's work.
"""

from __future__ import annotations

from typing import Any


def install(city: Any, runner: Any, center: Any) -> None:
    """Simulator hook (see ``rtcc.app.SIM_INSTALLERS``)."""
    return None
