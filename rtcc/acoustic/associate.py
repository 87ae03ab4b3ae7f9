"""Association: which pulses, from which sensors, are one bang.

The input is everything the sensors reported around one or more events — several rounds, their
echoes, unrelated impulses — unsorted. The method is sequential RANSAC (Fischler & Bolles,
*Comm. ACM* 24(6), 1981) with an MSAC score (Torr & Zisserman, *CVIU* 78, 2000):

1. Pulses are cut into independent time clusters (a gap longer than the largest sensor distance
   over the speed of sound cannot separate arrivals of one bang).
2. In a cluster, a *seed* pulse (half the strongest, half at random) and three partners at other
   sensors are drawn. Every pair must pass the physical gate
   ``|t_i - t_j| <= |s_i - s_j| / c + tol``. The four arrivals give a closed-form source
   (:func:`rtcc.acoustic.geometry.linear_init`).
3. Each hypothesis is scored by the sensors that have a pulse within ``[-early, +late]`` of the
   predicted arrival (at most one pulse per sensor; the window is asymmetric because blocked paths
   only arrive late), with the truncated-quadratic MSAC weight.
4. The best hypothesis is refined (:func:`rtcc.acoustic.geometry.refine`), its pulses re-chosen,
   and accepted when enough sensors agree; its pulses are removed and the search repeats.

Each group also carries the number of sensors that unrelated pulses would line up by chance in its
cluster (:func:`chance_sensors`, an a-contrario count), which the caller uses as a flood guard.

Duplicates (a second fix from echoes of an accepted bang: same place within ``dup_radius_m`` and
emission time within ``dup_window_s``) are refused; automatic fire (rounds ~0.1 s apart) is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtcc.acoustic.geometry import FloatArray, Solution, linear_init, refine

IntArray = np.ndarray


@dataclass(frozen=True)
class AssociationParams:
    """Tuning of the association and of the robust solver (seconds, metres)."""

    pair_tol_s: float = 0.05
    """Slack of the pairwise gate ``|dt| <= distance / c + tol`` (clock error, NLOS delay), s."""
    early_s: float = 0.020
    """A pulse may arrive at most this much *before* the predicted time and still count, s."""
    late_s: float = 0.050
    """A pulse may arrive at most this much *after* the predicted time (blocked path), s."""
    min_sensors: int = 5
    """Fewest distinct sensors for a fix."""
    max_rms_s: float = 0.015
    """Largest weighted residual RMS of an accepted fix, s."""
    seeds_per_round: int = 40
    """Seed pulses tried per search round."""
    samples_per_seed: int = 25
    """Random 4-pulse hypotheses drawn per seed."""
    dup_radius_m: float = 50.0
    """A fix this close to an accepted one ..."""
    dup_window_s: float = 0.05
    """... whose emission time is this close is a duplicate (echo), not a new round."""
    solve_height: bool | None = None
    """Estimate the source height (True), fix it at the median height of the bang's sensors (False),
    or estimate it only when at least ``height_min_sensors`` sensors spread over at least
    ``height_min_spread_m`` of height (None) and the estimate stays within ``height_margin_m`` of
    their height range."""
    height_min_sensors: int = 8
    height_min_spread_m: float = 10.0
    """Standard deviation of the sensor heights needed to estimate the source height, m."""
    height_margin_m: float = 50.0
    early_knee_s: float = 0.015
    """Early knee of the robust loss, s (see :func:`rtcc.acoustic.geometry.robust_weights`)."""
    late_knee_s: float = 0.015
    """Late knee of the robust loss, s."""
    sigma_floor_s: float = 0.0
    """Lower bound of the timing standard deviation behind the covariance, s."""
    chance_tests_per_pulse: float = 1.0
    """Effective hypotheses per pulse in the a-contrario count of chance agreement."""
    max_failures: int = 8
    """Stop searching a cluster after this many rejected best hypotheses."""
    seed: int = 0
    """Random seed (the result is deterministic for given input and parameters)."""


@dataclass(frozen=True)
class Group:
    """One associated bang: indices into the input arrays and the refined solution."""

    idx: IntArray
    """Indices of the pulses used, shape (K,)."""
    sol: Solution
    chance_sensors: int = 0
    """Sensors that could agree by chance in this group's cluster (see :func:`chance_sensors`): a
    group needs more than this to be more than a coincidence of unrelated pulses."""


def chance_sensors(
    sensor: IntArray, t: FloatArray, window_s: float, n_tests: float, alpha: float = 1.0
) -> int:
    """Most sensors that a best-of-``n_tests`` search finds agreeing by chance (a-contrario count).

    Background model (Desolneux, Moisan & Morel, *IJCV* 40(1), 2000): every sensor reports unrelated
    pulses as a Poisson process at its own rate in the cluster, so it has a pulse inside an
    acceptance window of ``window_s`` seconds with probability ``p_s = 1 - exp(-rate_s window_s)``.
    A minimal sample fixes 4 sensors; the others agree by chance as ``Binomial(S - 4, mean p_s)``.
    Returns the smallest ``k`` with ``n_tests * P(X >= k - 4) < alpha`` minus one.

    Parameters
    ----------
    sensor : ndarray of int, shape (N,)
        Sensor index of each pulse in the cluster.
    t : ndarray, shape (N,)
        Arrival times of the cluster, seconds.
    window_s : float
        Width of the acceptance window, seconds.
    n_tests : float
        Number of hypotheses effectively tested.
    alpha : float
        Expected number of chance groups tolerated.
    """
    ids, counts = np.unique(sensor, return_counts=True)
    s = len(ids)
    duration = max(float(np.ptp(t)), window_s)
    p = float(np.mean(1.0 - np.exp(-counts / duration * window_s)))
    m = s - 4
    if m <= 0:
        return s
    tail = 1.0
    for k in range(0, m + 1):
        if n_tests * tail < alpha:
            return k + 3
        tail -= math.comb(m, k) * p**k * (1.0 - p) ** (m - k)
    return s


def time_clusters(t: FloatArray, max_span_s: float) -> list[IntArray]:
    """Split pulse indices into clusters separated by gaps longer than ``max_span_s`` seconds."""
    order = np.argsort(t, kind="stable")
    if len(order) == 0:
        return []
    cuts = np.nonzero(np.diff(t[order]) > max_span_s)[0] + 1
    return list(np.split(order, cuts))


def _msac_weight(e: FloatArray, early_s: float, late_s: float) -> FloatArray:
    tol = np.where(e < 0.0, early_s, late_s)
    w: FloatArray = np.clip(1.0 - (e / tol) ** 2, 0.0, None)
    return w


def _best_per_sensor(score: FloatArray, sensor: IntArray, n_sensors: int) -> FloatArray:
    """Max of ``score`` (H, N) over the pulses of each sensor, summed over sensors → (H,)."""
    best = np.zeros((score.shape[0], n_sensors))
    for j in range(score.shape[1]):  # N is a cluster (tens to hundreds of pulses)
        s = sensor[j]
        np.maximum(best[:, s], score[:, j], out=best[:, s])
    out: FloatArray = best.sum(axis=1)
    return out


def _score(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    n_sensors: int,
    hp: FloatArray,
    ht0: FloatArray,
    c: float,
    prm: AssociationParams,
    travel_s: float,
) -> FloatArray:
    """MSAC score (H,) of hypotheses at ``hp`` (H, 3) emitted at ``ht0`` (H,).

    Hypotheses are taken in time order, in chunks, and each chunk is scored only against the pulses
    that can belong to it (``t0 - early`` to ``t0 + travel_s + late``), so that a flood of pulses
    costs neither memory nor quadratic time.
    """
    out = np.zeros(len(hp))
    order = np.argsort(ht0, kind="stable")
    by_t = np.argsort(t, kind="stable")
    ts = t[by_t]
    step = 256
    for a in range(0, len(order), step):
        h = order[a : a + step]
        lo = int(np.searchsorted(ts, float(ht0[h].min()) - prm.early_s, side="left"))
        hi = int(np.searchsorted(ts, float(ht0[h].max()) + travel_s + prm.late_s, side="right"))
        if hi <= lo:
            continue
        j = by_t[lo:hi]
        d = np.linalg.norm(pos[j][None, :, :] - hp[h][:, None, :], axis=2)
        e = t[j][None, :] - ht0[h][:, None] - d / c
        out[h] = _best_per_sensor(_msac_weight(e, prm.early_s, prm.late_s), sensor[j], n_sensors)
    return out


def _seeds(
    live: IntArray, strength: FloatArray, dead: set[int], n: int, rng: np.random.Generator
) -> IntArray:
    """Seed pulses for one search round: the strongest half, and a random draw from the rest (so
    that a burst of loud unrelated impulses cannot starve the real bangs of seeds)."""
    cand = np.array([i for i in live[np.argsort(-strength[live], kind="stable")] if int(i) not in dead])
    if len(cand) <= n:
        return cand.astype(np.intp)
    top = cand[: n // 2]
    rest = cand[n // 2 :]
    pick = rng.choice(len(rest), size=n - len(top), replace=False)
    return np.concatenate([top, rest[np.sort(pick)]]).astype(np.intp)


def _pick(e: FloatArray, sensor: IntArray, prm: AssociationParams) -> IntArray:
    """Per sensor, the pulse with the best asymmetric score inside the window; indices into ``e``."""
    w = _msac_weight(e, prm.early_s, prm.late_s)
    chosen: dict[int, int] = {}
    for j in np.nonzero(w > 0.0)[0]:
        s = int(sensor[j])
        if s not in chosen or w[j] > w[chosen[s]]:
            chosen[s] = int(j)
    return np.array(sorted(chosen.values()), dtype=np.intp)


def _hypotheses(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    seeds: IntArray,
    c: float,
    prm: AssociationParams,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Closed-form hypotheses from 4-pulse samples around each seed: positions (H, 3), times (H,)
    and the seed pulse of each (H,)."""
    quads: list[IntArray] = []
    for a in seeds:
        d = np.linalg.norm(pos[live] - pos[a], axis=1)
        ok = (np.abs(t[live] - t[a]) <= d / c + prm.pair_tol_s) & (sensor[live] != sensor[a])
        cand = live[ok]
        if len(np.unique(sensor[cand])) < 3:
            continue
        pick = rng.integers(0, len(cand), size=(prm.samples_per_seed * 3, 3))
        q = np.concatenate([np.full((len(pick), 1), a), cand[pick]], axis=1)
        quads.append(q)
    if not quads:
        return np.empty((0, 3)), np.empty(0), np.empty(0, dtype=np.intp)
    q = np.concatenate(quads)
    s = sensor[q]
    distinct = (s[:, 1] != s[:, 2]) & (s[:, 1] != s[:, 3]) & (s[:, 2] != s[:, 3])
    pq, tq = pos[q], t[q]
    gate = np.ones(len(q), dtype=bool)
    for i, j in ((1, 2), (1, 3), (2, 3)):
        dd = np.linalg.norm(pq[:, i] - pq[:, j], axis=1)
        gate &= np.abs(tq[:, i] - tq[:, j]) <= dd / c + prm.pair_tol_s
    keep = distinct & gate
    pq, tq, seed_of = pq[keep], tq[keep], q[keep, 0]
    if len(pq) == 0:
        return np.empty((0, 3)), np.empty(0), np.empty(0, dtype=np.intp)
    z0 = np.median(pq[:, :, 2], axis=1)
    xy, t0 = linear_init(pq, tq, c, z0)
    good = np.all(np.isfinite(xy), axis=1) & np.isfinite(t0)
    # an emission after the earliest of its own arrivals is not physical
    good &= t0 <= tq.min(axis=1) + prm.early_s
    p = np.concatenate([xy, z0[:, None]], axis=1)[good]
    return p, t0[good], seed_of[good]


