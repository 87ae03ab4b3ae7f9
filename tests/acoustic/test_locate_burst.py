"""Rounds of one burst located jointly; per-sensor NLOS handling across rounds (synthetic, seeded).

Scenes as in ``test_locate.py``: sensors over ~1 km, arrivals ``t0 + distance / c`` plus tens of
microseconds of clock jitter. Blocked paths are modelled as a *late-only* arrival: the sensor hears
a reflection 20–45 ms after the direct path would have arrived, and no direct pulse at all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtcc.acoustic.associate import AssociationParams, excess_delay_weights
from rtcc.acoustic.geometry import refine, refine_joint
from rtcc.acoustic.locate import Arrival, Fix, locate_all, speed_of_sound
from tests.acoustic.test_locate import T0, bang, err_m, sensors

C20 = speed_of_sound(20.0)


def _burst_with_blocked_round(seed: int) -> tuple[list[Arrival], tuple[float, float, float]]:
    """Three rounds 0.7 s apart from one place; in the third, the four nearest sensors only hear a
    reflection 20–45 ms late."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 12)
    src = (40.0, 150.0, 1.0)
    near = set(np.argsort(np.linalg.norm(pos[:, :2] - np.array(src[:2]), axis=1))[:4].tolist())
    arr: list[Arrival] = []
    for k in range(3):
        rnd = bang(pos, src, T0 + 0.7 * k, C20, rng, 40e-6)
        if k == 2:
            rnd = [
                Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s + float(rng.uniform(0.02, 0.045)), a.snr_db)
                if i in near
                else a
                for i, a in enumerate(rnd)
            ]
        arr += rnd
    return arr, src


@pytest.mark.parametrize("seed", [1, 2, 4])
def test_burst_pulls_in_a_round_whose_near_sensors_are_blocked(seed: int) -> None:
    """Alone, the blocked round is several metres off; located with its burst it is within 1 m,
    and there is still exactly one output per round, in order."""
    arr, src = _burst_with_blocked_round(seed)
    alone = locate_all(arr, temperature_c=20.0, min_sensors=8, params=AssociationParams(burst=False))
    assert len(alone) == 3
    assert err_m(alone[2], src) > 5.0  # the scene is hard for a single-round fit
    fixes = locate_all(arr, temperature_c=20.0, min_sensors=8)
    assert len(fixes) == 3
    assert [round(f.t0_s - T0, 2) for f in fixes] == [0.0, 0.7, 1.4]
    assert all(err_m(f, src) < 1.0 for f in fixes)
    assert len({(f.x_m, f.y_m) for f in fixes}) == 1  # one shared position


