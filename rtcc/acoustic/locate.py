"""Gunshot localization: associate pulses into bangs and locate each by TDOA multilateration.

Quick use
---------
>>> from rtcc.acoustic.locate import Arrival, locate_all
>>> fixes = locate_all(arrivals, temperature_c=-1.0)        # doctest: +SKIP
>>> fixes[0].x_m, fixes[0].ellipse_major_m, fixes[0].quality  # doctest: +SKIP

Input is every pulse the sensors reported around one or more events (several rounds, echoes,
unrelated impulses, unsorted); output is one :class:`Fix` per bang, in emission order.

Method
------
* Speed of sound from the air temperature, ``c = 331.3 sqrt(1 + T / 273.15)`` m/s.
* Association by sequential RANSAC with a physical gate (two pulses can be one bang only if
  ``|dt| <= distance / c + tolerance``) and an asymmetric acceptance window — see
  :mod:`rtcc.acoustic.associate`.
* Closed-form start (spherical interpolation, Smith & Abel 1987 = stage one of Chan & Ho 1994), then
  robust Levenberg–Marquardt with an asymmetric loss: non-line-of-sight arrivals are only ever late,
  so late residuals are down-weighted and early ones are not — see :mod:`rtcc.acoustic.geometry`.
* 2-D by default: the source height is fixed at the median height of the contributing sensors;
  ``solve_height=True`` estimates it too.
* Uncertainty: the 95 % ellipse of the horizontal covariance ``sigma^2 (J^T W J)^-1`` (chi-square,
  2 degrees of freedom, 5.991; Hotelling's F-based radius when ``sigma`` is estimated from few
  residuals), plus an isotropic model-error term (``model_error_m``).
* Reporting: a bang is returned when at least 10 sensors agree (or 8, three of them loud and the
  fit tight), and more sensors agree than unrelated pulses would by chance (flood guard).
* Few sensors (opt-in, ``sparse=DEFAULT_SPARSE``): in a time cluster heard by at most 7 sensors
  (fewer than the rule above needs), rounds are reported only as part of a burst of at least 3
  rounds whose per-sensor delays repeat within 3 ms, located jointly — see
  :mod:`rtcc.acoustic.sparse_bursts`. Off by default: on the held-out firing positions it reported
  as many misplaced rounds as good ones (``docs/acoustic-localization.md``).
* Bursts: rounds fired within seconds from one place (same per-sensor delays) are located jointly —
  one shared position, one emission time per round, per-sensor earliest-arrival weighting across
  the rounds against blocked paths, rounds mixed up by the association re-associated with the
  burst's delays — and a weaker group is reported when it is one more round of such a burst; see
  :func:`rtcc.acoustic.associate.refine_bursts`. One output per round is kept.
* Quality ``"poor"`` when fewer than ``good_sensors`` sensors agree, when the sensors are nearly
  collinear (mirror ambiguity), or when the horizontal dilution of precision is large.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rtcc.acoustic.associate import AssociationParams, Group, associate, refine_bursts
from rtcc.acoustic.geometry import CHI2_2DOF_95, ellipse_95, planarity, region_scale_95
from rtcc.acoustic.sparse_bursts import SparseParams, sparse_bursts

__all__ = [
    "DEFAULT_SPARSE",
    "Arrival",
    "AssociationParams",
    "Fix",
    "SparseParams",
    "locate_all",
    "speed_of_sound",
]

DEFAULT_SPARSE = SparseParams()
"""The few-sensor burst rule as tuned on the tuning firing positions (:mod:`rtcc.acoustic.sparse_bursts`);
opt-in: pass it as ``sparse``."""

SEGMENT_GAP_S = 3600.0
"""Arrivals more than this far apart in time (no arrival between) are located separately
(:func:`locate_all`): no bang, burst or echo spans an hour, and each stretch gets its own time
reference and origin, so one row hours or years off leaves the others' precision intact."""


@dataclass(frozen=True)
class Arrival:
    """One pulse heard at one sensor, in local metric coordinates.

    ``x_m`` east, ``y_m`` north, ``z_m`` up, metres in one local frame shared by all arrivals;
    ``t_s`` seconds on a common clock (e.g. POSIX); ``snr_db`` orders seeds (strongest first);
    ``ref`` is the caller's handle (e.g. the pulse event id), passed through untouched.
    """

    sensor_id: str
    x_m: float
    y_m: float
    z_m: float
    t_s: float
    snr_db: float | None = None
    ref: object = None


