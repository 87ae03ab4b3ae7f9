"""Bursts heard by few sensors: locate rounds only as part of a burst with a repeating delay pattern.

With 3–6 sensors one round is barely determined (4 arrivals, 3 unknowns ``x, y, t0``: one degree of
freedom) and unrelated pulses line up on 4 sensors by chance often enough that a single round is
never reported (:func:`rtcc.acoustic.associate.chance_sensors`). A *burst* of ``R`` rounds from one
place is different: it gives ``R K`` arrival times on ``K`` sensors for ``2 + R`` unknowns, and the
per-sensor delay after emission must repeat from round to round. Chance agreement of such a pattern
is tiny: after the first round, each further round must have a pulse at *every* other sensor within
a few milliseconds of the predicted time.

Method (only for time clusters heard by at most ``max_cluster_sensors`` sensors; opt-in, see
:func:`rtcc.acoustic.locate.locate_all`):

1. Hypotheses: closed-form sources from 4-pulse samples passing the physical gate
   (:func:`rtcc.acoustic.associate._hypotheses`, as the dense association).
2. Burst support of a hypothesis ``p``: the rounds at ``p`` (:func:`rounds_at`: pulses at
   ``min_sensors`` or more sensors whose implied emission times ``t_i - |s_i - p| / c`` agree within
   ``2 search_s``), in the longest run with gaps of at most ``burst_gap_s``. The hypothesis with the
   most rounds wins; ties go to the one whose pulses are least often preceded at their sensor by
   another pulse within ``lead_s`` (direct sound comes first, echoes follow), then to the tightest.
3. The winner is located jointly (:func:`rtcc.acoustic.geometry.refine_joint`: one shared position,
   one emission time per round), the rounds re-gathered at the new position until stable, and the
   burst kept when it has at least ``min_rounds`` rounds, every round's weighted RMS is at most
   ``max_rms_s``, every round hears the others' per-sensor delays within ``spread_s``
   (:func:`delay_deviation`), the 95 % semi-major axis with a ``sigma_floor_s`` timing error is at
   most ``max_ellipse_m`` and the chance of the pattern is small (:func:`burst_nfa` below
   ``alpha``).

Limitation (measured on the Pittsburgh tuning firing positions, ``docs/acoustic-localization.md``):
with four sensors a round has one redundant arrival, so one sensor biased by ~20 ms (a blocked path,
a survey error) can move a burst tens of metres while every test above still passes; such fixes
carry quality ``"poor"`` (fewer than ``good_sensors`` sensors) like every fix of this rule. On the
held-out firing positions this happened about as often as a good fix, so the rule is opt-in.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from rtcc.acoustic.associate import (
    AssociationParams,
    Group,
    cluster_span,
    delay_differences,
    joint_member,
    time_clusters,
)
from rtcc.acoustic.geometry import FloatArray, ellipse_95, linear_init, refine_joint

IntArray = np.ndarray

__all__ = ["SparseParams", "burst_nfa", "delay_deviation", "sparse_bursts"]


@dataclass(frozen=True)
class SparseParams:
    """Tuning of the few-sensor burst rule (seconds)."""

    max_cluster_sensors: int = 7
    """A time cluster is handled here when at most this many distinct sensors report in it."""
    min_sensors: int = 4
    """Fewest sensors per round."""
    min_rounds: int = 3
    """Fewest rounds of a burst."""
    spread_s: float = 0.003
    """Largest deviation of a sensor's delay difference from the burst's median difference, s."""
    search_s: float = 0.010
    """Half-width of the emission-time window that gathers a round's pulses at a hypothesis, s."""
    max_rms_s: float = 0.010
    """Largest weighted residual RMS of each round in the joint fit, s."""
    sigma_floor_s: float = 0.005
    """Timing standard deviation assumed at least for the covariance, s: with a few sensors the
    residuals of a near-exact fit understate the model error (blocked paths, survey), which on the
    tuning data reaches tens of milliseconds per sensor."""
    max_ellipse_m: float = 12.0
    """Largest 95 % semi-major axis (from ``sigma_floor_s``) of an accepted burst, m: a source seen
    from few sensors on one side is poorly determined."""
    lead_s: float = 0.2
    """Among hypotheses with as many rounds, the one whose pulses are least often preceded at their
    sensor by another pulse within this time is preferred (direct sound comes first), s."""
    max_jackknife_m: float = 20.0
    """Largest move of the burst's position when one sensor is left out (:func:`jackknife_shift`), m."""
    median_positions: bool = True
    """Use each sensor's median reported position over the whole input: sensors are fixed, while a
    position reported with each clip scatters (per-clip GPS on the tuning data: up to 18 m
    horizontally and 33 m in height), which four sensors cannot average out."""
    max_hypotheses: int = 20000
    """Most 4-pulse hypotheses per search (a random subset beyond)."""
    max_tries: int = 30
    """Best-ranked hypotheses refined per search before giving up."""
    max_bursts: int = 1
    """Bursts searched per time cluster."""
    alpha: float = 1e-3
    """Largest expected number of chance bursts (a-contrario threshold, :func:`burst_nfa`)."""


