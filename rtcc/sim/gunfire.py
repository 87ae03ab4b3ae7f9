"""Simulated gunfire, fireworks and knocks, propagated to every acoustic sensor in range.

Real recorded waveforms (:data:`WAVEFORM_DIR`, see its ``ATTRIBUTION.md``) are
played at a random street position and propagated to each sensor with

* **delay** ``distance / c`` at the *true* air temperature (the center
  assumes its configured one: a temperature error), plus the wind's component
  along the path (``c_eff = c + w · û``);
* **spherical spreading** ``−20 log10(r / 1 m)`` and **air absorption**
  (``air_absorption_db_per_m`` dB/m, and a low-pass whose corner falls with
  distance);
* a **late echo** (a copy off a building or the ground, 8–80 ms later, 6–14
  dB weaker);
* an occasional **blocked path** (``blocked_probability``): the direct sound
  is lost, the first arrival is a diffracted/reflected one, 1–15 ms late and
  8–16 dB weaker — late, never early;
* **clock jitter** (normal, ``clock_jitter_s``, 50 µs by default) on each
  sensor's time stamp;
* **street noise** at the sensor's noise floor, low-frequency as on a street (:func:`street_noise`).

A sensor reports a pulse when the arrival's SNR is at least
``detection_snr_db`` and it is within ``range_m``; with ``echo_pulse_probability``
it also reports the echo as a second pulse (the center must leave it out).
Each pulse carries 0.5 s of the audio it heard, FLAC-encoded, as a real
sensor's would. Ground truth goes to ``truth.record("gunfire", …)``.

:class:`Gunfire` plugs into :class:`rtcc.sim.runner.SimRunner` as a source
(``install()``): every ``every_s`` simulated seconds it fires one event — a
mix of gunfire (single shots, semi-automatic strings, automatic bursts),
fireworks and knocks.
"""

from __future__ import annotations

import base64
import io
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import soundfile as sf
from scipy.signal import butter, lfilter

from rtcc.acoustic import features
from rtcc.events import Event, Position, Pulse
from rtcc.sim.city import City, SimDevice
from rtcc.sim.geometry import point_along, polyline_length
from rtcc.sim.runner import SimRunner, Tick

Kind = Literal["gunshot", "fireworks", "knock"]

WAVEFORMS: dict[str, Kind] = {
    "gunshot_45cal": "gunshot",
    "gunshot_40cal": "gunshot",
    "gunshot_9mm": "gunshot",
    "fireworks": "fireworks",
    "knock": "knock",
}
"""Shipped clips (``rtcc/sim/waveforms/<name>.flac``) and what they are."""

SOURCE_LEVEL_DB: dict[Kind, tuple[float, float]] = {
    "gunshot": (140.0, 150.0),
    "fireworks": (130.0, 145.0),
    "knock": (95.0, 105.0),
}
"""Peak level at 1 m, dB SPL (range drawn from)."""

FULL_SCALE_DB = 135.0
"""dB SPL of a digital full-scale peak at the simulated sensors' microphones."""

PRE_S = features.PRE_S
"""Audio before the onset in each clip and each pulse's snippet, s (as a real sensor sends it)."""

