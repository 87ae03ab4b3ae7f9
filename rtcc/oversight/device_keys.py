"""Device registration and device keys.

A key looks like ``rtcc_<kind>_<random>`` (``kind`` is ``ac`` for acoustic
sensors, ``lpr`` for plate cameras, ``bwc`` for body cams, ``cam`` for
cameras; ``random`` is ``secrets.token_urlsafe(32)``, 256 bits). It is shown
once, when issued. The ``devices`` row keeps only its SHA-256 (``key_hash``)
and its first 12 characters (``key_prefix``, to tell keys apart on screen).

A fast hash is enough here: unlike passwords, keys are 256-bit random values,
so nobody can guess a key from its hash, and ingest can check thousands of
requests a second. The database finds the row by hash; the final comparison
is constant-time.

A key lets its device publish only the event types in
:data:`rtcc.events.DEVICE_SCOPES` for its type.

Caching
-------
:class:`DeviceKeyCache` keeps recent answers in memory for ``ttl_s`` seconds
so ingest does not query the database on every request. Issuing or revoking
a key in this process clears that device from every cache of the process
(at once and again when the transaction commits); **other processes keep
accepting a revoked key until their cached entry expires (``ttl_s``, 60 s by
default)**.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rtcc.errors import AuthError, Conflict, Forbidden, NotFound, ValidationFailed
from rtcc.events import DEVICE_SCOPES
from rtcc.roles import DeviceType
from rtcc.store.tables import Device

KEY_PREFIX = "rtcc"
KIND_SHORT: dict[DeviceType, str] = {
    DeviceType.acoustic_sensor: "ac",
    DeviceType.plate_camera: "lpr",
    DeviceType.bodycam: "bwc",
    DeviceType.camera: "cam",
}
"""The ``<kind>`` part of a key for each device type."""

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
MAX_KEY_LENGTH = 256
SHOWN_PREFIX_LENGTH = 12


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _device_type(value: DeviceType | str) -> DeviceType:
    try:
        return DeviceType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in DeviceType)
        raise ValidationFailed(f"unknown device type {value!r}; one of: {allowed}") from None


def _plausible(key: str) -> bool:
    return 16 <= len(key) <= MAX_KEY_LENGTH and key.startswith(KEY_PREFIX + "_")


def new_key(device_type: DeviceType | str) -> str:
    """A fresh random key for a device of ``device_type``."""
    kind = KIND_SHORT[_device_type(device_type)]
    return f"{KEY_PREFIX}_{kind}_{secrets.token_urlsafe(32)}"


# --- cache invalidation across this process ----------------------------------------

_CACHES: weakref.WeakSet[DeviceKeyCache] = weakref.WeakSet()
_CACHES_LOCK = threading.Lock()


def invalidate_device(device_id: str) -> None:
    """Forget ``device_id`` in every :class:`DeviceKeyCache` of this process."""
    with _CACHES_LOCK:
        caches = list(_CACHES)
    for cache in caches:
        cache.invalidate_device(device_id)


def _invalidate_now_and_on_commit(session: Session, device_id: str) -> None:
    invalidate_device(device_id)

    def _after_commit(_session: Session) -> None:
        invalidate_device(device_id)

    event.listen(session, "after_commit", _after_commit, once=True)


# --- registration and keys ------------------------------------------------------------


def _check_position(lat: float, lon: float, alt_m: float | None) -> None:
    for name, value, lo, hi in (("lat", lat, -90.0, 90.0), ("lon", lon, -180.0, 180.0)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValidationFailed(f"{name} must be a number")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValidationFailed(f"{name} must be between {lo:g} and {hi:g} degrees")
    if alt_m is not None and (
        not isinstance(alt_m, int | float)
        or isinstance(alt_m, bool)
        or not math.isfinite(alt_m)
        or not -500.0 <= alt_m <= 10_000.0
    ):
        raise ValidationFailed("alt_m must be between -500 and 10000 metres")


def register_device(
    session: Session,
    device_id: str,
    type: DeviceType | str,
    name: str,
    lat: float,
    lon: float,
    alt_m: float | None = None,
    attributes: dict[str, Any] | None = None,
) -> tuple[Device, str]:
    """Register a device and issue its first key; returns the row and the key.

    Raises
    ------
    ValidationFailed
        Bad id (1-128 of ``A-Z a-z 0-9 . _ -``), type, name or position.
    Conflict
        When the id is taken.
    """
    if not isinstance(device_id, str) or not DEVICE_ID_RE.match(device_id):
        raise ValidationFailed("device id must be 1-128 characters of letters, digits, '.', '_' and '-'")
    dtype = _device_type(type)
    name = name.strip()
    if len(name) > 200:
        raise ValidationFailed("device name must be at most 200 characters")
    _check_position(lat, lon, alt_m)
    if attributes is not None and not isinstance(attributes, dict):
        raise ValidationFailed("attributes must be an object")
    if session.get(Device, device_id) is not None:
        raise Conflict(f"device {device_id!r} is already registered")
    key = new_key(dtype)
    device = Device(
        id=device_id,
        type=dtype.value,
        name=name or device_id,
        key_hash=hash_key(key),
        key_prefix=key[:SHOWN_PREFIX_LENGTH],
        revoked_at=None,
        status="unknown",
        lat=float(lat),
        lon=float(lon),
        alt_m=None if alt_m is None else float(alt_m),
        attributes=dict(attributes or {}),
        rejected_count=0,
    )
    session.add(device)
    try:
        session.flush()
    except IntegrityError:
        # A concurrent registration won; the transaction must be rolled back.
        raise Conflict(f"device {device_id!r} is already registered") from None
    return device, key


def get_device(session: Session, device_id: str) -> Device:
    """The device ``device_id``.

    Raises
    ------
    NotFound
        When there is no such device.
    """
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id!r}")
    return device


def issue_key(session: Session, device_id: str) -> str:
    """Give ``device_id`` a new key (the old one stops working); returns the key.

    Rotating a key is issuing a new one. Clears a revocation.
    """
    device = get_device(session, device_id)
    key = new_key(device.type)
    device.key_hash = hash_key(key)
    device.key_prefix = key[:SHOWN_PREFIX_LENGTH]
    device.revoked_at = None
    session.flush()
    _invalidate_now_and_on_commit(session, device_id)
    return key


rotate_key = issue_key


def revoke_key(session: Session, device_id: str, *, now: datetime | None = None) -> None:
    """Stop ``device_id``'s key from working (until a new one is issued)."""
    device = get_device(session, device_id)
    if device.revoked_at is None:
        device.revoked_at = now if now is not None else datetime.now(UTC)
        session.flush()
    _invalidate_now_and_on_commit(session, device_id)