@pytest.mark.parametrize("sep_m", [8.0, 25.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_two_shooters_firing_alternately_stay_apart(sep_m: float, seed: int) -> None:
    """Shooter A fires at 0, 0.6, 1.2 s and shooter B, ``sep_m`` metres away, at 0.3 and 0.9 s:
    five outputs, each at its own shooter (within 0.5 m); A's rounds share one position, B's
    another."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 14)
    a_src = (40.0, 150.0, 1.0)
    b_src = (40.0 + sep_m, 150.0, 1.0)
    arr: list[Arrival] = []
    for k in range(3):
        arr += bang(pos, a_src, T0 + 0.6 * k, C20, rng, 40e-6)
    for k in range(2):
        arr += bang(pos, b_src, T0 + 0.3 + 0.6 * k, C20, rng, 40e-6)
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 5
    shooter = ["A", "B", "A", "B", "A"]
    for f, who in zip(fixes, shooter, strict=True):
        assert err_m(f, a_src if who == "A" else b_src) < 0.5
    assert len({(f.x_m, f.y_m) for f, w in zip(fixes, shooter, strict=True) if w == "A"}) == 1
    assert len({(f.x_m, f.y_m) for f, w in zip(fixes, shooter, strict=True) if w == "B"}) == 1


def test_rounds_further_apart_than_the_burst_gap_are_located_separately() -> None:
    """Two rounds 10 s apart (longer than the 3 s burst gap) keep their own fixes."""
    rng = np.random.default_rng(3)
    pos = sensors(rng, 12)
    src = (-80.0, 60.0, 1.0)
    arr = bang(pos, src, T0, C20, rng, 40e-6) + bang(pos, src, T0 + 10.0, C20, rng, 40e-6)
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 2
    assert (fixes[0].x_m, fixes[0].y_m) != (fixes[1].x_m, fixes[1].y_m)
    assert all(err_m(f, src) < 1.0 for f in fixes)


def test_automatic_fire_keeps_one_output_per_round() -> None:
    """Eight rounds 0.09 s apart (automatic fire) with echoes at a third of the sensors: the
    random search alone (no burst hypotheses) mixes pulses of neighbouring rounds; with the burst
    steps there are eight outputs at the right times and one shared place."""
    rng = np.random.default_rng(9)
    pos = sensors(rng, 12)
    src = (100.0, -40.0, 1.0)
    arr: list[Arrival] = []
    for k in range(8):
        rnd = bang(pos, src, T0 + 0.09 * k, C20, rng, 40e-6)
        arr += rnd
        arr += [
            Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s + float(rng.uniform(0.15, 0.6)), 5.0)
            for a in rnd
            if rng.random() < 0.3
        ]
    alone = locate_all(arr, temperature_c=20.0, params=AssociationParams(burst=False, burst_completion=False))
    assert max(err_m(f, src) for f in alone) > 5.0  # the random search alone mixes neighbouring rounds
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 8
    assert all(err_m(f, src) < 1.0 for f in fixes)
    assert sorted(round(f.t0_s - T0, 2) for f in fixes) == [round(0.09 * k, 2) for k in range(8)]
    used = [a for f in fixes for a in f.arrivals]
    assert len(used) == len(set(used))  # no pulse feeds two rounds


def _long_burst(
    seed: int, rounds: int, interval_s: float
) -> tuple[list[Arrival], tuple[float, float, float]]:
    """``rounds`` rounds ``interval_s`` apart (automatic fire) heard by 12 sensors, with late echoes
    (0.15-0.6 s) at a third of them."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 12)
    src = (-60.0, 90.0, 1.0)
    arr: list[Arrival] = []
    for k in range(rounds):
        rnd = bang(pos, src, T0 + interval_s * k, C20, rng, 40e-6)
        arr += rnd
        arr += [
            Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s + float(rng.uniform(0.15, 0.6)), 5.0)
            for a in rnd
            if rng.random() < 0.3
        ]
    return arr, src


@pytest.mark.parametrize(
    ("rounds", "interval_s", "seed"), [(30, 0.075, 0), (30, 0.075, 1), (30, 0.1, 2), (60, 0.06, 3)]
)
def test_a_long_burst_of_automatic_fire_gives_every_round(rounds: int, interval_s: float, seed: int) -> None:
    """A magazine at 600-1,000 rounds a minute: tens of pulses per sensor a few tens of ms apart, while
    arrival differences across the array are seconds. A random 4-pulse sample then almost never holds
    one round and chance lines up every sensor in the wide window, so without the burst completion
    nothing (or a handful of rounds) is reported; with it every round, at the shooter, once."""
    arr, src = _long_burst(seed, rounds, interval_s)
    before = locate_all(arr, temperature_c=20.0, params=AssociationParams(burst_completion=False))
    assert len(before) < rounds // 2
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == rounds
    assert all(err_m(f, src) < 1.0 for f in fixes)
    assert sorted(round(f.t0_s - T0, 3) for f in fixes) == [round(interval_s * k, 3) for k in range(rounds)]
    used = [a for f in fixes for a in f.arrivals]
    assert len(used) == len(set(used))  # no pulse feeds two rounds


@pytest.mark.parametrize("seed", [0, 1])
def test_two_automatic_weapons_at_once_are_told_apart(seed: int) -> None:
    """30 rounds at 75 ms from one place and, overlapping them, 20 at 0.1 s from another 470 m
    away: 50 outputs, each within 1 m of its own shooter (before the burst steps: 0-3 right)."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 14)
    a_src, b_src = (-60.0, 90.0, 1.0), (300.0, -200.0, 1.0)
    arr: list[Arrival] = []
    for k in range(30):
        arr += bang(pos, a_src, T0 + 0.075 * k, C20, rng, 40e-6)
    for k in range(20):
        arr += bang(pos, b_src, T0 + 0.5 + 0.1 * k, C20, rng, 40e-6)
    fixes = locate_all(arr, temperature_c=20.0)
    assert len(fixes) == 50
    assert sum(err_m(f, a_src) < 1.0 for f in fixes) == 30
    assert sum(err_m(f, b_src) < 1.0 for f in fixes) == 20


def test_excess_delay_weights_discount_the_late_round_of_a_sensor() -> None:
    """Sensor 0 hears three rounds at the same delay but one 20 ms later: that arrival gets the
    Cauchy weight 1 / (1 + 4²); the earliest arrivals and sensors heard once keep weight 1."""
    sensor = np.array([0, 0, 0, 1, 1, 2])
    delay = np.array([0.500, 0.520, 0.5005, 0.8, 0.8, 0.3])
    w = excess_delay_weights(sensor, delay, 0.005)
    assert w[1] == pytest.approx(1.0 / 17.0)
    assert w[0] == 1.0 and w[3] == 1.0 and w[4] == 1.0 and w[5] == 1.0
    assert w[2] == pytest.approx(1.0 / (1.0 + 0.01), rel=1e-6)


def test_refine_joint_recovers_the_place_and_every_emission_time() -> None:
    """Noise-free arrivals of two emissions from one place: the joint solution is exact, and with
    one emission it equals :func:`refine`."""
    rng = np.random.default_rng(4)
    pos = sensors(rng, 10)
    src = np.array([60.0, -30.0, 5.0])
    d = np.linalg.norm(pos - src, axis=1) / C20
    t = np.concatenate([0.2 + d, 0.9 + d])
    em = np.repeat(np.array([0, 1]), len(pos))
    sol = refine_joint(np.vstack([pos, pos]), t, em, np.array([0.0, 0.0, 5.0]), np.array([0.0, 0.5]), C20)
    assert sol.t0s is not None
    assert math.hypot(*(sol.p[:2] - src[:2])) < 1e-3
    assert sol.t0s == pytest.approx([0.2, 0.9], abs=1e-7)
    assert sol.cov.shape == (4, 4)
    single = refine(pos, 0.2 + d, np.array([0.0, 0.0, 5.0]), 0.0, C20)
    one = refine_joint(
        pos, 0.2 + d, np.zeros(len(pos), dtype=np.intp), np.array([0.0, 0.0, 5.0]), np.array([0.0]), C20
    )
    assert one.p == pytest.approx(single.p) and one.t0 == pytest.approx(single.t0)


def _fix_positions(fixes: list[Fix]) -> set[tuple[float, float]]:
    return {(f.x_m, f.y_m) for f in fixes}


def test_burst_can_be_switched_off() -> None:
    """``AssociationParams(burst=False)`` gives each round its own position (the previous method)."""
    arr, _src = _burst_with_blocked_round(1)
    fixes = locate_all(arr, temperature_c=20.0, min_sensors=8, params=AssociationParams(burst=False))
    assert len(_fix_positions(fixes)) == 3


def _quiet(rnd: list[Arrival], keep: int) -> list[Arrival]:
    """The first ``keep`` arrivals of a round, at a low SNR (not "loud")."""
    return [Arrival(a.sensor_id, a.x_m, a.y_m, a.z_m, a.t_s, 8.0) for a in rnd[:keep]]


def test_a_weak_round_of_a_reported_burst_is_reported() -> None:
    """Two rounds heard by 12 sensors, then a third heard by only 8, all quietly: too few sensors to
    report it alone (10 needed), but it repeats the burst's per-sensor delays, so it is a round."""
    rng = np.random.default_rng(21)
    pos = sensors(rng, 12)
    src = (-20.0, 90.0, 1.0)
    arr = bang(pos, src, T0, C20, rng, 40e-6) + bang(pos, src, T0 + 0.5, C20, rng, 40e-6)
    arr += _quiet(bang(pos, src, T0 + 1.1, C20, rng, 40e-6), 8)
    alone = locate_all(arr, temperature_c=20.0, params=AssociationParams(burst=False))
    assert len(alone) == 2
    fixes = locate_all(arr, temperature_c=20.0)
    assert [round(f.t0_s - T0, 2) for f in fixes] == [0.0, 0.5, 1.1]
    assert len(fixes[2].sensors) == 8
    assert all(err_m(f, src) < 1.0 for f in fixes)


def test_a_weak_bang_without_a_burst_is_not_reported() -> None:
    """A quiet bang heard by 8 sensors, 10 s after a reported round from the same place (beyond
    the burst gap), and one 1 s after a round 300 m away: neither is reported."""
    rng = np.random.default_rng(22)
    pos = sensors(rng, 12)
    src = (-20.0, 90.0, 1.0)
    other = (250.0, -150.0, 1.0)
    arr = bang(pos, src, T0, C20, rng, 40e-6) + _quiet(bang(pos, src, T0 + 10.0, C20, rng, 40e-6), 8)
    arr += bang(pos, other, T0 + 20.0, C20, rng, 40e-6) + _quiet(
        bang(pos, src, T0 + 21.0, C20, rng, 40e-6), 8
    )
    fixes = locate_all(arr, temperature_c=20.0)
    assert [round(f.t0_s - T0, 2) for f in fixes] == [0.0, 20.0]
