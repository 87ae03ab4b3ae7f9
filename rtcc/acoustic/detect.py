"""The edge onset detector: impulsive onsets in a live audio stream, timed to sub-sample precision.

The detector works block by block, so the same code runs on a file, on raw PCM
from stdin and on a sound card; the result does not depend on the block size.

Method
------
1. **Band-pass.** A 4th-order Butterworth band-pass (default 300 Hz – 4 kHz,
   the upper edge clamped to 0.45 × the sample rate) applied causally with
   ``scipy.signal.sosfilt``; the filter state is carried across blocks.
2. **Adaptive noise floor.** The mean square of the filtered signal in 10 ms
   frames; the floor is a running low percentile (default the median) of the
   last ``noise_window_s`` seconds of frames, updated every 200 ms (it ignores
   the frames impulses and their reverberation occupy; frames of digital
   silence — dropouts — are left out).
3. **Trigger.** A classic STA/LTA trigger (Allen 1978): the short-term energy
   (1 ms mean square) must exceed the noise floor by ``threshold_db`` *and* the
   energy of the preceding ``lta_ms`` by ``rise_db`` (so a new bang is found
   inside the reverberant tail of the previous one). Triggers closer than
   ``refractory_ms`` to the previous onset are ignored. By default ``rise_db`` is
   ``threshold_db`` − 3 dB (9 dB). It was 6 dB until 2026-11: on ShotSpotter's firing
   positions FP1 and FP3 (123 clips), 9 dB reports 1,020 pulses instead of 2,446 — most of
   the difference is reverberant tails — and finds the same share of ShotSpotter's selected
   pulses within 5 ms (98.5 %); 12 dB cut further but missed 13–15 dB impulses in
   synthetic tests.
4. **Sub-sample onset.** Around each trigger the raw audio is filtered again for timing: a
   causal 2nd-order Butterworth high-pass at the lower band edge (no pre-ringing before the
   onset) and a zero-phase 2nd-order low-pass at the upper edge (forward–backward: no group
   delay to correct). An AIC picker (Maeda 1985; Sleeman & van Eck 1999, *Phys. Earth Planet.
   Inter.* 113) finds the onset sample; the first significant extremum after it (≥ half the
   largest one in the next 3 ms) is taken as the first peak, and the onset is the time the
   rising edge crosses **half of that first peak**, linearly interpolated between samples. For a
   band-limited step (a muzzle blast's shock front) this crossing is the step time; for any one
   waveform the bias is the same at every sensor, so time differences are unbiased.
5. **Echo mask** (optional, ``echo_window_ms`` > 0): an onset much weaker than a recent louder one
   is dropped as its echo.

Cost
----
About 2,000× real time per core with 1 s blocks and 1,100× with 0.1 s blocks at 12 kHz
(``bench/acoustic_detect.py``). Per sample there is one ``sosfilt`` pass (SciPy's compiled kernel
called directly: the public wrapper costs more than the filtering on a 0.1 s block), one square
and one cumulative sum for the STA, and a comparison with the floor; the LTA ratio, the dropout
guard and the event ends are evaluated only at the few samples over the floor threshold. Audio is
kept in buffers that grow by doubling and are trimmed in chunks. Results do not depend on the
block size (frames and hops are aligned to the stream).

Levels
------
``peak_db`` is the largest absolute value of the filtered signal in the event,
in dBFS (full scale = 1.0 for float audio, 2¹⁵ for 16-bit). ``snr_db`` is the
largest 1 ms mean square in the event over the noise floor (mean square of
10 ms frames, median), in dB. ``duration_ms`` runs from the onset until the
1 ms energy stays below the floor + ``release_db`` (capped at
``max_duration_ms``).
"""

from __future__ import annotations

import bisect
import functools
import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy import signal

from rtcc.acoustic.wav_metadata import wav_shortfall
from rtcc.errors import ValidationFailed

FloatArray = npt.NDArray[np.float64]

MIN_SAMPLE_RATE_HZ = 8000
_EPS = 1e-20
_DITHER = 1e-15 * np.random.default_rng(0).standard_normal(4096)
_DITHER_TILE = np.tile(_DITHER, 18)  # slices of it cover blocks up to 17 × 4096 samples
_SILENCE = 1e-12  # mean square below this (−120 dBFS) is digital silence, not noise