def check_scope(device_type: DeviceType | str, event_type: str | None) -> None:
    """Refuse an event type outside the device type's scope.

    Raises
    ------
    Forbidden
        When a device of ``device_type`` may not publish ``event_type``.
    """
    if event_type is None:
        return
    try:
        scope = DEVICE_SCOPES[DeviceType(device_type)]
    except ValueError:
        raise Forbidden(f"device type {device_type!r} may not publish anything") from None
    if event_type not in scope:
        allowed = ", ".join(sorted(scope))
        raise Forbidden(f"a {device_type} key may not publish {event_type!r} events (allowed: {allowed})")


def authenticate_device(
    session: Session, key: str, *, event_type: str | None, device_id: str | None = None
) -> Device:
    """The device ``key`` belongs to, allowed to publish ``event_type``.

    ``event_type`` ``None`` skips the scope check; ``device_id``, when given
    (the id a device claims), must be the key's device.

    Raises
    ------
    AuthError
        Unknown or revoked key, or a key of another device.
    Forbidden
        When the event type is outside the device type's scope.
    """
    if not isinstance(key, str) or not _plausible(key):
        raise AuthError("invalid device key")
    digest = hash_key(key)
    device = session.scalars(select(Device).where(Device.key_hash == digest)).first()
    if device is None or not hmac.compare_digest(device.key_hash or "", digest):
        raise AuthError("invalid device key")
    if device.revoked_at is not None:
        raise AuthError(f"the key of device {device.id!r} has been revoked")
    if device_id is not None and device_id != device.id:
        raise AuthError("device key does not belong to the device named")
    check_scope(device.type, event_type)
    return device


