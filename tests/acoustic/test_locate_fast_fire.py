"""Very fast automatic fire: rounds less than 50 ms apart are rounds, echoes of one bang are not.

Scenes as in ``test_locate_burst.py`` (sensors over ~1 km, 40 µs clock jitter, late echoes at a
third of the sensors). The echo rule refuses a fix within ``dup_radius_m`` / ``dup_window_s``
(50 m, 50 ms) of an accepted bang; ``AssociationParams.fast_fire`` keeps such a fix when it repeats
the bang's per-sensor delay pattern one emission step later (:func:`repeats_round`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtcc.acoustic.associate import AssociationParams, Group, repeats_round
from rtcc.acoustic.geometry import Solution
from rtcc.acoustic.locate import Arrival, locate_all
from tests.acoustic.test_locate import T0, bang, err_m, sensors
from tests.acoustic.test_locate_burst import C20, _long_burst


@pytest.mark.parametrize(("interval_s", "seed"), [(0.045, 0), (0.045, 1), (0.04, 2), (0.04, 3)])
def test_thirty_rounds_faster_than_the_echo_window_are_all_located(interval_s: float, seed: int) -> None:
    """30 rounds 40-45 ms apart (a pistol with a conversion device, 1,300-1,500 rounds a minute):
    every round within 1 m of the shooter, at its emission time (so every interval is right), no
    pulse used twice. Without the rule (``fast_fire=False``) most rounds are refused as echoes."""
    arr, src = _long_burst(seed, 30, interval_s)
    before = locate_all(arr, temperature_c=20.0, params=AssociationParams(fast_fire=False))
    assert len(before) < 25
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 30
    assert all(err_m(f, src) < 1.0 for f in fixes)
    t0s = sorted(f.t0_s - T0 for f in fixes)
    assert [round(x, 3) for x in t0s] == [round(interval_s * k, 3) for k in range(30)]
    assert np.allclose(np.diff(t0s), interval_s, atol=1e-3)
    used = [a for f in fixes for a in f.arrivals]
    assert len(used) == len(set(used))


def _shot_with_strong_echoes(seed: int) -> tuple[list[Arrival], tuple[float, float, float]]:
    """One shot heard by 12 sensors; every sensor also hears a strong reflection 30-45 ms after its
    direct pulse, with its own delay (each sensor's reflection path differs)."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 12)
    src = (60.0, -40.0, 1.0)
    direct = bang(pos, src, T0, C20, rng, 40e-6)
    echoes = [
        Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s + float(rng.uniform(0.030, 0.045)), 18.0)
        for a in direct
    ]
    return direct + echoes, src


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_shot_with_strong_echoes_is_one_round(seed: int) -> None:
    """The echoes form a fix of their own within 50 m and 50 ms of the shot (without the echo rule
    they are reported as a second round), but they do not repeat the shot's delay pattern: one round."""
    arr, src = _shot_with_strong_echoes(seed)
    no_echo_rule = locate_all(arr, temperature_c=20.0, params=AssociationParams(dup_window_s=0.0))
    assert len(no_echo_rule) == 2  # the echo set is a plausible bang on its own
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 1
    assert err_m(fixes[0], src) < 1.0
    assert abs(fixes[0].t0_s - T0) < 1e-3


def _group(idx: list[int]) -> Group:
    sol = Solution(
        p=np.zeros(3),
        t0=0.0,
        cov=np.eye(3),
        resid=np.zeros(len(idx)),
        weights=np.ones(len(idx)),
        sigma_s=1e-4,
        dof=len(idx) - 3,
        sigma_estimated=True,
        converged=True,
    )
    return Group(idx=np.array(idx, dtype=np.intp), sol=sol)


@pytest.mark.parametrize(
    ("shift", "spread_s", "expected"),
    [
        (0.040, 0.0005, True),  # the same pattern 40 ms later: a round
        (-0.030, 0.0005, True),  # ... or 30 ms earlier
        (0.015, 0.0005, False),  # too close to be a round of any real weapon
        (0.040, 0.010, False),  # per-sensor delays 40 ± 10 ms: echoes
    ],
)
def test_repeats_round_needs_one_common_step_of_at_least_25_ms(
    shift: float, spread_s: float, expected: bool
) -> None:
    """:func:`repeats_round` on 10 sensors: the second group's arrivals minus the first's must be one
    constant (within 3 ms at 70 % of the sensors) of at least 25 ms."""
    rng = np.random.default_rng(5)
    first = rng.uniform(0.0, 2.0, 10)
    second = first + shift + rng.uniform(-spread_s, spread_s, 10)
    t = np.concatenate([first, second])
    sensor = np.concatenate([np.arange(10), np.arange(10)])
    prm = AssociationParams()
    assert repeats_round(_group(list(range(10))), np.arange(10, 20), t, sensor, prm) is expected


def test_repeats_round_needs_enough_common_sensors() -> None:
    """Four common sensors (fewer than ``min_sensors``) repeating the pattern exactly are not enough."""
    t = np.array([0.1, 0.5, 0.9, 1.3, 0.14, 0.54, 0.94, 1.34])
    sensor = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    assert not repeats_round(_group([0, 1, 2, 3]), np.arange(4, 8), t, sensor, AssociationParams())


def test_repeats_round_uses_the_burst_template_against_blocked_paths() -> None:
    """In the colliding round 4 of 10 sensors heard a blocked path (10 ms late): against it alone
    the candidate repeats the pattern at 6 of 10 sensors (too few), against the burst's template
    (the median over it and two clean rounds from the same place) at all 10."""
    rng = np.random.default_rng(6)
    delay = rng.uniform(0.0, 2.0, 10)
    blocked = np.array([0.01] * 4 + [0.0] * 6)
    rounds = [(-0.2, delay), (-0.1, delay), (0.0, delay + blocked), (0.04, delay)]
    t = np.concatenate([t0 + d for t0, d in rounds])
    sensor = np.tile(np.arange(10), 4)
    groups = [_group(list(range(10 * k, 10 * k + 10))) for k in range(3)]
    groups = [
        Group(idx=g.idx, sol=replace(g.sol, t0=t0)) for g, (t0, _) in zip(groups, rounds[:3], strict=True)
    ]
    prm = AssociationParams()
    cand = np.arange(30, 40)
    assert not repeats_round(groups[2], cand, t, sensor, prm)
    assert repeats_round(groups[2], cand, t, sensor, prm, groups)
