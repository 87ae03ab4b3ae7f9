from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from rtcc.errors import AuthError, Conflict, Forbidden, NotFound, ValidationFailed
from rtcc.oversight.device_keys import (
    DeviceIdentity,
    DeviceKeyCache,
    authenticate_device,
    hash_key,
    issue_key,
    record_rejection,
    register_device,
    revoke_key,
    rotate_key,
)
from rtcc.roles import DeviceType
from rtcc.store.db import Store
from rtcc.store.tables import Device

LAT, LON = 33.5186, -86.8104


def register(
    store: Store, device_id: str = "lpr-1", kind: DeviceType = DeviceType.plate_camera
) -> tuple[Device, str]:
    return store.run(
        lambda s: register_device(
            s, device_id, kind, "Camera on 5th", LAT, LON, alt_m=6.0, attributes={"lane": 2}
        )
    )


def auth(store: Store, key: str, event_type: str | None = "plate_read") -> Device:
    return store.run(lambda s: authenticate_device(s, key, event_type=event_type))


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- registration and keys ------------------------------------------------------------------


def test_register_and_authenticate(store: Store) -> None:
    device, key = register(store)
    assert key.startswith("rtcc_lpr_") and len(key) > 50
    assert device.key_prefix == key[:12]
    assert device.key_hash == hash_key(key)
    assert (device.type, device.name, device.lat, device.lon, device.alt_m) == (
        "plate_camera",
        "Camera on 5th",
        LAT,
        LON,
        6.0,
    )
    assert device.attributes == {"lane": 2}
    found = auth(store, key)
    assert found.id == "lpr-1"
    assert auth(store, key, None).id == "lpr-1"
    assert (
        store.run(lambda s: authenticate_device(s, key, event_type="device_heartbeat", device_id="lpr-1")).id
        == "lpr-1"
    )


@pytest.mark.parametrize(
    ("kind", "short"),
    [
        (DeviceType.acoustic_sensor, "ac"),
        (DeviceType.plate_camera, "lpr"),
        (DeviceType.bodycam, "bwc"),
        (DeviceType.camera, "cam"),
    ],
)
def test_key_format_per_type(store: Store, kind: DeviceType, short: str) -> None:
    _, key = register(store, f"dev-{short}", kind)
    assert key.startswith(f"rtcc_{short}_")
    assert len(key.split("_", 2)[2]) >= 43  # token_urlsafe(32)


def test_key_is_not_stored_in_clear(store: Store) -> None:
    _, key = register(store)
    secret_part = key[12:]
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM devices")).all()
    assert len(rows) == 1
    dump = repr(tuple(rows[0]))
    assert key not in dump
    assert secret_part not in dump
    assert secret_part[:16] not in dump


def test_wrong_keys_are_refused(store: Store) -> None:
    _, key = register(store)
    for bad in (
        key[:-1] + ("A" if key[-1] != "A" else "B"),
        "rtcc_lpr_" + "x" * 43,
        "",
        "short",
        "nope_" + key[5:],
        key + "x" * 300,
    ):
        with pytest.raises(AuthError):
            auth(store, bad)
    with pytest.raises(AuthError, match="does not belong"):
        store.run(lambda s: authenticate_device(s, key, event_type="plate_read", device_id="x"))


def test_scope_violation_is_forbidden(store: Store) -> None:
    _, lpr = register(store)
    _, mic = register(store, "mic-1", DeviceType.acoustic_sensor)
    _, bwc = register(store, "bwc-1", DeviceType.bodycam)
    with pytest.raises(Forbidden, match="pulse"):
        auth(store, lpr, "pulse")
    with pytest.raises(Forbidden):
        auth(store, mic, "plate_read")
    with pytest.raises(Forbidden):
        auth(store, bwc, "gunshot_incident")
    with pytest.raises(Forbidden):
        auth(store, mic, "audit")
    assert auth(store, mic, "pulse").id == "mic-1"
    assert auth(store, bwc, "device_command_ack").id == "bwc-1"


def test_revoke_rotate_and_reissue(store: Store) -> None:
    _, first = register(store)
    store.run(lambda s: revoke_key(s, "lpr-1"))
    with pytest.raises(AuthError, match="revoked"):
        auth(store, first)
    assert store.run(lambda s: s.get(Device, "lpr-1")).revoked_at is not None  # type: ignore[union-attr]

    second = store.run(lambda s: issue_key(s, "lpr-1"))
    assert second != first
    device = store.run(lambda s: s.get(Device, "lpr-1"))
    assert device is not None and device.revoked_at is None
    assert device.key_prefix == second[:12]
    assert auth(store, second).id == "lpr-1"
    with pytest.raises(AuthError):
        auth(store, first)  # a revoked key stays dead after a new one is issued

    third = store.run(lambda s: rotate_key(s, "lpr-1"))
    assert auth(store, third).id == "lpr-1"
    with pytest.raises(AuthError):
        auth(store, second)

    with pytest.raises(NotFound):
        store.run(lambda s: issue_key(s, "ghost"))
    with pytest.raises(NotFound):
        store.run(lambda s: revoke_key(s, "ghost"))


