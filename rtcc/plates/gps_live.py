"""A moving camera's live position from gpsd: the recent fixes as a rolling GPS track.

``rtcc plates video rtsp://… --gpsd HOST:PORT`` follows gpsd (the JSON-lines protocol handled by
:class:`rtcc.acoustic.clock.SensorClock`: reconnects, ``?WATCH``) and keeps the ``TPV`` reports
with a fix (``mode`` ≥ 2) from the last :attr:`GpsdTrack.keep_s` seconds: ``time``, ``lat``,
``lon`` and ``track`` (course over ground, degrees). A pass is placed on them exactly as on a
recorded track (:meth:`rtcc.plates.gps_track.GpsTrack.at`); a pass ends some frames after its best
frame, so the fixes on both sides of it are usually there.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import UTC, datetime

from rtcc.acoustic.clock import SensorClock
from rtcc.plates.gps_track import Fix, GpsTrack, TrackPosition


class GpsdTrack(SensorClock):
    """Follows gpsd and keeps its recent fixes (see the module docstring).

    Parameters
    ----------
    gpsd : str
        ``host:port`` of gpsd (port 2947 when left out).
    keep_s : float
        Fixes older than this (before the newest) are dropped.
    """

    def __init__(self, gpsd: str, *, keep_s: float = 600.0) -> None:
        super().__init__(0.0, gpsd)
        self.keep_s = keep_s
        self._fixes: deque[Fix] = deque()
        self._fix_lock = threading.Lock()

    def note_tpv(self, msg: dict[str, object], received_s: float) -> None:
        """Take the clock offset (as the sensor clock does) and, with a 2D/3D fix, the position."""
        super().note_tpv(msg, received_s)
        mode, t, lat, lon = msg.get("mode"), msg.get("time"), msg.get("lat"), msg.get("lon")
        if not isinstance(mode, int) or mode < 2 or not isinstance(t, str):
            return
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
            return
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        course = msg.get("track")
        heading = (
            float(course) % 360.0
            if isinstance(course, int | float) and not isinstance(course, bool) and math.isfinite(course)
            else None
        )
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return
        try:
            at = datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # gpsd's times are UTC
        fix = Fix(at.timestamp(), float(lat), float(lon), heading)
        with self._fix_lock:
            if self._fixes and fix.t <= self._fixes[-1].t:
                return
            self._fixes.append(fix)
            while self._fixes and self._fixes[0].t < fix.t - self.keep_s:
                self._fixes.popleft()

    def __len__(self) -> int:
        with self._fix_lock:
            return len(self._fixes)

    def at(self, when: datetime, max_gap_s: float) -> TrackPosition | None:
        """The position at ``when`` from the fixes kept now (None without a fix within ``max_gap_s``)."""
        with self._fix_lock:
            fixes = list(self._fixes)
        if not fixes:
            return None
        return GpsTrack(fixes).at(when, max_gap_s)
