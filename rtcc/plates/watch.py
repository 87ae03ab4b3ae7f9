"""A watched folder: camera images dropped in a folder are uploaded to the center.

Each new image (``.jpg``, ``.jpeg``, ``.png``, ``.webp``) whose size has not
changed since the previous scan (so half-written files wait) is posted to
``POST /api/v1/plates/images`` with the camera's device key and the file's
modification time as the camera time. Then

* accepted (201, or 200 for an upload accepted before): moved to ``done/``;
* refused for the image itself (413, 422): moved to ``failed/`` with a
  ``<name>.reason.txt`` beside it;
* anything else (center down, 5xx, 503 busy, network error): left in place
  and tried again at the next scan — nothing is lost;
* refused for the key (401, 403): the watcher stops (:class:`KeyRefused`),
  leaving the files where they are.

A camera on a moving vehicle tells each picture's own place and time in a
sidecar ``<stem>.json`` beside it (``car-0001.jpg`` → ``car-0001.json``),
written *before* the image: ``{"time": ISO 8601 with zone, "lat", "lon",
"heading_deg"}``, every key optional. What it gives wins over the file time and
the command line's position; it moves with its image to ``done/`` or
``failed/``. A sidecar that is not such an object sends the image to
``failed/`` with the reason (nothing is uploaded).

A folder that disappears or cannot be read (an unmounted share, a changed permission) is not
fatal: the watcher says so once through ``on_folder``, keeps trying at every scan and says once
when it is back (the heartbeat of :mod:`rtcc.plates.agent_health` says ``recording: false``
meanwhile). :meth:`FolderWatcher.stop` ends :meth:`FolderWatcher.run` after the file in hand;
:meth:`FolderWatcher.refuse_key` (the heartbeat was answered 401/403) makes it raise
:class:`KeyRefused`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rtcc.devices import http as device_http

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


class KeyRefused(Exception):
    """The center refused the camera's key (401/403)."""


class SidecarError(ValueError):
    """An image's sidecar JSON is not a valid ``{time, lat, lon, heading_deg}`` object."""


_SIDECAR_RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "heading_deg": (0.0, 360.0)}


def sidecar_of(image: Path) -> Path:
    """Where an image's sidecar JSON is: the same name with ``.json`` instead of its suffix."""
    return image.with_suffix(".json")


