"""Features of one impulse for the gunshot classifier: numpy/scipy only, same code in training and serving.

Everything runs at one rate, :data:`SAMPLE_RATE_HZ` (12 kHz, the ShotSpotter sensor rate), so the
recording rate of a clip is never a cue: :func:`to_model_rate` resamples (polyphase) and mixes down.

A clip is reduced to impulse windows (:func:`find_candidates`): up to :data:`MAX_CANDIDATES` loudest
onsets of a 200 Hz-5 kHz energy envelope over its running median background, at least 100 ms apart
(:func:`find_impulses`), plus, when a model asks for them, onsets of a 500 Hz-2.5 kHz envelope not
already listed (where faint, distant rounds stand out from street noise).
Each window is :data:`WINDOW_S` long with the onset :data:`PRE_S` from its start, and gives
:data:`N_FEATURES` level-invariant numbers (:func:`window_features`):

* a log-mel spectrogram (:data:`N_MELS` bands, 100 Hz-5.5 kHz, 21 ms frames every 5.3 ms) relative to
  its own maximum, averaged over seven spans after the onset (before, 0-10, 10-25, 25-50, 50-100,
  100-200, 200-450 ms);
* the broadband envelope: onset height over the background before it, rise time, the times the decay
  takes to fall 6, 12, 20 and 30 dB, the share of energy in the first 20 ms, secondary peaks
  (echoes, further rounds) within the window, waveform kurtosis and crest factor near the onset,
  spectral centroid and spread early and late, zero-crossing rate.

A convolutional model also reads the window's whole log-mel spectrogram (:func:`window_patch`,
:data:`N_MELS` x :data:`PATCH_FRAMES`, relative to its maximum).

Absolute level is left out on purpose (distance and gain vary); so is everything above 5.5 kHz,
where a 12 kHz channel and a band-limited one differ most.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

FEATURE_VERSION = 2
SAMPLE_RATE_HZ = 12_000
WINDOW_S = 0.5
PRE_S = 0.05
MAX_CANDIDATES = 16
#: Default extra candidates from the mid-band envelope (:func:`find_candidates`): none. A model may ask
#: for some in its metadata; 16 were tried in session 4 and did not help on the calibration split.
MIDBAND_CANDIDATES = 0
#: Band of the main impulse envelope, Hz.
BROADBAND_HZ: tuple[float, float] = (200.0, 5_000.0)
#: Band of the second envelope, where a distant round stands out from street noise, Hz.
MIDBAND_HZ: tuple[float, float] = (500.0, 2_500.0)
#: A mid-band onset this close to a listed one is the same impulse, s.
MERGE_S = 0.05
N_MELS = 24
N_FFT = 256
HOP = 64
FMIN_HZ = 100.0
FMAX_HZ = 5_500.0
#: Spans after the onset (ms) over which the log-mel frames are averaged; the first is before it.
SPANS_MS: tuple[tuple[float, float], ...] = (
    (-50.0, -5.0),
    (0.0, 10.0),
    (10.0, 25.0),
    (25.0, 50.0),
    (50.0, 100.0),
    (100.0, 200.0),
    (200.0, 450.0),
)
ENVELOPE_NAMES: tuple[str, ...] = (
    "onset_height_db",
    "rise_ms",
    "decay6_ms",
    "decay12_ms",
    "decay20_ms",
    "decay30_ms",
    "early_energy_share",
    "secondary_peaks_10db",
    "secondary_peaks_20db",
    "kurtosis_50ms",
    "crest_db_50ms",
    "centroid_early_hz",
    "spread_early_hz",
    "centroid_late_hz",
    "spread_late_hz",
    "zcr_early",
    "floor_to_peak_db",
)
N_FEATURES = len(SPANS_MS) * N_MELS + len(ENVELOPE_NAMES)
#: Frames of a window's log-mel patch (:func:`window_patch`): one per :data:`HOP` samples, centred.
PATCH_FRAMES = int(WINDOW_S * SAMPLE_RATE_HZ) // HOP + 1
_EPS = 1e-12
_ENV_FRAME = 24  # 2 ms at 12 kHz
_ENV_HOP = 12  # 1 ms at 12 kHz

FloatArray = NDArray[np.float64]


def feature_names() -> list[str]:
    """Names of the :data:`N_FEATURES` columns, in order.

    Returns
    -------
    list of str
        ``mel{band}_{span}`` for the spectrogram block, then :data:`ENVELOPE_NAMES`.
    """
    names = [f"mel{b:02d}_{int(lo)}_{int(hi)}ms" for lo, hi in SPANS_MS for b in range(N_MELS)]
    return names + list(ENVELOPE_NAMES)


def to_model_rate(audio: NDArray[np.floating] | NDArray[np.integer], sample_rate_hz: int) -> FloatArray:
    """Mix to mono, convert to float64 and resample to :data:`SAMPLE_RATE_HZ`.

    Parameters
    ----------
    audio : ndarray, shape (n,) or (n, channels)
        Samples; integer PCM is scaled to [-1, 1).
    sample_rate_hz : int
        Rate of ``audio`` in Hz (> 0).

    Returns
    -------
    ndarray, shape (m,)
        Mono float64 samples at 12 kHz (polyphase resampling, Kaiser window).

    Raises
    ------
    ValueError
        For a non-positive rate, more than two dimensions or non-finite samples.
    """
    if sample_rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate_hz}")
    x = np.asarray(audio)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float64, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio has NaN or infinite samples")
    if sample_rate_hz != SAMPLE_RATE_HZ and x.size:
        g = gcd(sample_rate_hz, SAMPLE_RATE_HZ)
        x = signal.resample_poly(x, SAMPLE_RATE_HZ // g, sample_rate_hz // g)
    return np.ascontiguousarray(x - x.mean() if x.size else x, dtype=np.float64)


@lru_cache(maxsize=4)
def _band_sos(band: tuple[float, float] = BROADBAND_HZ) -> FloatArray:
    return np.asarray(signal.butter(4, list(band), btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos"))


def _envelope_db(x: FloatArray, band: tuple[float, float] = BROADBAND_HZ) -> FloatArray:
    """Energy in dB of 2 ms frames every 1 ms of one band (default 200 Hz-5 kHz)."""
    y = signal.sosfilt(_band_sos(band), x)
    if y.size < _ENV_FRAME:
        y = np.pad(y, (0, _ENV_FRAME - y.size))
    c = np.concatenate(([0.0], np.cumsum(y * y)))
    starts = np.arange(0, y.size - _ENV_FRAME + 1, _ENV_HOP)
    e = (c[starts + _ENV_FRAME] - c[starts]) / _ENV_FRAME
    return np.asarray(10.0 * np.log10(e + _EPS), dtype=np.float64)


def find_impulses(
    x: FloatArray, max_count: int = MAX_CANDIDATES, band: tuple[float, float] = BROADBAND_HZ
) -> list[int]:
    """Sample indices of the strongest impulsive onsets in a 12 kHz clip, strongest first.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Mono samples at :data:`SAMPLE_RATE_HZ`.
    max_count : int
        At most this many onsets.
    band : (float, float)
        Band of the energy envelope in Hz (default :data:`BROADBAND_HZ`).

    Returns
    -------
    list of int
        Onset indices (the start of the steepest rise before each envelope peak, in samples), peaks at
        least 100 ms apart, ranked by peak height over a 401 ms running-median background. A clip
        without a peak gives its loudest frame; an empty clip gives ``[0]``.
    """
    if x.size == 0:
        return [0]
    env = _envelope_db(x, band)
    size = min(401, env.size if env.size % 2 else env.size - 1)
    background = ndimage.median_filter(env, size=max(size, 1), mode="nearest")
    strength = env - background
    peaks, _ = signal.find_peaks(strength, distance=100)
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(env))])
    order = peaks[np.argsort(-strength[peaks], kind="stable")][:max_count]
    onsets = []
    for p in order:
        lo = max(0, int(p) - 15)
        seg = env[lo : int(p) + 1]
        rise = np.diff(seg) if seg.size > 1 else np.zeros(1)
        onset_frame = lo + int(np.argmax(rise)) if rise.size else int(p)
        onsets.append(onset_frame * _ENV_HOP)
    return onsets


def find_candidates(
    x: FloatArray, max_count: int = MAX_CANDIDATES, midband_count: int = MIDBAND_CANDIDATES
) -> list[int]:
    """The impulse windows a clip is scored by: broadband onsets, then mid-band ones not yet listed.

    A faint, distant round is low-passed by air absorption and sits in street noise whose energy lies
    mostly below 500 Hz and above a few kHz, so in the broadband envelope it can rank below noise
    bumps of the same height; in the :data:`MIDBAND_HZ` envelope it stands out more. On the train and
    calibration gunshot clips a round's direct arrival is among the 16 broadband onsets in 97.2 % of
    clips and among these 16 + 16 in 98.4 %.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Mono samples at :data:`SAMPLE_RATE_HZ`.
    max_count : int
        Onsets of the broadband (200 Hz-5 kHz) envelope, strongest first (:func:`find_impulses`).
    midband_count : int
        Onsets of the :data:`MIDBAND_HZ` envelope, strongest first, each added unless a listed onset
        lies within :data:`MERGE_S` of it.

    Returns
    -------
    list of int
        Onset indices, broadband first; between 1 and ``max_count + midband_count`` of them.
    """
    out = find_impulses(x, max_count)
    if midband_count > 0 and x.size:
        merge = int(MERGE_S * SAMPLE_RATE_HZ)
        for o in find_impulses(x, midband_count, MIDBAND_HZ):
            if all(abs(o - u) > merge for u in out):
                out.append(o)
    return out


@lru_cache(maxsize=1)
def _mel_fb() -> FloatArray:
    def hz2mel(f: FloatArray) -> FloatArray:
        return np.asarray(2595.0 * np.log10(1.0 + f / 700.0))

    mels = np.linspace(hz2mel(np.array(FMIN_HZ)), hz2mel(np.array(FMAX_HZ)), N_MELS + 2)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE_HZ)
    fb = np.zeros((N_MELS, freqs.size))
    for m in range(N_MELS):
        lo, c, hi = hz[m], hz[m + 1], hz[m + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


@dataclass(frozen=True)
class Window:
    """One impulse window cut from a clip.

    Attributes
    ----------
    samples : ndarray, shape (WINDOW_S * 12 kHz,)
        The window at 12 kHz (zero-padded at the end for a short clip).
    onset : int
        Index of the onset inside ``samples``.
    """

    samples: FloatArray
    onset: int


def cut_window(x: FloatArray, onset: int) -> Window:
    """Cut the window of one onset, kept inside the clip.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Mono samples at 12 kHz.
    onset : int
        Onset index in ``x``.

    Returns
    -------
    Window
        ``WINDOW_S`` of audio starting ``PRE_S`` before the onset (shifted to stay inside the clip).
    """
    n = int(WINDOW_S * SAMPLE_RATE_HZ)
    pre = int(PRE_S * SAMPLE_RATE_HZ)
    start = max(0, min(onset - pre, x.size - n))
    seg = x[start : start + n]
    if seg.size < n:
        seg = np.pad(seg, (0, n - seg.size))
    return Window(samples=np.ascontiguousarray(seg), onset=int(min(max(onset - start, 0), n - 1)))


def _logmel(w: FloatArray) -> tuple[FloatArray, FloatArray]:
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(w, (N_FFT // 2, N_FFT // 2)), N_FFT)[::HOP]
    spec = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1)) ** 2
    mel = spec @ _mel_fb().T
    db = 10.0 * np.log10(mel + _EPS)
    db = np.maximum(db - db.max(), -80.0)
    return db, spec


def _span_mean(db: FloatArray, onset: int, lo_ms: float, hi_ms: float) -> FloatArray:
    centres = np.arange(db.shape[0]) * HOP
    t_ms = (centres - onset) * 1000.0 / SAMPLE_RATE_HZ
    sel = (t_ms >= lo_ms) & (t_ms < hi_ms)
    if not np.any(sel):
        sel = np.zeros(db.shape[0], dtype=bool)
        sel[int(np.argmin(db.mean(axis=1)))] = True
    return np.asarray(db[sel].mean(axis=0))


def _centroid_spread(spec: FloatArray) -> tuple[float, float]:
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE_HZ)
    keep = (freqs >= FMIN_HZ) & (freqs <= FMAX_HZ)
    p = spec[:, keep].sum(axis=0) + _EPS
    f = freqs[keep]
    c = float((p * f).sum() / p.sum())
    s = float(np.sqrt((p * (f - c) ** 2).sum() / p.sum()))
    return c, s


def window_features(win: Window) -> FloatArray:
    """The :data:`N_FEATURES` level-invariant features of one impulse window.

    Parameters
    ----------
    win : Window
        A window from :func:`cut_window`.

    Returns
    -------
    ndarray, shape (N_FEATURES,)
        float64 features, names in :func:`feature_names`.
    """
    w = win.samples
    db, spec = _logmel(w)
    mel_block = np.concatenate([_span_mean(db, win.onset, lo, hi) for lo, hi in SPANS_MS])

    env = _envelope_db(w)
    o = win.onset // _ENV_HOP
    ms = 1.0  # one envelope frame per ms
    pre = env[max(0, o - 45) : max(0, o - 3)]
    bg = float(np.median(pre)) if pre.size >= 5 else float(np.percentile(env, 10))
    search = env[o : min(env.size, o + 30)]
    p = o + int(np.argmax(search)) if search.size else int(np.argmax(env))
    peak = float(env[p])
    rise = float(p - o) * ms
    after = env[p:]

    def decay(drop: float) -> float:
        below = np.nonzero(after < peak - drop)[0]
        return float(below[0]) * ms if below.size else float(after.size) * ms

    lin = 10.0 ** (env / 10.0)
    early = lin[o : o + 20].sum()
    total = lin[o:].sum() + _EPS
    rest = env[p + 40 :]
    rest_peaks, _ = signal.find_peaks(rest, distance=30) if rest.size > 2 else (np.array([], int), {})
    sec10 = float(np.sum(rest[rest_peaks] > peak - 10.0)) if rest_peaks.size else 0.0
    sec20 = float(np.sum(rest[rest_peaks] > peak - 20.0)) if rest_peaks.size else 0.0

    s0 = win.onset
    seg = w[s0 : s0 + int(0.05 * SAMPLE_RATE_HZ)]
    if seg.size < 8:
        seg = w
    sd = float(seg.std()) + _EPS
    kurt = float(np.mean(((seg - seg.mean()) / sd) ** 4))
    crest = float(20.0 * np.log10((np.max(np.abs(seg)) + _EPS) / sd))
    f0 = max(0, s0 // HOP)
    early_spec = spec[f0 : f0 + 4] if spec[f0 : f0 + 4].size else spec
    late_spec = spec[f0 + 19 : f0 + 56] if spec[f0 + 19 : f0 + 56].size else spec
    ce, se = _centroid_spread(early_spec)
    cl, sl = _centroid_spread(late_spec)
    zseg = w[s0 : s0 + int(0.02 * SAMPLE_RATE_HZ)]
    zcr = float(np.mean(np.abs(np.diff(np.sign(zseg))) > 0)) if zseg.size > 1 else 0.0
    floor = float(np.percentile(env, 5))

    env_block = np.array(
        [
            peak - bg,
            rise,
            decay(6.0),
            decay(12.0),
            decay(20.0),
            decay(30.0),
            float(early / total),
            sec10,
            sec20,
            kurt,
            crest,
            ce,
            se,
            cl,
            sl,
            zcr,
            floor - peak,
        ]
    )
    return np.concatenate([mel_block, env_block]).astype(np.float64)


def window_patch(win: Window) -> FloatArray:
    """The window's log-mel spectrogram, the input of a convolutional model.

    Parameters
    ----------
    win : Window
        A window from :func:`cut_window`.

    Returns
    -------
    ndarray, shape (N_MELS, PATCH_FRAMES)
        dB relative to the window's maximum, floored at -80 dB (level-invariant).
    """
    db, _ = _logmel(win.samples)
    return np.ascontiguousarray(db.T)


def clip_features(x: FloatArray, max_count: int = MAX_CANDIDATES) -> tuple[FloatArray, list[int]]:
    """Features of the strongest impulse windows of a 12 kHz clip.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Mono samples at :data:`SAMPLE_RATE_HZ` (see :func:`to_model_rate`).
    max_count : int
        At most this many windows.

    Returns
    -------
    features : ndarray, shape (k, N_FEATURES)
        One row per window, ``1 <= k <= max_count``.
    onsets : list of int
        The onset index in ``x`` of each row.
    """
    onsets = find_impulses(x, max_count)
    feats = np.stack([window_features(cut_window(x, o)) for o in onsets])
    return feats, onsets