def record_rejection(session: Session, device_id: str) -> bool:
    """Count one rejected message against ``device_id``; whether the device exists."""
    result = session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(rejected_count=Device.rejected_count + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# --- in-process cache --------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceIdentity:
    """What ingest needs to know about an authenticated device."""

    id: str
    type: DeviceType
    name: str

    @classmethod
    def of(cls, device: Device) -> DeviceIdentity:
        return cls(id=device.id, type=DeviceType(device.type), name=device.name)


class DeviceKeyCache:
    """A small LRU + TTL cache of key checks, shared by threads of one process.

    * Accepted keys are remembered for ``ttl_s`` seconds (at most
      ``max_entries``, least recently used dropped first).
    * Rejected keys (unknown or revoked) are remembered for
      ``negative_ttl_s`` seconds, so a flood of bad keys does not reach the
      database either. A newly issued key is never affected: it is a new
      random value.
    * Scope and claimed-device checks run on every call, cached or not.

    Revocations in this process clear the cache at once (see the module
    docstring); other processes see them within ``ttl_s``.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 60.0,
        negative_ttl_s: float = 10.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or negative_ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must be > 0, negative_ttl_s >= 0, max_entries >= 1")
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._good: OrderedDict[str, tuple[DeviceIdentity, float]] = OrderedDict()
        self._bad: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        with _CACHES_LOCK:
            _CACHES.add(self)

    def __len__(self) -> int:
        with self._lock:
            return len(self._good) + len(self._bad)

    def _lookup(self, digest: str) -> DeviceIdentity | str | None:
        now = self._clock()
        with self._lock:
            good = self._good.get(digest)
            if good is not None:
                if good[1] > now:
                    self._good.move_to_end(digest)
                    self.hits += 1
                    return good[0]
                del self._good[digest]
            bad = self._bad.get(digest)
            if bad is not None:
                if bad[1] > now:
                    self.hits += 1
                    return bad[0]
                del self._bad[digest]
            self.misses += 1
            return None

    def check(
        self, key: str, *, event_type: str | None, device_id: str | None = None
    ) -> DeviceIdentity | None:
        """The cached answer for ``key``: the device, ``None`` on a miss, or raise.

        Raises
        ------
        AuthError
            A cached rejection, or a key of another device.
        Forbidden
            When the event type is outside the device type's scope.
        """
        if not isinstance(key, str) or not _plausible(key):
            raise AuthError("invalid device key")
        found = self._lookup(hash_key(key))
        if found is None:
            return None
        if isinstance(found, str):
            raise AuthError(found)
        if device_id is not None and device_id != found.id:
            raise AuthError("device key does not belong to the device named")
        check_scope(found.type, event_type)
        return found

    def remember(self, key: str, device: Device | DeviceIdentity) -> DeviceIdentity:
        """Cache ``key`` as belonging to ``device``."""
        ident = device if isinstance(device, DeviceIdentity) else DeviceIdentity.of(device)
        digest = hash_key(key)
        with self._lock:
            self._bad.pop(digest, None)
            self._good[digest] = (ident, self._clock() + self.ttl_s)
            self._good.move_to_end(digest)
            while len(self._good) > self.max_entries:
                self._good.popitem(last=False)
        return ident

    def remember_rejection(self, key: str, message: str) -> None:
        """Cache that ``key`` was refused (unknown or revoked)."""
        if self.negative_ttl_s <= 0:
            return
        digest = hash_key(key)
        with self._lock:
            self._good.pop(digest, None)
            self._bad[digest] = (message, self._clock() + self.negative_ttl_s)
            self._bad.move_to_end(digest)
            while len(self._bad) > self.max_entries:
                self._bad.popitem(last=False)

    def authenticate(
        self,
        session: Session,
        key: str,
        *,
        event_type: str | None,
        device_id: str | None = None,
    ) -> DeviceIdentity:
        """:func:`authenticate_device` through the cache (the session is used on a miss).

        Raises
        ------
        AuthError, Forbidden
            As :func:`authenticate_device`.
        """
        cached = self.check(key, event_type=event_type, device_id=device_id)
        if cached is not None:
            return cached
        try:
            device = authenticate_device(session, key, event_type=None)
        except AuthError as exc:
            self.remember_rejection(key, exc.message)
            raise
        ident = self.remember(key, device)
        if device_id is not None and device_id != ident.id:
            raise AuthError("device key does not belong to the device named")
        check_scope(ident.type, event_type)
        return ident

    def invalidate_device(self, device_id: str) -> None:
        """Forget every cached key of ``device_id``."""
        with self._lock:
            for digest in [d for d, (ident, _) in self._good.items() if ident.id == device_id]:
                del self._good[digest]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._good.clear()
            self._bad.clear()
