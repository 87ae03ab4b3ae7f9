"""A plate camera's outbox: each vehicle pass is kept on disk until the center has it.

``rtcc plates video --center`` puts every pass (its voted plate and best-frame JPEG) in a
:class:`~rtcc.devices.buffer.Spool` first; a sender thread uploads the oldest one to
``POST /api/v1/plates/images`` while the video goes on. For each answer

* 201, or 200 for an upload accepted before: delivered, forgotten;
* 400, 409, 413, 415, 422 (the pass itself is bad, e.g. older than the center's ingest window):
  reported and moved to ``refused/<id>.json`` beside the buffer with the center's reason — never
  deleted (:meth:`~rtcc.devices.buffer.Spool.refuse`);
* 401, 403 (the camera's key is wrong or revoked): the sender stops, the passes stay buffered;
* anything else (connection error, timeout, 5xx, 503 busy, a captive portal's page):
  kept, tried again after a back-off (0.5 s doubling to 30 s), oldest first.

A resend is harmless: the stored bytes and time are sent again unchanged, and the center's read id
is a UUIDv5 of (camera, SHA-256 of the image, camera time, plate index), so it answers the reads
it already has (``duplicate: true``) instead of storing them twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from rtcc.devices import http as device_http
from rtcc.devices.buffer import Spool
from rtcc.plates.track import Pass
from rtcc.plates.watch import CameraConfig, post_image

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
REFUSE_STATUSES = frozenset({400, 409, 413, 415, 422})
"""Answers that refuse the pass itself: sending it again cannot help (it is moved to ``refused/``)."""


def default_buffer(camera: str) -> Path:
    """``$XDG_STATE_HOME/rtcc/plates-buffer/<camera>`` (``~/.local/state`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "rtcc" / "plates-buffer" / (re.sub(r"[^A-Za-z0-9._-]", "_", camera) or "_")


def pass_item(
    camera: str, at: datetime, p: Pass, jpeg: bytes, place: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """A pass as a buffer item: (stable id, body with the printed line, form fields and image).

    ``place`` is a moving camera's position for this pass (``lat``, ``lon``, ``heading_deg``, from
    its GPS track): printed in the line and sent in the form, where it wins over the camera's
    configured position. The id hashes the camera, the camera time and the JPEG bytes: the same
    pass queued twice is kept once.
    """
    line: dict[str, Any] = {"camera": camera, "time": at.isoformat(), **p.to_json(), **(place or {})}
    form = {
        "plate": p.plate,
        "box": ",".join(str(int(v)) for v in p.best.box),
        "confidence": repr(round(float(p.confidence), 4)),
    }
    for name in ("lat", "lon", "heading_deg"):
        value = (place or {}).get(name)
        if value is not None:
            form[name] = repr(float(value) % 360.0 if name == "heading_deg" else float(value))
    if p.direction is not None:
        form["direction"] = p.direction
    if p.region is not None:
        form["region"] = p.region
    ident = hashlib.sha256(f"{camera}|{line['time']}|".encode() + jpeg).hexdigest()[:32]
    return ident, {"line": line, "form": form, "jpeg_b64": base64.b64encode(jpeg).decode("ascii")}


class PassOutbox:
    """Delivers buffered passes in a background thread (see the module docstring).

    Parameters
    ----------
    spool : Spool
        The on-disk buffer (its backlog from an earlier run goes first).
    client : httpx.Client
        HTTP client for the uploads.
    cfg : CameraConfig
        The center, the camera id and key, a moving camera's position.
    delivered : callable
        Called from the sender thread with (printed line, stored read or None) per delivered pass.
    refused : callable
        Called with (printed line, reason) per pass the center refused for good (the pass is then
        in ``spool.refused_dir``).
    health : callable
        Called with (reachable, detail) when the center becomes unreachable or reachable again.
    """

    def __init__(
        self,
        spool: Spool,
        client: httpx.Client,
        cfg: CameraConfig,
        *,
        delivered: Callable[[dict[str, Any], Any], None] = lambda line, read: None,
        refused: Callable[[dict[str, Any], str], None] = lambda line, why: None,
        health: Callable[[bool, str], None] = lambda ok, why: None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.cfg = cfg
        self._delivered = delivered
        self._refused = refused
        self._health = health
        self.online: bool | None = None
        self.n_delivered = 0
        self.n_refused = 0
        self.key_refused: str | None = None
        """Why the center refused the camera's key (the sender has stopped), else None."""
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, ident: str, body: dict[str, Any]) -> None:
        """Buffer one pass (written to disk before this returns) and wake the sender."""
        self.spool.put(ident, json.dumps(body))
        self._wake.set()

    def _set_health(self, ok: bool, why: str) -> None:
        if ok != self.online and not (ok and self.online is None):  # told on a change, not at start
            self._health(ok, why)
        self.online = ok

    def deliver_oldest(self) -> str:
        """Try the oldest buffered pass once: ``empty``, ``delivered``, ``refused``, ``retry`` or ``key``."""
        rows = self.spool.peek(1)
        if not rows:
            return "empty"
        ident, raw = rows[0]
        body = json.loads(raw)
        line = body["line"]
        at = datetime.fromisoformat(line["time"])
        jpeg = base64.b64decode(body["jpeg_b64"])
        try:
            resp = post_image(self.client, self.cfg, jpeg, "frame.jpg", at, body["form"])
        except httpx.HTTPError as exc:
            self._set_health(False, f"{type(exc).__name__}: {exc}")
            return "retry"
        if resp.status_code in (200, 201):
            try:
                reads = resp.json()["reads"]
            except (ValueError, KeyError, TypeError):  # not the center (a proxy's or portal's page)
                self._set_health(False, f"{resp.status_code} answer is not the center's: {resp.text[:100]}")
                return "retry"
            self._set_health(True, "")
            self.spool.remove([ident])
            self.n_delivered += 1
            self._delivered(line, reads[0] if reads else None)
            return "delivered"
        if resp.status_code in (401, 403):
            self.key_refused = device_http.refusal(resp)
            return "key"
        if resp.status_code in REFUSE_STATUSES:
            self._set_health(True, "")
            why = device_http.refusal(resp)
            try:
                self.spool.refuse(ident, f"HTTP {resp.status_code}: {why}")
            except OSError as exc:  # cannot file it away (disk full?): it stays buffered
                self._set_health(True, "")
                self._refused(line, f"{why} (could not move it to {self.spool.refused_dir}: {exc})")
                return "retry"
            self.n_refused += 1
            self._refused(line, why)
            return "refused"
        self._set_health(False, device_http.refusal(resp))
        return "retry"

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            outcome = self.deliver_oldest()
            if outcome == "key":
                return
            if outcome == "empty":
                self._wake.wait(0.2)
                self._wake.clear()
            elif outcome == "retry":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            else:
                backoff = BACKOFF_START_S

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._run, name="plates-outbox", daemon=True)
        self._thread.start()

    @property
    def sending(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def finish(self, drain_s: float) -> int:
        """Wait up to ``drain_s`` seconds for the buffer to empty, stop the sender; passes left."""
        deadline = time.monotonic() + drain_s
        while len(self.spool) and self.sending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout.read or 60.0)
        return len(self.spool)