@dataclass(frozen=True)
class Fix:
    """One located bang.

    ``t0_s`` emission time on the arrivals' clock (s); ``x_m, y_m, z_m`` position (m, same frame);
    ``ellipse_major_m`` / ``ellipse_minor_m`` the 95 % ellipse's semi-axes (m) and
    ``ellipse_angle_deg`` the bearing of its major axis, degrees clockwise from north (+y), in
    ``[0, 180)``; ``sensors`` and ``arrivals`` the pulses used (one per sensor); ``residual_rms_s``
    the RMS arrival-time residual (s); ``quality`` ``"poor"`` for few sensors or weak geometry.
    """

    t0_s: float
    x_m: float
    y_m: float
    z_m: float
    ellipse_major_m: float
    ellipse_minor_m: float
    ellipse_angle_deg: float
    sensors: tuple[str, ...]
    arrivals: tuple[Arrival, ...]
    residual_rms_s: float
    quality: Literal["good", "poor"]


def speed_of_sound(temperature_c: float) -> float:
    """Speed of sound in dry air, m/s: ``331.3 * sqrt(1 + T / 273.15)`` with ``T`` in °C.

    Raises
    ------
    ValueError
        For a temperature at or below absolute zero or not finite.
    """
    if not math.isfinite(temperature_c) or temperature_c <= -273.15:
        raise ValueError(f"temperature {temperature_c} °C is not a physical air temperature")
    return 331.3 * math.sqrt(1.0 + temperature_c / 273.15)


