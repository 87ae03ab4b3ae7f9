"""Burst hypotheses stay within a burst's reach of the rounds already found there (audit s14).

``_burst_hypotheses`` paired every place a bang was accepted at with every live pulse of the time
cluster: for shots close together all evening long (one cluster of thousands of pulses) that is
places × pulses hypotheses, each scored on every pulse, at every step (``rtcc acoustic locate``
took 324 s for 4,800 rows). A later round of a burst follows the earlier ones within
``burst_gap_s``; only those pulses are paired with a place now. (Speed itself is not asserted:
bench figures in the session report; the Pittsburgh tuning fixes and the synthetic bursts of
``bench/acoustic_bursts.py`` are unchanged.)
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from rtcc.acoustic.associate import AssociationParams, Group, _burst_hypotheses
from rtcc.acoustic.locate import speed_of_sound

C = speed_of_sound(20.0)


def _ring(n: int = 12, r: float = 600.0) -> np.ndarray:
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a), np.zeros(n)], axis=1)


def _bang(sensors: np.ndarray, src: np.ndarray, t0: float) -> np.ndarray:
    return t0 + np.linalg.norm(sensors - src, axis=1) / C


def _accepted(p: np.ndarray, t0: float) -> Group:
    return Group(idx=np.empty(0, dtype=np.intp), sol=cast(Any, SimpleNamespace(p=p, t0=t0)))


def test_a_place_is_paired_only_with_pulses_within_a_burst_gap_of_its_rounds() -> None:
    sensors = _ring()
    a, b = np.array([50.0, -20.0, 0.0]), np.array([-150.0, 90.0, 0.0])
    emissions = [(a, 0.2), (a, 100.0), (b, 50.3)]  # the next round at A, a shot 100 s later, one at B
    pos = np.concatenate([sensors for _ in emissions])
    t = np.concatenate([_bang(sensors, src, t0) for src, t0 in emissions])
    sensor = np.tile(np.arange(len(sensors)), len(emissions))
    live = np.arange(len(t))
    accepted = [_accepted(a, 0.0), _accepted(a + 0.3, 0.1), _accepted(b, 50.0)]
    prm = AssociationParams()
    hp, ht0 = _burst_hypotheses(pos, t, sensor, live, accepted, C, prm, np.random.default_rng(0))
    at_a = np.all(hp == a, axis=1)
    at_b = np.all(hp == b, axis=1)
    # A: the round 0.2 s after its rounds, not the shot 100 s later (before: every live pulse)
    assert int(at_a.sum()) == len(sensors)
    np.testing.assert_allclose(ht0[at_a], 0.2, atol=1e-9)
    # B: its own round only
    assert int(at_b.sum()) == len(sensors)
    np.testing.assert_allclose(ht0[at_b], 50.3, atol=1e-9)


def test_hypotheses_keep_the_order_of_the_live_pulses() -> None:
    """Ties between equally good hypotheses go to the first: the order must stay that of ``live``."""
    sensors = _ring()
    a = np.array([10.0, 30.0, 0.0])
    rounds = [0.1, 0.2, 0.3]
    pos = np.concatenate([sensors for _ in rounds])
    t = np.concatenate([_bang(sensors, a, t0) for t0 in rounds])
    sensor = np.tile(np.arange(len(sensors)), len(rounds))
    live = np.random.default_rng(3).permutation(len(t))  # live in no time order
    hp, ht0 = _burst_hypotheses(
        pos, t, sensor, live, [_accepted(a, 0.0)], C, AssociationParams(), np.random.default_rng(0)
    )
    at_a = np.all(hp == a, axis=1)
    expected = t[live] - np.linalg.norm(pos[live] - a, axis=1) / C
    np.testing.assert_allclose(ht0[at_a], expected, atol=1e-12)