def delay_deviation(burst: list[Group], g: Group, t: FloatArray, sensor: IntArray) -> tuple[float, int]:
    """Largest deviation of round ``g``'s per-sensor delays from the burst's, seconds.

    ``d_s = (t_s,g - t0_g) - median over the burst of (t_s,m - t0_m)`` is one constant over the
    common sensors for rounds fired from one place; returns ``max_s |d_s - median(d)|`` (the
    emission times cancel) and the number of common sensors.
    """
    d = delay_differences(burst, g, t, sensor)
    if len(d) == 0:
        return math.inf, 0
    return float(np.max(np.abs(d - np.median(d)))), len(d)


def burst_nfa(rounds: list[Group], sensor: IntArray, t: FloatArray, cl: IntArray, spread_s: float) -> float:
    """Expected number of bursts as good as ``rounds`` made by unrelated pulses (a-contrario).

    Background: each sensor reports unrelated pulses as a Poisson process at its rate in the cluster
    ``cl``, so it has one within ``±spread_s`` of a predicted time with probability
    ``p_s = 1 - exp(-2 rate_s spread_s)``. The first round and the first sensor of every later round
    are free (they fix the pattern and the emission time); every other (round, sensor) pulse must fall
    in its window. The number of tests is the cluster's pulse count to the power of the rounds (each
    round's reference pulse) — a deliberately generous count.
    """
    ids, counts = np.unique(sensor[cl], return_counts=True)
    duration = max(float(np.ptp(t[cl])), 2.0 * spread_s)
    p = dict(zip(ids.tolist(), (1.0 - np.exp(-counts / duration * 2.0 * spread_s)).tolist(), strict=True))
    log_p = 0.0
    for g in rounds[1:]:
        ss = sorted({int(sensor[i]) for i in g.idx}, key=lambda s_: -p[s_])
        log_p += sum(math.log(max(p[s_], 1e-300)) for s_ in ss[1:])  # the likeliest sensor is free
    log_tests = len(rounds) * math.log(max(len(cl), 1))
    return math.exp(min(log_tests + log_p, 700.0))


def sparse_bursts(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    strength: FloatArray,
    c: float,
    prm: AssociationParams,
    sp: SparseParams,
) -> list[Group]:
    """Rounds of consistent bursts in the time clusters heard by few sensors (see the module doc).

    Parameters
    ----------
    pos, t, sensor, strength, c, prm
        As for :func:`rtcc.acoustic.associate.associate`.
    sp : SparseParams
        The few-sensor rule.

    Returns
    -------
    list of Group
        One group per round of an accepted burst, in emission order; rounds of a burst share
        ``sol.p``; ``chance_sensors`` is 0 (the burst passed its own chance test).
    """
    rng = np.random.default_rng(prm.seed)
    if sp.median_positions:
        pos = sensor_medians(pos, sensor)[sensor]
    out: list[Group] = []
    for cl in time_clusters(t, cluster_span(pos, c, prm)):
        ns = len(np.unique(sensor[cl]))
        if ns < sp.min_sensors or ns > sp.max_cluster_sensors:
            continue
        live = cl.copy()
        accepted: list[list[Group]] = []
        for _ in range(sp.max_bursts):
            if len(np.unique(sensor[live])) < sp.min_sensors:
                break
            burst = _best_burst(pos, t, sensor, strength, live, c, prm, sp, rng)
            if burst is None:
                break
            live = np.setdiff1d(live, np.concatenate([g.idx for g in burst]))
            if burst_nfa(burst, sensor, t, cl, sp.spread_s) > sp.alpha:
                continue
            if any(_is_echo(burst, a, sp.spread_s) for a in accepted):
                continue
            accepted.append(burst)
        for a in accepted:
            out.extend(a)
    out.sort(key=lambda g: g.sol.t0)
    return out


