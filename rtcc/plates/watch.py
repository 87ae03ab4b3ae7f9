"""A watched folder: camera images dropped in a folder are uploaded to the center.

Each new image (``.jpg``, ``.jpeg``, ``.png``, ``.webp``) whose size and time have not
changed since the previous scan nor for a settle time (so half-written files wait) is posted to
``POST /api/v1/plates/images`` with the camera's device key and the file's
modification time as the camera time. Then

* accepted (201, or 200 for an upload accepted before): moved to ``done/``, where it is deleted
  after ``keep_done_s`` (a day by default; 0: deleted at once, never kept);
* refused for the image itself (413, 422): moved to ``failed/`` with a
  ``<name>.reason.txt`` beside it (unless the file changed while it was sent: sent again),
  deleted after ``keep_failed_s`` (30 days by default, the center's default plate retention);
* anything else (center down, 5xx, 503 busy, network error): left in place
  and tried again after a growing pause, said once per outage — nothing is lost;
* over ``max_bytes``: not read, moved to ``failed/``; unreadable: tried a few times, then
  ``failed/``; gone: skipped (see :class:`FolderWatcher`: one file never stops the watcher);
* refused for the key (401, 403): the watcher stops (:class:`KeyRefused`),
  leaving the files where they are.

A camera on a moving vehicle tells each picture's own place and time in a
sidecar ``<stem>.json`` beside it (``car-0001.jpg`` → ``car-0001.json``),
written *before* the image: ``{"time": ISO 8601 with zone, "lat", "lon",
"heading_deg", "camera"}``, every key optional (``camera``, if given, must be the watcher's
own: the camera comes from ``--camera`` and its key). What it gives wins over the file time and
the command line's position; it moves with its image to ``done/`` or
``failed/``. A sidecar that is not such an object sends the image to
``failed/`` with the reason (nothing is uploaded).

The same bytes copied in again are sent with the time they were first sent with (the center
stores them once), also after a restart: the SHA-256 of what was sent in the last ``dedupe_s`` is
kept in ``<folder>/.rtcc-watch-sent.jsonl`` (see :class:`FolderWatcher`).

A folder that disappears or cannot be read (an unmounted share, a changed permission) is not
fatal: the watcher says so once through ``on_folder``, keeps trying at every scan and says once
when it is back (the heartbeat of :mod:`rtcc.plates.agent_health` says ``recording: false``
meanwhile). :meth:`FolderWatcher.stop` ends :meth:`FolderWatcher.run` after the file in hand;
:meth:`FolderWatcher.refuse_key` (the heartbeat was answered 401/403) makes it raise
:class:`KeyRefused`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rtcc.devices import http as device_http

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
SENT_FILE = ".rtcc-watch-sent.jsonl"
"""The watcher's memory of what it sent, in the watched folder (one JSON object a line)."""
_COMPACT_MIN_LINES = 256
"""The memory file is rewritten once it has more lines than this and twice the live entries."""
_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


class KeyRefused(Exception):
    """The center refused the camera's key (401/403)."""


class SidecarError(ValueError):
    """An image's sidecar JSON is not a valid ``{time, lat, lon, heading_deg}`` object."""


_SIDECAR_RANGES = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "heading_deg": (0.0, 360.0)}


def sidecar_of(image: Path) -> Path:
    """Where an image's sidecar JSON is: the same name with ``.json`` instead of its suffix."""
    return image.with_suffix(".json")