def _compiled_sosfilt() -> Callable[[FloatArray, FloatArray, FloatArray], None] | None:
    """SciPy's compiled ``sosfilt`` kernel, if present and equal to the public function here."""
    try:
        kernel = getattr(importlib.import_module("scipy.signal._sosfilt"), "_sosfilt")  # noqa: B009
    except (ImportError, AttributeError):
        return None
    sos = signal.butter(2, [0.1, 0.3], btype="bandpass", output="sos")
    x = np.random.default_rng(1).standard_normal(64)
    zi = np.full((1, sos.shape[0], 2), 0.1)
    want, want_zf = signal.sosfilt(sos, x, zi=zi[0])
    y = x.reshape(1, -1).copy()
    try:
        kernel(sos, y, zi)
    except (TypeError, ValueError):
        return None
    if not (np.array_equal(y[0], want) and np.array_equal(zi[0], want_zf)):
        return None
    return cast("Callable[[FloatArray, FloatArray, FloatArray], None]", kernel)


_SOSFILT = _compiled_sosfilt()


class AudioError(ValidationFailed):
    """Audio that cannot be read or used (corrupt, truncated, unsupported rate)."""


@dataclass(frozen=True)
class Onset:
    """One detected impulsive onset.

    Attributes
    ----------
    sample : float
        Onset time in samples since the first sample of the stream (fractional).
    sample_rate_hz : int
        Sample rate of the stream, Hz.
    peak_db : float
        Peak level of the band-passed signal, dBFS.
    snr_db : float
        Peak 1 ms energy over the noise floor, dB.
    noise_floor_db : float
        Noise floor (mean square of the band-passed signal) at the onset, dBFS.
    duration_ms : float
        Time from the onset until the energy falls back near the floor, ms.
    audio : numpy.ndarray
        Mono float audio around the onset (``audio_pre_ms`` before to ``audio_post_ms`` after).
    audio_start_sample : int
        Stream sample index of ``audio[0]``.
    """

    sample: float
    sample_rate_hz: int
    peak_db: float
    snr_db: float
    noise_floor_db: float
    duration_ms: float
    audio: FloatArray = field(repr=False, compare=False)
    audio_start_sample: int = 0

    @property
    def time_s(self) -> float:
        """Onset time in seconds since the first sample of the stream."""
        return self.sample / self.sample_rate_hz


def loudest_channel(block: npt.ArrayLike) -> int:
    """Index of the channel with the most energy (sum of squares about its mean) in a block.

    Parameters
    ----------
    block : array_like, shape (n,) or (n, channels)
        Samples (integer PCM or float); non-finite samples count as full scale.

    Returns
    -------
    int
        The column of the loudest channel (0 for mono audio, and the first of equally loud ones).
    """
    a = np.asarray(block)
    if a.ndim != 2 or a.shape[1] < 2 or a.shape[0] == 0:
        return 0
    x = np.nan_to_num(a.astype(np.float64), nan=1.0, posinf=1.0, neginf=-1.0)
    return int(np.argmax(np.var(x, axis=0)))


def to_mono_float(block: npt.ArrayLike, channel: int | None = None) -> FloatArray:
    """Convert a block of samples to mono float64 in [-1, 1].

    A sensor's microphone is mono; a multichannel file or stream is a recorder's, whose channels may
    be different microphones, or copies of opposite polarity that an average would cancel. So one
    channel is taken, never the mean: ``channel``, or else the loudest one of the block
    (:func:`loudest_channel`). A stream should choose its channel once and pass it, so that it does
    not switch channels between blocks (:meth:`OnsetDetector.process` does).

    Parameters
    ----------
    block : array_like, shape (n,) or (n, channels)
        Integer PCM (scaled by its full scale, e.g. 2¹⁵ for int16) or float audio.
    channel : int, optional
        The channel (column) of multichannel audio to take; default the loudest of the block.

    Returns
    -------
    numpy.ndarray, shape (n,)
        One channel, float64 (NaN counts as 0 and ±infinity as ±1).

    Raises
    ------
    AudioError
        More than two dimensions, an unsupported sample type, or no such channel.
    """
    a = np.asarray(block)
    if a.ndim == 0 or a.ndim > 2:
        raise AudioError(f"audio must be 1-D (mono) or 2-D (samples × channels), got shape {a.shape}")
    if a.ndim == 2:
        ch = loudest_channel(a) if channel is None else channel
        if not 0 <= ch < a.shape[1]:
            raise AudioError(f"channel {ch} does not exist: the audio has {a.shape[1]} channel(s)")
        a = a[:, ch]
    if a.dtype.kind == "i":
        x = a.astype(np.float64) / float(2 ** (8 * a.dtype.itemsize - 1))
    elif a.dtype.kind == "u":
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        x = (a.astype(np.float64) - half) / half
    elif a.dtype.kind == "f":
        x = a.astype(np.float64, copy=False)
    else:
        raise AudioError(f"unsupported sample type {a.dtype}")
    if not math.isfinite(float(np.add.reduce(x, axis=None))):  # one pass; NaN and ±inf propagate
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(x, dtype=np.float64)