SNIPPET_S = features.WINDOW_S
"""Audio each pulse carries, s: the classifier's window, as :data:`rtcc.acoustic.agent.PULSE_AUDIO`."""


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s: ``331.3 * sqrt(1 + T / 273.15)``."""
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


@dataclass(frozen=True)
class Waveform:
    """A shipped clip: mono float32 audio, onset at :data:`PRE_S`."""

    name: str
    kind: Kind
    audio: np.ndarray[Any, np.dtype[np.float32]]
    rate: int


@cache
def load_waveform(name: str) -> Waveform:
    """Read a shipped clip by name (e.g. ``"gunshot_9mm"``)."""
    ref = resources.files("rtcc.sim") / "waveforms" / f"{name}.flac"
    data, rate = sf.read(io.BytesIO(ref.read_bytes()), dtype="float32", always_2d=True)
    return Waveform(name, WAVEFORMS[name], np.ascontiguousarray(data.mean(axis=1)), int(rate))


@dataclass(frozen=True)
class Propagation:
    """How sound travels in the simulated city (units in the names).

    ``temperature_c`` is the true air temperature (the center assumes its own
    setting); ``wind_mps`` the (east, north) velocity of the air.
    """

    temperature_c: float = 20.0
    wind_mps: tuple[float, float] = (0.0, 0.0)
    range_m: float = 1500.0
    detection_snr_db: float = 12.0
    air_absorption_db_per_m: float = 0.005
    blocked_probability: float = 0.1
    echo_pulse_probability: float = 0.15
    clock_jitter_s: float = 50e-6
    source_height_m: float = 1.5


DEMO_PROPAGATION = Propagation(temperature_c=23.0, wind_mps=(2.0, -1.0))
"""What :class:`Gunfire` uses unless told: 3 °C warmer than the center's default
assumption (20 °C) and a light west-north-westerly wind of 2.2 m/s — small, real errors."""


@dataclass(frozen=True)
class Reception:
    """What one sensor heard of one bang.

    ``delay_s`` is the onset time stamp minus the emission time (jitter
    included); ``true_delay_s`` the physical first arrival.
    """

    sensor_id: str
    distance_m: float
    delay_s: float
    true_delay_s: float
    level_db: float
    snr_db: float
    blocked: bool
    echo_delay_s: float
    echo_db: float
    audio: np.ndarray[Any, np.dtype[np.float32]] = field(repr=False)
    rate: int = 12_000


@dataclass(frozen=True)
class SensorSite:
    """A sensor as the propagation sees it: local metres and its noise floor."""

    id: str
    x: float
    y: float
    z: float
    noise_floor_db: float


def _lowpass(x: np.ndarray[Any, Any], rate: int, corner_hz: float) -> np.ndarray[Any, Any]:
    corner = min(corner_hz, 0.45 * rate)
    b, a = butter(2, corner / (rate / 2.0))
    return np.asarray(lfilter(b, a, x), dtype=np.float32)


def propagate(
    src: tuple[float, float, float],
    source_level_db: float,
    wf: Waveform,
    sites: list[SensorSite],
    rng: random.Random,
    prm: Propagation,
) -> list[Reception]:
    """Every reception of one bang at ``src`` (local metres) by the sensors that detect it."""
    c = speed_of_sound(prm.temperature_c)
    out = []
    n = int(SNIPPET_S * wf.rate)
    for s in sites:
        dx, dy, dz = s.x - src[0], s.y - src[1], s.z - src[2]
        r = max(1.0, math.sqrt(dx * dx + dy * dy + dz * dz))
        if r > prm.range_m:
            continue
        ux, uy = dx / r, dy / r
        c_eff = c + prm.wind_mps[0] * ux + prm.wind_mps[1] * uy
        true_delay = r / c_eff
        level = source_level_db - 20.0 * math.log10(r) - prm.air_absorption_db_per_m * r
        blocked = rng.random() < prm.blocked_probability
        extra = 0.0
        if blocked:
            extra = rng.uniform(0.001, 0.015)
            level -= rng.uniform(8.0, 16.0)
        snr = level - s.noise_floor_db
        if snr < prm.detection_snr_db:
            continue
        echo_delay = rng.uniform(0.008, 0.08)
        echo_db = rng.uniform(6.0, 14.0)
        # the audio: noise bed, the low-passed clip at the arrival's level, its echo
        gain = 10.0 ** ((level - FULL_SCALE_DB) / 20.0) / max(1e-6, float(np.max(np.abs(wf.audio))))
        sig = _lowpass(wf.audio, wf.rate, 2.0e6 / r) * gain
        audio = np.zeros(n, dtype=np.float32)
        audio[: min(n, sig.size)] += sig[:n]
        k = int(echo_delay * wf.rate)
        if k < n:
            audio[k:] += sig[: n - k] * 10.0 ** (-echo_db / 20.0)
        noise_rms = 10.0 ** ((s.noise_floor_db - FULL_SCALE_DB) / 20.0)
        nrng = np.random.default_rng(rng.getrandbits(32))
        audio += street_noise(nrng, n, wf.rate) * np.float32(noise_rms)
        np.clip(audio, -1.0, 1.0, out=audio)
        jitter = rng.gauss(0.0, prm.clock_jitter_s)
        out.append(
            Reception(
                s.id,
                r,
                true_delay + extra + jitter,
                true_delay + extra,
                level,
                snr,
                blocked,
                echo_delay,
                echo_db,
                audio,
                wf.rate,
            )
        )
    return out


STREET_NOISE_HZ = 300.0
"""Corner of the street-noise spectrum, Hz: flat below it, falling 6 dB per octave above."""


def street_noise(rng: np.random.Generator, n: int, rate: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """``n`` samples of unit-RMS street background: white noise through a one-pole low-pass.

    Traffic, wind and HVAC put most of a street's noise below a few hundred hertz, so a gunshot's
    crack stands out of it above 1 kHz; white noise at the same level would bury the crack, which
    no street does (the classifier, trained on real sensor backgrounds, then hears a sound it was
    never shown). The level is the sensor's noise floor either way.
    """
    x = rng.standard_normal(n + rate // 10)  # a 0.1 s lead-in lets the filter settle
    y = _lowpass1(x, rate, STREET_NOISE_HZ)[rate // 10 :]
    return np.asarray(y / max(1e-12, float(np.sqrt(np.mean(y**2)))), dtype=np.float32)


def _lowpass1(x: np.ndarray[Any, Any], rate: int, corner_hz: float) -> np.ndarray[Any, Any]:
    a = math.exp(-2.0 * math.pi * corner_hz / rate)
    return np.asarray(lfilter([1.0 - a], [1.0, -a], x))


def flac_b64(audio: np.ndarray[Any, Any], rate: int) -> str:
    """16-bit FLAC of ``audio``, base64 (as a :class:`~rtcc.events.Pulse` carries it)."""
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="FLAC", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


@dataclass
class Scenario:
    """One simulated event: what, where, and the bangs' offsets from the first (s)."""

    kind: Kind
    waveform: str
    x: float
    y: float
    offsets_s: list[float]
    source_level_db: float


