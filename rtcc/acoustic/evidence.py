"""An incident's gunshot confidence: audio of the nearest sensors plus incident evidence.

The confidence is a naive-Bayes combination in log-odds::

    logit(confidence) = A + P + L

* ``A`` — **audio**: the mean of the per-sensor classifier log-odds of the
  (up to three) nearest sensors with audio, each capped at ``±AUDIO_LOGIT_CAP``.
  The classifier is calibrated on clips with a balanced prior, so ``A`` is
  already on the posterior log-odds scale; averaging log-odds instead of
  probabilities keeps one faint, ambiguous sensor (p = 0.2) from dragging two
  clear ones (p = 0.98) down to the review band (mean probability 0.72, mean
  log-odds → 0.89), and the cap keeps one overconfident clip from deciding alone.
* ``P`` — **round pattern** (:func:`pattern_llr`): a log likelihood ratio
  ``ln P(pattern | gunfire) / P(pattern | not gunfire)``.
* ``L`` — **level against distance** (:func:`level_llr`): a log likelihood
  ratio from the estimated source level, used only when the sensors report
  calibrated dB SPL.

Adding the terms assumes the three pieces of evidence are independent given
the class (they mostly are: the spectrum of one clip, the timing and spread of
the rounds, and the loudness at the source), which is why each ratio is kept
small and bounded — a wrong independence assumption then costs little. The
ratios below are stated judgements, not fitted (there is no real labelled set
of multi-round, multi-sensor non-gunfire incidents to fit them on); the gunfire
source level they rest on is measured (``bench/acoustic_source_level.py``).

Round pattern (likelihood ratios)
---------------------------------
========================================================  ======  =====================================
Pattern                                                   LR      Reasoning
========================================================  ======  =====================================
one round                                                 1       says nothing
2 rounds, interval 0.05–2 s, one place                    1.5     double taps are common in gunfire,
                                                                  rare for a door or a knock
≥ 3 rounds, every interval 0.05–2 s, regular (CV ≤ 0.45),  3       semi-/automatic fire is a regular
one place                                                         train; most impulsive noise is not
any interval < 0.05 s (crackle), unless a fast train      0.5     faster than the cyclic rate of
                                                                  nearly every firearm (1,200 rpm)
≥ 3 rounds 25–50 ms apart, very regular (CV ≤ 0.2), one   3       a pistol with a conversion device
place: a fast train (then as a regular train above)               (1,100–1,400 rpm) fires like a
                                                                  metronome; firecracker strings
                                                                  crackle irregularly
≥ 3 bangs spread over metres (beyond the ellipses and      0.5     firecracker strings and shells burst
``spread_m``, closer than the multiple-shooter distance)          over an area; a shooter stands still
irregular (CV > 0.45, or a gap > 2 s), or two shooters    1       no evidence either way
========================================================  ======  =====================================

Level against distance
----------------------
Each contributing pulse's ``peak_db`` plus spherical spreading and air
absorption (:func:`source_level_db`) estimates the level 1 m from the source;
the median over sensors (robust to blocked, quieter paths and to echoes) is
compared with two references: ``quiet_db`` (the upper end of door slams,
claps and knocks at 1 m) and ``gun_db`` (gunfire's muzzle-blast level at 1 m
measured on ShotSpotter's Pittsburgh tune split, median of per-round medians
137.6 dB, p10 134.3 dB, n = 131 rounds; see ``docs/acoustic-confidence.md``).
The log LR is ``ln 0.15`` at or below ``quiet_db``, ``ln 2`` from
``gun_db - 4 dB`` up, linear in between. Loud is only weak evidence (fireworks
and backfires are as loud as gunfire), quiet is strong evidence (a handgun's
muzzle blast 20 dB quieter than measured is very unlikely). When the levels of
≥ 4 sensors *rise* with distance (Spearman ρ > 0) the pulses are probably
mis-associated and a positive level LR is dropped (set to 0).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

AIR_ABSORPTION_DB_PER_M = 0.005
"""Air absorption of a broadband impulse, dB/m (about 1 kHz at 20 °C, 50 % RH; ISO 9613-1)."""

AUDIO_LOGIT_CAP = math.log(0.999 / 0.001)
"""Largest magnitude of one sensor's audio log-odds (p = 0.999 / 0.001)."""

LR_TWO_ROUNDS = 1.5
LR_GUN_TRAIN = 3.0
LR_CRACKLE = 0.5
LR_SPREAD = 0.5
LR_QUIET = 0.15
LR_LOUD = 2.0

MIN_GUN_INTERVAL_S = 0.05
FAST_GUN_INTERVAL_S = 0.025
FAST_TRAIN_MAX_CV = 0.2
MAX_GUN_INTERVAL_S = 2.0
MAX_REGULAR_CV = 0.45
LOUD_MARGIN_DB = 4.0
MIN_SPL_DB = 0.0
MAX_SPL_DB = 200.0


