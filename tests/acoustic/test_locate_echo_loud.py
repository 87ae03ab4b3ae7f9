"""A bang heard by too few sensors for the plain count is reported through its *loud* pulses only
when those are not echoes: a pulse that follows an at least as strong pulse of the same sensor
within ``echo_tail_s`` may be one, and does not count as loud (synthetic, seeded).

This is how ghosts were made from real recordings: a sensor near the shooter hears the echoes of a
round as loud pulses, and three of them lined up with weak pulses of other sensors pass for a loud
bang 100-250 m away (``bench/acoustic_raw.py --mode hybrid``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rtcc.acoustic.associate import AssociationParams, Group, _too_fast
from rtcc.acoustic.geometry import Solution
from rtcc.acoustic.locate import Arrival, _echo_shadowed, locate_all, speed_of_sound
from tests.acoustic.test_locate import T0, bang, err_m, sensors

C20 = speed_of_sound(20.0)
A = (40.0, 150.0, 1.0)
B = (-60.0, 20.0, 1.0)
"""164 m from A: 0.48 s of sound, less than B's delay, so every sensor hears A first."""


def _scene(seed: int, first_snr_db: float) -> list[Arrival]:
    """Bang A heard by all 14 sensors; 0.6 s later bang B heard by only 8 of them, three loudly
    (30 dB) and five faintly (8 dB). The three loud sensors heard A at ``first_snr_db``."""
    rng = np.random.default_rng(seed)
    pos = sensors(rng, 14)
    near_b = np.argsort(np.linalg.norm(pos[:, :2] - np.array(B[:2]), axis=1))
    loud, faint = set(near_b[:3].tolist()), set(near_b[3:8].tolist())
    arr = [
        replace(a, snr_db=first_snr_db if i in loud else 20.0)
        for i, a in enumerate(bang(pos, A, T0, C20, rng, 40e-6))
    ]
    for i, a in enumerate(bang(pos, B, T0 + 0.6, C20, rng, 40e-6)):
        if i in loud or i in faint:
            arr.append(replace(a, snr_db=30.0 if i in loud else 8.0))
    return arr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loud_pulses_count_unless_they_may_be_echoes(seed: int) -> None:
    """With A fainter than B at B's loud sensors, B is reported (8 sensors, 3 loud). With A louder
    there, B's loud pulses may be A's echoes: B is not reported; A always is, where it was fired."""
    quiet_first = locate_all(_scene(seed, first_snr_db=20.0), temperature_c=20.0)
    assert len(quiet_first) == 2
    assert err_m(quiet_first[0], A) < 1.0 and err_m(quiet_first[1], B) < 1.0
    loud_first = locate_all(_scene(seed, first_snr_db=40.0), temperature_c=20.0)
    assert len(loud_first) == 1
    assert err_m(loud_first[0], A) < 1.0


def test_echo_shadowed_marks_later_weaker_pulses_of_the_same_sensor() -> None:
    t = np.array([0.0, 0.4, 0.5, 1.6, 0.45, 1.2])
    sensor = np.array([0, 0, 0, 0, 1, 1])
    snr = np.array([40.0, 30.0, 45.0, 10.0, 35.0, -np.inf])
    got = _echo_shadowed(t, sensor, snr, tail_s=1.0)
    # 0.4 s follows 40 dB; 0.5 s is stronger than all before it; 1.6 s follows 45 dB at 0.5 s only
    # 1.1 s earlier (outside the tail) and 30 dB at 0.4 s 1.2 s earlier; sensor 1's first pulse is
    # alone, its second has no SNR and follows a stronger one.
    assert got.tolist() == [False, True, False, False, False, True]


def _round(t0: float) -> Group:
    sol = Solution(
        p=np.zeros(3),
        t0=t0,
        cov=np.eye(3),
        resid=np.zeros(4),
        weights=np.ones(4),
        sigma_s=1e-3,
        dof=1.0,
        sigma_estimated=False,
        converged=True,
    )
    return Group(idx=np.arange(4), sol=sol)


def test_a_burst_never_holds_two_rounds_closer_than_any_gun_fires() -> None:
    """A joint burst fit whose rounds come out 21 ms apart (a real case: a weak group re-timed by the
    burst's template onto the second half of a split pulse) is refused; 40 ms apart is kept."""
    prm = AssociationParams()
    assert _too_fast([_round(0.0), _round(0.021)], prm) is None
    kept = [_round(0.0), _round(0.5), _round(0.54)]
    assert _too_fast(kept, prm) is kept
    assert _too_fast(None, prm) is None