def locate_all(
    arrivals: Sequence[Arrival],
    *,
    temperature_c: float = 20.0,
    params: AssociationParams | None = None,
    solve_height: bool | None = None,
    min_sensors: int = 10,
    min_sensors_loud: int = 8,
    loud_snr_db: float = 15.0,
    min_loud: int = 3,
    loud_max_rms_s: float = 0.010,
    echo_tail_s: float = 1.0,
    good_sensors: int = 6,
    max_hdop: float = 5.0,
    min_planarity: float = 0.1,
    model_error_m: float = 2.5,
    sparse: SparseParams | None = None,
) -> list[Fix]:
    """Associate pulses into bangs and locate each one.

    Parameters
    ----------
    arrivals : sequence of Arrival, length N
        Every pulse reported around one or more events, in any order. Exact duplicates (same
        sensor, arrival within 1 ms) are merged.
    temperature_c : float
        Air temperature, °C (sets the speed of sound, :func:`speed_of_sound`).
    params : AssociationParams, optional
        Tuning of association and solver; the defaults were tuned on ShotSpotter's Pittsburgh
        firing positions FP1, FP3, FP5, FP7, FP9 (see ``docs/acoustic-localization.md``).
    solve_height : bool, optional
        Overrides ``params.solve_height``.
    min_sensors : int
        Fewest agreeing sensors for a bang to be *reported*. Weaker groups (down to
        ``params.min_sensors``) are still associated — their pulses are used up so they cannot seed
        ghosts — but not returned, unless they are one more round of a reported burst
        (:func:`rtcc.acoustic.associate.refine_bursts`). The default suits a dense urban array
        (Pittsburgh: 7.5–12.4 sensors/km², a gunshot heard by 8–26 sensors); lower it for sparse
        arrays.
    min_sensors_loud, loud_snr_db, min_loud : int, float, int
        A bang heard by fewer than ``min_sensors`` but at least ``min_sensors_loud`` sensors is still
        reported when at least ``min_loud`` of its pulses have an SNR of ``loud_snr_db`` dB or more
        (a gunshot is loud near the shooter; the chance coincidences of echoes and street noise
        that make ghosts are weak everywhere), and its weighted residual RMS is at most
        ``loud_max_rms_s`` seconds. Pulses without an SNR never count as loud, and neither does a
        pulse that may be an echo: one that follows, within ``echo_tail_s`` seconds, an at least as
        strong pulse of the same sensor (:func:`_echo_shadowed`; a reflection travels further and
        loses energy at the wall, so it arrives later and weaker than the sound it reflects — the
        echoes of a loud gunshot at a near sensor are themselves loud, and chance alignments of them
        with other sensors' pulses are the ghosts this rule stops). Independently of
        these counts, a bang is only reported when more sensors agree than unrelated pulses would
        line up by chance in its cluster (:func:`rtcc.acoustic.associate.chance_sensors`), which
        guards against floods of pulses.
    good_sensors : int
        Fewest sensors for quality ``"good"``.
    max_hdop : float
        Largest horizontal dilution of precision, ``sqrt(trace(C_xy)) / (c sigma)``, for ``"good"``.
    min_planarity : float
        Smallest spread ratio of the sensors (:func:`rtcc.acoustic.geometry.planarity`) for
        ``"good"``; collinear sensors leave a mirror ambiguity.
    sparse : SparseParams or None
        The rule for time clusters heard by too few sensors for the rules above (at most
        ``sparse.max_cluster_sensors``, and always fewer than ``min_sensors`` and
        ``min_sensors_loud``, so it never touches a cluster the rules above could report from):
        rounds there are reported only as part of a burst of at least ``sparse.min_rounds``
        rounds with a repeating per-sensor delay pattern (:mod:`rtcc.acoustic.sparse_bursts`);
        a single round heard by few sensors is never reported. ``None`` (the default) disables it;
        ``DEFAULT_SPARSE`` is the tuned rule. It is off by default because on the held-out
        Pittsburgh firing positions (raw audio, 4–6 sensors) it placed 24 rounds more than 50 m
        from the shooter for 27 within 15 m (decided after that look; see
        ``docs/acoustic-localization.md``).
    model_error_m : float
        Standard deviation, metres, of an isotropic horizontal error added to the solution's
        covariance before the ellipse is drawn: what the straight-ray model does not capture (wind,
        temperature gradients, sensor survey). 0 gives the purely statistical ellipse; the default
        2.5 m was calibrated on the tuning firing positions so that ~95 % of ellipses hold the surveyed
        shooter position.

    Returns
    -------
    list of Fix
        One per bang, in order of emission time; no fix for echoes or unrelated impulses.
    """
    prm = params or AssociationParams()
    if solve_height is not None:
        prm = replace(prm, solve_height=solve_height)
    c = speed_of_sound(temperature_c)
    arr = _dedupe(arrivals)
    if not arr:
        return []
    segments = _time_segments(arr, SEGMENT_GAP_S)
    if len(segments) > 1:
        # pulses hours (or years) apart share no bang: each stretch is located on its own, with its
        # own time reference and origin (one far-off row would otherwise cost the others their
        # precision: the solver squares times, 1.7e9 s since a 1970 row leave no microseconds)
        return [
            f
            for seg in segments
            for f in locate_all(
                seg,
                temperature_c=temperature_c,
                params=prm,
                min_sensors=min_sensors,
                min_sensors_loud=min_sensors_loud,
                loud_snr_db=loud_snr_db,
                min_loud=min_loud,
                loud_max_rms_s=loud_max_rms_s,
                echo_tail_s=echo_tail_s,
                good_sensors=good_sensors,
                max_hdop=max_hdop,
                min_planarity=min_planarity,
                model_error_m=model_error_m,
                sparse=sparse,
            )
        ]
    ids = sorted({a.sensor_id for a in arr})
    index = {s: i for i, s in enumerate(ids)}
    pos = np.array([[a.x_m, a.y_m, a.z_m] for a in arr], dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        raise ValueError("arrival coordinates must be finite")
    origin = pos.mean(axis=0)
    pos -= origin
    t_abs = np.array([a.t_s for a in arr], dtype=np.float64)
    t_ref = float(np.min(t_abs))
    t = t_abs - t_ref
    sensor = np.array([index[a.sensor_id] for a in arr], dtype=np.intp)
    strength = np.array([a.snr_db if a.snr_db is not None and math.isfinite(a.snr_db) else 0.0 for a in arr])
    reported: list[Group] = []
    weak: list[Group] = []
    snr = np.array([_snr(a) for a in arr])
    shadowed = _echo_shadowed(t, sensor, snr, echo_tail_s)
    for g in associate(pos, t, sensor, strength, c, prm):
        n = len(g.idx)
        if n <= g.chance_sensors:  # no more sensors than unrelated pulses would line up by chance
            continue
        loud = int(np.sum((snr[g.idx] >= loud_snr_db) & ~shadowed[g.idx]))
        tight = _weighted_rms(g) <= loud_max_rms_s
        if n < min_sensors and not (n >= min_sensors_loud and loud >= min_loud and tight):
            weak.append(g)  # reported only if it is one more round of a reported burst
            continue
        reported.append(g)
    located = refine_bursts(reported, pos, t, sensor, c, prm, weak=weak)
    if sparse is not None:  # clusters too thin for the rules above: consistent bursts only
        sp = replace(
            sparse, max_cluster_sensors=min(sparse.max_cluster_sensors, min_sensors - 1, min_sensors_loud - 1)
        )
        located += sparse_bursts(pos, t, sensor, strength, c, prm, sp)
        located.sort(key=lambda g: g.sol.t0)
    return [
        _to_fix(g, arr, pos, origin, t_ref, c, good_sensors, max_hdop, min_planarity, model_error_m)
        for g in located
    ]


def _time_segments(arr: list[Arrival], gap_s: float) -> list[list[Arrival]]:
    """``arr`` split where consecutive arrival times (sorted) are more than ``gap_s`` apart.

    One segment (``arr`` itself, in its order) when there is no such gap.
    """
    ordered = sorted(arr, key=lambda a: a.t_s)
    cuts = [k for k in range(1, len(ordered)) if ordered[k].t_s - ordered[k - 1].t_s > gap_s]
    if not cuts:
        return [arr]
    bounds = [0, *cuts, len(ordered)]
    return [ordered[a:b] for a, b in itertools.pairwise(bounds)]


def _dedupe(arrivals: Sequence[Arrival]) -> list[Arrival]:
    """Drop repeated reports: same sensor, arrivals within 1 ms (keep the stronger)."""
    out: list[Arrival] = []
    last: dict[str, int] = {}
    for a in sorted(arrivals, key=lambda a: (a.sensor_id, a.t_s)):
        k = last.get(a.sensor_id)
        if k is not None and a.t_s - out[k].t_s <= 0.001:
            if _snr(a) > _snr(out[k]):
                out[k] = a
            continue
        last[a.sensor_id] = len(out)
        out.append(a)
    return out


def _echo_shadowed(t: np.ndarray, sensor: np.ndarray, snr: np.ndarray, tail_s: float) -> np.ndarray:
    """Which pulses may be echoes: True where an earlier pulse of the same sensor, at most ``tail_s``
    seconds before, is at least as strong (SNR).

    Parameters
    ----------
    t : ndarray, shape (N,)
        Arrival times, s.
    sensor : ndarray of int, shape (N,)
        Sensor index of each pulse.
    snr : ndarray, shape (N,)
        SNR of each pulse, dB (``-inf`` when unknown: never shadows another pulse).
    tail_s : float
        How long after a pulse its echoes may arrive, s.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    out = np.zeros(len(t), dtype=bool)
    order = np.lexsort((t, sensor))
    for k in range(1, len(order)):
        i = int(order[k])
        j = k - 1
        while j >= 0 and sensor[order[j]] == sensor[i] and t[i] - t[order[j]] <= tail_s:
            if snr[order[j]] >= snr[i] and t[order[j]] < t[i]:
                out[i] = True
                break
            j -= 1
    return out


def _weighted_rms(g: Group) -> float:
    w = g.sol.weights
    return float(np.sqrt(np.sum(w * g.sol.resid**2) / max(float(np.sum(w)), 1e-12)))


def _snr(a: Arrival) -> float:
    return a.snr_db if a.snr_db is not None else -math.inf


def _to_fix(
    g: Group,
    arr: list[Arrival],
    pos: np.ndarray,
    origin: np.ndarray,
    t_ref: float,
    c: float,
    good_sensors: int,
    max_hdop: float,
    min_planarity: float,
    model_error_m: float,
) -> Fix:
    sol = g.sol
    cov_xy = sol.cov[:2, :2]
    # statistical part at its small-sample (Hotelling) radius, model error at the chi-square one
    k = region_scale_95(sol.dof if sol.sigma_estimated else None)
    major, minor, angle = ellipse_95(cov_xy * (k / CHI2_2DOF_95) + model_error_m**2 * np.eye(2))
    used = [arr[int(i)] for i in g.idx]
    order = np.argsort([a.t_s for a in used], kind="stable")
    used = [used[int(i)] for i in order]
    hdop = math.sqrt(max(float(np.trace(cov_xy)), 0.0)) / (c * sol.sigma_s) if sol.sigma_s > 0 else math.inf
    plan = planarity(pos[g.idx, :2])
    good = len(used) >= good_sensors and hdop <= max_hdop and plan >= min_planarity
    rms = _weighted_rms(g)
    return Fix(
        t0_s=t_ref + sol.t0,
        x_m=float(sol.p[0] + origin[0]),
        y_m=float(sol.p[1] + origin[1]),
        z_m=float(sol.p[2] + origin[2]),
        ellipse_major_m=major,
        ellipse_minor_m=minor,
        ellipse_angle_deg=angle,
        sensors=tuple(a.sensor_id for a in used),
        arrivals=tuple(used),
        residual_rms_s=rms,
        quality="good" if good else "poor",
    )
