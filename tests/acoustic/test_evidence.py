"""Incident evidence folded into the gunshot confidence (:mod:`rtcc.acoustic.evidence`).

The bands are the settings' defaults: alert at 0.85, review from 0.35. Levels are dB SPL; a
sensor's level is made from a source level at 1 m with the simulator's own propagation formula.
"""

from __future__ import annotations

import math

import pytest

from rtcc.acoustic.evidence import (
    AUDIO_LOGIT_CAP,
    RoundFix,
    audio_logit,
    combine,
    level_llr,
    logit,
    pattern_llr,
    sigmoid,
    source_level_db,
    spearman,
)
from rtcc.settings import AcousticSettings
from rtcc.sim.gunfire import Propagation

BANDS = AcousticSettings()
ALERT, REVIEW = BANDS.alert_above, BANDS.review_above
GUN_DB, QUIET_DB = BANDS.gun_source_db, BANDS.quiet_source_db
DISTANCES_M = (60.0, 180.0, 320.0, 450.0, 700.0)


def heard(source_db: float, distances: tuple[float, ...] = DISTANCES_M) -> list[tuple[float, float]]:
    """(peak_db, distance) per sensor for a source of ``source_db`` at 1 m (the simulator's formula)."""
    a = Propagation().air_absorption_db_per_m
    return [(source_db - 20.0 * math.log10(d) - a * d, d) for d in distances]


def burst(times: tuple[float, ...], xy: tuple[float, float] = (0.0, 0.0)) -> list[RoundFix]:
    return [RoundFix(t, xy[0], xy[1], 4.0) for t in times]


def confidence(p_audio: float, rounds: list[RoundFix], levels: list[tuple[float, float]] | None) -> float:
    return combine(
        logit(p_audio), rounds, levels, no_audio_confidence=0.5, gun_db=GUN_DB, quiet_db=QUIET_DB
    ).confidence


def test_lone_door_slam_level_bang_with_ambiguous_audio_is_not_even_reviewed() -> None:
    # 105 dB at 1 m: a door slam; audio undecided (0.55): without levels it waits for a reviewer
    assert REVIEW <= confidence(0.55, burst((0.0,)), None) < ALERT
    assert confidence(0.55, burst((0.0,)), heard(105.0)) < REVIEW


def test_three_round_burst_at_gun_level_with_moderate_audio_is_alerted() -> None:
    rounds = burst((0.0, 0.31, 0.64))
    assert confidence(0.6, rounds, heard(145.0)) >= ALERT
    # the pattern alone lifts it but not to an alert; the audio alone is a review case
    assert REVIEW <= confidence(0.6, rounds, None) < ALERT
    assert REVIEW <= confidence(0.6, burst((0.0,)), None) < ALERT


def test_levels_off_leave_the_audio_unchanged() -> None:
    for p in (0.2, 0.5, 0.7, 0.97):
        ev = combine(logit(p), burst((0.0,)), None, no_audio_confidence=0.5, gun_db=GUN_DB, quiet_db=QUIET_DB)
        assert ev.level is None and ev.confidence == pytest.approx(p, abs=1e-9)


def test_no_audio_keeps_no_audio_confidence_whatever_the_evidence() -> None:
    for levels in (heard(150.0), heard(100.0), None):
        ev = combine(
            None, burst((0.0, 0.3, 0.6)), levels, no_audio_confidence=0.5, gun_db=GUN_DB, quiet_db=QUIET_DB
        )
        assert ev.confidence == 0.5 and ev.audio is None


def test_bad_or_missing_levels_do_not_crash_and_say_nothing() -> None:
    bad = [(math.nan, 100.0), (math.inf, 50.0), (-5.0, 10.0), (300.0, 10.0), (120.0, math.nan), (110.0, -1.0)]
    for levels in ([], bad, [(100.0, 100.0)], [*bad, (90.0, 100.0)]):
        lev = level_llr(levels, gun_db=GUN_DB, quiet_db=QUIET_DB)
        assert lev.llr == 0.0 and lev.source_db is None
    # the good ones among bad ones are used
    lev = level_llr([*bad, *heard(105.0)], gun_db=GUN_DB, quiet_db=QUIET_DB)
    assert lev.sensors == len(DISTANCES_M) and lev.source_db == pytest.approx(105.0, abs=0.01)
    assert lev.llr < 0