def sensor_medians(pos: FloatArray, sensor: IntArray) -> FloatArray:
    """Median reported position of each sensor, shape (S, 3) (rows of absent sensors are NaN)."""
    out: FloatArray = np.full((int(sensor.max()) + 1 if len(sensor) else 0, 3), np.nan)
    for s_ in np.unique(sensor):
        out[s_] = np.median(pos[sensor == s_], axis=0)
    return out


def rounds_at(
    p: FloatArray,
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    c: float,
    sp: SparseParams,
) -> list[IntArray]:
    """Rounds emitted from ``p``: sets of pulses (one per sensor, at least ``sp.min_sensors``) whose
    implied emission times ``t_i - |s_i - p| / c`` lie within ``2 search_s`` of each other; greedy in
    time order, non-overlapping. Indices into the full arrays."""
    e = t[live] - np.linalg.norm(pos[live] - p, axis=1) / c
    order = np.argsort(e, kind="stable")
    es, idx = e[order], live[order]
    rounds: list[IntArray] = []
    j = 0
    while j < len(es):
        hi = int(np.searchsorted(es, es[j] + 2.0 * sp.search_s, side="right"))
        win = np.arange(j, hi)
        if len(np.unique(sensor[idx[win]])) >= sp.min_sensors:
            centre = float(np.median(es[win]))
            chosen: dict[int, int] = {}
            for w in win:
                s_ = int(sensor[idx[w]])
                if s_ not in chosen or abs(es[w] - centre) < abs(es[chosen[s_]] - centre):
                    chosen[s_] = int(w)
            rounds.append(np.array(sorted(int(idx[w]) for w in chosen.values()), dtype=np.intp))
            j = hi
        else:
            j += 1
    return rounds