def logit(p: float) -> float:
    """``ln(p / (1 - p))`` for ``p`` clipped to [1e-6, 1 - 1e-6]."""
    p = min(1.0 - 1e-6, max(1e-6, p))
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    """``1 / (1 + e^-x)`` without overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def audio_logit(probabilities: Sequence[float]) -> float | None:
    """Mean capped log-odds of the per-sensor gunshot probabilities; None without a usable one.

    Parameters
    ----------
    probabilities : sequence of float
        Calibrated per-sensor probabilities ``p_i``; non-finite values are skipped.

    Returns
    -------
    float or None
        :math:`\\bar a = \\frac{1}{n} \\sum_i \\operatorname{clip}(\\operatorname{logit} p_i, \\pm c)`
        with :math:`c` = ``AUDIO_LOGIT_CAP``.
    """
    xs = [max(-AUDIO_LOGIT_CAP, min(AUDIO_LOGIT_CAP, logit(p))) for p in probabilities if math.isfinite(p)]
    return sum(xs) / len(xs) if xs else None


def source_level_db(
    peak_db: float, distance_m: float, absorption_db_per_m: float = AIR_ABSORPTION_DB_PER_M
) -> float:
    """Level 1 m from the source, dB SPL, from a level ``peak_db`` heard ``distance_m`` away.

    Notes
    -----
    :math:`L_1 = L_d + 20 \\log_{10}(d / 1\\,\\mathrm{m}) + \\alpha d`, with ``d`` floored at 1 m
    (spherical spreading plus air absorption :math:`\\alpha`; ground and buildings ignored).
    """
    d = max(1.0, distance_m)
    return peak_db + 20.0 * math.log10(d) + absorption_db_per_m * d


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman rank correlation (``scipy.stats.spearmanr``); None for fewer than 3 pairs or no spread."""
    if len(xs) != len(ys) or len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    from scipy.stats import spearmanr  # on first use: scipy.stats is slow to import

    return float(spearmanr(xs, ys).statistic)


@dataclass(frozen=True)
class RoundFix:
    """One located round as the evidence needs it: time (s), local position (m), ellipse major (m)."""

    t: float
    x: float
    y: float
    major_m: float = 0.0


def pattern_llr(
    rounds: Sequence[RoundFix], *, spread_m: float = 10.0, multiple_shooter_m: float = 30.0
) -> tuple[float, str]:
    """Log likelihood ratio of the round pattern and its name (see the module table).

    Parameters
    ----------
    rounds : sequence of RoundFix
        The incident's located rounds (any order).
    spread_m : float
        Rounds further apart than this *and* than their two ellipses' major
        semi-axes together are "spread over metres".
    multiple_shooter_m : float
        Further apart than this: two shooters (neutral, not fireworks).

    Returns
    -------
    (float, str)
        ``ln LR`` in ``[ln 0.5, ln 3]`` and one of ``single``, ``two_rounds``,
        ``gun_train``, ``crackle``, ``spread``, ``irregular``, ``multiple_shooters``.
    """
    rs = sorted(rounds, key=lambda r: r.t)
    if len(rs) < 2:
        return 0.0, "single"
    intervals = [b.t - a.t for a, b in itertools.pairwise(rs)]
    if any(i < MIN_GUN_INTERVAL_S for i in intervals) and not _fast_train(intervals):
        return math.log(LR_CRACKLE), "crackle"
    dists = [
        (math.dist((a.x, a.y), (b.x, b.y)), a.major_m + b.major_m) for a, b in itertools.combinations(rs, 2)
    ]
    if any(d > max(multiple_shooter_m, m) for d, m in dists):
        return 0.0, "multiple_shooters"
    if len(rs) >= 3 and any(d > max(spread_m, m) for d, m in dists):
        return math.log(LR_SPREAD), "spread"
    if any(i > MAX_GUN_INTERVAL_S for i in intervals):
        return 0.0, "irregular"
    if len(rs) == 2:
        return math.log(LR_TWO_ROUNDS), "two_rounds"
    mean = statistics.fmean(intervals)
    cv = statistics.pstdev(intervals) / mean if mean > 0 else math.inf
    if cv <= MAX_REGULAR_CV:
        return math.log(LR_GUN_TRAIN), "gun_train"
    return 0.0, "irregular"


def _fast_train(intervals: Sequence[float]) -> bool:
    """Intervals of very fast automatic fire: ≥ 3 rounds, none under 25 ms, coefficient of variation ≤ 0.2."""
    if len(intervals) < 2 or min(intervals) < FAST_GUN_INTERVAL_S:
        return False
    mean = statistics.fmean(intervals)
    return statistics.pstdev(intervals) / mean <= FAST_TRAIN_MAX_CV