def test_source_level_inverts_spreading_and_absorption() -> None:
    for db in (105.0, 137.6, 150.0):
        for p, d in heard(db):
            assert source_level_db(p, d) == pytest.approx(db, abs=1e-9)
    assert source_level_db(140.0, 0.0) == pytest.approx(140.005)  # distance floored at 1 m


def test_level_ratio_is_monotone_and_bounded() -> None:
    llrs = [level_llr(heard(db), gun_db=GUN_DB, quiet_db=QUIET_DB).llr for db in range(90, 161, 5)]
    assert llrs == sorted(llrs)
    assert llrs[0] == pytest.approx(math.log(0.15)) and llrs[-1] == pytest.approx(math.log(2.0))


def test_levels_rising_with_distance_give_no_loud_bonus() -> None:
    levels = [(p, d) for (p, _), d in zip(heard(145.0), reversed(DISTANCES_M), strict=True)]
    lev = level_llr(levels, gun_db=GUN_DB, quiet_db=QUIET_DB)
    assert lev.falls_with_distance is False and lev.llr == 0.0
    ok = level_llr(heard(145.0), gun_db=GUN_DB, quiet_db=QUIET_DB)
    assert ok.falls_with_distance is True and ok.llr == pytest.approx(math.log(2.0))


def test_one_faint_sensor_does_not_drown_two_clear_ones() -> None:
    a = audio_logit([0.98, 0.98, 0.2])
    assert a is not None and sigmoid(a) > 0.85 > (0.98 + 0.98 + 0.2) / 3
    assert audio_logit([1.0]) == pytest.approx(AUDIO_LOGIT_CAP)
    assert audio_logit([0.0, 1.0]) == pytest.approx(0.0)
    assert audio_logit([]) is None and audio_logit([math.nan]) is None
    assert audio_logit([math.nan, 0.7]) == pytest.approx(logit(0.7))


@pytest.mark.parametrize(
    ("times", "spread", "kind", "lr"),
    [
        ((0.0,), 0.0, "single", 1.0),
        ((0.0, 0.4), 0.0, "two_rounds", 1.5),
        ((0.0, 0.3, 0.62, 0.9), 0.0, "gun_train", 3.0),
        ((0.0, 0.1, 0.21, 0.3, 0.41), 0.0, "gun_train", 3.0),  # automatic fire
        ((0.0, 0.02, 0.05, 0.06), 0.0, "crackle", 0.5),  # firecracker string
        ((0.0, 0.045, 0.091, 0.135, 0.18), 0.0, "gun_train", 3.0),  # a pistol with a conversion device
        ((0.0, 0.03, 0.1, 0.13, 0.22), 0.0, "crackle", 0.5),  # fast but irregular: a firecracker string
        ((0.0, 0.04), 0.0, "crackle", 0.5),  # two bangs 40 ms apart: no train
        ((0.0, 0.045, 0.09, 0.135), 20.0, "spread", 0.5),  # a fast train spread over metres
        ((0.0, 0.4, 0.8, 1.2), 20.0, "spread", 0.5),  # bangs metres apart
        ((0.0, 0.15, 1.9, 2.1, 3.9), 0.0, "irregular", 1.0),
        ((0.0, 3.0, 6.0), 0.0, "irregular", 1.0),
    ],
)
def test_round_patterns(times: tuple[float, ...], spread: float, kind: str, lr: float) -> None:
    rounds = [RoundFix(t, spread * (i % 2), 0.0, 2.0) for i, t in enumerate(times)]
    llr, got = pattern_llr(rounds)
    assert got == kind and llr == pytest.approx(math.log(lr))


def test_two_shooters_are_neither_boosted_nor_taken_for_fireworks() -> None:
    rounds = [RoundFix(0.0, 0.0, 0.0, 3.0), RoundFix(0.4, 80.0, 0.0, 3.0), RoundFix(0.8, 0.0, 0.0, 3.0)]
    assert pattern_llr(rounds) == (0.0, "multiple_shooters")


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 3, 1]) == pytest.approx(-0.9486833, abs=1e-6)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None