def _dither(start: int, n: int) -> FloatArray:
    """The dither of stream samples ``start`` … ``start + n − 1`` (periodic in the sample index)."""
    i = start % _DITHER.size
    if i + n <= _DITHER_TILE.size:
        return _DITHER_TILE[i : i + n]
    return _DITHER[np.arange(start, start + n) % _DITHER.size]


def _sosfilt_carry(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """``scipy.signal.sosfilt`` of a fresh 1-D float64 ``x`` (filtered in place) with the state ``zi``.

    ``zi`` has shape (1, sections, 2) and is updated in place. The public ``sosfilt`` spends
    more time checking and reshaping its arguments than filtering a 0.1 s block, so its compiled
    kernel is called directly when this SciPy has it (checked against the public function at import).
    """
    if _SOSFILT is None:
        y, zf = signal.sosfilt(sos, x, zi=zi[0])
        zi[0] = zf
        return np.asarray(y, dtype=np.float64)
    y = x.reshape(1, -1)
    _SOSFILT(sos, y, zi)
    return x


def _first_true(mask: npt.NDArray[np.bool_], offset: int) -> int:
    """Index of the first True of ``mask`` at or after ``offset`` (−1 when there is none)."""
    if offset >= mask.size:
        return -1
    i = int(np.argmax(mask[offset:])) + offset
    return i if mask[i] else -1


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, _EPS))


@dataclass
class _Pending:
    trigger: int  # absolute sample index of the trigger
    onset: float  # absolute (fractional) onset sample
    floor: float  # noise floor mean square at the trigger
    end: int | None = None  # absolute index where the energy fell back (None: still loud)