def read_sidecar(path: Path, camera: str | None = None) -> tuple[datetime | None, dict[str, str]]:
    """The picture time and position fields a sidecar gives (none when there is no sidecar).

    A ``camera`` key is allowed when it names ``camera`` (the watcher's own ``--camera``): cameras
    that write their id into every sidecar work unchanged. It cannot choose another camera: the
    upload is authenticated by one camera's key, so a sidecar naming a different one is refused.

    Raises
    ------
    SidecarError
        Not a JSON object, an unknown key, a time without zone, a number out of range, or another
        camera named.
    """
    if not path.is_file():
        return None, {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"sidecar {path.name} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SidecarError(f"sidecar {path.name} must be a JSON object")
    unknown = sorted(set(raw) - {"time", "camera", *_SIDECAR_RANGES})
    if unknown:
        raise SidecarError(f"sidecar {path.name}: unknown key(s) {', '.join(unknown)}")
    if "camera" in raw and raw["camera"] != camera:
        raise SidecarError(
            f"sidecar {path.name}: it names camera {raw['camera']!r}, but the camera comes from "
            f"--camera ({camera!r} here, with its key); run one watcher per camera"
        )
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


Signature = tuple[int, int]
"""A file's (size, modification time in ns): when it changes, the file is not the one seen before."""

_REFUSED_IMAGE = (400, 409, 413, 415, 422)
"""Answers that refuse the image itself (sending the same bytes again cannot help)."""


class FolderUnreadable(OSError):
    """The watched folder cannot be listed (``--once``): the only error that ends the watcher."""


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class FolderWatcher:
    """Uploads the images dropped in ``folder`` (see the module docstring).

    ``report`` is called with (file name, outcome, detail) for every file
    handled: outcome ``done``, ``failed``, ``retry`` or ``skipped`` (the file went away before it
    was sent). While the center is down only the first file's ``retry`` is reported; ``on_center``
    says once that it is down and once that it answers again, and the uploads back off meanwhile.

    One file never stops the watcher: a file it cannot read is tried ``read_attempts`` times (with
    a growing pause) and then moved to ``failed/`` with the reason; a file that was sent but cannot
    be moved to ``done/`` (a folder it may read but not write) is remembered and not sent again while
    it is unchanged (``warn`` says so once).

    A file is ready when its size and modification time are the same at two scans and it has not
    changed for ``settle_s`` seconds (by its modification time, or by this watcher's own clock when
    the file's clock is ahead): a copy that pauses for less than that is not cut short. Should the
    center still refuse an image that changed while it was being sent, it is sent again rather than
    filed in ``failed/``.

    ``cp`` gives a copy a new modification time, so the same picture dropped again would be a new
    upload (the center's dedupe key is camera, image, time). The watcher remembers the SHA-256 and
    camera time of what it sent for ``dedupe_s`` seconds and sends the same bytes again with the
    same time: the center answers them as a duplicate (200, filed in ``done/``). The center's own
    key is left as it is: two pictures with the same bytes but told times are two reads.

    That memory outlives a restart (a reboot of the camera's computer, a service restart): it is
    kept in :data:`SENT_FILE` in the folder, read when the first image is handled. Each entry is
    appended as one line and synced, so a crash loses at most the line being written; a line that
    cannot be read is skipped (``warn`` says so once). Entries older than ``dedupe_s`` are dropped,
    and the file is rewritten (a temporary file renamed over it) at load when some were dropped and
    whenever it holds more than twice the live entries, so it does not grow without end. A folder
    where it cannot be read or written (read-only) is watched all the same: ``warn`` says so once
    and the memory is kept while the watcher runs.
    """

    folder: Path
    cfg: CameraConfig
    client: httpx.Client
    report: Callable[[str, str, str], None] = lambda name, outcome, detail: None
    on_folder: Callable[[bool, str], None] = lambda readable, why: None
    """Called with (readable, detail) when the folder becomes unreadable or readable again."""
    on_center: Callable[[bool, str], None] = lambda up, why: None
    """Called with (answers, detail) when uploads start failing for the center, and when it answers again."""
    warn: Callable[[str], None] = lambda message: None
    """Called once about a file that needs a person (it cannot be moved out of the folder)."""
    settle_s: float = 2.0
    max_bytes: int | None = None
    """Larger files are not read nor sent: filed in ``failed/`` (the center would refuse them)."""
    read_attempts: int = 4
    retry_base_s: float = 1.0
    max_backoff_s: float = 60.0
    dedupe_s: float = 86400.0
    keep_done_s: float | None = 86400.0
    """How long a sent image (and its sidecar) stays in ``done/``; None: for ever, 0: not kept."""
    keep_failed_s: float | None = 30 * 86400.0
    """How long a refused image (with its sidecar and reason) stays in ``failed/``; None: for ever."""
    prune_every_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    last_position: tuple[float, float, float | None] | None = None
    """(lat, lon, heading or None) of the last upload that told a position (sidecar or options)."""
    folder_ok: bool | None = None
    """Whether the last scan could list the folder (None before the first)."""
    _seen: dict[Path, tuple[Signature, float]] = field(default_factory=dict)
    _sent: dict[Path, Signature] = field(default_factory=dict)
    _given_up: dict[Path, Signature] = field(default_factory=dict)
    _read_errors: dict[Path, tuple[int, float]] = field(default_factory=dict)
    _outage: str | None = None
    _outage_delay: float = 0.0
    _next_try: float = 0.0
    _hashes: dict[str, tuple[float, datetime]] | None = None
    _sent_lines: int = 0
    """Lines in :data:`SENT_FILE` (live and expired entries): when to rewrite it."""
    _sent_cut: bool = False
    """The file's last line has no end (a write cut short): the next entry starts a new line."""
    _sent_ok: bool = True
    """False once the file could not be read or written: the memory is kept in process only."""
    _handled: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _key_refused: str | None = None
    _next_prune: float | None = None

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
        """Images unchanged since the previous scan and for ``settle_s`` (fully written).

        Raises
        ------
        OSError
            The folder cannot be listed (or its entries not looked at).
        """
        ready: list[Path] = []
        seen: dict[Path, tuple[Signature, float]] = {}
        now, wall = self.clock(), self.wall()
        for p in sorted(self.folder.iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
                continue
            try:
                st = p.stat()
            except FileNotFoundError:  # gone since the listing
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if self._sent.get(p) == sig or self._given_up.get(p) == sig:
                seen[p] = (sig, now)
                continue
            prev = self._seen.get(p)
            same = prev is not None and prev[0] == sig
            since = prev[1] if prev is not None and same else now
            seen[p] = (sig, since)
            if same and (wall - st.st_mtime >= self.settle_s or now - since >= self.settle_s):
                ready.append(p)
        self._seen = seen
        # a file that went away or changed is a new file: forget what was noted about the old one
        for notes in (self._sent, self._given_up):
            for p in [p for p, sig in notes.items() if seen.get(p, ((-1, -1), 0.0))[0] != sig]:
                del notes[p]
        for p in [p for p in self._read_errors if p not in seen]:
            del self._read_errors[p]
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
        """File ``path`` in ``failed/`` with its reason; one that cannot be moved is left and noted."""
        try:
            dest = self._move(path, self.failed_dir)
        except FileNotFoundError:
            self.report(path.name, "skipped", "the file went away before it was filed")
            return "skipped"
        except OSError as exc:
            sig = _signature(path)
            if sig is not None:
                self._given_up[path] = sig
            self.warn(
                f"{path.name}: {reason}; it cannot be moved to failed/ ({exc.strerror or exc}): left in "
                "place, not tried again while it is unchanged"
            )
            self.report(path.name, "failed", reason)
            return "failed"
        try:
            dest.with_name(dest.name + ".reason.txt").write_text(reason + "\n")
        except OSError as exc:
            self.warn(f"{path.name}: moved to failed/ but its reason could not be written ({exc}): {reason}")
        self.report(path.name, "failed", reason)
        return "failed"

    def _file_done(self, path: Path, sig: Signature) -> None:
        """Move a sent file to ``done/`` (or delete it when nothing is kept); when that fails,
        remember it was sent (never sent again)."""
        try:
            if self.keep_done_s == 0:
                _unlink_with_sidecar(path)
            else:
                self._move(path, self.done_dir)
        except FileNotFoundError:
            pass  # taken away by someone else: it was sent, nothing to file
        except OSError as exc:
            self._sent[path] = sig
            filed = "deleted" if self.keep_done_s == 0 else "moved to done/"
            self.warn(
                f"{path.name} was sent but cannot be {filed} ({exc.strerror or exc}): left in "
                "place, not sent again while it is unchanged (make the folder writable)"
            )

    def _read_failed(self, path: Path, exc: OSError) -> str:
        """An image that cannot be read: tried again later with a growing pause, then failed."""
        n = self._read_errors.get(path, (0, 0.0))[0] + 1
        why = f"cannot read it: {exc.strerror or exc}"
        if n < self.read_attempts:
            pause = min(self.retry_base_s * 2 ** (n - 1), self.max_backoff_s)
            self._read_errors[path] = (n, self.clock() + pause)
            if n == 1:
                self.report(path.name, "retry", why)
            return "retry"
        self._read_errors.pop(path, None)
        return self._fail(path, f"{why} (tried {n} times)")

    def _center_down(self, path: Path, why: str) -> str:
        """Uploads fail for the center: said once per outage, tried again with a growing pause."""
        if self._outage is None:
            self._outage = why
            self._outage_delay = self.retry_base_s
            self.on_center(False, why)
            self.report(path.name, "retry", why)
        else:
            self._outage_delay = min(self._outage_delay * 2, self.max_backoff_s)
        self._next_try = self.clock() + self._outage_delay
        return "retry"

    def _center_up(self) -> None:
        if self._outage is not None:
            self._outage = None
            self.on_center(True, "")

    @property
    def sent_file(self) -> Path:
        """Where the memory of what was sent is kept (see :data:`SENT_FILE`)."""
        return self.folder / SENT_FILE

    def _index(self) -> dict[str, tuple[float, datetime]]:
        """SHA-256 → (when sent, camera time) of the images sent in the last ``dedupe_s`` seconds."""
        if self._hashes is None:
            self._hashes = self._load_sent()
        horizon = self.wall() - self.dedupe_s
        for digest in [d for d, (sent, _) in self._hashes.items() if sent < horizon]:
            del self._hashes[digest]
        if self._sent_lines > max(2 * len(self._hashes), _COMPACT_MIN_LINES):
            self._compact_sent()
        return self._hashes

    def _remember(self, digest: str, at: datetime) -> None:
        index = self._index()
        if digest not in index:
            index[digest] = (self.wall(), at)
            self._append_sent(digest, *index[digest])

    def _sent_broken(self, why: str) -> None:
        """The memory file cannot be used: said once, then the memory is kept in process only."""
        if self._sent_ok:
            self._sent_ok = False
            self.warn(
                f"{why}: what was sent is remembered only while the watcher runs (after a restart, "
                "the same picture copied in again is a new read)"
            )

    def _load_sent(self) -> dict[str, tuple[float, datetime]]:
        """The entries of :data:`SENT_FILE` younger than ``dedupe_s``; none when there is no file.

        A line that is not a whole entry (a write cut short, a damaged disk) is skipped: losing one
        entry only means one picture copied in again may become a second read.
        """
        hashes: dict[str, tuple[float, datetime]] = {}
        try:
            raw = self.sent_file.read_bytes()
        except FileNotFoundError:
            return hashes
        except OSError as exc:
            self._sent_broken(f"cannot read {SENT_FILE} ({exc.strerror or exc})")
            return hashes
        horizon = self.wall() - self.dedupe_s
        lines = [line for line in raw.split(b"\n") if line.strip()]
        bad = expired = 0
        for line in lines:
            entry = _parse_sent(line)
            if entry is None:
                bad += 1
            elif entry[1] < horizon:
                expired += 1
            else:
                hashes.setdefault(entry[0], entry[1:])
        self._sent_lines = len(lines)
        self._sent_cut = bool(raw) and not raw.endswith(b"\n")
        if bad:
            self.warn(f"{SENT_FILE}: {bad} unreadable line(s) skipped (a write cut short?); the rest is used")
        if bad or expired:
            self._hashes = hashes
            self._compact_sent()
        return hashes

    def _append_sent(self, digest: str, sent: float, at: datetime) -> None:
        """Add one entry to :data:`SENT_FILE`: one appended line, synced before the next upload."""
        if not self._sent_ok or self.dedupe_s <= 0:
            return
        line = ("\n" if self._sent_cut else "") + _sent_line(digest, sent, at)
        try:
            _append_synced(self.sent_file, line.encode())
        except OSError as exc:
            self._sent_broken(f"cannot write {SENT_FILE} ({exc.strerror or exc})")
            return
        self._sent_cut = False
        self._sent_lines += 1

    def _compact_sent(self) -> None:
        """Rewrite :data:`SENT_FILE` with the live entries only (deleted when there are none).

        Written to a temporary file, synced and renamed over the old one: a crash leaves either the
        old file or the new, both whole.
        """
        if not self._sent_ok or self._hashes is None:
            return
        tmp = self.sent_file.with_name(SENT_FILE + ".tmp")
        try:
            if not self._hashes:
                self.sent_file.unlink(missing_ok=True)
            else:
                body = "".join(_sent_line(d, sent, at) for d, (sent, at) in self._hashes.items())
                with tmp.open("wb") as fh:
                    fh.write(body.encode())
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.sent_file)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self._sent_broken(f"cannot write {SENT_FILE} ({exc.strerror or exc})")
            return
        self._sent_lines = len(self._hashes)
        self._sent_cut = False

    def handle(self, path: Path) -> str:
        """Upload one file and file it away; returns ``done``, ``failed``, ``retry`` or ``skipped``."""
        try:
            told_at, told = read_sidecar(sidecar_of(path), self.cfg.camera)
        except SidecarError as exc:
            return self._fail(path, str(exc))
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                too_big = self.max_bytes is not None and st.st_size > self.max_bytes
                data = b"" if too_big else fh.read()
        except FileNotFoundError:
            self.report(path.name, "skipped", "the file went away before it was sent")
            return "skipped"
        except OSError as exc:
            return self._read_failed(path, exc)
        self._read_errors.pop(path, None)
        sig = (st.st_size, st.st_mtime_ns)
        if too_big:
            return self._fail(
                path,
                f"the image is {st.st_size} bytes, over the upload limit of {self.max_bytes} "
                "(--max-bytes; the center refuses it): not sent",
            )
        digest = hashlib.sha256(data).hexdigest()
        at = told_at
        if at is None:  # the file time, which a copy resets: the same bytes keep their first time
            known = self._index().get(digest)
            at = known[1] if known is not None else datetime.fromtimestamp(st.st_mtime, UTC)
        try:
            resp = post_image(self.client, self.cfg, data, path.name, at, told)
        except httpx.HTTPError as exc:
            return self._center_down(path, f"center not reachable: {exc}")
        del data
        if resp.status_code in (401, 403):
            raise KeyRefused(device_http.refusal(resp))
        if resp.status_code in (200, 201):
            self._center_up()
            try:
                plates = [r["plate"] for r in resp.json().get("reads", [])]
            except (ValueError, AttributeError, KeyError, TypeError):
                plates = []
            if "lat" in told and "lon" in told:
                heading = float(told["heading_deg"]) if "heading_deg" in told else self.cfg.heading_deg
                self.last_position = (float(told["lat"]), float(told["lon"]), heading)
            self._remember(digest, at)
            self._file_done(path, sig)
            self.report(path.name, "done", json.dumps(plates))
            return "done"
        if resp.status_code in _REFUSED_IMAGE:
            self._center_up()
            now = _signature(path)
            if now is None:
                self.report(path.name, "skipped", "the file went away after it was refused")
                return "skipped"
            if now != sig:  # still being written when read: the refusal is about a partial copy
                self.report(path.name, "retry", f"changed while it was sent ({device_http.refusal(resp)})")
                return "retry"
            return self._fail(path, device_http.refusal(resp))
        return self._center_down(path, device_http.refusal(resp))

    def prune(self) -> int:
        """Delete what has stayed in ``done/`` and ``failed/`` longer than ``keep_done_s`` and
        ``keep_failed_s``; returns how many images went.

        Plate photos are personal data: the camera's copies must not outlive the center's retention.
        A file's age counts from when it was filed (its inode change time, which the move sets),
        not from its modification time (the camera time, which a move keeps). Sidecars and reasons
        go with their image; a file that cannot be deleted is left for the next pass.
        """
        gone = 0
        now = self.wall()
        for folder, keep in ((self.done_dir, self.keep_done_s), (self.failed_dir, self.keep_failed_s)):
            if keep is None:
                continue
            try:
                entries = list(folder.iterdir())
            except OSError:  # not made yet, or not readable: nothing to prune now
                continue
            for p in entries:
                if p.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    st = p.stat()
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or now - st.st_ctime < keep:
                    continue
                try:
                    _unlink_with_sidecar(p)
                except OSError as exc:
                    self.warn(f"{folder.name}/{p.name} is past its keep time but cannot be deleted: {exc}")
                    continue
                gone += 1
        return gone

    def _maybe_prune(self) -> None:
        now = self.clock()
        if self._next_prune is None or now >= self._next_prune:
            self._next_prune = now + self.prune_every_s
            self.prune()

    def scan(self) -> dict[str, int]:
        """One pass over the folder; counts of each outcome.

        While the center is down (see :meth:`_center_down`) nothing is sent until the pause is over,
        and a pass stops at the first file the center did not take: the others would fare the same.
        """
        counts = {"done": 0, "failed": 0, "retry": 0}
        try:
            ready = self._ready()
        except OSError as exc:  # gone, unmounted, no permission: try again at the next scan
            self._folder_state(False, exc.strerror or str(exc))
            return counts
        self._folder_state(True)
        self._maybe_prune()
        if self._outage is not None and self.clock() < self._next_try:
            return counts
        for path in ready:
            self._check_key()
            if self._stop.is_set():
                break
            pause = self._read_errors.get(path)
            if pause is not None and self.clock() < pause[1]:
                continue
            self._handled.add(path.name)
            outcome = self.handle(path)
            if outcome in counts:
                counts[outcome] += 1
            self._seen.pop(path, None)
            if outcome == "retry" and self._outage is not None:
                break
        return counts

    def run(self, *, poll_s: float = 1.0, once: bool = False) -> dict[str, int]:
        """Scan every ``poll_s`` seconds: forever, or with ``once`` until every file was tried once.

        With ``once``, files left for a retry stay in the folder and are counted as ``retry`` (the
        run ends at the first); a folder that cannot be listed raises :class:`FolderUnreadable`.
        Without it, :meth:`stop` ends the loop.

        Raises
        ------
        KeyRefused
            The center refused the camera's key (to an upload or, via :meth:`refuse_key`, a
            heartbeat).
        """
        totals = {"done": 0, "failed": 0, "retry": 0}
        while True:
            self._check_key()
            if once and not self.readable():
                self._images()  # raises the FolderUnreadable that says why
            counts = self.scan()
            self._check_key()
            for k, v in counts.items():
                totals[k] += v
            if self._stop.is_set() or (once and counts["retry"]):
                totals["retry"] = len(self._pending())
                return totals
            if once and not ({p.name for p in self._pending(missing_ok=False)} - self._handled):
                totals["retry"] = len(self._pending())
                return totals
            self._stop.wait(poll_s)

    def _pending(self, missing_ok: bool = True) -> list[Path]:
        """Images in the folder still to send (not those sent or given up on that could not be moved)."""
        return [p for p in self._images(missing_ok) if p not in self._sent and p not in self._given_up]

    def _images(self, missing_ok: bool = False) -> list[Path]:
        try:
            entries = list(self.folder.iterdir())
        except OSError as exc:
            if missing_ok:
                return []
            raise FolderUnreadable(exc.errno, exc.strerror, str(self.folder)) from exc
        return [
            p
            for p in entries
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        ]


def _sent_line(digest: str, sent: float, at: datetime) -> str:
    return json.dumps({"sha256": digest, "sent": sent, "at": at.isoformat()}) + "\n"


def _parse_sent(line: bytes) -> tuple[str, float, datetime] | None:
    """One :data:`SENT_FILE` line as (SHA-256, when sent, camera time); None if it is not one."""
    try:
        raw = json.loads(line)
        digest, sent, at = raw["sha256"], raw["sent"], datetime.fromisoformat(raw["at"])
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        return None
    if isinstance(sent, bool) or not isinstance(sent, int | float) or not math.isfinite(sent):
        return None
    if at.tzinfo is None:
        return None
    return digest, float(sent), at


def _append_synced(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if needed) and sync it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_with_sidecar(image: Path) -> None:
    """Delete an image with its sidecar and its ``.reason.txt`` (those that exist)."""
    image.unlink(missing_ok=True)
    sidecar_of(image).unlink(missing_ok=True)
    image.with_name(image.name + ".reason.txt").unlink(missing_ok=True)


def describe(outcome: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in outcome.items())