def _fit(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    cl: IntArray,
    p: FloatArray,
    t0: float,
    c: float,
    prm: AssociationParams,
) -> tuple[IntArray, Solution] | None:
    """Refine a hypothesis on cluster ``cl``: re-pick pulses and re-solve until stable."""
    chosen: IntArray = np.empty(0, dtype=np.intp)
    sol: Solution | None = None
    for _ in range(4):
        e = t[cl] - t0 - np.linalg.norm(pos[cl] - p, axis=1) / c
        pick = cl[_pick(e, sensor[cl], prm)]
        if len(pick) < prm.min_sensors:
            return None
        if sol is not None and np.array_equal(pick, chosen):
            break
        chosen = pick
        sol = refine(
            pos[chosen],
            t[chosen],
            np.array([p[0], p[1], float(np.median(pos[chosen, 2]))]),
            t0,
            c,
            early_s=prm.early_knee_s,
            late_knee_s=prm.late_knee_s,
            sigma_floor_s=prm.sigma_floor_s,
        )
        p, t0 = sol.p, sol.t0
    if sol is not None and _height_wanted(pos[chosen, 2], prm):
        sol3 = refine(
            pos[chosen],
            t[chosen],
            sol.p,
            sol.t0,
            c,
            solve_height=True,
            early_s=prm.early_knee_s,
            late_knee_s=prm.late_knee_s,
            sigma_floor_s=prm.sigma_floor_s,
        )
        z = pos[chosen, 2]
        if (
            np.all(np.isfinite(sol3.cov))
            and z.min() - prm.height_margin_m <= sol3.p[2] <= z.max() + prm.height_margin_m
        ):
            sol = sol3
    if sol is None:
        return None
    return chosen, sol


