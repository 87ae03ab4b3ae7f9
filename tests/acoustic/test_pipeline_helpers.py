"""Helpers for the acoustic pipeline tests: a sensor array, synthetic pulses of a shot, posting them.

No tests here (imported by ``test_pipeline.py`` and ``tests/api/test_gunshots.py``).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from rtcc.acoustic.pipeline import AcousticPipeline, speed_of_sound
from rtcc.acoustic.projection import Projection
from rtcc.events import Position, Pulse
from rtcc.roles import DeviceType
from tests.conftest import Running

BOTH = pytest.mark.parametrize(
    "backend", ["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.nats])]
)
"""Run a test on SQLite + the in-process bus and on PostgreSQL/PostGIS + NATS."""

ORIGIN = (33.5186, -86.8104)
"""The simulated city's centre (the pipeline's frame origin in the tests)."""

LAYOUT_M = [
    (-400.0, -380.0),
    (10.0, -420.0),
    (390.0, -350.0),
    (-420.0, 20.0),
    (30.0, 40.0),
    (410.0, -10.0),
    (-380.0, 400.0),
    (0.0, 420.0),
    (400.0, 380.0),
]
"""Sensor positions, metres east/north of :data:`ORIGIN` (a jittered 3 × 3 grid, ~400 m apart)."""

SENSOR_ALT_M = 160.0


def use_classifier(pipe: AcousticPipeline, p: float) -> FixedClassifier:
    """Give the pipeline a classifier answering ``p`` (to test the review rule).

    The localizer is the real one (:mod:`rtcc.acoustic.locate`).
    """
    clf = FixedClassifier(p)
    pipe.use(classifier=clf)
    return clf


class FixedClassifier:
    """A stand-in classifier with a set probability (to test the review rule)."""

    def __init__(self, p: float) -> None:
        self.p = p
        self.calls = 0

    def probability(self, audio: Any, sample_rate_hz: int) -> float:
        assert audio.size > 0 and sample_rate_hz > 0
        self.calls += 1
        return self.p


@dataclass
class Array:
    keys: dict[str, str]
    xy: dict[str, tuple[float, float]]
    proj: Projection


def pipeline_of(center: Running) -> AcousticPipeline:
    comps = [c for c in center.center._components if isinstance(c, AcousticPipeline)]
    assert len(comps) == 1
    return comps[0]


async def provision_array(center: Running, prefix: str = "ac-t", *, refresh: bool = True) -> Array:
    """Register the sensors of :data:`LAYOUT_M` and (``refresh``) tell the pipeline about them."""
    proj = Projection(*ORIGIN)
    keys, xy = {}, {}
    for i, (x, y) in enumerate(LAYOUT_M, start=1):
        sid = f"{prefix}{i:02d}"
        lat, lon = proj.to_latlon(x, y)
        keys[sid] = await center.center.provision_device(
            sid, DeviceType.acoustic_sensor, f"test sensor {i}", lat, lon, {"alt_m": SENSOR_ALT_M}
        )
        xy[sid] = (x, y)
    if refresh:
        await pipeline_of(center).refresh_registry()
    return Array(keys, xy, proj)


async def ring(center: Running, prefix: str, radius_m: float, phase: float, n: int = 10) -> Array:
    """Register ``n`` sensors on a circle of ``radius_m`` around :data:`ORIGIN` (``phase``: first angle)."""
    proj = Projection(*ORIGIN)
    keys, xy = {}, {}
    for i in range(n):
        a = phase + 2 * math.pi * i / n
        x, y = radius_m * math.cos(a), radius_m * math.sin(a)
        sid = f"{prefix}{i:02d}"
        lat, lon = proj.to_latlon(x, y)
        keys[sid] = await center.center.provision_device(
            sid, DeviceType.acoustic_sensor, sid, lat, lon, {"alt_m": SENSOR_ALT_M}
        )
        xy[sid] = (x, y)
    return Array(keys, xy, proj)


def bang_flac(rate: int = 12_000, seed: int = 0) -> str:
    """A short synthetic impulse (N-wave and decaying noise), FLAC, base64."""
    rng = np.random.default_rng(seed)
    n = int(0.25 * rate)
    t = np.arange(n) / rate
    x = 0.01 * rng.standard_normal(n)
    k = int(0.05 * rate)
    x[k : k + 12] += np.linspace(0.8, -0.8, 12)
    x[k + 12 :] += 0.3 * rng.standard_normal(n - k - 12) * np.exp(-(t[k + 12 :] - t[k]) / 0.02)
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1).astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def shot_pulses(
    arr: Array,
    src: tuple[float, float],
    *,
    t_emit: datetime | None = None,
    rounds: tuple[float, ...] = (0.0,),
    temperature_c: float = 20.0,
    audio: bool = True,
    source_db: float = 145.0,
) -> list[Pulse]:
    """Pulses every sensor of ``arr`` reports for a shot at ``src`` (metres), one per round.

    ``peak_db`` is dB SPL: ``source_db`` at 1 m less spherical spreading (no air absorption).
    """
    c = speed_of_sound(temperature_c)
    t0 = t_emit or datetime.now(UTC) - timedelta(seconds=5)
    flac = bang_flac() if audio else None
    out = []
    for sid, (x, y) in arr.xy.items():
        lat, lon = arr.proj.to_latlon(x, y)
        d = math.dist((x, y), src)
        for r in rounds:
            out.append(
                Pulse(
                    source=sid,
                    device=sid,
                    occurred_at=t0 + timedelta(seconds=r + d / c),
                    pos=Position(lat=lat, lon=lon, alt_m=SENSOR_ALT_M),
                    peak_db=source_db - 20 * math.log10(max(d, 1.0)),
                    snr_db=95.0 - 20 * math.log10(max(d, 1.0)),  # over a 50 dB street
                    duration_ms=40.0,
                    sample_rate_hz=12_000 if flac else None,
                    audio_flac_b64=flac,
                )
            )
    return out


async def post_pulses(center: Running, arr: Array, pulses: list[Pulse]) -> None:
    """Each sensor posts its pulses through the real HTTPS ingest."""
    by: dict[str, list[dict[str, Any]]] = {}
    for p in pulses:
        by.setdefault(p.device, []).append(p.model_dump(mode="json"))
    for sid, evs in by.items():
        r = await center.http.post(
            "/api/v1/ingest/events",
            json={"events": evs},
            headers={"authorization": f"Device {arr.keys[sid]}"},
        )
        assert r.status_code == 202, r.text
