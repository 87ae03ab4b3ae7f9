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
5. Long bursts of automatic fire (tens of rounds 50-100 ms apart, while arrivals spread over
   seconds) defeat random 4-pulse samples, so two kinds of structured hypotheses join them
   (:func:`_burst_hypotheses`): each live pulse as the direct arrival from the place of a bang
   already accepted (a burst's later rounds come from where its first was fired), and samples of
   the sensors' first pulses (its first round).

Each group also carries the number of sensors that unrelated pulses would line up by chance in its
cluster (:func:`chance_sensors`, an a-contrario count), which the caller uses as a flood guard; a
round whose residuals are all small is held to chance agreement within that tighter window
(:func:`_tight_cap`), and a round must beat chance to be accepted at all.

Rounds of one burst (emitted within ``burst_gap_s`` of each other from one place: fixes within
``burst_radius_m`` and the same per-sensor delays, :func:`delay_spread`) are then located jointly
(:func:`refine_bursts`): one shared position, one emission time per round, each round keeping its
own pulses, arrivals late against the same sensor's other rounds down-weighted
(:func:`excess_delay_weights`) — accepted only when every round still fits the shared position.
A round that the association mixed up with its neighbours is re-associated with the burst's
measured delays (a template, no propagation model), and a group too weak to be reported alone is
reported when it is one more round of a burst.

Duplicates (a second fix from echoes of an accepted bang: same place within ``dup_radius_m`` and
emission time within ``dup_window_s``) are refused; automatic fire (rounds ~0.1 s apart) is kept,
and so is very fast automatic fire (rounds 25-50 ms apart, ``fast_fire``): a fix inside the
duplicate window that repeats the accepted bang's per-sensor delay pattern one emission step later
is the same gun firing again, not its echoes (:func:`repeats_round`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from rtcc.acoustic.geometry import FloatArray, Solution, linear_init, refine, refine_joint

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
    burst: bool = True
    """Locate the rounds of one burst (see :func:`refine_bursts`) jointly from one shared position."""
    burst_gap_s: float = 3.0
    """Rounds at most this far apart in emission time (consecutively) can be one burst, s."""
    burst_radius_m: float = 50.0
    """... and a round's own fix must lie this close to the burst's position, m."""
    burst_spread_s: float = 0.003
    """... and the sensors must hear it as they hear the burst: median absolute deviation of the
    per-sensor delay differences (:func:`delay_spread`) at most this, s."""
    burst_excess_knee_s: float = 0.005
    """In a burst, an arrival this much later than the same sensor's earliest round (relative to each
    round's emission) gets half weight (:func:`excess_delay_weights`), s."""
    burst_keep: float = 0.8
    """A round joins a burst only if, at the shared position, at least this share of its own sensors
    (and never fewer than ``min_sensors``) still have a pulse inside the acceptance window."""
    burst_completion: bool = True
    """Long bursts of automatic fire: the hypotheses of :func:`_burst_hypotheses` (later rounds from
    an accepted bang's place, the sensors' first pulses) join the random ones in every search round
    (until one of them fails; again after each bang found) and are tried once more when the random
    search gives up (:func:`_complete_bursts`); a round must beat chance when it is accepted
    (:func:`_beyond_chance`, with the tight windows of :func:`_tight_cap`). False: the session-5
    association exactly."""
    fast_fire: bool = True
    """Very fast automatic fire (rounds closer than ``dup_window_s``, e.g. pistols with conversion
    devices at 1,100-1,400 rounds a minute): a fix within ``dup_radius_m`` / ``dup_window_s`` of an
    accepted bang is a new round, not an echo, when it repeats the per-sensor delay pattern of that
    bang's burst one emission-time step later (:func:`repeats_round`). False: every such fix is an echo (the
    session-6 association exactly). Only with ``burst_completion``."""
    fast_fire_min_interval_s: float = 0.025
    """Shortest interval between rounds that :func:`repeats_round` accepts and that a burst may hold
    (:func:`refine_bursts`), s (the fastest automatic weapons fire ~1,800 rounds a minute, 33 ms)."""
    fast_fire_keep: float = 0.7
    """Share of the candidate's sensors (and never fewer than ``min_sensors``) whose arrivals must
    repeat the burst's delays within ``burst_spread_s`` in :func:`repeats_round` (a path blocked in
    either round moves a sensor off the pattern: ~10 % of the receptions in the simulator)."""
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


TIGHT_WINDOWS_S = (0.002, 0.004, 0.008, 0.016)
"""Half-widths of the residual windows of :func:`_tight_cap`, seconds."""


def _beyond_chance(
    g: Group, *, cap: int, sensor: IntArray, t: FloatArray, n_tests: float, prm: AssociationParams
) -> bool:
    """More sensors in ``g`` than chance lines up: the cluster's wide count ``cap``, or the tight one."""
    return len(g.idx) > min(cap, _tight_cap(g, sensor, t, n_tests, prm))


def _tight_cap(g: Group, sensor: IntArray, t: FloatArray, n_tests: float, prm: AssociationParams) -> int:
    """The chance count of :func:`chance_sensors` in the narrowest window that holds ``g``'s residuals.

    The cluster-wide count asks how many sensors would have *some* pulse inside the whole
    acceptance window (``early_s + late_s``); in a long burst of automatic fire every sensor has one
    there (tens of rounds a second), so every round would fail it. A round whose pulses all sit
    within ±``h`` of its fit is held to chance agreement within ``2 h`` instead, ``h`` the smallest
    of :data:`TIGHT_WINDOWS_S` that holds every residual; the test count is multiplied by the
    number of windows that could have been chosen (one more, the wide one), so the choice of window
    is paid for (Bonferroni). Residuals larger than the widest ``h``: no tighter test.
    """
    worst = float(np.max(np.abs(g.sol.resid))) if len(g.sol.resid) else math.inf
    for h in TIGHT_WINDOWS_S:
        if worst <= h:
            window = min(2.0 * h, prm.early_s + prm.late_s)
            return chance_sensors(sensor, t, window, n_tests * (len(TIGHT_WINDOWS_S) + 1))
    return len(np.unique(sensor))


def cluster_span(pos: FloatArray, c: float, prm: AssociationParams) -> float:
    """Longest gap, seconds, that can separate two arrivals of one bang on this array."""
    return float(np.max(np.ptp(pos[:, :2], axis=0))) * 1.5 / c + prm.late_s + prm.pair_tol_s


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


def repeats_round(
    g: Group,
    idx: IntArray,
    t: FloatArray,
    sensor: IntArray,
    prm: AssociationParams,
    accepted: Sequence[Group] = (),
) -> bool:
    """Whether the pulses ``idx`` are another round of the gun that fired ``g``, not its echoes.

    A gun firing again from the same place is heard by every sensor with the same delay after
    emission, so ``t_i - delay_s`` (``s`` the sensor of pulse ``i``) is one constant over the
    candidate's pulses: its emission time. Echoes of ``g`` do not repeat the pattern: each sensor
    hears its own reflection path, with its own extra delay (an image source ``D`` metres behind
    the shooter delays the sensors by 0 to ``2 D / c`` depending on their direction). The delays
    are the burst's template (as in :func:`_template_match`): per sensor, the median over ``g`` and
    the ``accepted`` bangs within ``dup_radius_m`` of ``g`` and ``burst_gap_s`` of its emission of
    ``t - t0``, so that a path blocked in one earlier round does not count against the pattern.

    Returns True when at least ``min_sensors`` of the candidate's sensors are in the template, at
    least ``fast_fire_keep`` of them (and ``min_sensors``) give an emission time within
    ``burst_spread_s`` of their median ``t0``, and ``t0`` is at least ``fast_fire_min_interval_s``
    from the emission of every bang of the template (a real interval between rounds).

    Parameters
    ----------
    g : Group
        An accepted bang the candidate collides with (same place, emission within ``dup_window_s``).
    idx : ndarray of int
        Pulses of the candidate group (at most one per sensor).
    t, sensor : ndarray
        Arrival times (s) and sensor of every pulse, as for :func:`associate`.
    prm : AssociationParams
        Tuning.
    accepted : sequence of Group
        The bangs accepted so far (``g`` among them or not).
    """
    burst = [g] + [
        m
        for m in accepted
        if m is not g
        and float(np.hypot(*(m.sol.p[:2] - g.sol.p[:2]))) <= prm.dup_radius_m
        and abs(m.sol.t0 - g.sol.t0) <= prm.burst_gap_s
    ]
    delays: dict[int, list[float]] = {}
    for m in burst:
        for i in m.idx:
            delays.setdefault(int(sensor[i]), []).append(float(t[i]) - m.sol.t0)
    template = {s_: float(np.median(v)) for s_, v in delays.items()}
    t0s = np.array([float(t[i]) - template[int(sensor[i])] for i in idx if int(sensor[i]) in template])
    if len(t0s) < prm.min_sensors:
        return False
    t0 = float(np.median(t0s))
    if any(abs(t0 - m.sol.t0) < prm.fast_fire_min_interval_s for m in burst):
        return False
    agree = int(np.sum(np.abs(t0s - t0) <= prm.burst_spread_s))
    return agree >= max(prm.min_sensors, math.ceil(prm.fast_fire_keep * len(t0s)))


def _verdict(
    fit: tuple[IntArray, Solution] | None,
    accepted: list[Group],
    prm: AssociationParams,
    beyond_chance: Callable[[Group], bool],
    repeats: Callable[[Group, IntArray, Sequence[Group]], bool] | None = None,
) -> str:
    """``"round"`` (a new bang), ``"echo"`` (of an accepted bang: drop its pulses) or ``"bad"``.

    A fit within ``dup_radius_m`` and ``dup_window_s`` of an accepted bang is an echo of it,
    unless ``repeats(bang, pulses, accepted)`` (with ``fast_fire``, :func:`repeats_round`) says
    that it is the same gun firing again. With ``burst_completion`` a fit must also hold more sensors than
    chance would line up (``beyond_chance``) to be a round: a chance alignment accepted here would
    take pulses from the real rounds (it was dropped later, at the report, in any case).
    """
    if fit is None:
        return "bad"
    idx, sol = fit
    w_rms = float(np.sqrt(np.sum(sol.weights * sol.resid**2) / np.sum(sol.weights)))
    if not (w_rms <= prm.max_rms_s and bool(np.all(np.isfinite(sol.cov)))):
        return "bad"
    for g in accepted:
        if (
            float(np.hypot(*(g.sol.p[:2] - sol.p[:2]))) <= prm.dup_radius_m
            and abs(g.sol.t0 - sol.t0) <= prm.dup_window_s
            and not (repeats is not None and repeats(g, idx, accepted))
        ):
            return "echo"
    if prm.burst_completion and not beyond_chance(Group(idx=idx, sol=sol)):
        return "bad"
    return "round"


def _try_best(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    hp: FloatArray,
    ht0: FloatArray,
    n_sensors: int,
    c: float,
    prm: AssociationParams,
    travel: float,
    accepted: list[Group],
    beyond_chance: Callable[[Group], bool],
    repeats: Callable[[Group, IntArray, Sequence[Group]], bool] | None = None,
) -> tuple[int, tuple[IntArray, Solution] | None, str] | None:
    """Score the hypotheses on the live pulses and refine the best: its index, its fit and
    :func:`_verdict`; None when even the best is supported by too few sensors."""
    score = _score(pos[live], t[live], sensor[live], n_sensors, hp, ht0, c, prm, travel)
    best = int(np.argmax(score))
    if score[best] < prm.min_sensors * 0.5:
        return None
    fit = _fit(pos, t, sensor, live, hp[best], float(ht0[best]), c, prm)
    return best, fit, _verdict(fit, accepted, prm, beyond_chance, repeats)


def _burst_hypotheses(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    accepted: list[Group],
    c: float,
    prm: AssociationParams,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """Hypotheses a long burst needs: its later rounds come from where its earlier ones were fired,
    and each sensor's first pulse is (barring an earlier stray) the burst's first round.

    * For the positions of the bangs already accepted in the cluster (distinct to 1 m) and every
      live pulse whose emission time from there (``t - d / c``) lies within ``burst_gap_s`` of a
      bang accepted at that place: that pulse as the direct arrival from there. (A later round of a
      burst follows an earlier one within ``burst_gap_s``; without this bound a long cluster of
      shots close together made places × live pulses hypotheses, each scored on every live pulse,
      at every step: cubic in the number of shots.)
    * 4-pulse samples of the live pulses that are the first of their sensor.
    """
    hp: list[FloatArray] = []
    ht0: list[FloatArray] = []
    places: list[int] = []  # the first accepted bang at each place (distinct to 1 m), in order
    spans: list[list[float]] = []  # per place: earliest and latest emission time accepted there
    if accepted:
        ap = np.array([g.sol.p for g in accepted], dtype=np.float64)
        close = np.linalg.norm(ap[:, None, :] - ap[None, :, :], axis=2) <= 1.0
        for i, g in enumerate(accepted):
            at = [k for k, j in enumerate(places) if close[i, j]]
            if at:
                span = spans[at[0]]
                span[0], span[1] = min(span[0], g.sol.t0), max(span[1], g.sol.t0)
            else:
                places.append(i)
                spans.append([g.sol.t0, g.sol.t0])
    if places:
        lt = t[live]
        by_time = np.argsort(lt, kind="stable")
        sorted_t = lt[by_time]
        centre = pos[live].mean(axis=0)
        radius = float(np.max(np.linalg.norm(pos[live] - centre, axis=1))) if len(live) else 0.0
        gap = prm.burst_gap_s
        for i, (lo, hi) in zip(places, spans, strict=True):
            q = accepted[i].sol.p
            # t - d/c within [lo - gap, hi + gap] needs lo - gap <= t <= hi + gap + d_max / c
            reach = (float(np.linalg.norm(q - centre)) + radius) / c
            a, b = np.searchsorted(sorted_t, [lo - gap - 1e-9, hi + gap + reach + 1e-9])
            sel = live[np.sort(by_time[a:b])]  # in the order of ``live``
            q_t0 = t[sel] - np.linalg.norm(pos[sel] - q, axis=1) / c
            near = (q_t0 >= lo - gap) & (q_t0 <= hi + gap)
            if np.any(near):
                hp.append(np.repeat(q[None, :], int(np.count_nonzero(near)), axis=0))
                ht0.append(q_t0[near])
    order = live[np.argsort(t[live], kind="stable")]
    _, first = np.unique(sensor[order], return_index=True)
    firsts = order[first]
    if len(firsts) >= 4:
        fp, ft0, _ = _hypotheses(pos, t, sensor, firsts, firsts, c, prm, rng)
        hp.append(fp)
        ht0.append(ft0)
    if not hp:
        return np.empty((0, 3)), np.empty(0)
    return np.concatenate(hp), np.concatenate(ht0)


def _complete_bursts(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    accepted: list[Group],
    n_sensors: int,
    c: float,
    prm: AssociationParams,
    rng: np.random.Generator,
    travel: float,
    beyond_chance: Callable[[Group], bool],
    repeats: Callable[[Group, IntArray, Sequence[Group]], bool] | None = None,
) -> IntArray:
    """Once the random search of a cluster has given up, look for more bangs with
    :func:`_burst_hypotheses` (appended to ``accepted``); returns the pulses still unexplained.

    Automatic fire at 600-1,200 rounds a minute puts tens of rounds 50-100 ms apart in every
    sensor's stream while arrival differences across the array are seconds long: a random 4-pulse
    sample then almost never holds four pulses of one round (10 rounds: ~1 in 1,000; 30 rounds: ~1 in
    27,000), and the search fails after ``max_failures`` tries having found none or a few rounds.
    Every bang found here passes the same checks as in the search (fit, RMS, echo rule).
    """
    for _ in range(4 * len(live)):
        if len(np.unique(sensor[live])) < prm.min_sensors:
            break
        hp, ht0 = _burst_hypotheses(pos, t, sensor, live, accepted, c, prm, rng)
        if len(hp) == 0:
            break
        tried = _try_best(
            pos, t, sensor, live, hp, ht0, n_sensors, c, prm, travel, accepted, beyond_chance, repeats
        )
        if tried is None:
            break
        _, fit, verdict = tried
        if verdict == "bad" or fit is None:
            break
        idx, sol = fit
        if verdict == "round":
            accepted.append(Group(idx=idx, sol=sol))
        live = np.setdiff1d(live, idx)
    return live


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
    span = cluster_span(pos, c, prm)
    rng = np.random.default_rng(prm.seed)
    travel = float(np.max(np.linalg.norm(pos[:, :2] - pos[:, :2].mean(axis=0), axis=1))) * 2.0 / c
    groups: list[Group] = []

    def repeats_here(g: Group, idx: IntArray, accepted: Sequence[Group]) -> bool:
        return repeats_round(g, idx, t, sensor, prm, accepted)

    repeats = repeats_here if prm.fast_fire and prm.burst_completion else None
    for cl in time_clusters(t, span):
        if len(np.unique(sensor[cl])) < prm.min_sensors:
            continue
        live = cl.copy()
        dead_seeds: set[int] = set()
        accepted: list[Group] = []
        failures = 0
        n_tests = float(len(cl) * prm.chance_tests_per_pulse)
        cap = chance_sensors(sensor[cl], t[cl], prm.early_s + prm.late_s, n_tests)

        beyond_chance = partial(_beyond_chance, cap=cap, sensor=sensor[cl], t=t[cl], n_tests=n_tests, prm=prm)
        structured = prm.burst_completion  # burst hypotheses join the random ones until one fails
        for _ in range(4 * len(cl)):
            if len(np.unique(sensor[live])) < prm.min_sensors:
                break
            seeds = _seeds(live, strength, dead_seeds, prm.seeds_per_round, rng)
            if len(seeds) == 0:
                break
            hp, ht0, hseed = _hypotheses(pos, t, sensor, live, seeds, c, prm, rng)
            if structured:
                bp, bt0 = _burst_hypotheses(pos, t, sensor, live, accepted, c, prm, rng)
                hp, ht0 = np.concatenate([hp, bp]), np.concatenate([ht0, bt0])
                hseed = np.concatenate([hseed, np.full(len(bp), -1, dtype=np.intp)])
            if len(hp) == 0:
                break
            tried = _try_best(
                pos, t, sensor, live, hp, ht0, n_sensors, c, prm, travel, accepted, beyond_chance, repeats
            )
            if tried is None:
                break
            best, fit, verdict = tried
            if fit is not None and verdict != "bad":
                idx, sol = fit
                if verdict == "round":
                    accepted.append(Group(idx=idx, sol=sol))
                # an echo of an accepted bang: drop its pulses, no new round
                live = np.setdiff1d(live, idx)
                structured = prm.burst_completion
                continue
            if hseed[best] < 0:  # a burst hypothesis failed: random ones only until a bang is found
                structured = False
                continue
            # the best hypothesis of this round failed: never seed from this pulse again
            dead_seeds.add(int(hseed[best]))
            failures += 1
            if failures >= prm.max_failures:
                break
        if prm.burst_completion:
            live = _complete_bursts(
                pos, t, sensor, live, accepted, n_sensors, c, prm, rng, travel, beyond_chance, repeats
            )
        for g in accepted:
            tight = _tight_cap(g, sensor[cl], t[cl], n_tests, prm)
            groups.append(
                Group(idx=g.idx, sol=g.sol, chance_sensors=min(cap, tight) if prm.burst_completion else cap)
            )
    groups.sort(key=lambda g: g.sol.t0)
    return groups


def refine_bursts(
    groups: list[Group],
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    c: float,
    prm: AssociationParams,
    weak: list[Group] | None = None,
) -> list[Group]:
    """Locate the rounds of each burst from one shared position (joint TDOA over the burst).

    A shooter firing several rounds within seconds does not move far: every round's arrivals carry
    information about the same place, while NLOS delays and interfering echoes differ from round to
    round. Rounds are chained in emission order when consecutive rounds are at most
    ``burst_gap_s`` apart and a round's own fix lies within ``burst_radius_m`` of the burst's
    current position. For a candidate burst the shared position and each round's emission time are
    estimated jointly (:func:`rtcc.acoustic.geometry.refine_joint`, the same asymmetric robust loss
    as single rounds), each round's pulses are re-chosen at the shared position (one per sensor,
    asymmetric window, from the pulses no other round uses) and the fit is repeated until the
    choice is stable. The round joins only if every round of the burst still has at least
    ``burst_keep`` of its own sensor count (and ``min_sensors``) inside the window and a weighted
    residual RMS of at most ``max_rms_s``; otherwise it starts a new burst. So two shooters a few
    metres apart, even firing alternately, stay apart, and one output per round is kept.

    Parameters
    ----------
    groups : list of Group
        Accepted rounds (any order), indices into the arrays below.
    pos, t, sensor : ndarray
        As for :func:`associate`.
    c : float
        Speed of sound, m/s.
    prm : AssociationParams
        Tuning.
    weak : list of Group, optional
        Associated groups too weak to be reported on their own (few sensors). One is returned only
        when it joins a burst of reported rounds — heard from the same place, with the same
        per-sensor delays, within seconds of them, which chance coincidences of echoes and street
        noise do not do; it never starts a burst.

    Returns
    -------
    list of Group
        One group per input round (and per weak group that joined a burst), in emission order;
        rounds of a burst share ``sol.p``.
    """
    is_weak = {id(g) for g in weak or []}
    order = sorted([*groups, *(weak or [])], key=lambda g: g.sol.t0)
    if not prm.burst or len(order) < 2:
        return [g for g in order if id(g) not in is_weak]
    by_t = np.argsort(t, kind="stable")
    travel = float(np.max(np.linalg.norm(pos[:, :2] - pos[:, :2].mean(axis=0), axis=1))) * 2.0 / c
    claimed = np.zeros(len(t), dtype=bool)  # pulses of rounds already placed (alone or in a burst)
    owner = np.full(len(t), -1, dtype=np.intp)  # the round (index in ``order``) that found each pulse
    for k, g in enumerate(order):
        owner[g.idx] = k
    done: list[Group] = []
    bursts: list[_Burst] = []
    for k, g in enumerate(order):
        weak_g = id(g) in is_weak
        still_open = []
        for b in bursts:
            if g.sol.t0 - b.rounds[-1].sol.t0 <= prm.burst_gap_s:
                still_open.append(b)
            else:
                done.extend(b.current)
        bursts = still_open
        if np.any(claimed[g.idx]):  # some of its pulses were re-assigned to an earlier round
            keep = g.idx[~claimed[g.idx]]
            if len(np.unique(sensor[keep])) < prm.min_sensors:
                continue  # what is left is part of rounds already located: not a round of its own
            # having lost many of its pulses, it is a round only if it joins a burst
            weak_g = weak_g or len(keep) < math.ceil(prm.burst_keep * len(g.idx))
            g = Group(idx=keep, sol=_solo(pos, t, keep, g.sol, c, prm), chance_sensors=g.chance_sensors)
        joined = False
        for b in sorted(bursts, key=lambda b: b.dist(g)):
            if b.dist(g) > prm.burst_radius_m:
                continue
            free = ~claimed
            for m in b.current:
                free[m.idx] = True
            # pulses of later rounds stay theirs when re-choosing pulses at the shared position
            free_now = free & (owner <= k)
            free_now[g.idx] = True
            trial = None
            if _same_place(b.current, g, t, sensor, prm):
                trial = _too_fast(
                    _joint([*b.current, g], free_now, pos, t, sensor, by_t, travel, c, prm), prm
                )
            if trial is None:
                gm = _template_match(b.current, g, free, pos, t, sensor, by_t, c, prm)
                if gm is not None and _rival_round(gm.idx, owner, k):
                    gm = None  # those pulses are mostly another round's, still to be placed
                if gm is not None:
                    free_now[gm.idx] = True
                    trial = _too_fast(
                        _joint([*b.current, gm], free_now, pos, t, sensor, by_t, travel, c, prm), prm
                    )
            if trial is not None:
                for m in b.current:
                    claimed[m.idx] = False
                for m in trial:
                    claimed[m.idx] = True
                b.rounds.append(g)
                b.current = trial
                joined = True
                break
        if not joined and not weak_g:
            bursts.append(_Burst(rounds=[g], current=[g]))
            claimed[g.idx] = True
    for b in bursts:
        done.extend(b.current)
    done.sort(key=lambda g: g.sol.t0)
    return done


def _too_fast(trial: list[Group] | None, prm: AssociationParams) -> list[Group] | None:
    """``trial`` (a burst's rounds, joint fit), or None when two of its rounds are closer in emission
    time than ``fast_fire_min_interval_s``: no gun fires that fast, so one of them is the other bang
    heard again (a reflection, or a detector's pulse split in two), not a round."""
    if trial is None:
        return None
    t0 = np.sort([g.sol.t0 for g in trial])
    return None if np.any(np.diff(t0) < prm.fast_fire_min_interval_s) else trial


def _rival_round(idx: IntArray, owner: IntArray, k: int) -> bool:
    """Whether more of the pulses ``idx`` were found by one later round than by round ``k`` or by
    none (a template match must repair round ``k``, not take over a round still to be placed)."""
    own = owner[idx]
    mine = int(np.sum((own == k) | (own < 0)))
    later = own[own > k]
    return len(later) > 0 and int(np.max(np.bincount(later))) > mine


@dataclass
class _Burst:
    rounds: list[Group]
    """The rounds as associated."""
    current: list[Group]
    """The rounds as located jointly (pulses re-chosen, shared position)."""

    def dist(self, g: Group) -> float:
        """Horizontal distance of round ``g``'s own fix from the burst's position, m."""
        return float(np.hypot(*(g.sol.p[:2] - self.current[0].sol.p[:2])))


def _solo(
    pos: FloatArray, t: FloatArray, idx: IntArray, sol: Solution, c: float, prm: AssociationParams
) -> Solution:
    """Re-solve one round on a reduced set of pulses, from its previous solution."""
    return refine(
        pos[idx],
        t[idx],
        sol.p,
        sol.t0,
        c,
        early_s=prm.early_knee_s,
        late_knee_s=prm.late_knee_s,
        sigma_floor_s=prm.sigma_floor_s,
    )


def _template_match(
    burst: list[Group],
    g: Group,
    free: npt.NDArray[np.bool_],
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    by_t: IntArray,
    c: float,
    prm: AssociationParams,
) -> Group | None:
    """Re-associate round ``g`` with the burst's per-sensor delays (a template), or None.

    Rounds fired from one place reach each sensor with the same delay after emission, whatever the
    propagation (blocked paths included), so the burst's measured delays are a template that needs
    no model: the emission time ``t0`` near ``g``'s own at which the most sensors have a free pulse
    within ``burst_spread_s`` of ``t0 + delay_s`` is searched. This repairs rounds that the
    association mixed with their neighbours (automatic fire, echoes). The round is accepted when
    at least ``burst_keep`` of its sensors (and ``min_sensors``) match; a source a few metres away
    changes the delays by more than the tolerance at most sensors, so it does not match.
    """
    template: dict[int, list[float]] = {}
    for m in burst:
        for i in m.idx:
            template.setdefault(int(sensor[i]), []).append(float(t[i]) - m.sol.t0)
    delay = np.full(int(sensor.max()) + 1, np.nan)
    for s_, v in template.items():
        delay[s_] = float(np.median(v))
    reach = prm.burst_radius_m / c + prm.late_s
    ts = t[by_t]
    lo = int(np.searchsorted(ts, g.sol.t0 - reach, side="left"))
    hi = int(np.searchsorted(ts, g.sol.t0 + reach + float(np.nanmax(delay)) + prm.early_s, side="right"))
    cand = by_t[lo:hi]
    cand = cand[free[cand] & np.isfinite(delay[sensor[cand]])]
    if len(cand) == 0:
        return None
    t0c = t[cand] - delay[sensor[cand]]
    ok = np.abs(t0c - g.sol.t0) <= reach
    cand, t0c = cand[ok], t0c[ok]
    tol = prm.burst_spread_s
    best_key: tuple[int, float] | None = None
    t0 = g.sol.t0
    for x in t0c:
        near = np.abs(t0c - x) <= tol
        centre = float(np.median(t0c[near]))
        key = (len(np.unique(sensor[cand[near]])), -abs(centre - g.sol.t0))
        if best_key is None or key > best_key:
            best_key, t0 = key, centre
    if best_key is None:
        return None
    n_match = best_key[0]
    need = max(prm.min_sensors, math.ceil(prm.burst_keep * min(len(g.idx), len(template))))
    if n_match < need:
        return None
    err = np.abs(t0c - t0)
    chosen: dict[int, int] = {}
    for j in np.nonzero(err <= tol)[0]:
        s_ = int(sensor[cand[j]])
        if s_ not in chosen or err[j] < err[chosen[s_]]:
            chosen[s_] = int(j)
    idx = np.array(sorted(int(cand[j]) for j in chosen.values()), dtype=np.intp)
    sol = Solution(
        p=burst[0].sol.p,
        t0=t0,
        cov=g.sol.cov,
        resid=np.zeros(len(idx)),
        weights=np.ones(len(idx)),
        sigma_s=g.sol.sigma_s,
        dof=g.sol.dof,
        sigma_estimated=g.sol.sigma_estimated,
        converged=g.sol.converged,
    )
    return Group(idx=idx, sol=sol, chance_sensors=g.chance_sensors)


def delay_differences(burst: list[Group], g: Group, t: FloatArray, sensor: IntArray) -> FloatArray:
    """Per common sensor, ``(t_s,g - t0_g) - median over the burst of (t_s,m - t0_m)``, seconds.

    One constant over the sensors for rounds fired from one place (the emission times cancel in
    its spread); empty when ``g`` shares no sensor with ``burst``.
    """
    ref: dict[int, list[float]] = {}
    for m in burst:
        for i in m.idx:
            ref.setdefault(int(sensor[i]), []).append(float(t[i]) - m.sol.t0)
    return np.array(
        [
            float(t[i]) - g.sol.t0 - float(np.median(ref[int(sensor[i])]))
            for i in g.idx
            if int(sensor[i]) in ref
        ],
        dtype=float,
    )


def delay_spread(burst: list[Group], g: Group, t: FloatArray, sensor: IntArray) -> tuple[float, int]:
    """How differently the sensors hear round ``g`` and the rounds of ``burst``, seconds.

    For rounds fired from one place, a sensor's arrival time minus the round's emission time is the
    same in every round (up to timing noise and the occasional blocked path), so the differences
    ``d_s = (t_s,g - t0_g) - median over the burst of (t_s,m - t0_m)`` over the common sensors are
    one constant; a source ``D`` metres away changes them by up to ``2 D / c`` from sensor to
    sensor. Returns the median absolute deviation of ``d_s`` (robust to a few blocked paths; the
    emission times cancel in it) and the number of common sensors.
    """
    d = delay_differences(burst, g, t, sensor)
    if len(d) == 0:
        return math.inf, 0
    return float(np.median(np.abs(d - np.median(d)))), len(d)


def _same_place(
    burst: list[Group], g: Group, t: FloatArray, sensor: IntArray, prm: AssociationParams
) -> bool:
    spread, common = delay_spread(burst, g, t, sensor)
    return common >= prm.min_sensors and spread <= prm.burst_spread_s


def _joint(
    members: list[Group],
    free: npt.NDArray[np.bool_],
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    by_t: IntArray,
    travel: float,
    c: float,
    prm: AssociationParams,
) -> list[Group] | None:
    """Joint fit of one candidate burst; the members' new groups, or None when a round does not fit."""
    taken = ~free
    own = [len(g.idx) for g in members]
    idxs = [g.idx for g in members]
    p = np.mean([g.sol.p for g in members], axis=0)
    t0s = np.array([g.sol.t0 for g in members])
    ts = t[by_t]
    sol: Solution | None = None
    for _ in range(4):
        cat = np.concatenate(idxs)
        em = np.concatenate([np.full(len(ix), k, dtype=np.intp) for k, ix in enumerate(idxs)])
        p = np.array([p[0], p[1], float(np.median(pos[cat, 2]))])
        for _ in range(3):  # the excess-delay weights depend on the emission times: iterate
            sol = refine_joint(
                pos[cat],
                t[cat],
                em,
                p,
                t0s,
                c,
                early_s=prm.early_knee_s,
                late_knee_s=prm.late_knee_s,
                sigma_floor_s=prm.sigma_floor_s,
                prior_w=excess_delay_weights(sensor[cat], t[cat] - t0s[em], prm.burst_excess_knee_s),
            )
            p = sol.p
            t0s = sol.t0s if sol.t0s is not None else t0s
        new = _repick(p, t0s, pos, t, sensor, by_t, ts, taken, travel, c, prm)
        if all(np.array_equal(a, b) for a, b in zip(new, idxs, strict=True)):
            break
        idxs = new
        if any(len(ix) < prm.min_sensors for ix in idxs):
            return None
    if sol is None:
        return None
    cat = np.concatenate(idxs)
    em = np.concatenate([np.full(len(ix), k, dtype=np.intp) for k, ix in enumerate(idxs)])
    if _height_wanted(pos[cat, 2], prm):
        sol3 = refine_joint(
            pos[cat],
            t[cat],
            em,
            sol.p,
            t0s,
            c,
            solve_height=True,
            early_s=prm.early_knee_s,
            late_knee_s=prm.late_knee_s,
            sigma_floor_s=prm.sigma_floor_s,
            prior_w=excess_delay_weights(sensor[cat], t[cat] - t0s[em], prm.burst_excess_knee_s),
        )
        z = pos[cat, 2]
        if (
            np.all(np.isfinite(sol3.cov))
            and z.min() - prm.height_margin_m <= sol3.p[2] <= z.max() + prm.height_margin_m
        ):
            sol = sol3
    sol = _final(sol, pos[cat], t[cat], em, sensor[cat], c, prm)
    if sol is None or sol.t0s is None or not np.all(np.isfinite(sol.cov)):
        return None
    out: list[Group] = []
    for k, ix in enumerate(idxs):
        member, rms = joint_member(sol, em, k)
        if len(ix) < max(prm.min_sensors, math.ceil(prm.burst_keep * own[k])) or rms > prm.max_rms_s:
            return None
        out.append(Group(idx=ix, sol=member, chance_sensors=members[k].chance_sensors))
    return out


def joint_member(sol: Solution, emission: IntArray, k: int) -> tuple[Solution, float]:
    """Round ``k`` of a joint (burst) solution as a one-emission solution, and its weighted RMS, s.

    ``sol`` comes from :func:`~rtcc.acoustic.geometry.refine_joint` with arrival-to-round map
    ``emission``; the member keeps the shared position and the covariance of the position and of
    its own emission time.
    """
    if sol.t0s is None:
        raise ValueError("not a joint solution (no per-round emission times)")
    sel = emission == k
    w, e = sol.weights[sel], sol.resid[sel]
    rms = float(np.sqrt(np.sum(w * e * e) / max(float(np.sum(w)), 1e-12)))
    npos = len(sol.cov) - len(sol.t0s)
    keep = [*range(npos), npos + k]
    member = Solution(
        p=sol.p,
        t0=float(sol.t0s[k]),
        cov=sol.cov[np.ix_(keep, keep)],
        resid=e,
        weights=w,
        sigma_s=sol.sigma_s,
        dof=sol.dof,
        sigma_estimated=sol.sigma_estimated,
        converged=sol.converged,
    )
    return member, rms


def excess_delay_weights(sensor: IntArray, delay: FloatArray, knee_s: float) -> FloatArray:
    """Down-weight a round's arrival that is late against the same sensor's other rounds.

    For a fixed shooter the line-of-sight travel time to a sensor is the same in every round of a
    burst, so ``delay = t_i - t0_round`` should repeat at each sensor; a blocked or reflected path
    only adds delay. The earliest delay of a sensor is taken as its line-of-sight one and an arrival
    ``x`` seconds later than it gets the Cauchy weight ``1 / (1 + (x / knee_s)^2)`` (the
    earliest-arrival principle of NLOS mitigation applied across rounds instead of across paths).

    Parameters
    ----------
    sensor : ndarray of int, shape (N,)
        Sensor of each arrival.
    delay : ndarray, shape (N,)
        Arrival time minus its round's emission time, seconds.
    knee_s : float
        Excess delay at which the weight is one half, seconds; ``inf`` disables the weighting.

    Returns
    -------
    ndarray, shape (N,)
        Weights in ``(0, 1]``; 1 for the earliest arrival of each sensor and for sensors heard once.
    """
    earliest = np.full(int(sensor.max()) + 1 if len(sensor) else 0, np.inf)
    np.minimum.at(earliest, sensor, delay)
    x = delay - earliest[sensor]
    w: FloatArray = 1.0 / (1.0 + (x / knee_s) ** 2)
    return w


def _final(
    sol: Solution,
    pos: FloatArray,
    t: FloatArray,
    em: IntArray,
    sensor: IntArray,
    c: float,
    prm: AssociationParams,
) -> Solution | None:
    """Re-solve at the final pulse choice (the last re-pick may have changed it)."""
    if sol.t0s is None:
        return None
    return refine_joint(
        pos,
        t,
        em,
        sol.p,
        sol.t0s,
        c,
        solve_height=len(sol.cov) - len(sol.t0s) == 3,
        early_s=prm.early_knee_s,
        late_knee_s=prm.late_knee_s,
        sigma_floor_s=prm.sigma_floor_s,
        prior_w=excess_delay_weights(sensor, t - sol.t0s[em], prm.burst_excess_knee_s),
    )


def _repick(
    p: FloatArray,
    t0s: FloatArray,
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    by_t: IntArray,
    ts: FloatArray,
    taken: npt.NDArray[np.bool_],
    travel: float,
    c: float,
    prm: AssociationParams,
) -> list[IntArray]:
    """Per round, one pulse per sensor inside the asymmetric window at the shared position; a pulse
    wanted by two rounds (automatic fire) goes to the round it fits better."""
    picks: list[dict[int, tuple[int, float]]] = []
    for t0 in t0s:
        lo = int(np.searchsorted(ts, float(t0) - prm.early_s, side="left"))
        hi = int(np.searchsorted(ts, float(t0) + travel + prm.late_s, side="right"))
        cand = by_t[lo:hi]
        cand = cand[~taken[cand]]
        e = t[cand] - t0 - np.linalg.norm(pos[cand] - p, axis=1) / c
        chosen = _pick(e, sensor[cand], prm)
        picks.append({int(cand[j]): (int(sensor[cand[j]]), abs(float(e[j]))) for j in chosen})
    owner: dict[int, int] = {}
    for k, pk in enumerate(picks):
        for i, (_s, err) in pk.items():
            if i not in owner or err < picks[owner[i]][i][1]:
                owner[i] = k
    return [np.array(sorted(i for i in pk if owner[i] == k), dtype=np.intp) for k, pk in enumerate(picks)]
