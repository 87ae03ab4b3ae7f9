"""Numerics of time-difference-of-arrival (TDOA) localization, on plain numpy arrays.

Model
-----
A bang at horizontal position ``(x, y)``, height ``z`` and emission time ``t0`` reaches a sensor at
``s_i`` (metres) at ``t_i = t0 + |s_i - (x, y, z)| / c`` (seconds), ``c`` the speed of sound. The
residual of an arrival is ``e_i = t_i - t0 - |s_i - p| / c`` (seconds). A blocked or reflected path
only makes ``e_i`` *larger* (non-line-of-sight, NLOS, arrivals are late, never early), so the robust
loss below is asymmetric: quadratic for early residuals, Huber-like for late ones.

* :func:`linear_init` — closed-form start: the spherical-interpolation linearisation (Smith & Abel,
  *IEEE Trans. ASSP* 35(12), 1987), which is also the first, unweighted stage of Chan & Ho's two-step
  estimator (*IEEE Trans. Signal Processing* 42(8), 1994). Vectorised over many hypotheses.
* :func:`refine` — Levenberg–Marquardt (Marquardt 1963) iteratively reweighted least squares with the
  asymmetric robust weights; returns the covariance ``sigma^2 (J^T W J)^-1`` (Gauss–Newton / Fisher
  approximation) used for the 95 % uncertainty ellipse (:func:`ellipse_95`).
* :func:`refine_joint` — the same for ``K`` rounds fired from one place: a shared position and one
  emission time per round (joint TDOA over a burst), optionally with fixed per-arrival weights.

Coordinates are local metres (x east, y north); times are seconds relative to a caller-chosen origin
(keep them small: float64 POSIX seconds only resolve ~0.2 µs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

CHI2_2DOF_95 = 5.991464547107979
"""95 % quantile of the chi-square distribution with 2 degrees of freedom."""


def linear_init(pos: FloatArray, t: FloatArray, c: float, z0: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Closed-form source position and emission time from 4 arrivals each, for many hypotheses at once.

    Squaring ``|s_k - p| = c (t_k - t0)`` and subtracting the equation of arrival 0 cancels
    ``|p|^2`` and ``c^2 t0^2``, leaving three equations linear in ``(x, y, t0)`` with the source height
    ``z0`` fixed (spherical interpolation, Smith & Abel 1987; stage one of Chan & Ho 1994).

    Parameters
    ----------
    pos : ndarray, shape (H, 4, 3)
        Sensor positions of the 4 arrivals of each of ``H`` hypotheses, metres.
    t : ndarray, shape (H, 4)
        Arrival times, seconds (any common origin).
    c : float
        Speed of sound, m/s.
    z0 : ndarray, shape (H,)
        Assumed source height of each hypothesis, metres.

    Returns
    -------
    xy : ndarray, shape (H, 2)
        Source position, metres; NaN where the system is singular.
    t0 : ndarray, shape (H,)
        Emission time, seconds; NaN where singular.
    """
    ds = pos[:, 1:, :] - pos[:, :1, :]  # (H, 3, 3)
    dt = t[:, 1:] - t[:, :1]  # (H, 3)
    sq = np.sum(pos**2, axis=2)
    a = np.empty((pos.shape[0], 3, 3))
    a[:, :, 0] = -2.0 * ds[:, :, 0]
    a[:, :, 1] = -2.0 * ds[:, :, 1]
    a[:, :, 2] = 2.0 * c * c * dt
    b = c * c * (t[:, 1:] ** 2 - t[:, :1] ** 2) - (sq[:, 1:] - sq[:, :1]) + 2.0 * ds[:, :, 2] * z0[:, None]
    det = np.linalg.det(a)
    scale = np.prod(np.linalg.norm(a, axis=2), axis=1) + 1e-300
    ok = np.abs(det) > 1e-9 * scale
    sol = np.full((pos.shape[0], 3), np.nan)
    if np.any(ok):
        sol[ok] = np.linalg.solve(a[ok], b[ok][:, :, None])[:, :, 0]
    return sol[:, :2], sol[:, 2]