class OnsetDetector:
    """Streaming impulsive-onset detector (see the module docstring for the method).

    Parameters
    ----------
    sample_rate_hz : int
        Sample rate of the stream, Hz (≥ 8000).
    threshold_db : float
        Short-term energy over the noise floor needed to trigger, dB (finite).
    rise_db : float, optional
        Short-term energy over the preceding ``lta_ms`` needed to trigger, dB (default:
        ``threshold_db`` − 3 dB).
    band_hz : tuple of float
        Band-pass edges, Hz (the upper edge is clamped to 0.45 × the sample rate).
    sta_ms, lta_ms : float
        Short- and long-term energy windows of the trigger, ms.
    refractory_ms : float
        Minimum time between two onsets, ms.
    release_db : float
        The event ends when the 1 ms energy falls below floor + ``release_db``, dB.
    max_duration_ms : float
        Longest reported duration (also the longest wait before an onset is emitted), ms.
    noise_window_s : float
        Length of the running noise-floor window, s.
    noise_percentile : float
        Percentile of the frame energies taken as the floor (50, the median; lower is more robust
        when reverberation fills more than half of the window, but tracks a rising floor late).
    echo_db, echo_window_ms : float
        Echo mask: for ``echo_window_ms`` after an onset, a new onset whose peak 1 ms energy is more
        than ``echo_db`` below the masking onset's is dropped as its echo (0 ms: no mask).
    audio_pre_ms, audio_post_ms : float
        Audio kept before and after each onset, ms.
    """

    FRAME_MS = 10.0
    HOP_FRAMES = 20

    def __init__(
        self,
        sample_rate_hz: int,
        *,
        threshold_db: float = 12.0,
        rise_db: float | None = None,
        band_hz: tuple[float, float] = (300.0, 4000.0),
        sta_ms: float = 1.0,
        lta_ms: float = 50.0,
        refractory_ms: float = 10.0,
        release_db: float = 3.0,
        max_duration_ms: float = 250.0,
        noise_window_s: float = 2.0,
        noise_percentile: float = 50.0,
        echo_db: float = 10.0,
        echo_window_ms: float = 0.0,
        audio_pre_ms: float = 25.0,
        audio_post_ms: float = 75.0,
    ) -> None:
        if not isinstance(sample_rate_hz, int | np.integer) or sample_rate_hz < MIN_SAMPLE_RATE_HZ:
            raise AudioError(
                f"sample rate {sample_rate_hz} Hz is not supported: need an integer ≥ {MIN_SAMPLE_RATE_HZ} Hz"
            )
        fs = int(sample_rate_hz)
        if not math.isfinite(threshold_db) or (rise_db is not None and not math.isfinite(rise_db)):
            raise AudioError(f"trigger levels must be finite numbers of dB, got {threshold_db}, {rise_db}")
        lo, hi = band_hz
        hi = min(hi, 0.45 * fs)
        if not 0 < lo < hi:
            raise AudioError(f"band-pass edges {band_hz} Hz are not usable at {fs} Hz")
        self.sample_rate_hz = fs
        self.threshold_db = threshold_db
        self.rise_db = threshold_db - 3.0 if rise_db is None else rise_db
        self._sos, self._ba_timing, self._ba_smooth = _filters(fs, float(lo), float(hi))
        self._zi = np.zeros((1, self._sos.shape[0], 2))  # filter state, carried across blocks
        self._ms = fs / 1000.0
        self._sta = max(1, round(sta_ms * self._ms))
        self._lta = max(1, round(lta_ms * self._ms))
        self._refractory = round(refractory_ms * self._ms)
        self._max_dur = round(max_duration_ms * self._ms)
        self._release = 10 ** (release_db / 10)
        self._thr = 10 ** (threshold_db / 10)
        self._rise = 10 ** (self.rise_db / 10)
        self._pre = round(audio_pre_ms * self._ms)
        self._post = round(audio_post_ms * self._ms)
        self._frame = round(self.FRAME_MS * self._ms)
        self._hop = self._frame * self.HOP_FRAMES
        self._noise_frames = max(self.HOP_FRAMES * 2, round(noise_window_s * 1000 / self.FRAME_MS))
        self._min_frames = 10
        self._pct = noise_percentile
        # timing refinement window: before / after the trigger
        self._look_back = round(30 * self._ms)
        self._look_ahead = round(10 * self._ms)
        # stream state (absolute sample indices)
        self._n = 0  # samples seen
        self._base = 0  # absolute index of _raw[0]
        # raw and band-passed audio from _base on: views of buffers that grow by doubling
        self._raw_buf = np.zeros(4 * self._hop)
        self._filt_buf = np.zeros(4 * self._hop)
        self._raw = self._raw_buf[:0]
        self._filt = self._filt_buf[:0]
        self._frames = np.zeros(0)  # completed frame mean squares (at least the last noise window)
        self._frame_acc = 0.0
        self._frame_fill = 0
        self._floor = math.inf  # current floor (mean square)
        self._last_onset = -(10**12)
        self._last_emitted = -math.inf  # sample of the last onset reported
        self._pending: list[_Pending] = []
        self._prev_cond = False
        self._echo = 10 ** (-echo_db / 10)
        self._echo_window = round(echo_window_ms * self._ms)
        self._mask_energy = 0.0
        self._mask_until = -(10**12)
        self._dropout_guard = round(10 * self._ms)
        self.noise_floor_db: float | None = None
        """Latest noise floor, dBFS (None until enough audio was seen)."""
        self.channel: int | None = None
        """The channel taken from multichannel blocks: the loudest of the first block that has sound."""

    # -- streaming ---------------------------------------------------------------

    def process(self, block: npt.ArrayLike) -> list[Onset]:
        """Feed a block of audio; return the onsets that are complete.

        Parameters
        ----------
        block : array_like, shape (n,) or (n, channels)
            Next samples of the stream (int PCM or float). Of multichannel audio one channel is used
            (:func:`to_mono_float`), the same for the whole stream: :attr:`channel`.

        Returns
        -------
        list of Onset
            Onsets whose event and audio window are complete (an onset is
            reported at most ``max(max_duration_ms, audio_post_ms)`` after it happened).
        """
        a = np.asarray(block)
        if self.channel is None and a.ndim == 2 and a.shape[1] > 1 and a.shape[0]:
            ch = loudest_channel(a)
            if np.var(a[:, ch].astype(np.float64)) > 0:  # not silence: the choice is made for good
                self.channel = ch
        x = to_mono_float(a, self.channel)
        if x.size == 0:
            return []
        start = self._n
        # a −300 dBFS dither keeps the IIR state out of subnormal floats during dropouts
        # (zero-filled stretches), where arithmetic is ~100× slower; deterministic per sample index
        y = _sosfilt_carry(self._sos, x + _dither(start, x.size), self._zi)
        self._append(x, y)
        self._n += x.size
        sq = y * y
        seg_end, seg_floor = self._update_floor(start, sq)
        self._detect(start, sq, seg_end, seg_floor)
        out = self._emit(final=False)
        self._trim()
        return out

    def flush(self) -> list[Onset]:
        """End of stream: return the onsets still waiting for their event to end."""
        out = self._emit(final=True)
        self._pending.clear()
        return out

    # -- noise floor ------------------------------------------------------------

    def _update_floor(self, start: int, sq: FloatArray) -> tuple[list[int], list[float]]:
        """The floor (mean square) over the new samples, piecewise constant per hop.

        Frames and hops are aligned to the stream (multiples of their length from the first
        sample), so the result does not depend on the block size.

        Returns
        -------
        seg_end : list of int
            End (exclusive, block offset) of each constant piece; the last is the block size.
        seg_floor : list of float
            The floor of each piece.
        """
        n = sq.size
        fr = self._frame
        take = min(fr - self._frame_fill, n)
        if self._frame_fill + take < fr:  # no frame completes in this block
            self._frame_acc += float(sq.sum())
            self._frame_fill += n
            new = np.zeros(0)
        else:
            m = (n - take) // fr
            cut = take + m * fr
            new = np.empty(m + 1)
            new[0] = (self._frame_acc + float(sq[:take].sum())) / fr
            new[1:] = sq[take:cut].reshape(m, fr).sum(axis=1) / fr
            tail = sq[cut:]
            self._frame_acc, self._frame_fill = float(tail.sum()), tail.size
        loud = new > _SILENCE  # dropouts (zero-filled stretches) would drag the floor to nothing
        kept = new[loud]
        first_hop = -(-start // self._hop) * self._hop
        seg_end: list[int] = []
        seg_floor = [self._floor]
        if first_hop < start + n:
            # frames are aligned to the stream: each one ends at a multiple of its length
            kept_end = ((start // fr + 1 + np.flatnonzero(loud)) * fr - start).tolist()
            for b in range(first_hop - start, n, self._hop):
                k = bisect.bisect_right(kept_end, b)
                window = np.concatenate([self._frames, kept[:k]])[-self._noise_frames :]
                if window.size >= self._min_frames:
                    i = min(window.size - 1, int(self._pct / 100.0 * window.size))
                    self._floor = float(np.partition(window, i)[i])
                    self.noise_floor_db = _db(self._floor)
                seg_end.append(b)
                seg_floor.append(self._floor)
        if kept.size:
            frames = np.concatenate([self._frames, kept])
            self._frames = frames[-self._noise_frames :] if frames.size > 2 * self._noise_frames else frames
        seg_end.append(n)
        return seg_end, seg_floor

    # -- trigger ----------------------------------------------------------------

    def _not_dropout(self, t: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        """False at absolute sample indices ``t`` (sorted) inside or just after a dropout.

        A dropout (a zero-filled stretch, ≥ 3 exact zeros) ends in a step that is no onset: a sample
        is refused when a run of zeros ends within ``_dropout_guard`` samples before it.
        """
        lo = max(int(t[0]) - self._dropout_guard - 2, self._base)
        z = self._raw[lo - self._base : int(t[-1]) + 1 - self._base] == 0
        if z.size < 3 or not z.any():
            return np.ones(t.size, dtype=bool)
        runs = np.flatnonzero(z[2:] & z[1:-1] & z[:-2]) + (lo + 2)
        if not runs.size:
            return np.ones(t.size, dtype=bool)
        k = np.searchsorted(runs, t, side="right")
        last = np.where(k > 0, runs[np.maximum(k - 1, 0)], -(10**12))
        return np.asarray(t - last > self._dropout_guard)

    def _energy(self, lo: int, hi: int, width: int) -> FloatArray:
        """Mean square over ``width`` samples ending at each absolute index in [lo, hi)."""
        b0 = self._base
        first = max(lo - width + 1, b0)
        sq = self._filt[first - b0 : hi - b0] ** 2
        c = np.concatenate([[0.0], np.cumsum(sq)])
        idx = np.arange(lo, hi) - first + 1
        left = np.maximum(idx - width, 0)
        return np.asarray((c[idx] - c[left]) / width, dtype=np.float64)

    @staticmethod
    def _per_sample(seg_end: list[int], seg_floor: list[float], factor: float) -> FloatArray | float:
        """``factor`` × the floor at each new sample (a scalar when the block has one piece)."""
        if len(seg_floor) == 1:
            return seg_floor[0] * factor
        lengths = [e - b for b, e in zip([0, *seg_end[:-1]], seg_end, strict=True)]
        return np.repeat(np.asarray(seg_floor) * factor, lengths)

    def _detect(
        self,
        start: int,
        sq: FloatArray,
        seg_end: list[int],
        seg_floor: list[float],
    ) -> None:
        """Find the trigger's rising edges in the new samples and where open events end.

        The STA is computed at every sample (one cumulative sum); the LTA ratio and the dropout
        guard only at the few samples whose STA is over the noise-floor threshold.
        """
        n = sq.size
        h = self._sta + self._lta - 1  # history the windows need before the block
        hist = self._filt[max(start - h, self._base) - self._base : start - self._base]
        pad = h - hist.size  # zeros before the stream start: the same as windows cut short there
        c = np.empty(h + n + 1)
        c[: pad + 1] = 0.0
        np.cumsum(np.concatenate([hist * hist, sq]), out=c[pad + 1 :])
        c_sta = c[h + 1 - self._sta : h + 1 - self._sta + n]
        sta = (c[h + 1 :] - c_sta) / self._sta
        cand = np.flatnonzero(sta > self._per_sample(seg_end, seg_floor, self._thr))
        rising: list[int] = []
        if cand.size:
            # mean square of the lta window that precedes the sta window
            lta = np.maximum((c_sta[cand] - c[cand]) / self._lta, 0.0)
            ok = sta[cand] > lta * self._rise
            ok &= self._not_dropout(start + cand)
            on = cand[ok]
            if on.size:
                before = np.concatenate([[-1 if self._prev_cond else -2], on[:-1]])
                rising = on[on - before != 1].tolist()
            self._prev_cond = bool(on.size) and int(on[-1]) == n - 1
        else:
            self._prev_cond = False
        if not rising and all(p.end is not None for p in self._pending):
            return
        quiet = sta < self._per_sample(seg_end, seg_floor, self._release)
        for p in self._pending:  # events still open: find where they end
            if p.end is None:
                off = max(0, p.trigger + self._sta - start)
                q = _first_true(quiet, off)
                if q >= 0:
                    p.end = q + start
        for r in rising:
            t = start + r
            if t - self._last_onset < self._refractory:
                # inside the refractory time: a much stronger onset replaces a weak one still pending
                last = self._pending[-1] if self._pending else None
                if last is None or last.trigger != self._last_onset:
                    continue
                earlier = self._energy(last.trigger, t, self._sta)
                if sta[r] < float(earlier.max(initial=0.0)) * self._rise:
                    continue
                self._pending.pop()
            floor = seg_floor[bisect.bisect_right(seg_end, r)]
            for p in self._pending:
                if p.end is None or p.end > t:
                    p.end = t
            q = _first_true(quiet, r + self._sta)
            end_i = q + start if q >= 0 else None
            self._pending.append(_Pending(trigger=t, onset=float(t), floor=floor, end=end_i))
            self._last_onset = t

    # -- emit -------------------------------------------------------------------

    def _emit(self, *, final: bool) -> list[Onset]:
        out: list[Onset] = []
        keep: list[_Pending] = []
        for p in self._pending:
            ready_at = p.trigger + max(self._max_dur, self._post + self._look_ahead)
            if p.end is not None:
                ready_at = max(p.end, p.trigger + self._post + self._look_ahead)
            if final or self._n >= ready_at:
                onset = self._finish(p)
                if onset is None:
                    continue
                # two triggers of one event (the second past the refractory time, in its ringing)
                # can refine back to the same onset: one pulse, with the larger level and duration
                if out and onset.sample <= out[-1].sample + 0.5:
                    out[-1] = _merge(out[-1], onset)
                elif onset.sample > self._last_emitted + 0.5:
                    out.append(onset)
            else:
                keep.append(p)
        self._pending = keep
        if out:
            self._last_emitted = out[-1].sample
        return out

    def _finish(self, p: _Pending) -> Onset | None:
        b0 = self._base
        if p.trigger < self._mask_until:
            hi = min(self._n, p.end if p.end is not None else p.trigger + self._max_dur)
            e = self._energy(p.trigger, max(hi, p.trigger + 1), self._sta)
            if float(e.max()) < self._mask_energy * self._echo:
                return None  # an echo (or a weaker overlapping sound) inside the mask of a louder onset
        onset = refine_onset(
            self._raw,
            self._ba_timing,
            self._ba_smooth,
            p.trigger - b0,
            look_back=self._look_back,
            look_ahead=self._look_ahead,
            ms=self._ms,
        )
        onset_abs = onset + b0 if onset is not None else float(p.trigger)
        o = math.floor(onset_abs)
        end = p.end if p.end is not None else min(self._n, o + self._max_dur)
        end = min(max(end, o + self._sta), o + self._max_dur, self._n)
        seg = self._filt[max(o, b0) - b0 : end - b0]
        peak = float(np.max(np.abs(seg))) if seg.size else 0.0
        sta = self._energy(max(o, b0) + self._sta - 1, max(end, o + self._sta), self._sta)
        a0 = max(o - self._pre, b0)
        a1 = min(o + self._post, self._n)
        peak_e = float(sta.max()) if sta.size else 0.0
        if self._echo_window and (p.trigger >= self._mask_until or peak_e > self._mask_energy):
            self._mask_energy = peak_e
            self._mask_until = o + self._echo_window
        return Onset(
            sample=onset_abs,
            sample_rate_hz=self.sample_rate_hz,
            peak_db=20.0 * math.log10(max(peak, 1e-10)),
            snr_db=_db(peak_e) - _db(p.floor),
            noise_floor_db=_db(p.floor),
            duration_ms=max(0.0, (end - onset_abs) / self._ms),
            audio=self._raw[a0 - b0 : a1 - b0].copy(),
            audio_start_sample=a0,
        )

    def _trim(self) -> None:
        need = self._n - (self._lta + self._sta + self._look_back + self._pre + 4 * self._frame)
        for p in self._pending:
            need = min(need, p.trigger - self._look_back - self._pre - self._sta)
        cut = need - self._base
        if cut > 4 * self._hop:  # trim in chunks, not on every block
            keep = self._n - self._base - cut
            self._raw_buf[:keep] = self._raw_buf[cut : cut + keep]
            self._filt_buf[:keep] = self._filt_buf[cut : cut + keep]
            self._base += cut
            self._raw = self._raw_buf[:keep]
            self._filt = self._filt_buf[:keep]

    def _append(self, x: FloatArray, y: FloatArray) -> None:
        """Append raw and band-passed samples to the buffers (which grow by doubling)."""
        n0 = self._n - self._base
        n1 = n0 + x.size
        if n1 > self._raw_buf.size:
            cap = max(2 * self._raw_buf.size, n1)
            self._raw_buf = np.concatenate([self._raw_buf[:n0], np.zeros(cap - n0)])
            self._filt_buf = np.concatenate([self._filt_buf[:n0], np.zeros(cap - n0)])
        self._raw_buf[n0:n1] = x
        self._filt_buf[n0:n1] = y
        self._raw = self._raw_buf[:n1]
        self._filt = self._filt_buf[:n1]


@functools.lru_cache(maxsize=32)
def _filters(
    fs: int, lo: float, hi: float
) -> tuple[FloatArray, tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]:
    """Detection band-pass (SOS), timing filter (high-pass × low-pass, b/a) and its low-pass (b/a)."""
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
    b_hp, a_hp = signal.butter(2, lo, btype="highpass", fs=fs)
    b_lp, a_lp = signal.butter(2, hi, btype="lowpass", fs=fs)
    return sos, (np.convolve(b_hp, b_lp), np.convolve(a_hp, a_lp)), (b_lp, a_lp)


def _aic_pick(x: FloatArray) -> int:
    """Onset index of ``x`` by the AIC picker (Maeda 1985).

    The argmin over k of k·log var(x[:k]) + (N−k)·log var(x[k:]).
    """
    n = x.size
    if n < 8:
        return 0
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    k = np.arange(1, n)
    m1 = c1[k - 1] / k
    v1 = c2[k - 1] / k - m1 * m1
    nk = n - k
    m2 = (c1[-1] - c1[k - 1]) / nk
    v2 = (c2[-1] - c2[k - 1]) / nk - m2 * m2
    aic = k * np.log(np.maximum(v1, _EPS)) + nk * np.log(np.maximum(v2, _EPS))
    lo, hi = 2, n - 3
    return int(np.argmin(aic[lo:hi]) + lo + 1)


def refine_onset(
    raw: FloatArray,
    ba_timing: tuple[FloatArray, FloatArray],
    ba_lp: tuple[FloatArray, FloatArray],
    trigger: int,
    *,
    look_back: int,
    look_ahead: int,
    ms: float,
) -> float | None:
    """Sub-sample onset near ``trigger`` (index into ``raw``): AIC pick, then half-first-peak crossing.

    Parameters
    ----------
    raw : numpy.ndarray
        Unfiltered mono audio.
    ba_timing : tuple of numpy.ndarray
        Causal high-pass × low-pass (b, a) applied forward.
    ba_lp : tuple of numpy.ndarray
        The low-pass (b, a) applied again backward (so the low-pass is zero-phase).
    trigger : int
        Index of the trigger in ``raw``.
    look_back, look_ahead : int
        Samples before / after the trigger to consider.
    ms : float
        Samples per millisecond.

    Returns
    -------
    float or None
        Onset as a fractional index into ``raw``; None when the window is too short.
    """
    a = max(0, trigger - look_back)
    b = min(raw.size, trigger + look_ahead)
    if b - a < 64:
        return None
    pad = min(a, round(20 * ms))
    # causal high-pass (no pre-ringing), then zero-phase low-pass (no delay)
    seg = raw[a - pad : b] + _DITHER[: b - a + pad] if b - a + pad <= _DITHER.size else raw[a - pad : b]
    w = signal.lfilter(ba_timing[0], ba_timing[1], seg)
    w = signal.lfilter(ba_lp[0], ba_lp[1], w[::-1])[::-1][pad:]
    t = trigger - a
    # AIC on the part just before the trigger (the causal trigger is late, never early,
    # apart from the IIR group delay it does not have here)
    s0 = max(0, t - round(15 * ms))
    s1 = min(w.size, t + round(3 * ms))
    k = s0 + _aic_pick(w[s0:s1])
    k0 = max(0, k - max(1, round(0.25 * ms)))
    k1 = min(w.size, k + round(3 * ms))
    seg = np.abs(w[k0:k1])
    if seg.size < 3:
        return None
    big = 0.5 * float(seg.max())
    first = int(np.flatnonzero(seg >= big)[0]) + k0
    sgn = 1.0 if w[first] > 0 else -1.0
    v = sgn * w
    p = first
    while p + 1 < w.size and v[p + 1] > v[p]:
        p += 1
    level = 0.5 * v[p]
    j = p
    while j > 0 and v[j - 1] >= level:
        j -= 1
    if j == 0:
        return float(a)
    v0, v1 = v[j - 1], v[j]
    frac = (level - v0) / (v1 - v0) if v1 != v0 else 0.0
    return float(a + j - 1 + frac)


def audio_path_problem(path: str | Path) -> str | None:
    """Why a path cannot be read as an audio file before decoding it (None when it may be).

    Parameters
    ----------
    path : str or pathlib.Path
        The file named on the command line.

    Returns
    -------
    str or None
        A message naming the file: it does not exist, is a directory or not a regular file, cannot
        be opened, or is a truncated WAV file (:func:`rtcc.acoustic.wav_metadata.wav_shortfall`:
        how much audio is missing, which libsndfile would silently leave out).
    """
    p = Path(path)
    if p.is_dir():
        return f"{p}: is a directory, not an audio file"
    if not p.exists():
        return f"{p}: no such audio file"
    if not p.is_file():
        return f"{p}: not a regular file"
    try:
        short = wav_shortfall(p)
    except OSError as exc:
        return f"{p}: cannot read ({exc.strerror or exc})"
    if short is None:
        return None
    promised, present, byte_rate = short
    missing = promised - present
    secs = f" ({missing / byte_rate:.2f} s of {promised / byte_rate:.2f} s)" if byte_rate else ""
    return (
        f"{p}: truncated WAV file: its header promises {promised} bytes of audio but the file holds "
        f"{present}; {missing} bytes{secs} are missing. Is the copy complete?"
    )


def read_audio(path: str | Path) -> tuple[FloatArray, int]:
    """Read a whole audio file as mono float64.

    Of a multichannel file the channel with the most energy over the whole file is taken
    (:func:`to_mono_float`).

    Raises
    ------
    AudioError
        Missing, corrupt, truncated or unsupported file.
    """
    p = Path(path)
    problem = audio_path_problem(p)
    if problem is not None:
        raise AudioError(problem)
    try:
        data, rate = sf.read(str(p), dtype="float64", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, ValueError, OSError) as exc:
        raise AudioError(f"{p}: cannot decode audio ({exc}); is it a complete WAV/FLAC/OGG file?") from exc
    if data.size == 0:
        raise AudioError(f"{p}: the file holds no audio samples")
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(f"{p}: {bad} sample(s) are not finite (NaN or infinity); the file is corrupt")
    return to_mono_float(data), int(rate)


def iter_blocks(x: FloatArray, block: int) -> Iterator[FloatArray]:
    """Successive blocks of ``block`` samples of ``x``."""
    for i in range(0, x.size, block):
        yield x[i : i + block]


def detect_file(path: str | Path, **options: float) -> list[Onset]:
    """Detect the onsets in an audio file (any rate ≥ 8 kHz, mono or multichannel).

    Parameters
    ----------
    path : str or pathlib.Path
        WAV, FLAC or any format libsndfile reads.
    **options
        Keyword options of :class:`OnsetDetector`.

    Raises
    ------
    AudioError
        Corrupt, truncated or unsupported file, or a rate below 8 kHz.
    """
    x, rate = read_audio(path)
    det = OnsetDetector(rate, **options)  # type: ignore[arg-type]
    out: list[Onset] = []
    for blk in iter_blocks(x, 1 << 16):
        out += det.process(blk)
    return out + det.flush()


def _merge(first: Onset, again: Onset) -> Onset:
    """One onset reported twice (the same refined sample): the first, with the larger measures."""
    return replace(
        first,
        peak_db=max(first.peak_db, again.peak_db),
        snr_db=max(first.snr_db, again.snr_db),
        duration_ms=max(first.duration_ms, again.duration_ms),
    )
