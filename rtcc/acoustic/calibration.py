"""Per-sensor calibration (station corrections) learned from test fires at surveyed positions.

Quick use
---------
>>> from rtcc.acoustic.calibration import SurveyedRound, fit_calibration, Calibration
>>> cal = fit_calibration(rounds, temperature_c=-1.0)       # doctest: +SKIP
>>> cal.save("calibration.json")                            # doctest: +SKIP
>>> fixes = locate_all(Calibration.load("calibration.json").apply(arrivals))  # doctest: +SKIP

What it corrects
----------------
A sensor whose arrivals are *consistently* early or late against the straight-ray model — a
constant processing latency, a clock offset, a surveyed position that is a few metres off, a path
that is always diffracted around the same corner — biases every shot it hears. Such a bias repeats
from round to round, so it can be measured where the truth is known: rounds fired at surveyed
points when a city commissions its sensors (test fires), located by :func:`rtcc.acoustic.locate.locate_all`.

Model
-----
Round ``r`` fired at the surveyed point ``q_r`` reaches sensor ``s`` (reported position ``p_s``) at

``t_rs = t0_r + |p_s - q_r| / c + b_s + (u_rs . d_s) / c + e_rs``

with ``t0_r`` the round's emission time (unknown, fitted), ``b_s`` the sensor's time offset (s),
``d_s = (dx_s, dy_s)`` the horizontal error of its reported position (m; the true position is
``p_s + d_s``), ``u_rs`` the horizontal unit vector from the source to the sensor and ``e_rs`` noise.
Two models: ``"offset"`` (``b_s`` only) and ``"offset+position"`` (``b_s, dx_s, dy_s``). The
position part is identifiable only when a sensor heard test fires from several directions; from
one direction it is confounded with ``b_s``, and the shrinkage decides the split.

Fit: alternating least squares — each round's ``t0_r`` given the corrections, then each sensor's
corrections given the ``t0_r`` — with a ridge penalty ``k |theta_s|^2`` on the sensor's
parameters in time units (``theta_s = (b_s, dx_s / c, dy_s / c)``), so a sensor heard in few rounds
is shrunk toward no correction (``k`` acts as ``k`` prior pulses of zero residual; the ridge also
fixes the gauge: a common offset of every sensor is absorbed by the ``t0_r``). Huber weights
(knee 10 ms) keep a late, blocked arrival from dragging a sensor's offset. This is the station
correction of seismology's joint hypocentre determination (Douglas, *Nature* 215, 1967; Pujol,
*BSSA* 78, 1988) with the hypocentres fixed at the surveyed points ("ground-truth events").

Apply: each pulse of a calibrated sensor gets ``t - b_s`` and position ``p_s + d_s`` *before*
association and location; pulses of sensors the file does not name are left as they are.

File format (JSON, ``version`` 1)::

    {"format": "rtcc-acoustic-calibration", "version": 1, "model": "offset",
     "fitted": {"date": "...", "rounds": 99, "pulses": 1234, "sensors": 40, "shrinkage_pulses": 3.0,
                "residual_rms_before_ms": 6.1, "residual_rms_after_ms": 4.2, ...},
     "sensors": {"SCP-1": {"offset_ms": 1.25, "dx_m": 0.0, "dy_m": 0.0, "pulses": 12,
                           "rms_before_ms": 5.0, "rms_after_ms": 2.1}, ...}}

``offset_ms`` is subtracted from the sensor's arrival times; ``dx_m``/``dy_m`` (east/north metres,
optional, default 0) are added to its reported position. The sensor positions must be in the
same horizontal orientation (east/north) as the pulses the file is applied to; a translated frame
is fine, the corrections are differences.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rtcc.acoustic.locate import Arrival, Fix, speed_of_sound

__all__ = [
    "FORMAT",
    "Calibration",
    "CalibrationError",
    "Model",
    "SensorCorrection",
    "SurveyedRound",
    "fit_calibration",
    "match_rounds",
]

FORMAT = "rtcc-acoustic-calibration"
VERSION = 1
MAX_OFFSET_MS = 1000.0
"""Largest accepted |offset| in a file, ms (larger is a clock fault, not a calibration)."""
MAX_SHIFT_M = 500.0
"""Largest accepted position correction in a file, metres."""
Model = Literal["offset", "offset+position"]
MODELS: tuple[Model, ...] = ("offset", "offset+position")


class CalibrationError(ValueError):
    """A calibration file or fit input that cannot be used; the message says what and where."""


@dataclass(frozen=True)
class SensorCorrection:
    """One sensor's correction: ``offset_s`` subtracted from its arrivals, ``(dx_m, dy_m)`` added to
    its position; ``pulses`` used in the fit and the RMS residual (s) before/after correcting."""

    offset_s: float
    dx_m: float = 0.0
    dy_m: float = 0.0
    pulses: int = 0
    rms_before_s: float | None = None
    rms_after_s: float | None = None


@dataclass(frozen=True)
class SurveyedRound:
    """One located test-fire round: the surveyed source position (m) and the pulses used (one per sensor)."""

    x_m: float
    y_m: float
    z_m: float
    arrivals: tuple[Arrival, ...]


@dataclass(frozen=True)
class Calibration:
    """Per-sensor corrections and how they were fitted (``fitted``: free metadata, JSON-able)."""

    sensors: Mapping[str, SensorCorrection]
    model: Model = "offset"
    fitted: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, arrivals: Sequence[Arrival]) -> list[Arrival]:
        """The arrivals with each calibrated sensor's correction applied; others unchanged.

        Parameters
        ----------
        arrivals : sequence of Arrival
            Pulses in local metres and seconds.

        Returns
        -------
        list of Arrival
            Same order and length; ``t_s - offset_s`` and ``x_m + dx_m``, ``y_m + dy_m`` for sensors
            named in the calibration, the same objects otherwise.
        """
        out: list[Arrival] = []
        for a in arrivals:
            k = self.sensors.get(a.sensor_id)
            if k is None:
                out.append(a)
            else:
                out.append(replace(a, t_s=a.t_s - k.offset_s, x_m=a.x_m + k.dx_m, y_m=a.y_m + k.dy_m))
        return out

    def correct(
        self, sensor_id: str, t_s: float, xyz: tuple[float, float, float]
    ) -> tuple[float, tuple[float, float, float]]:
        """One pulse's corrected time (s) and position (m); unchanged for an unknown sensor."""
        k = self.sensors.get(sensor_id)
        if k is None:
            return t_s, xyz
        return t_s - k.offset_s, (xyz[0] + k.dx_m, xyz[1] + k.dy_m, xyz[2])

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (see the module docstring)."""

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000.0, 4)

        sensors: dict[str, Any] = {}
        for sid in sorted(self.sensors):
            k = self.sensors[sid]
            entry: dict[str, Any] = {"offset_ms": round(k.offset_s * 1000.0, 4)}
            if self.model == "offset+position":
                entry["dx_m"] = round(k.dx_m, 3)
                entry["dy_m"] = round(k.dy_m, 3)
            entry["pulses"] = k.pulses
            entry["rms_before_ms"] = ms(k.rms_before_s)
            entry["rms_after_ms"] = ms(k.rms_after_s)
            sensors[sid] = entry
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model,
            "fitted": dict(self.fitted),
            "sensors": sensors,
        }

    def save(self, path: str | Path) -> None:
        """Write the JSON file (UTF-8, indented)."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, obj: object, *, where: str = "calibration") -> Calibration:
        """Validate and read a calibration object.

        Raises
        ------
        CalibrationError
            Wrong format tag or version, an unknown model, a sensor entry without a finite
            ``offset_ms``, or a correction beyond the accepted bounds; the message names the key.
        """
        if not isinstance(obj, dict):
            raise CalibrationError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if obj.get("format") != FORMAT:
            raise CalibrationError(f"{where}: 'format' must be {FORMAT!r} (got {obj.get('format')!r})")
        if obj.get("version") != VERSION:
            raise CalibrationError(
                f"{where}: unsupported 'version' {obj.get('version')!r} (this reads {VERSION})"
            )
        model = obj.get("model", "offset")
        if model not in MODELS:
            raise CalibrationError(f"{where}: 'model' must be one of {', '.join(MODELS)} (got {model!r})")
        fitted = obj.get("fitted", {})
        if not isinstance(fitted, dict):
            raise CalibrationError(f"{where}: 'fitted' must be an object")
        raw = obj.get("sensors")
        if not isinstance(raw, dict):
            raise CalibrationError(
                f"{where}: 'sensors' must be an object mapping sensor id to its correction"
            )
        sensors: dict[str, SensorCorrection] = {}
        for sid, entry in raw.items():
            key = f"{where}: sensors[{sid!r}]"
            if not isinstance(entry, dict):
                raise CalibrationError(f"{key} must be an object with 'offset_ms'")
            off = _finite(entry, "offset_ms", key, required=True)
            dx = _finite(entry, "dx_m", key)
            dy = _finite(entry, "dy_m", key)
            if abs(off) > MAX_OFFSET_MS:
                raise CalibrationError(f"{key}.offset_ms = {off} is beyond ±{MAX_OFFSET_MS:g} ms")
            if math.hypot(dx, dy) > MAX_SHIFT_M:
                raise CalibrationError(
                    f"{key}: position correction ({dx}, {dy}) m is beyond {MAX_SHIFT_M:g} m"
                )
            pulses = entry.get("pulses", 0)
            sensors[str(sid)] = SensorCorrection(
                offset_s=off / 1000.0,
                dx_m=dx,
                dy_m=dy,
                pulses=int(pulses) if isinstance(pulses, int | float) and math.isfinite(pulses) else 0,
                rms_before_s=_opt_ms(entry.get("rms_before_ms")),
                rms_after_s=_opt_ms(entry.get("rms_after_ms")),
            )
        return cls(sensors=sensors, model=model, fitted=fitted)

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read and validate a calibration file.

        Raises
        ------
        CalibrationError
            The file is missing, unreadable, not JSON, or not a valid calibration (see :meth:`from_json`).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise CalibrationError(f"{p}: cannot read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise CalibrationError(f"{p}: not a UTF-8 text file") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{p}: not JSON (line {exc.lineno}: {exc.msg})") from None
        return cls.from_json(obj, where=str(p))