def residuals(pos: FloatArray, t: FloatArray, p: FloatArray, t0: float, c: float) -> FloatArray:
    """Arrival-time residuals ``t_i - t0 - |s_i - p| / c``, seconds, shape (N,).

    Parameters
    ----------
    pos : ndarray, shape (N, 3)
        Sensor positions, metres.
    t : ndarray, shape (N,)
        Arrival times, seconds.
    p : ndarray, shape (3,)
        Source position, metres.
    t0 : float
        Emission time, seconds.
    c : float
        Speed of sound, m/s.
    """
    out: FloatArray = t - t0 - np.linalg.norm(pos - p, axis=1) / c
    return out


def robust_weights(e: FloatArray, early_s: float, late_knee_s: float) -> FloatArray:
    """IRLS weights of the asymmetric loss, shape like ``e``.

    Early residuals (``e <= 0``) keep weight 1 up to ``early_s`` (line-of-sight noise), then Huber;
    late residuals keep weight 1 up to ``late_knee_s`` and are then down-weighted Cauchy-style,
    ``1 / (1 + ((e - knee) / knee)^2)``, because a late arrival is the signature of a blocked path.
    """
    w = np.ones_like(e)
    early = e < -early_s
    w[early] = early_s / -e[early]
    late = e > late_knee_s
    u = (e[late] - late_knee_s) / late_knee_s
    w[late] = 1.0 / (1.0 + u * u)
    return w


@dataclass(frozen=True)
class Solution:
    """Result of :func:`refine` / :func:`refine_joint` (metres, seconds)."""

    p: FloatArray
    """Source position, shape (3,), metres."""
    t0: float
    """Emission time, seconds (of the first emission for a joint solution)."""
    cov: FloatArray
    """Covariance of the free parameters ``(x, y[, z], t0[, t0_2, ...])``, metres and seconds."""
    resid: FloatArray
    """Residual of each arrival, seconds, shape (N,)."""
    weights: FloatArray
    """Final robust weight of each arrival, shape (N,)."""
    sigma_s: float
    """Timing standard deviation used for ``cov``, seconds."""
    dof: float
    """Degrees of freedom behind ``sigma_s`` (weighted arrivals minus free parameters)."""
    sigma_estimated: bool
    """``sigma_s`` came from the residuals (not from ``sigma_floor_s``)."""
    converged: bool
    t0s: FloatArray | None = None
    """Emission time of each emission of a joint solution, seconds, shape (K,); None for one."""


def refine(
    pos: FloatArray,
    t: FloatArray,
    p0: FloatArray,
    t00: float,
    c: float,
    *,
    solve_height: bool = False,
    early_s: float = 0.015,
    late_knee_s: float = 0.010,
    sigma_floor_s: float = 0.0,
    max_iter: int = 30,
    prior_w: FloatArray | None = None,
) -> Solution:
    """Robust Levenberg–Marquardt refinement of one source (IRLS with asymmetric weights).

    Parameters
    ----------
    pos : ndarray, shape (N, 3)
        Sensor positions, metres.
    t : ndarray, shape (N,)
        Arrival times, seconds (small origin).
    p0 : ndarray, shape (3,)
        Starting source position, metres; its height is kept when ``solve_height`` is false.
    t00 : float
        Starting emission time, seconds.
    c : float
        Speed of sound, m/s.
    solve_height : bool
        Also estimate the source height (needs sensors at different heights to be meaningful).
    early_s, late_knee_s : float
        Knees of the asymmetric robust loss, seconds (see :func:`robust_weights`).
    sigma_floor_s : float
        Lower bound of the timing standard deviation used for the covariance, seconds (model error:
        wind, survey of the sensors, clock quantisation).
    max_iter : int
        Iterations of the damped Gauss–Newton loop.
    prior_w : ndarray, shape (N,), optional
        Fixed weight of each arrival (e.g. the inverse of its timing variance relative to the
        others), multiplied into the robust weights; all ones by default.

    Returns
    -------
    Solution
        The estimate with its covariance ``sigma^2 (J^T W J)^-1`` where ``sigma^2`` is the weighted
        residual variance with ``N - k`` degrees of freedom (``k`` free parameters).
    """
    sol = refine_joint(
        pos,
        t,
        np.zeros(len(t), dtype=np.intp),
        p0,
        np.array([t00], dtype=np.float64),
        c,
        solve_height=solve_height,
        early_s=early_s,
        late_knee_s=late_knee_s,
        sigma_floor_s=sigma_floor_s,
        max_iter=max_iter,
        prior_w=prior_w,
    )
    return replace(sol, t0s=None)


