"""The sensor clock: UTC for each audio sample, disciplined by GPS through gpsd when it is there.

Quality, best first:

* ``gps_pps`` — gpsd reports PPS edges (``{"class": "PPS", "real_sec", "real_nsec", "clock_sec",
  "clock_nsec"}``): the offset of the system clock from GPS time, good to microseconds.
* ``gps`` — gpsd reports a fix with time (``TPV`` with ``mode`` ≥ 2 and ``time``): the offset
  from the TPV time against the moment it was received (good to a few tens of ms: serial latency).
* ``configured`` — no gpsd (or no fix for ``stale_s``): the offset given in the configuration.

The gpsd protocol is JSON lines over TCP (default port 2947) after
``?WATCH={"enable":true,"json":true,"pps":true};`` (see gpsd's ``gpsd_json(5)``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Literal

log = logging.getLogger(__name__)

ClockQuality = Literal["gps_pps", "gps", "configured"]


class SensorClock:
    """UTC now (s since the epoch) = system time + offset, the offset from gpsd when it is fresh.

    Parameters
    ----------
    offset_s : float
        Configured offset of UTC from the system clock, s (used without GPS).
    gpsd : str or None
        ``host:port`` of gpsd; None disables GPS.
    stale_s : float
        A GPS offset older than this no longer counts, s.
    """

    def __init__(self, offset_s: float = 0.0, gpsd: str | None = None, *, stale_s: float = 10.0) -> None:
        self.configured_offset_s = offset_s
        self.stale_s = stale_s
        self._gps_offset: float | None = None
        self._gps_at = -1e18
        self._pps_offset: float | None = None
        self._pps_at = -1e18
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gpsd = gpsd

    # -- readings ---------------------------------------------------------------

    def note_tpv(self, msg: dict[str, object], received_s: float) -> None:
        """Take the offset from a TPV report received at system time ``received_s``."""
        mode = msg.get("mode")
        t = msg.get("time")
        if not isinstance(mode, int) or mode < 2 or not isinstance(t, str):
            return
        with contextlib.suppress(ValueError):
            gps = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(UTC).timestamp()
            with self._lock:
                self._gps_offset = gps - received_s
                self._gps_at = time.monotonic()

    def note_pps(self, msg: dict[str, object]) -> None:
        """Take the offset from a PPS report (real = GPS second, clock = system time of the edge)."""
        try:
            real = float(msg["real_sec"]) + float(msg.get("real_nsec", 0)) * 1e-9  # type: ignore[arg-type]
            clock = float(msg["clock_sec"]) + float(msg.get("clock_nsec", 0)) * 1e-9  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self._pps_offset = real - clock
            self._pps_at = time.monotonic()

    @property
    def quality(self) -> ClockQuality:
        """What the current time is disciplined by."""
        now = time.monotonic()
        with self._lock:
            if self._pps_offset is not None and now - self._pps_at <= self.stale_s:
                return "gps_pps"
            if self._gps_offset is not None and now - self._gps_at <= self.stale_s:
                return "gps"
        return "configured"

    @property
    def gps_lock(self) -> bool:
        return self.quality != "configured"

    @property
    def offset_s(self) -> float:
        """Offset of UTC from the system clock, s (best source)."""
        q = self.quality
        with self._lock:
            if q == "gps_pps" and self._pps_offset is not None:
                return self._pps_offset
            if q == "gps" and self._gps_offset is not None:
                return self._gps_offset
        return self.configured_offset_s

    def now(self) -> float:
        """UTC now, s since the epoch."""
        return time.time() + self.offset_s

    # -- gpsd -------------------------------------------------------------------

    def start(self) -> None:
        """Follow gpsd in a background thread (reconnecting), when one was configured."""
        if self._gpsd is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="gpsd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _follow(self) -> None:
        assert self._gpsd is not None
        host, _, port = self._gpsd.rpartition(":")
        addr = (host or "127.0.0.1", int(port or 2947))
        was_up = None
        while not self._stop.is_set():
            try:
                with socket.create_connection(addr, timeout=2.0) as sock:
                    if was_up is not True:
                        log.info("gpsd: connected to %s:%d", *addr)
                    was_up = True
                    sock.sendall(b'?WATCH={"enable":true,"json":true,"pps":true};\n')
                    sock.settimeout(1.0)
                    buf = b""
                    while not self._stop.is_set():
                        try:
                            chunk = sock.recv(4096)
                        except TimeoutError:
                            continue
                        if not chunk:
                            break
                        received = time.time()
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for line in lines:
                            self._handle(line, received)
            except OSError as exc:
                if was_up is not False:
                    log.warning("gpsd at %s:%d unreachable (%s); clock quality 'configured'", *addr, exc)
                was_up = False
            self._stop.wait(2.0)

    def _handle(self, line: bytes, received: float) -> None:
        try:
            msg = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(msg, dict):
            return
        if msg.get("class") == "TPV":
            self.note_tpv(msg, received)
        elif msg.get("class") == "PPS":
            self.note_pps(msg)
