"""Roles people hold, shared by every room (the oversight room enforces them)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A person's role; ``public`` marks routes open to anyone."""

    admin = "admin"
    supervisor = "supervisor"
    analyst = "analyst"
    officer = "officer"
    auditor = "auditor"
    public = "public"


STAFF: frozenset[Role] = frozenset(
    {Role.admin, Role.supervisor, Role.analyst, Role.officer, Role.auditor}
)
"""Every signed-in role."""

OPERATIONS: frozenset[Role] = frozenset({Role.admin, Role.supervisor, Role.analyst, Role.officer})
"""Roles that run or receive operations (everyone but the auditor)."""


class DeviceType(StrEnum):
    """Kinds of device that connect to the center, each with its own key scope."""

    acoustic_sensor = "acoustic_sensor"
    plate_camera = "plate_camera"
    bodycam = "bodycam"
    camera = "camera"