def quad_hypotheses(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    c: float,
    prm: AssociationParams,
    cap: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Closed-form sources (H, 3) from *every* 4-pulse set on 4 distinct sensors passing the pairwise
    gate ``|dt| <= d / c + pair_tol_s`` (a random ``cap`` of them when there are more): with few
    sensors, exhaustive enumeration is affordable and a burst's few direct-path sets are not missed."""
    ids = np.unique(sensor[live])
    by_s = {int(s_): live[sensor[live] == s_] for s_ in ids}
    quads: list[IntArray] = []
    for combo in itertools.combinations(ids.tolist(), 4):
        for a in by_s[combo[0]]:
            parts = []
            for s_ in combo[1:]:
                cand = by_s[s_]
                d = np.linalg.norm(pos[cand] - pos[a], axis=1)
                parts.append(cand[np.abs(t[cand] - t[a]) <= d / c + prm.pair_tol_s])
            if any(len(x) == 0 for x in parts):
                continue
            grid = np.stack(np.meshgrid(*parts, indexing="ij"), axis=-1).reshape(-1, 3)
            quads.append(np.concatenate([np.full((len(grid), 1), a), grid], axis=1))
    if not quads:
        return np.empty((0, 3))
    q = np.concatenate(quads).astype(np.intp)
    pq, tq = pos[q], t[q]
    gate = np.ones(len(q), dtype=bool)
    for i, j in ((1, 2), (1, 3), (2, 3)):
        dd = np.linalg.norm(pq[:, i] - pq[:, j], axis=1)
        gate &= np.abs(tq[:, i] - tq[:, j]) <= dd / c + prm.pair_tol_s
    pq, tq = pq[gate], tq[gate]
    if len(pq) > cap:
        keep = np.sort(rng.choice(len(pq), size=cap, replace=False))
        pq, tq = pq[keep], tq[keep]
    if len(pq) == 0:
        return np.empty((0, 3))
    z0 = np.median(pq[:, :, 2], axis=1)
    xy, t0 = linear_init(pq, tq, c, z0)
    good = np.all(np.isfinite(xy), axis=1) & np.isfinite(t0) & (t0 <= tq.min(axis=1) + prm.early_s)
    out: FloatArray = np.concatenate([xy, z0[:, None]], axis=1)[good]
    return out


def _window_counts(e: FloatArray, s: IntArray, width: float, span: int) -> IntArray:
    """For hypotheses (rows) of implied emission times ``e`` (H, N), the number of distinct sensors
    in the window ``[e_j, e_j + width]`` starting at each pulse (in sorted order), shape (H, N)."""
    order = np.argsort(e, axis=1, kind="stable")
    es = np.take_along_axis(e, order, axis=1)
    ss = s[order]
    bits = np.left_shift(1, ss).astype(np.int64)
    mask = bits.copy()
    n = e.shape[1]
    for k in range(1, min(span, n)):
        inside = es[:, k:] - es[:, : n - k] <= width
        mask[:, : n - k] |= np.where(inside, bits[:, k:], 0)
    count: IntArray = np.zeros_like(mask)
    for b in range(int(s.max()) + 1 if len(s) else 0):
        count += (mask >> b) & 1
    return count


def _best_burst(
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    strength: FloatArray,
    live: IntArray,
    c: float,
    prm: AssociationParams,
    sp: SparseParams,
    rng: np.random.Generator,
) -> list[Group] | None:
    """The position supported by the most rounds (closed-form hypotheses from 4-pulse samples),
    refined jointly; None when no burst of ``min_rounds`` fits."""
    hp = quad_hypotheses(pos, t, sensor, live, c, prm, sp.max_hypotheses, rng)
    if len(hp) == 0:
        return None
    local = np.unique(sensor[live], return_inverse=True)[1].astype(np.intp)
    e = t[live][None, :] - np.linalg.norm(pos[live][None, :, :] - hp[:, None, :], axis=2) / c
    count = _window_counts(e, local, 2.0 * sp.search_s, 3 * sp.max_cluster_sensors)
    cand = np.nonzero(np.sum(count >= sp.min_sensors, axis=1) >= sp.min_rounds)[0]
    ranked: list[tuple[tuple[int, int, float], int, list[IntArray]]] = []
    for h in cand:
        rounds = _chain_rounds(rounds_at(hp[h], pos, t, sensor, live, c, sp), t, prm)
        if len(rounds) < sp.min_rounds:
            continue
        key = (
            len(rounds),
            -_preceded(rounds, t, sensor, live, sp.lead_s),
            -float(np.mean([_spread(hp[h], pos, t, r, c) for r in rounds])),
        )
        ranked.append((key, int(h), rounds))
    ranked.sort(key=lambda r: r[0], reverse=True)
    for _key, hi, rounds in ranked[: sp.max_tries]:
        burst = _accept(_settle(rounds, hp[hi], pos, t, sensor, live, c, prm, sp), pos, t, sensor, c, prm, sp)
        if burst is not None:
            return burst
    return None


def _settle(
    rounds: list[IntArray],
    p: FloatArray,
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    live: IntArray,
    c: float,
    prm: AssociationParams,
    sp: SparseParams,
) -> list[Group] | None:
    """Joint fit, rounds re-gathered at the fitted position until stable; None if a check fails."""
    for _ in range(3):
        joint = _joint(rounds, p, pos, t, c, prm, sp)
        if joint is None:
            return None
        p = joint[0].sol.p
        again = _chain_rounds(rounds_at(p, pos, t, sensor, live, c, sp), t, prm)
        if len(again) < sp.min_rounds:
            return None
        if len(again) == len(rounds) and all(
            np.array_equal(a, b) for a, b in zip(again, rounds, strict=True)
        ):
            return joint if _consistent(joint, t, sensor, sp) else None
        rounds = again
    joint = _joint(rounds, p, pos, t, c, prm, sp)
    return joint if joint is not None and _consistent(joint, t, sensor, sp) else None


def _accept(
    burst: list[Group] | None,
    pos: FloatArray,
    t: FloatArray,
    sensor: IntArray,
    c: float,
    prm: AssociationParams,
    sp: SparseParams,
) -> list[Group] | None:
    if burst is None or jackknife_shift(burst, pos, t, sensor, c, prm) > sp.max_jackknife_m:
        return None
    return burst


def jackknife_shift(
    burst: list[Group], pos: FloatArray, t: FloatArray, sensor: IntArray, c: float, prm: AssociationParams
) -> float:
    """Largest horizontal move of the burst's position when one sensor is left out of every round, m.

    With four sensors a round has one redundant arrival; a sensor whose delay is biased (blocked
    path, survey error) pulls the fit to another place, which leaving that sensor out reveals."""
    p = burst[0].sol.p
    t0s = np.array([g.sol.t0 for g in burst])
    cat = np.concatenate([g.idx for g in burst])
    em = np.concatenate([np.full(len(g.idx), k, dtype=np.intp) for k, g in enumerate(burst)])
    worst = 0.0
    for s_ in np.unique(sensor[cat]):
        keep = sensor[cat] != s_
        if len(np.unique(sensor[cat][keep])) < 3 or len(np.unique(em[keep])) < len(burst):
            return math.inf
        sol = refine_joint(
            pos[cat][keep],
            t[cat][keep],
            em[keep],
            p,
            t0s,
            c,
            early_s=prm.early_knee_s,
            late_knee_s=prm.late_knee_s,
        )
        worst = max(worst, float(np.hypot(*(sol.p[:2] - p[:2]))))
    return worst


def _consistent(burst: list[Group], t: FloatArray, sensor: IntArray, sp: SparseParams) -> bool:
    """Every round hears the burst's per-sensor delays within ``spread_s`` (:func:`delay_deviation`)."""
    for k, g in enumerate(burst):
        dev, common = delay_deviation([m for j, m in enumerate(burst) if j != k], g, t, sensor)
        if common < sp.min_sensors or dev > sp.spread_s:
            return False
    return True


def _preceded(rounds: list[IntArray], t: FloatArray, sensor: IntArray, live: IntArray, lead_s: float) -> int:
    """Pulses of ``rounds`` that their sensor heard something else shortly before (up to ``lead_s``):
    the direct sound is the first arrival of a bang, echoes follow it."""
    n = 0
    for r in rounds:
        for i in r:
            same = live[sensor[live] == sensor[i]]
            lag = t[i] - t[same]
            n += bool(np.any((lag > 0.002) & (lag <= lead_s)))
    return n


def _spread(p: FloatArray, pos: FloatArray, t: FloatArray, idx: IntArray, c: float) -> float:
    e = t[idx] - np.linalg.norm(pos[idx] - p, axis=1) / c
    return float(np.max(e) - np.min(e))


def _chain_rounds(rounds: list[IntArray], t: FloatArray, prm: AssociationParams) -> list[IntArray]:
    """The longest run of rounds with consecutive gaps of at most ``burst_gap_s``."""
    if not rounds:
        return []
    starts = [float(np.min(t[r])) for r in rounds]
    runs: list[list[IntArray]] = [[rounds[0]]]
    for k in range(1, len(rounds)):
        if starts[k] - starts[k - 1] <= prm.burst_gap_s:
            runs[-1].append(rounds[k])
        else:
            runs.append([rounds[k]])
    return max(runs, key=len)


def _joint(
    rounds: list[IntArray],
    p0: FloatArray,
    pos: FloatArray,
    t: FloatArray,
    c: float,
    prm: AssociationParams,
    sp: SparseParams,
) -> list[Group] | None:
    """Joint fit of a candidate burst on its rounds' pulses; the rounds, or None if one misfits."""
    cat = np.concatenate(rounds)
    em = np.concatenate([np.full(len(r), k, dtype=np.intp) for k, r in enumerate(rounds)])
    p = np.array([p0[0], p0[1], float(np.median(pos[cat, 2]))])
    t00 = np.array([float(np.median(t[r] - np.linalg.norm(pos[r] - p, axis=1) / c)) for r in rounds])
    sol = refine_joint(
        pos[cat],
        t[cat],
        em,
        p,
        t00,
        c,
        early_s=prm.early_knee_s,
        late_knee_s=prm.late_knee_s,
        sigma_floor_s=max(prm.sigma_floor_s, sp.sigma_floor_s),
    )
    if sol.t0s is None or not np.all(np.isfinite(sol.cov)):
        return None
    if ellipse_95(sol.cov[:2, :2])[0] > sp.max_ellipse_m:
        return None
    out: list[Group] = []
    for k, r in enumerate(rounds):
        member, rms = joint_member(sol, em, k)
        if rms > sp.max_rms_s:
            return None
        out.append(Group(idx=r, sol=member))
    return out


def _is_echo(burst: list[Group], earlier: list[Group], tol_s: float) -> bool:
    """Whether ``burst``'s rounds each follow a round of ``earlier`` by one common lag."""
    if len(burst) > len(earlier):
        return False
    a = np.array([g.sol.t0 for g in earlier])
    lags = [float(np.min(np.where(a < g.sol.t0, g.sol.t0 - a, np.inf))) for g in burst]
    if not all(math.isfinite(x) for x in lags):
        return False
    return max(lags) - min(lags) <= 2.0 * tol_s
