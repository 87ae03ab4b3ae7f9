"""The streaming detector's bookkeeping: results independent of how the stream is cut into blocks.

The detector computes the trigger's STA at every sample but the LTA ratio, the dropout guard and the
event ends only where needed, tracks the noise floor per 200 ms hop from 10 ms frames aligned to the
stream, and filters with SciPy's compiled ``sosfilt`` kernel when it is present. These tests feed
the same seeded signals — impulses, recorder dropouts, a noise level that steps up and down — in
blocks of very different sizes (which cut frames, hops, dropouts and impulses at different places)
and require the very same onsets, and check the filter against ``scipy.signal.sosfilt``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtcc.acoustic import detect
from rtcc.acoustic.detect import Onset, OnsetDetector

from .test_detect import friedlander, in_noise

RATE = 12000


def run(x: np.ndarray, block: int, **options: float) -> tuple[list[Onset], list[float | None]]:
    """Onsets, and the noise floor after each block."""
    det = OnsetDetector(RATE, **options)  # type: ignore[arg-type]
    out: list[Onset] = []
    floors: list[float | None] = []
    for i in range(0, len(x), block):
        out += det.process(x[i : i + block])
        floors.append(det.noise_floor_db)
    return out + det.flush(), floors


def busy_signal() -> tuple[np.ndarray, list[float]]:
    """8 s: noise rising 0.01 → 0.05 over 1 s then dropping to 0.005, six impulses, three dropouts."""
    rng = np.random.default_rng(21)
    n = 8 * RATE
    t = np.arange(n) / RATE
    level = np.where(t < 5.5, 0.01 + 0.04 * np.clip(t - 2.5, 0.0, 1.0), 0.005)
    x = level * rng.standard_normal(n)
    shots = [0.9, 2.2, 2.31, 4.05, 6.4, 7.3]
    x += 0.4 * friedlander(RATE, shots, 8.0)
    for a, dur in ((1.5, 0.07), (4.6, 0.2), (7.0, 0.03)):
        x[int(a * RATE) : int((a + dur) * RATE)] = 0.0
    return x, shots


def key(onsets: list[Onset]) -> list[tuple[float, float, float, float, float]]:
    return [(o.sample, o.snr_db, o.duration_ms, o.peak_db, o.noise_floor_db) for o in onsets]


def test_the_busy_signal_is_detected_as_expected() -> None:
    x, shots = busy_signal()
    onsets, _ = run(x, 1200)
    assert [round(o.time_s, 3) for o in onsets] == shots  # no onset at any dropout's end
    for o, t in zip(onsets, shots, strict=True):
        assert abs(o.time_s - t) * 1000 < 0.1


@pytest.mark.parametrize("block", [97, 1200, 2400, 5001, 12000, 80000])
def test_any_block_size_gives_the_same_onsets_and_floor(block: int) -> None:
    x, _ = busy_signal()
    ref, ref_floors = run(x, len(x))
    got, floors = run(x, block)
    assert key(got) == key(ref)
    assert floors[-1] == ref_floors[-1]


def test_the_noise_floor_follows_a_step_in_the_noise_level() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([0.01 * rng.standard_normal(4 * RATE), 0.1 * rng.standard_normal(4 * RATE)])
    _, floors = run(x, RATE // 10)
    sos = signal.butter(4, [300, 4000], btype="bandpass", fs=RATE, output="sos")
    gain = float(np.mean(signal.sosfilt(sos, rng.standard_normal(20 * RATE))[RATE:] ** 2))
    want_lo, want_hi = (10 * np.log10(gain * a * a) for a in (0.01, 0.1))
    at = {round(0.1 * (i + 1), 1): f for i, f in enumerate(floors)}
    assert at[3.9] is not None and abs(at[3.9] - want_lo) < 1.0
    assert at[7.9] is not None and abs(at[7.9] - want_hi) < 1.0
    # the median over the 2 s window moves after half of it holds the new level, not before
    assert at[4.5] is not None and abs(at[4.5] - want_lo) < 1.0


def test_filter_state_carried_across_blocks_equals_one_sosfilt() -> None:
    sos = signal.butter(4, [300, 4000], btype="bandpass", fs=RATE, output="sos")
    x = np.random.default_rng(8).standard_normal(30000)
    zi = np.zeros((1, sos.shape[0], 2))
    parts = [detect._sosfilt_carry(sos, x[i : i + 1234].copy(), zi) for i in range(0, x.size, 1234)]
    np.testing.assert_allclose(np.concatenate(parts), signal.sosfilt(sos, x), rtol=0, atol=1e-12)


def test_public_sosfilt_fallback_gives_the_same_onsets(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = busy_signal()
    fast, _ = run(x, 1200)
    monkeypatch.setattr(detect, "_SOSFILT", None)
    slow, _ = run(x, 1200)
    assert [o.sample for o in slow] == pytest.approx([o.sample for o in fast], abs=1e-6)
    assert len(slow) == len(fast)


def test_a_weak_reflection_in_the_tail_is_not_a_new_onset_but_a_second_bang_is() -> None:
    """The rise over the last 50 ms defaults to the floor threshold − 3 dB (9 dB).

    A reflection 30 ms after the bang at −8 dB rises only ~8 dB over the bang's own tail: one
    onset (the former 6 dB default reported it). An equal second bang 80 ms later is found.
    """
    rng = np.random.default_rng(7)
    direct = friedlander(RATE, [1.0], 2.0)
    with_echo = in_noise(RATE, direct + 0.4 * friedlander(RATE, [1.03], 2.0), 30.0, rng)
    assert OnsetDetector(RATE).rise_db == 9.0
    assert [round(o.time_s, 3) for o in run(with_echo, 1200)[0]] == [1.0]
    assert [round(o.time_s, 3) for o in run(with_echo, 1200, rise_db=6.0)[0]] == [1.0, 1.03]
    two = in_noise(RATE, direct + friedlander(RATE, [1.08], 2.0), 30.0, rng)
    assert [round(o.time_s, 3) for o in run(two, 1200)[0]] == [1.0, 1.08]