def test_register_refuses(store: Store) -> None:
    register(store)
    with pytest.raises(Conflict):
        register(store)
    bad_calls: list[tuple[str, object, float, float]] = [
        ("", DeviceType.camera, LAT, LON),
        ("has space", DeviceType.camera, LAT, LON),
        ("x" * 129, DeviceType.camera, LAT, LON),
        ("ok-id", "toaster", LAT, LON),
        ("ok-id", DeviceType.camera, 91.0, LON),
        ("ok-id", DeviceType.camera, LAT, -180.5),
        ("ok-id", DeviceType.camera, math.nan, LON),
        ("ok-id", DeviceType.camera, LAT, math.inf),
    ]
    for device_id, kind, lat, lon in bad_calls:
        with pytest.raises(ValidationFailed):
            store.run(
                lambda s, d=device_id, k=kind, la=lat, lo=lon: register_device(  # type: ignore[misc]
                    s, d, k, "x", la, lo
                )
            )
    with pytest.raises(ValidationFailed, match="alt_m"):
        store.run(lambda s: register_device(s, "ok-id", DeviceType.camera, "", LAT, LON, 20_000))
    with pytest.raises(ValidationFailed, match="name"):
        store.run(lambda s: register_device(s, "ok-id", DeviceType.camera, "n" * 201, LAT, LON))
    device, _ = store.run(lambda s: register_device(s, "ok-id", "camera", "", LAT, LON))
    assert device.name == "ok-id" and device.attributes == {}


def test_record_rejection(store: Store) -> None:
    register(store)
    assert store.run(lambda s: record_rejection(s, "lpr-1")) is True
    assert store.run(lambda s: record_rejection(s, "lpr-1")) is True
    assert store.run(lambda s: record_rejection(s, "ghost")) is False
    device = store.run(lambda s: s.get(Device, "lpr-1"))
    assert device is not None and device.rejected_count == 2


# --- cache --------------------------------------------------------------------------------------


def test_cache_hits_skip_the_database(store: Store) -> None:
    _, key = register(store)
    clock = FakeClock()
    cache = DeviceKeyCache(ttl_s=60, clock=clock)
    assert cache.check(key, event_type="plate_read") is None
    ident = store.run(lambda s: cache.authenticate(s, key, event_type="plate_read"))
    assert ident == DeviceIdentity("lpr-1", DeviceType.plate_camera, "Camera on 5th")

    # Delete the row behind the cache's back: a hit does not look at the database.
    with store.session() as s:
        s.execute(text("DELETE FROM devices"))
    assert cache.check(key, event_type="plate_read") == ident
    assert store.run(lambda s: cache.authenticate(s, key, event_type="plate_read")) == ident
    # Scope and claimed id are checked on hits too.
    with pytest.raises(Forbidden):
        cache.check(key, event_type="pulse")
    with pytest.raises(AuthError):
        cache.check(key, event_type="plate_read", device_id="other")
    # After the TTL the database is asked again (and the device is gone).
    clock.t += 61
    assert cache.check(key, event_type="plate_read") is None
    with pytest.raises(AuthError):
        store.run(lambda s: cache.authenticate(s, key, event_type="plate_read"))
    assert cache.hits >= 2 and cache.misses >= 2


def test_cache_invalidated_by_revoke_in_process(store: Store) -> None:
    _, key = register(store)
    cache = DeviceKeyCache(ttl_s=3600, clock=FakeClock())
    store.run(lambda s: cache.authenticate(s, key, event_type="plate_read"))
    assert cache.check(key, event_type="plate_read") is not None
    store.run(lambda s: revoke_key(s, "lpr-1"))
    assert cache.check(key, event_type="plate_read") is None
    with pytest.raises(AuthError, match="revoked"):
        store.run(lambda s: cache.authenticate(s, key, event_type="plate_read"))
    # The refusal is remembered too (briefly), so floods of a dead key stay off the database.
    with pytest.raises(AuthError, match="revoked"):
        cache.check(key, event_type="plate_read")

    new = store.run(lambda s: rotate_key(s, "lpr-1"))
    assert store.run(lambda s: cache.authenticate(s, new, event_type="plate_read")).id == "lpr-1"
    store.run(lambda s: rotate_key(s, "lpr-1"))
    assert cache.check(new, event_type="plate_read") is None  # rotation invalidates too


def test_cache_scope_checked_after_a_miss(store: Store) -> None:
    _, key = register(store)
    cache = DeviceKeyCache()
    with pytest.raises(Forbidden):
        store.run(lambda s: cache.authenticate(s, key, event_type="pulse"))
    # The key itself is fine and now cached.
    assert cache.check(key, event_type="plate_read") is not None


def test_cache_is_bounded() -> None:
    clock = FakeClock()
    cache = DeviceKeyCache(max_entries=3, clock=clock)
    keys = [f"rtcc_cam_{i:040d}" for i in range(5)]
    for i, k in enumerate(keys):
        cache.remember(k, DeviceIdentity(f"cam-{i}", DeviceType.camera, ""))
    assert len(cache) == 3
    assert cache.check(keys[0], event_type=None) is None
    assert cache.check(keys[4], event_type=None) is not None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        DeviceKeyCache(ttl_s=0)