def refine_joint(
    pos: FloatArray,
    t: FloatArray,
    emission: npt.NDArray[np.intp],
    p0: FloatArray,
    t00: FloatArray,
    c: float,
    *,
    solve_height: bool = False,
    early_s: float = 0.015,
    late_knee_s: float = 0.010,
    sigma_floor_s: float = 0.0,
    max_iter: int = 30,
    prior_w: FloatArray | None = None,
) -> Solution:
    """Robust Levenberg–Marquardt refinement of ``K`` emissions from one place (a burst of rounds).

    The model of :func:`refine` with one emission time per round: arrival ``i`` of emission
    ``m = emission[i]`` is ``t_i = t0_m + |s_i - p| / c``. The rounds share the position ``p`` and
    each keeps its own emission time, so ``K`` rounds heard by ``N`` sensors in all constrain the
    3 (or 4) position parameters with ``N - K`` time differences — the same joint estimate as
    stacking the rounds' TDOA equations (a burst from a fixed shooter; e.g. Calhoun et al.,
    ShotSpotter TN 098, 2020, treat each round separately and report their spread).

    Parameters
    ----------
    pos : ndarray, shape (N, 3)
        Sensor positions, metres.
    t : ndarray, shape (N,)
        Arrival times, seconds (small origin).
    emission : ndarray of int, shape (N,)
        Index ``0 .. K-1`` of the emission (round) of each arrival.
    p0 : ndarray, shape (3,)
        Starting source position, metres; its height is kept when ``solve_height`` is false.
    t00 : ndarray, shape (K,)
        Starting emission times, seconds.
    c : float
        Speed of sound, m/s.
    solve_height, early_s, late_knee_s, sigma_floor_s, max_iter, prior_w
        As for :func:`refine`.

    Returns
    -------
    Solution
        ``t0`` is the first emission's time and ``t0s`` all of them; ``cov`` covers
        ``(x, y[, z], t0_1 .. t0_K)``.
    """
    n = len(t)
    n_em = len(t00)
    npos = 3 if solve_height else 2
    k = npos + n_em
    theta = np.concatenate([np.asarray(p0[:npos], dtype=np.float64), np.asarray(t00, dtype=np.float64)])
    z_fixed = float(p0[2])
    onehot = np.zeros((n, n_em))
    onehot[np.arange(n), emission] = 1.0

    def unpack(th: FloatArray) -> tuple[FloatArray, FloatArray]:
        p = th[:3] if solve_height else np.array([th[0], th[1], z_fixed])
        return p, th[npos:]

    def resid(th: FloatArray) -> FloatArray:
        p, t0s = unpack(th)
        out: FloatArray = t - t0s[emission] - np.linalg.norm(pos - p, axis=1) / c
        return out

    def jac(p: FloatArray) -> FloatArray:
        d = pos - p
        r = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
        cols = [d[:, i] / (r * c) for i in range(npos)]  # de/dx = (s - p)/(r c)
        return np.concatenate([np.stack(cols, axis=1), -onehot], axis=1)

    pw = np.ones(n) if prior_w is None else np.asarray(prior_w, dtype=np.float64)
    lam = 1e-3
    converged = False
    for _ in range(max_iter):
        p, _t0s = unpack(theta)
        e = resid(theta)
        w = robust_weights(e, early_s, late_knee_s) * pw
        cost = float(np.sum(w * e * e))
        j = jac(p)
        jtw = j.T * w
        h = jtw @ j
        g = jtw @ e
        improved = False
        step = np.zeros_like(theta)
        for _ in range(10):
            try:
                step = np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-12), -g)
            except np.linalg.LinAlgError:
                lam *= 5.0
                continue
            # e = t - t0 - r/c, so moving theta by step changes e by J @ step; we minimise |e + J step|
            cand = theta + step
            ec = resid(cand)
            if float(np.sum(w * ec * ec)) <= cost:
                theta = cand
                lam = max(lam / 3.0, 1e-9)
                improved = True
                break
            lam *= 5.0
        if not improved or float(np.max(np.abs(step[:npos]))) < 1e-4:
            converged = True
            break
    p, t0s = unpack(theta)
    e = resid(theta)
    w = robust_weights(e, early_s, late_knee_s) * pw
    j = jac(p)
    h = (j.T * w) @ j
    dof = max(float(np.sum(w)) - k, 1.0)
    sigma_est = math.sqrt(float(np.sum(w * e * e)) / dof)
    sigma = max(sigma_est, sigma_floor_s)
    try:
        cov: FloatArray = sigma * sigma * np.linalg.inv(h).astype(np.float64)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.inf)
    return Solution(
        p=np.asarray(p, dtype=np.float64),
        t0=float(t0s[0]),
        cov=cov,
        resid=e,
        weights=w,
        sigma_s=sigma,
        dof=dof,
        sigma_estimated=sigma_est >= sigma_floor_s,
        converged=converged,
        t0s=np.array(t0s, dtype=np.float64),
    )