def read_sidecar(path: Path) -> tuple[datetime | None, dict[str, str]]:
    """The picture time and position fields a sidecar gives (none when there is no sidecar).

    Raises
    ------
    SidecarError
        Not a JSON object, an unknown key, a time without zone, or a number out of range.
    """
    if not path.is_file():
        return None, {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"sidecar {path.name} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SidecarError(f"sidecar {path.name} must be a JSON object")
    unknown = sorted(set(raw) - {"time", *_SIDECAR_RANGES})
    if unknown:
        raise SidecarError(f"sidecar {path.name}: unknown key(s) {', '.join(unknown)}")
    at = None
    if raw.get("time") is not None:
        try:
            at = datetime.fromisoformat(str(raw["time"]).replace("Z", "+00:00"))
        except ValueError:
            raise SidecarError(f"sidecar {path.name}: time {raw['time']!r} is not ISO 8601") from None
        if at.tzinfo is None:
            raise SidecarError(f"sidecar {path.name}: time needs a time zone (e.g. ...Z)")
    fields: dict[str, str] = {}
    for key, (low, high) in _SIDECAR_RANGES.items():
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SidecarError(f"sidecar {path.name}: {key} must be a number in [{low:g}, {high:g}]")
        fields[key] = repr(float(value) % 360.0 if key == "heading_deg" else float(value))
    if ("lat" in fields) != ("lon" in fields):
        raise SidecarError(f"sidecar {path.name}: give lat and lon together")
    return at, fields


@dataclass(frozen=True)
class CameraConfig:
    """Where and who: the center, the camera id and key, and a moving camera's position."""

    center: str
    camera: str
    key: str
    lat: float | None = None
    lon: float | None = None
    heading_deg: float | None = None


def post_image(
    client: httpx.Client,
    cfg: CameraConfig,
    data: bytes,
    filename: str,
    at: datetime,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """Post one image to the center's plate-image endpoint."""
    form = {"time": at.astimezone(UTC).isoformat()}
    for name, value in (("lat", cfg.lat), ("lon", cfg.lon), ("heading_deg", cfg.heading_deg)):
        if value is not None:
            form[name] = repr(float(value))
    form.update(extra or {})
    media = _MEDIA.get(Path(filename).suffix.lower(), "application/octet-stream")
    return device_http.post(
        client,
        cfg.center.rstrip("/") + "/api/v1/plates/images",
        headers={"authorization": f"Device {cfg.key}", "x-device-id": cfg.camera},
        files={"image": (filename, data, media)},
        data=form,
    )


@dataclass
class FolderWatcher:
    """Uploads the images dropped in ``folder`` (see the module docstring).

    ``report`` is called with (file name, outcome, detail) for every file
    handled: outcome ``done``, ``failed`` or ``retry``.
    """

    folder: Path
    cfg: CameraConfig
    client: httpx.Client
    report: Callable[[str, str, str], None] = lambda name, outcome, detail: None
    on_folder: Callable[[bool, str], None] = lambda readable, why: None
    """Called with (readable, detail) when the folder becomes unreadable or readable again."""
    _sizes: dict[Path, int] = field(default_factory=dict)
    last_position: tuple[float, float, float | None] | None = None
    """(lat, lon, heading or None) of the last upload that told a position (sidecar or options)."""
    folder_ok: bool | None = None
    """Whether the last scan could list the folder (None before the first)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _key_refused: str | None = None

    def __post_init__(self) -> None:
        if self.cfg.lat is not None and self.cfg.lon is not None:
            self.last_position = (self.cfg.lat, self.cfg.lon, self.cfg.heading_deg)

    def readable(self) -> bool:
        """Whether the folder is there and can be listed (what the heartbeat's ``recording`` says)."""
        return self.folder.is_dir() and os.access(self.folder, os.R_OK | os.X_OK)

    def stop(self) -> None:
        """Make :meth:`run` return after the file in hand (a clean stop: files not handled stay)."""
        self._stop.set()

    def refuse_key(self, why: str) -> None:
        """The center refused the key (e.g. to a heartbeat): :meth:`run` raises :class:`KeyRefused`."""
        self._key_refused = why
        self._stop.set()

    def _check_key(self) -> None:
        if self._key_refused is not None:
            raise KeyRefused(self._key_refused)

    def _folder_state(self, ok: bool, why: str = "") -> None:
        if ok != self.folder_ok and not (ok and self.folder_ok is None):
            self.on_folder(ok, why)
        self.folder_ok = ok

    @property
    def done_dir(self) -> Path:
        return self.folder / "done"

    @property
    def failed_dir(self) -> Path:
        return self.folder / "failed"

    def _ready(self) -> list[Path]:
        """Images whose size is the same as at the previous scan (fully written)."""
        ready: list[Path] = []
        sizes: dict[Path, int] = {}
        for p in sorted(self.folder.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
                continue
            size = p.stat().st_size
            sizes[p] = size
            if self._sizes.get(p) == size:
                ready.append(p)
        self._sizes = sizes
        return ready

    @staticmethod
    def _move(src: Path, dest_dir: Path) -> Path:
        """Move an image (and its sidecar, under the same new stem) into ``dest_dir``."""
        dest_dir.mkdir(exist_ok=True)
        dest = dest_dir / src.name
        n = 1
        while dest.exists() or sidecar_of(dest).exists():
            dest = dest_dir / f"{src.stem}.{n}{src.suffix}"
            n += 1
        side = sidecar_of(src)
        shutil.move(str(src), dest)
        if side.is_file():
            shutil.move(str(side), sidecar_of(dest))
        return dest

    def _fail(self, path: Path, reason: str) -> str:
        dest = self._move(path, self.failed_dir)
        dest.with_name(dest.name + ".reason.txt").write_text(reason + "\n")
        self.report(path.name, "failed", reason)
        return "failed"

    def handle(self, path: Path) -> str:
        """Upload one file and file it away; returns ``done``, ``failed`` or ``retry``."""
        try:
            told_at, told = read_sidecar(sidecar_of(path))
        except SidecarError as exc:
            return self._fail(path, str(exc))
        at = told_at or datetime.fromtimestamp(path.stat().st_mtime, UTC)
        try:
            resp = post_image(self.client, self.cfg, path.read_bytes(), path.name, at, told)
        except httpx.HTTPError as exc:
            self.report(path.name, "retry", f"center not reachable: {exc}")
            return "retry"
        if resp.status_code in (200, 201):
            plates = [r["plate"] for r in resp.json().get("reads", [])]
            if "lat" in told and "lon" in told:
                heading = float(told["heading_deg"]) if "heading_deg" in told else self.cfg.heading_deg
                self.last_position = (float(told["lat"]), float(told["lon"]), heading)
            self._move(path, self.done_dir)
            self.report(path.name, "done", json.dumps(plates))
            return "done"
        if resp.status_code in (401, 403):
            raise KeyRefused(device_http.refusal(resp))
        if resp.status_code in (400, 409, 413, 415, 422):
            return self._fail(path, device_http.refusal(resp))
        self.report(path.name, "retry", device_http.refusal(resp))
        return "retry"

    def scan(self) -> dict[str, int]:
        """One pass over the folder; counts of each outcome."""
        counts = {"done": 0, "failed": 0, "retry": 0}
        try:
            ready = self._ready()
        except OSError as exc:  # gone, unmounted, no permission: try again at the next scan
            self._folder_state(False, exc.strerror or str(exc))
            return counts
        self._folder_state(True)
        for path in ready:
            self._check_key()
            if self._stop.is_set():
                break
            counts[self.handle(path)] += 1
            self._sizes.pop(path, None)
        return counts

    def run(self, *, poll_s: float = 1.0, once: bool = False) -> dict[str, int]:
        """Scan every ``poll_s`` seconds: forever, or with ``once`` until every file was tried once.

        With ``once``, files left for a retry stay in the folder and are counted as ``retry``; a
        folder that cannot be listed raises :class:`OSError`. Without it, :meth:`stop` ends the
        loop.

        Raises
        ------
        KeyRefused
            The center refused the camera's key (to an upload or, via :meth:`refuse_key`, a
            heartbeat).
        """
        totals = {"done": 0, "failed": 0, "retry": 0}
        tried: set[str] = set()
        while True:
            self._check_key()
            if once and not self.readable():
                self._images()  # raises the OSError that says why
            before = {p.name for p in self._images(missing_ok=True)}
            counts = self.scan()
            self._check_key()
            tried |= before - {p.name for p in self._images(missing_ok=True)}
            for k, v in counts.items():
                totals[k] += v
            if counts["retry"]:
                tried |= before
            if self._stop.is_set():
                totals["retry"] = len(self._images(missing_ok=True))
                return totals
            if once and not ({p.name for p in self._images()} - tried):
                totals["retry"] = len(self._images())
                return totals
            self._stop.wait(poll_s)

    def _images(self, missing_ok: bool = False) -> list[Path]:
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            if missing_ok:
                return []
            raise
        return [
            p
            for p in entries
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        ]


def describe(outcome: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in outcome.items())
