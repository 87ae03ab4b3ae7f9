"""What the camera routes share: settings, the notifier, live streams, the registration limiter.

The ``cameras`` processor puts one :class:`CameraService` in
``center.services["cameras"]``; :func:`service_of` makes one on first use
when the processor does not run in this process (an API-only worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtcc.cameras.live import LiveManager
from rtcc.cameras.notify import Notifier, notifier_from_settings
from rtcc.cameras.ratelimit import SlidingWindow
from rtcc.settings import CamerasSettings

SERVICE_KEY = "cameras"


@dataclass
class CameraService:
    settings: CamerasSettings
    notifier: Notifier
    live: LiveManager
    per_ip: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self.per_ip = SlidingWindow(self.settings.register_per_ip_per_hour, 3600.0)


def make_service(settings: CamerasSettings, notifier: Notifier | None = None) -> CameraService:
    live = LiveManager(
        fps=settings.live_fps,
        quality=settings.jpeg_quality,
        timeout_s=settings.open_timeout_s,
        retries=settings.open_retries,
        max_viewers=settings.max_viewers_per_camera,
    )
    return CameraService(settings, notifier or notifier_from_settings(settings), live)


def service_of(services: dict[str, Any], settings: CamerasSettings) -> CameraService:
    """The shared service (made on first use)."""
    svc = services.get(SERVICE_KEY)
    if not isinstance(svc, CameraService):
        svc = services[SERVICE_KEY] = make_service(settings)
    return svc