@dataclass(frozen=True)
class LevelEvidence:
    """What the levels said: log LR, median source level (dB SPL at 1 m), sensors used, consistency."""

    llr: float
    source_db: float | None
    sensors: int
    falls_with_distance: bool | None


def level_llr(levels: Sequence[tuple[float, float]], *, gun_db: float, quiet_db: float) -> LevelEvidence:
    """Log likelihood ratio from reported levels against distance.

    Parameters
    ----------
    levels : sequence of (float, float)
        ``(peak_db, distance_m)`` per contributing sensor, peak in dB SPL.
        Non-finite or implausible levels (outside 0–200 dB) and non-finite
        distances are skipped.
    gun_db : float
        Gunfire's typical source level at 1 m, dB SPL (the measured median).
    quiet_db : float
        Upper end of quiet impulses (door slam, clap, knock) at 1 m, dB SPL.

    Returns
    -------
    LevelEvidence
        ``llr`` = 0 with fewer than two usable sensors. Otherwise with
        :math:`\\hat L` the median of :func:`source_level_db` over sensors,
        :math:`\\ell(\\hat L) = \\ln 0.15` for :math:`\\hat L \\le` ``quiet_db``,
        :math:`\\ln 2` for :math:`\\hat L \\ge` ``gun_db`` − 4 dB, linear in
        between; a positive ``llr`` is dropped when ≥ 4 sensors' levels rise
        with distance (Spearman ρ > 0).
    """
    usable = [
        (p, d)
        for p, d in levels
        if math.isfinite(p) and math.isfinite(d) and MIN_SPL_DB <= p <= MAX_SPL_DB and d >= 0
    ]
    if len(usable) < 2:
        return LevelEvidence(0.0, None, len(usable), None)
    src = statistics.median(source_level_db(p, d) for p, d in usable)
    lo, hi = math.log(LR_QUIET), math.log(LR_LOUD)
    top = max(quiet_db + 1e-6, gun_db - LOUD_MARGIN_DB)
    if src <= quiet_db:
        llr = lo
    elif src >= top:
        llr = hi
    else:
        llr = lo + (hi - lo) * (src - quiet_db) / (top - quiet_db)
    falls: bool | None = None
    if len(usable) >= 4:
        rho = spearman([d for _, d in usable], [p for p, _ in usable])
        falls = None if rho is None else rho <= 0
        if falls is False:
            llr = min(llr, 0.0)
    return LevelEvidence(llr, src, len(usable), falls)


@dataclass(frozen=True)
class Evidence:
    """An incident's confidence and the terms it came from (log-odds)."""

    confidence: float
    audio: float | None
    pattern: float
    pattern_kind: str
    level: LevelEvidence | None

    def describe(self) -> str:
        """One line for the log and reviewers."""
        a = "none" if self.audio is None else f"{self.audio:+.2f}"
        lv = "off" if self.level is None else f"{self.level.llr:+.2f}"
        if self.level is not None and self.level.source_db is not None:
            lv += f" ({self.level.source_db:.0f} dB @1 m, {self.level.sensors} sensors)"
        return (
            f"confidence {self.confidence:.3f} = σ(audio {a} + pattern {self.pattern:+.2f} "
            f"[{self.pattern_kind}] + level {lv})"
        )


def combine(
    audio: float | None,
    rounds: Sequence[RoundFix],
    levels: Sequence[tuple[float, float]] | None,
    *,
    no_audio_confidence: float,
    gun_db: float,
    quiet_db: float,
    spread_m: float = 10.0,
    multiple_shooter_m: float = 30.0,
) -> Evidence:
    """The incident confidence :math:`\\sigma(A + P + L)` (see the module docstring).

    Parameters
    ----------
    audio : float or None
        :func:`audio_logit` of the nearest sensors; None (no model, no usable
        audio): the confidence is ``no_audio_confidence`` unchanged — pattern
        and level cannot tell gunfire from fireworks, so without audio a
        person decides.
    rounds : sequence of RoundFix
        The incident's rounds.
    levels : sequence of (peak_db, distance_m) or None
        None when the sensors' levels are not calibrated dB SPL (``L`` = 0).
    no_audio_confidence, gun_db, quiet_db, spread_m, multiple_shooter_m : float
        See :func:`level_llr` and :func:`pattern_llr`.
    """
    p_llr, kind = pattern_llr(rounds, spread_m=spread_m, multiple_shooter_m=multiple_shooter_m)
    lev = None if levels is None else level_llr(levels, gun_db=gun_db, quiet_db=quiet_db)
    if audio is None:
        return Evidence(no_audio_confidence, None, p_llr, kind, lev)
    total = audio + p_llr + (lev.llr if lev is not None else 0.0)
    return Evidence(sigmoid(total), audio, p_llr, kind, lev)