def _finite(entry: Mapping[str, Any], name: str, key: str, *, required: bool = False) -> float:
    v = entry.get(name)
    if v is None:
        if required:
            raise CalibrationError(f"{key}: missing {name!r}")
        return 0.0
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CalibrationError(f"{key}.{name} must be a finite number (got {v!r})")
    return float(v)


def _opt_ms(v: object) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v) / 1000.0
    return None


def match_rounds(
    fixes: Sequence[Fix],
    tests: Sequence[tuple[float, float, float, int, float, float]],
    *,
    max_distance_m: float = 50.0,
) -> list[SurveyedRound]:
    """Pair located rounds with the test fires they belong to.

    Parameters
    ----------
    fixes : sequence of Fix
        Output of :func:`rtcc.acoustic.locate.locate_all` over the test fires' pulses.
    tests : sequence of (x_m, y_m, z_m, rounds, t_start_s, t_end_s)
        Each test fire: surveyed position, rounds fired, and the time span its rounds were fired in.
    max_distance_m : float
        A fix farther than this from the surveyed point is not one of its rounds.

    Returns
    -------
    list of SurveyedRound
        Per test, its ``rounds`` nearest unused fixes within ``max_distance_m`` and the time span
        (the independent scorer's matching rule), each with the pulses the locator used.
    """
    used: set[int] = set()
    out: list[SurveyedRound] = []
    for x, y, z, n, t0, t1 in tests:
        cand = sorted(
            (math.hypot(f.x_m - x, f.y_m - y), i)
            for i, f in enumerate(fixes)
            if t0 <= f.t0_s <= t1 and i not in used
        )
        for _d, i in [c for c in cand if c[0] <= max_distance_m][:n]:
            used.add(i)
            out.append(SurveyedRound(x, y, z, fixes[i].arrivals))
    return out


