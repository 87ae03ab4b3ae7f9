"""A plate camera agent's heartbeat: the center shows the camera online while the agent runs.

``rtcc plates watch`` and ``rtcc plates video --center`` run a :class:`CameraHeartbeat`: a
:class:`~rtcc.events.DeviceHeartbeat` (``device_type`` ``plate_camera``) is posted to
``POST /api/v1/ingest/events`` with the camera's device key once at start (before any image or
frame is handled) and then every ``interval_s`` seconds from a background thread. The center's
health monitor (:mod:`rtcc.ingest.health`) marks the camera online on the first one and offline,
once, when none came for its ``offline_after_s`` (60 s): health comes from the heartbeats, never
from uploads, so a camera on a quiet street does not flap.

What a heartbeat says is asked of ``state()`` at each beat (:class:`BeatState`): ``recording``
(the folder is readable / frames are decoding), and for a moving camera its last position,
heading and whether that came from a GPS fix.

Answers:

* ``202`` with nothing rejected: taken;
* ``401`` / ``403``: the camera's key is wrong or revoked — the heartbeat stops and
  ``on_key_refused(reason)`` is called (the agents stop, exit 2, nothing deleted);
* ``202`` listing the heartbeat as rejected, or ``422`` (e.g. the device clock is off): said once
  on stderr, tried again at the next beat;
* anything else (unreachable, 5xx, a portal's page): not fatal, tried again at the next beat. The
  change is said once when the center goes and once when it comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from rtcc.devices import http as device_http
from rtcc.events import DeviceHeartbeat, Position
from rtcc.roles import DeviceType

DEFAULT_INTERVAL_S = 20.0
"""Seconds between heartbeats (the center marks a device offline after 60 s without one)."""


@dataclass(frozen=True)
class BeatState:
    """What a heartbeat tells: is the camera recording, and where is it (moving cameras)."""

    recording: bool | None = None
    lat: float | None = None
    lon: float | None = None
    heading_deg: float | None = None
    gps_lock: bool | None = None


class CameraHeartbeat:
    """Sends a plate camera's heartbeats (see the module docstring).

    Parameters
    ----------
    center : str
        The center's base URL.
    camera : str
        The camera's device id.
    key : str
        The camera's device key.
    state : callable
        Returns the :class:`BeatState` to send; called at each beat (from the heartbeat thread).
    interval_s : float
        Seconds between beats.
    say : callable
        Gets one line for stderr when the center goes or comes back, or refuses a heartbeat.
    on_key_refused : callable
        Called once with the center's reason when it refuses the key (from the beating thread).
    """

    def __init__(
        self,
        center: str,
        camera: str,
        key: str,
        state: Callable[[], BeatState],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        say: Callable[[str], None] = lambda line: None,
        on_key_refused: Callable[[str], None] = lambda why: None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = center.rstrip("/") + "/api/v1/ingest/events"
        self.camera = camera
        self.key = key
        self.state = state
        self.interval_s = interval_s
        self._say = say
        self._on_key_refused = on_key_refused
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)))
        self.online: bool | None = None
        self.key_refused: str | None = None
        self.sent = 0
        self._rejected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def heartbeat(self) -> dict[str, Any]:
        """The heartbeat event to send now, as JSON-ready data."""
        s = self.state()
        pos = None if s.lat is None or s.lon is None else Position(lat=s.lat, lon=s.lon)
        heading = None if s.heading_deg is None else float(s.heading_deg) % 360.0
        hb = DeviceHeartbeat(
            source=self.camera,
            device=self.camera,
            device_type=DeviceType.plate_camera,
            occurred_at=datetime.now(UTC),
            pos=pos,
            heading_deg=heading,
            gps_lock=s.gps_lock,
            recording=s.recording,
        )
        return hb.model_dump(mode="json")

    def _health(self, ok: bool, why: str = "") -> None:
        if ok and self.online is False:
            self._say("center reachable again: heartbeats delivered")
        elif not ok and self.online is not False:
            self._say(
                f"center not reachable for heartbeats ({why}); trying again every {self.interval_s:g} s"
            )
        self.online = ok

    def beat(self) -> str:
        """Send one heartbeat: ``ok``, ``down`` (not delivered), ``rejected`` or ``key`` (key refused)."""
        if self.key_refused is not None:
            return "key"
        try:
            r = device_http.post(
                self._client,
                self.url,
                json={"events": [self.heartbeat()]},
                headers={"authorization": f"Device {self.key}", "x-device-id": self.camera},
            )
        except httpx.HTTPError as exc:
            self._health(False, f"{type(exc).__name__}: {exc}")
            return "down"
        if r.status_code in (401, 403):
            self.key_refused = device_http.refusal(r, limit=200)
            self._stop.set()
            self._on_key_refused(self.key_refused)
            return "key"
        if r.status_code not in (202, 422):
            self._health(False, device_http.refusal(r, limit=200))
            return "down"
        try:
            rejected = r.json().get("rejected", []) if r.status_code == 202 else []
        except (ValueError, AttributeError):  # not the center (a proxy's or portal's page)
            self._health(False, f"{r.status_code} answer is not the center's: {r.text[:100]}")
            return "down"
        self._health(True)
        if r.status_code == 422 or rejected:
            why = str(rejected[0].get("reason")) if rejected else device_http.refusal(r, limit=200)
            if not self._rejected:
                clock = any(w in why for w in ("old", "future", "time"))  # a refusal for its time stamp
                hint = "; check the camera's clock" if clock else ""
                self._say(f"the center refused the heartbeat ({why}){hint}")
            self._rejected = True
            return "rejected"
        if self._rejected:
            self._say("the center accepts the heartbeats again")
        self._rejected = False
        self.sent += 1
        return "ok"

    def _run(self, first: bool) -> None:
        if first and self.beat() == "key":
            return
        while not self._stop.wait(self.interval_s):
            if self.beat() == "key":
                return

    def start(self, *, wait_first: bool = True) -> str | None:
        """Send the first heartbeat, then beat every ``interval_s`` from a background thread.

        With ``wait_first`` the first beat is sent before this returns and its outcome returned
        (no thread is started when the key was refused); else it is the thread's first act
        (returns None).
        """
        outcome = self.beat() if wait_first else None
        if outcome != "key":
            self._thread = threading.Thread(
                target=self._run, args=(not wait_first,), name="plates-heartbeat", daemon=True
            )
            self._thread.start()
        return outcome

    def stop(self) -> None:
        """Stop beating (waits for a beat in flight) and close the HTTP client."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30.0)
        self._client.close()