def region_scale_95(dof: float | None) -> float:
    """Squared-Mahalanobis radius of a 2-D 95 % confidence region.

    With a known timing variance this is the chi-square quantile with 2 degrees of freedom, 5.991.
    When the variance is estimated from the residuals with ``dof`` degrees of freedom the region is
    Hotelling's: ``2 F(2, dof; 0.95) = dof ((0.05)^(-2/dof) - 1)``, which tends to 5.991 for many
    sensors and widens the ellipse for few (e.g. 9.47 for 7 degrees of freedom).
    """
    if dof is None or not math.isfinite(dof):
        return CHI2_2DOF_95
    dof = max(dof, 1.0)
    return float(dof * (0.05 ** (-2.0 / dof) - 1.0))


def ellipse_95(cov_xy: FloatArray, scale: float = CHI2_2DOF_95) -> tuple[float, float, float]:
    """95 % confidence ellipse of a 2-D Gaussian position estimate.

    Parameters
    ----------
    cov_xy : ndarray, shape (2, 2)
        Covariance of ``(x east, y north)``, m^2.
    scale : float
        Squared-Mahalanobis radius of the region (:func:`region_scale_95`); 5.991 by default.

    Returns
    -------
    major_m, minor_m : float
        Semi-axes, metres: ``sqrt(scale * eigenvalue)`` (chi-square, 2 degrees of freedom: 5.991).
    angle_deg : float
        Bearing of the major axis, degrees clockwise from north (+y), in ``[0, 180)``.
    """
    if not np.all(np.isfinite(cov_xy)):
        return math.inf, math.inf, 0.0
    vals, vecs = np.linalg.eigh(0.5 * (cov_xy + cov_xy.T))
    vals = np.maximum(vals, 0.0)
    major = math.sqrt(scale * float(vals[1]))
    minor = math.sqrt(scale * float(vals[0]))
    vx, vy = float(vecs[0, 1]), float(vecs[1, 1])
    angle = math.degrees(math.atan2(vx, vy)) % 180.0
    if angle >= 180.0:  # guard the float edge case of -0.0 % 180
        angle = 0.0
    return major, minor, angle


def planarity(xy: FloatArray) -> float:
    """How two-dimensional a sensor layout is: smallest / largest singular value of the centred
    horizontal positions, shape (N, 2) in metres; 0 for collinear sensors, 1 for an isotropic spread."""
    if len(xy) < 2:
        return 0.0
    sv = np.linalg.svd(xy - xy.mean(axis=0), compute_uv=False)
    return float(sv[-1] / sv[0]) if sv[0] > 0 else 0.0