class Gunfire:
    """A source of gunfire, fireworks and knocks for :class:`~rtcc.sim.runner.SimRunner`.

    Parameters
    ----------
    city : City
        The simulated city (sensors, roads, projection).
    runner : SimRunner or None
        The runner :meth:`install` adds the source to.
    every_s : float
        Simulated seconds between events.
    gunfire_share, fireworks_share : float
        Share of events that are gunfire and fireworks; the rest are knocks.
    propagation : Propagation
        The physics (see the module docstring); default :data:`DEMO_PROPAGATION`.
    seed : int or str
        Seed of the event generator.
    """

    def __init__(
        self,
        city: City,
        runner: SimRunner | None = None,
        *,
        every_s: float = 60.0,
        gunfire_share: float = 0.6,
        fireworks_share: float = 0.3,
        propagation: Propagation | None = None,
        seed: int | str | None = None,
    ) -> None:
        self.city = city
        self.runner = runner
        self.every_s = every_s
        self.gunfire_share = gunfire_share
        self.fireworks_share = fireworks_share
        self.prm = propagation or DEMO_PROPAGATION
        self.rng = random.Random(f"{city.seed}:gunfire" if seed is None else seed)
        self._next_at = every_s / 2.0
        self.fired = 0
        self._sites = [self._site(d) for d in city.sensors]
        self._devices = {d.id: d for d in city.sensors}

    def _site(self, d: SimDevice) -> SensorSite:
        x, y = self.city.to_xy(d.lat, d.lon)
        return SensorSite(
            d.id,
            x,
            y,
            float(d.attributes.get("height_m", 8.0)),
            float(d.attributes.get("noise_floor_db", 50)),
        )

    def install(self) -> None:
        """Add the source to the runner."""
        assert self.runner is not None
        self.runner.add_source(self.source)

    def source(self, tick: Tick) -> list[Event]:
        """The pulses of every event due by this tick (called by the runner)."""
        out: list[Event] = []
        while self._next_at <= tick.sim_time_s:
            self._next_at += self.every_s
            out.extend(self.fire(self.scenario(), tick.now, tick.truth))
        return out

    def scenario(self) -> Scenario:
        """Draw the next event: kind, clip, street position, timing."""
        rng = self.rng
        u = rng.random()
        kind: Kind = (
            "gunshot"
            if u < self.gunfire_share
            else "fireworks"
            if u < self.gunfire_share + self.fireworks_share
            else "knock"
        )
        names = [n for n, k in WAVEFORMS.items() if k == kind]
        x, y = self.street_point()
        if kind == "gunshot":
            style = rng.random()
            if style < 0.4:
                offsets = [0.0]
            elif style < 0.85:
                offsets = [0.0]
                for _ in range(rng.randint(1, 4)):
                    offsets.append(offsets[-1] + rng.uniform(0.25, 1.2))
            else:  # automatic burst
                step = rng.uniform(0.07, 0.15)
                offsets = [i * step for i in range(rng.randint(4, 9))]
        elif kind == "fireworks":
            offsets = [0.0]
            for _ in range(rng.randint(2, 8)):
                offsets.append(offsets[-1] + rng.uniform(0.15, 2.0))
        else:
            offsets = [i * rng.uniform(0.2, 0.4) for i in range(rng.randint(1, 4))]
        return Scenario(kind, rng.choice(names), x, y, offsets, rng.uniform(*SOURCE_LEVEL_DB[kind]))

    def street_point(self) -> tuple[float, float]:
        """A random point on a road inside the area, local metres."""
        roads = [r for r in self.city.roads if len(r.points) >= 2]
        if not roads:
            h = self.city.half_m
            return self.rng.uniform(-h, h), self.rng.uniform(-h, h)
        for _ in range(50):
            road = self.rng.choice(roads)
            p, _ = point_along(road.points, self.rng.uniform(0.0, polyline_length(road.points)))
            if self.city.contains_xy(*p):
                return p
        return 0.0, 0.0

    def fire(self, sc: Scenario, now: datetime, truth: Any = None) -> list[Pulse]:
        """The pulses the sensors report for ``sc``; emission timed so every arrival is in the past."""
        wf = load_waveform(sc.waveform)
        src = (sc.x, sc.y, self.prm.source_height_m)
        per_bang = [
            propagate(src, sc.source_level_db, wf, self._sites, self.rng, self.prm) for _ in sc.offsets_s
        ]
        latest = max((r.delay_s for bang in per_bang for r in bang), default=0.0) + sc.offsets_s[-1]
        t_emit = now - timedelta(seconds=latest + 0.2)
        pulses: list[Pulse] = []
        for off, bang in zip(sc.offsets_s, per_bang, strict=True):
            for rec in bang:
                pulses.append(self._pulse(rec, t_emit + timedelta(seconds=off + rec.delay_s)))
                if self.rng.random() < self.prm.echo_pulse_probability:
                    at = t_emit + timedelta(seconds=off + rec.delay_s + rec.echo_delay_s)
                    pulses.append(self._pulse(rec, at, echo=True))
        self.fired += 1
        if truth is not None:
            lat, lon = self.city.to_latlon(sc.x, sc.y)
            truth.record(
                "gunfire",
                event_kind=sc.kind,
                waveform=sc.waveform,
                x=round(sc.x, 3),
                y=round(sc.y, 3),
                lat=round(lat, 7),
                lon=round(lon, 7),
                t_emit=t_emit.isoformat(),
                rounds=len(sc.offsets_s),
                offsets_s=[round(o, 4) for o in sc.offsets_s],
                source_level_db=round(sc.source_level_db, 1),
                temperature_c=self.prm.temperature_c,
                heard_by=sorted({r.sensor_id for bang in per_bang for r in bang}),
                blocked=sorted({r.sensor_id for bang in per_bang for r in bang if r.blocked}),
            )
        return pulses

    def _pulse(self, rec: Reception, at: datetime, *, echo: bool = False) -> Pulse:
        d = self._devices[rec.sensor_id]
        level = rec.level_db - (rec.echo_db if echo else 0.0)
        return Pulse(
            source=d.id,
            device=d.id,
            occurred_at=at,
            pos=Position(lat=d.lat, lon=d.lon, alt_m=d.attributes.get("alt_m")),
            peak_db=round(min(250.0, level), 1),
            snr_db=round(min(250.0, rec.snr_db - (rec.echo_db if echo else 0.0)), 1),
            duration_ms=round(self.rng.uniform(20.0, 80.0), 1),
            sample_rate_hz=rec.rate,
            audio_flac_b64=flac_b64(rec.audio, rec.rate),
        )


def install(city: City, runner: SimRunner, center: Any) -> None:
    """Simulator hook (see ``rtcc.app.SIM_INSTALLERS``): gunfire and fireworks in the city."""
    Gunfire(city, runner).install()