def _height_wanted(z: FloatArray, prm: AssociationParams) -> bool:
    if prm.solve_height is not None:
        return prm.solve_height
    return len(z) >= prm.height_min_sensors and float(np.std(z)) >= prm.height_min_spread_m


def associate(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    strength: FloatArray,
    c: float,
    prm: AssociationParams,
) -> list[Group]:
    """Group pulses into bangs and locate each (sequential RANSAC, see the module docstring).

    Parameters
    ----------
    pos : ndarray, shape (N, 3)
        Sensor position of each pulse, local metres.
    t : ndarray, shape (N,)
        Arrival times, seconds (small origin).
    sensor : ndarray of int, shape (N,)
        Sensor index of each pulse (pulses of one sensor share it).
    strength : ndarray, shape (N,)
        Seed priority (e.g. SNR, dB); stronger pulses are tried first.
    c : float
        Speed of sound, m/s.
    prm : AssociationParams
        Tuning.

    Returns
    -------
    list of Group
        One group per bang, in order of emission time.
    """
    n_sensors = int(sensor.max()) + 1 if len(sensor) else 0
    if n_sensors == 0:
        return []
    span = float(np.max(np.ptp(pos[:, :2], axis=0))) * 1.5 / c + prm.late_s + prm.pair_tol_s
    rng = np.random.default_rng(prm.seed)
    travel = float(np.max(np.linalg.norm(pos[:, :2] - pos[:, :2].mean(axis=0), axis=1))) * 2.0 / c
    groups: list[Group] = []
    for cl in time_clusters(t, span):
        if len(np.unique(sensor[cl])) < prm.min_sensors:
            continue
        live = cl.copy()
        dead_seeds: set[int] = set()
        accepted: list[Group] = []
        failures = 0
        for _ in range(4 * len(cl)):
            if len(np.unique(sensor[live])) < prm.min_sensors:
                break
            seeds = _seeds(live, strength, dead_seeds, prm.seeds_per_round, rng)
            if len(seeds) == 0:
                break
            hp, ht0, hseed = _hypotheses(pos, t, sensor, live, seeds, c, prm, rng)
            if len(hp) == 0:
                break
            score = _score(pos[live], t[live], sensor[live], n_sensors, hp, ht0, c, prm, travel)
            best = int(np.argmax(score))
            if score[best] < prm.min_sensors * 0.5:
                break
            fit = _fit(pos, t, sensor, live, hp[best], float(ht0[best]), c, prm)
            ok = fit is not None
            if fit is not None:
                idx, sol = fit
                w_rms = float(np.sqrt(np.sum(sol.weights * sol.resid**2) / np.sum(sol.weights)))
                ok = w_rms <= prm.max_rms_s and bool(np.all(np.isfinite(sol.cov)))
                if ok and any(
                    float(np.hypot(*(g.sol.p[:2] - sol.p[:2]))) <= prm.dup_radius_m
                    and abs(g.sol.t0 - sol.t0) <= prm.dup_window_s
                    for g in accepted
                ):
                    # an echo of an accepted bang: drop its pulses, no new round
                    live = np.setdiff1d(live, idx)
                    continue
                if ok:
                    accepted.append(Group(idx=idx, sol=sol))
                    live = np.setdiff1d(live, idx)
                    continue
            # the best hypothesis of this round failed: never seed from this pulse again
            dead_seeds.add(int(hseed[best]))
            failures += 1
            if failures >= prm.max_failures:
                break
        cap = chance_sensors(
            sensor[cl], t[cl], prm.early_s + prm.late_s, float(len(cl) * prm.chance_tests_per_pulse)
        )
        groups.extend(Group(idx=g.idx, sol=g.sol, chance_sensors=cap) for g in accepted)
    groups.sort(key=lambda g: g.sol.t0)
    return groups