def fit_calibration(
    rounds: Sequence[SurveyedRound],
    *,
    temperature_c: float | Sequence[float] = 20.0,
    model: Model = "offset",
    shrinkage_pulses: float = 3.0,
    huber_s: float = 0.010,
    min_pulses: int = 2,
    iterations: int = 30,
) -> Calibration:
    """Fit per-sensor corrections from located rounds fired at surveyed positions.

    Parameters
    ----------
    rounds : sequence of SurveyedRound, length R
        The test-fire rounds with the pulses used to locate them (one per sensor per round).
    temperature_c : float or sequence of float (length R)
        Air temperature, °C, for all rounds or per round (speed of sound,
        :func:`rtcc.acoustic.locate.speed_of_sound`).
    model : {"offset", "offset+position"}
        Per-sensor time offset only, or offset plus horizontal position correction.
    shrinkage_pulses : float
        Ridge strength ``k >= 0``, in equivalent pulses of zero residual: a sensor with ``n`` pulses
        of mean residual ``m`` gets the offset ``n m / (n + k)`` (offset model, no robust weights).
    huber_s : float
        Knee of the Huber weights, seconds.
    min_pulses : int
        Sensors with fewer pulses get no entry (their arrivals stay uncorrected).
    iterations : int
        Alternating steps (each solves the emission times, then the sensors).

    Returns
    -------
    Calibration
        The corrections and ``fitted`` metadata: date, rounds, pulses, sensors, model, shrinkage,
        weighted RMS residual before and after (ms), with the emission times refitted each time.

    Raises
    ------
    CalibrationError
        No rounds, a bad model, or negative shrinkage.
    """
    if model not in MODELS:
        raise CalibrationError(f"model must be one of {', '.join(MODELS)} (got {model!r})")
    if not shrinkage_pulses >= 0.0:
        raise CalibrationError(f"shrinkage must be >= 0 (got {shrinkage_pulses})")
    temps = (
        [float(temperature_c)] * len(rounds)
        if isinstance(temperature_c, int | float)
        else list(temperature_c)
    )
    if len(temps) != len(rounds):
        raise CalibrationError(f"{len(temps)} temperatures for {len(rounds)} rounds")
    rows_r: list[int] = []
    rows_s: list[str] = []
    base: list[float] = []  # t - distance / c, seconds relative to the round's first arrival
    ux: list[float] = []
    uy: list[float] = []
    cs: list[float] = []
    for r, (rnd, temp) in enumerate(zip(rounds, temps, strict=True)):
        c = speed_of_sound(temp)
        if not rnd.arrivals:
            continue
        tmin = min(a.t_s for a in rnd.arrivals)
        for a in rnd.arrivals:
            dx, dy, dz = a.x_m - rnd.x_m, a.y_m - rnd.y_m, a.z_m - rnd.z_m
            d = math.sqrt(dx * dx + dy * dy + dz * dz)
            h = math.hypot(dx, dy)
            rows_r.append(r)
            rows_s.append(a.sensor_id)
            base.append(a.t_s - tmin - d / c)
            ux.append(dx / h if h > 0 else 0.0)
            uy.append(dy / h if h > 0 else 0.0)
            cs.append(c)
    if not rows_r:
        raise CalibrationError("no located test-fire rounds to fit from")
    ids = sorted(set(rows_s))
    sidx = _index(rows_s, ids)
    ridx = np.array(rows_r)
    y = np.array(base)
    npar = 3 if model == "offset+position" else 1
    design = np.ones((len(y), npar))
    if npar == 3:
        design[:, 1] = np.array(ux)  # (u . d) / c with theta = d / c
        design[:, 2] = np.array(uy)
    theta = np.zeros((len(ids), npar))
    t0 = _round_times(y, ridx, np.ones_like(y), len(rounds))
    w = np.ones_like(y)
    for _ in range(iterations):
        pred = np.einsum("ij,ij->i", design, theta[sidx])
        t0 = _round_times(y - pred, ridx, w, len(rounds))
        e = y - t0[ridx]
        w = _huber(e - pred, huber_s)
        new = np.zeros_like(theta)
        for s in range(len(ids)):
            m = sidx == s
            a = design[m] * np.sqrt(w[m])[:, None]
            b = e[m] * np.sqrt(w[m])
            new[s] = np.linalg.solve(a.T @ a + shrinkage_pulses * np.eye(npar), a.T @ b)
        done = float(np.max(np.abs(new - theta))) < 1e-7
        theta = new
        if done:
            break
    pred = np.einsum("ij,ij->i", design, theta[sidx])
    t0 = _round_times(y - pred, ridx, w, len(rounds))
    after = y - t0[ridx] - pred
    mean0 = _round_times(y, ridx, np.ones_like(y), len(rounds))
    before = y - _round_times(y, ridx, _huber(y - mean0[ridx], huber_s), len(rounds))[ridx]
    c_arr = np.array(cs)
    sensors: dict[str, SensorCorrection] = {}
    for s, sid in enumerate(ids):
        m = sidx == s
        n = int(np.sum(m))
        if n < min_pulses:
            continue
        c_s = float(np.mean(c_arr[m]))
        sensors[sid] = SensorCorrection(
            offset_s=float(theta[s, 0]),
            dx_m=float(theta[s, 1] * c_s) if npar == 3 else 0.0,
            dy_m=float(theta[s, 2] * c_s) if npar == 3 else 0.0,
            pulses=n,
            rms_before_s=_rms(before[m], w[m]),
            rms_after_s=_rms(after[m], w[m]),
        )
    fitted = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": model,
        "rounds": sum(1 for r in rounds if r.arrivals),
        "pulses": len(y),
        "sensors": len(sensors),
        "shrinkage_pulses": shrinkage_pulses,
        "huber_ms": huber_s * 1000.0,
        "residual_rms_before_ms": round(_rms(before, w) * 1000.0, 3),
        "residual_rms_after_ms": round(_rms(after, w) * 1000.0, 3),
    }
    return Calibration(sensors=sensors, model=model, fitted=fitted)


def _index(names: list[str], ids: list[str]) -> np.ndarray:
    pos = {s: i for i, s in enumerate(ids)}
    return np.array([pos[s] for s in names])


def _round_times(y: np.ndarray, ridx: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """Weighted mean of ``y`` per round (the emission time given the corrections)."""
    num = np.bincount(ridx, weights=w * y, minlength=n)
    den = np.bincount(ridx, weights=w, minlength=n)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)


def _huber(e: np.ndarray, k: float) -> np.ndarray:
    a = np.abs(e)
    return np.where(a <= k, 1.0, k / np.maximum(a, 1e-300))


def _rms(e: np.ndarray, w: np.ndarray) -> float:
    return float(np.sqrt(np.sum(w * e * e) / max(float(np.sum(w)), 1e-300)))
