"""What each kind of simulated device says in its heartbeat.

* Acoustic sensors: fixed position with height, GPS lock, GPS-PPS clock and
  a noise floor near the sensor's baseline (45–60 dB SPL).
* Fixed plate cameras: position, heading, NTP clock.
* Body cams: the unit's current position and heading, battery, recording state.
* Mobile plate cameras: the unit's current position and heading, GPS clock.
* Other cameras (e.g. community cameras added later): position, NTP clock.
"""

from __future__ import annotations

import random
from datetime import datetime

from rtcc.events import DeviceHeartbeat, Position
from rtcc.roles import DeviceType
from rtcc.sim.city import City, SimDevice
from rtcc.sim.geometry import normalize_bearing

NOISE_FLOOR_DB = (45.0, 60.0)
"""Bounds of an acoustic sensor's reported noise floor, dB SPL."""

NOISE_FLOOR_SD_DB = 1.5
"""Standard deviation of the noise floor around the sensor's baseline, dB."""


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def heartbeat(device: SimDevice, city: City, now: datetime, rng: random.Random) -> DeviceHeartbeat:
    """The heartbeat ``device`` sends at ``now``.

    Parameters
    ----------
    device : SimDevice
        The device; one carried by a patrol unit reports the unit's current
        position and heading.
    city : City
        The city (for the units' positions).
    now : datetime
        Timezone-aware time stamped on the event (the device's clock).
    rng : random.Random
        Source of the noise floor's variation.
    """
    attrs = device.attributes
    lat, lon = device.lat, device.lon
    heading = _num(attrs.get("heading_deg"))
    unit = city.unit(device.unit) if device.unit else None
    if unit is not None:
        lat, lon = city.to_latlon(*unit.xy)
        heading = unit.heading_deg
    if heading is not None:
        heading = normalize_bearing(round(heading, 1))
    if device.type is DeviceType.acoustic_sensor:
        base = _num(attrs.get("noise_floor_db")) or 50.0
        floor = min(NOISE_FLOOR_DB[1], max(NOISE_FLOOR_DB[0], rng.gauss(base, NOISE_FLOOR_SD_DB)))
        return DeviceHeartbeat(
            source=device.id,
            device=device.id,
            occurred_at=now,
            device_type=device.type,
            pos=Position(lat=lat, lon=lon, alt_m=_num(attrs.get("alt_m"))),
            gps_lock=True,
            clock_quality="gps_pps",
            noise_floor_db=round(floor, 1),
        )
    if device.type is DeviceType.bodycam:
        return DeviceHeartbeat(
            source=device.id,
            device=device.id,
            occurred_at=now,
            device_type=device.type,
            pos=Position(lat=lat, lon=lon),
            battery_pct=round(unit.battery_pct, 1) if unit is not None else None,
            gps_lock=True,
            clock_quality="gps",
            recording=unit.recording if unit is not None else False,
            heading_deg=heading,
        )
    mobile = unit is not None
    return DeviceHeartbeat(
        source=device.id,
        device=device.id,
        occurred_at=now,
        device_type=device.type,
        pos=Position(lat=lat, lon=lon),
        gps_lock=True if mobile else None,
        clock_quality="gps" if mobile else "ntp",
        heading_deg=heading,
    )
