"""Gunfire or not: a calibrated probability for the audio of one impulse, from the shipped ONNX model.

The model (``models/gunshot_classifier.onnx``) scores each of a clip's strongest impulse windows
(:func:`rtcc.acoustic.features.find_candidates`: up to ``max_candidates`` broadband and
``midband_candidates`` mid-band onsets, both from the model metadata). It is
one ONNX graph summing the weighted log-odds of gradient-boosted trees over the window's features
(:func:`rtcc.acoustic.features.window_features`) and of a small CNN over its log-mel patch
(:func:`rtcc.acoustic.features.window_patch`) plus the same features. The clip's score is the highest
window score, mapped to a probability by Platt scaling fitted on a calibration split (``a``, ``b`` and
the label threshold live in the ONNX file's metadata). A model with a ``features`` input only (the
earlier trees-only model) is served too. The training script, the split and the measured figures are
in ``training/acoustic/`` and ``models/gunshot_classifier.md``.

Run time needs only numpy, scipy, soundfile and ONNX Runtime; nothing is downloaded.

>>> clf = GunshotClassifier.load()
>>> p = clf.probability(samples, 12_000)          # doctest: +SKIP
>>> classify_file("pulse.flac")                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
from importlib import resources
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import soundfile as sf
from numpy.typing import NDArray

from rtcc.acoustic import features as F
from rtcc.acoustic.detect import MIN_SAMPLE_RATE_HZ, audio_path_problem, loudest_channel
from rtcc.errors import ValidationFailed

MODEL_FILE = "gunshot_classifier.onnx"
MIN_DURATION_S = 0.05


class AudioError(ValidationFailed):
    """An audio file that cannot be read, is empty or too short, or holds non-finite samples."""

    code = "bad_audio"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class GunshotClassifier:
    """Gunshot probability of a clip around one impulse.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        A session on a model that maps float32 ``features``, shape (n, N_FEATURES), and, when it has
        that input, ``patch``, shape (n, N_MELS, PATCH_FRAMES), to the gunshot log-odds of each
        window, shape (n, 1).
    platt_a, platt_b : float
        Platt scaling of the clip's window log-odds ``z``: ``P = 1 / (1 + exp(-(a z + b)))``.
    threshold : float
        ``label`` is ``gunshot`` when the probability is at least this.
    max_candidates : int
        A clip is scored by at most this many broadband impulse windows.
    midband_candidates : int
        Besides those, at most this many windows at onsets of the mid-band envelope
        (:func:`rtcc.acoustic.features.find_candidates`); 0 for models trained without them.
    """

    _cached: ClassVar[GunshotClassifier | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        session: ort.InferenceSession,
        *,
        platt_a: float = 1.0,
        platt_b: float = 0.0,
        threshold: float = 0.5,
        max_candidates: int = F.MAX_CANDIDATES,
        midband_candidates: int = 0,
    ) -> None:
        self._session = session
        names = [i.name for i in session.get_inputs()]
        self._input = "features" if "features" in names else names[0]
        self._output = session.get_outputs()[0].name
        #: Whether the model also reads each window's log-mel patch (the convolutional model does).
        self.needs_patch = "patch" in names
        self.max_candidates = max_candidates
        self.midband_candidates = midband_candidates
        self.platt_a = platt_a
        self.platt_b = platt_b
        self.threshold = threshold

    @classmethod
    def from_path(cls, path: str | Path) -> GunshotClassifier:
        """Load a model file, reading its calibration from the ONNX metadata.

        Parameters
        ----------
        path : str or Path
            An ``.onnx`` file written by ``training/acoustic/train_classifier.py``.

        Returns
        -------
        GunshotClassifier
        """
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        version = int(meta.get("feature_version", F.FEATURE_VERSION))
        if version != F.FEATURE_VERSION:
            raise ValidationFailed(
                f"{path}: model expects feature version {version}, this code computes {F.FEATURE_VERSION}"
            )
        return cls(
            session,
            platt_a=float(meta.get("platt_a", 1.0)),
            platt_b=float(meta.get("platt_b", 0.0)),
            threshold=float(meta.get("threshold", 0.5)),
            max_candidates=int(meta.get("max_candidates", F.MAX_CANDIDATES)),
            midband_candidates=int(meta.get("midband_candidates", 0)),
        )

    @classmethod
    def load(cls) -> GunshotClassifier:
        """The shipped model, loaded once per process.

        Returns
        -------
        GunshotClassifier
        """
        with cls._lock:
            if cls._cached is None:
                ref = resources.files("rtcc.acoustic") / "models" / MODEL_FILE
                with resources.as_file(ref) as path:
                    cls._cached = cls.from_path(path)
            return cls._cached

    def window_logits(
        self, feats: NDArray[np.float64], patches: NDArray[np.floating] | None = None
    ) -> NDArray[np.float64]:
        """Uncalibrated log-odds of each window.

        Parameters
        ----------
        feats : ndarray, shape (n, N_FEATURES)
            Rows from :func:`rtcc.acoustic.features.window_features`.
        patches : ndarray, shape (n, N_MELS, PATCH_FRAMES), optional
            Rows from :func:`rtcc.acoustic.features.window_patch`; required when the model has a
            ``patch`` input (see :attr:`needs_patch`).

        Returns
        -------
        ndarray, shape (n,)
            The model's raw score (log-odds, before calibration).
        """
        inputs = {self._input: np.asarray(feats, dtype=np.float32)}
        if self.needs_patch:
            if patches is None:
                raise ValueError("this model needs the log-mel patch of each window")
            inputs["patch"] = np.asarray(patches, dtype=np.float32)
        out = self._session.run([self._output], inputs)[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def clip_logit(self, x12k: NDArray[np.float64]) -> float:
        """Uncalibrated score of a 12 kHz mono clip: the highest log-odds over its impulse windows.

        Parameters
        ----------
        x12k : ndarray, shape (n,)
            Output of :func:`rtcc.acoustic.features.to_model_rate`.

        Returns
        -------
        float
        """
        onsets = F.find_candidates(x12k, self.max_candidates, self.midband_candidates)
        windows = [F.cut_window(x12k, o) for o in onsets]
        feats = np.stack([F.window_features(w) for w in windows])
        patches = np.stack([F.window_patch(w) for w in windows]) if self.needs_patch else None
        return float(self.window_logits(feats, patches).max())

    def calibrate(self, logit: float) -> float:
        """Map a clip score to a calibrated probability (Platt scaling).

        Parameters
        ----------
        logit : float
            From :meth:`clip_logit`.

        Returns
        -------
        float
            Probability in [0, 1].
        """
        return _sigmoid(self.platt_a * logit + self.platt_b)

    def probability(self, audio: NDArray[np.floating] | NDArray[np.integer], sample_rate_hz: int) -> float:
        """P(gunshot) of a clip around one impulse.

        Parameters
        ----------
        audio : ndarray, shape (n,) or (n, channels)
            Samples (float in [-1, 1] or integer PCM), at least :data:`MIN_DURATION_S` long; a longer clip
            is scored by its strongest impulses (see ``find_candidates``; the maximum counts). Of
            multichannel audio the channel with the most energy is scored (a sensor's microphone is
            mono; channels of opposite polarity would cancel in a mix, as for detect).
        sample_rate_hz : int
            Rate of ``audio`` in Hz; resampled to 12 kHz inside.

        Returns
        -------
        float
            Calibrated probability in [0, 1]; deterministic for the same input.

        Raises
        ------
        AudioError
            Too short, empty, or non-finite samples, or a bad rate.
        """
        a = np.asarray(audio)
        if sample_rate_hz < MIN_SAMPLE_RATE_HZ:
            raise AudioError(
                f"sample rate {sample_rate_hz} Hz is below {MIN_SAMPLE_RATE_HZ} Hz: too narrow a band "
                "to tell gunfire (as for detect)"
            )
        if a.shape[0] < MIN_DURATION_S * sample_rate_hz:
            ms = a.shape[0] / sample_rate_hz * 1000
            raise AudioError(f"clip is {ms:.0f} ms long; at least {MIN_DURATION_S * 1000:.0f} ms needed")
        if a.ndim == 2 and a.shape[1] > 1:
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise AudioError("audio has NaN or infinite samples")
            a = a[:, loudest_channel(a)]
        try:
            x = F.to_model_rate(a, sample_rate_hz)
        except ValueError as exc:
            raise AudioError(str(exc)) from exc
        return self.calibrate(self.clip_logit(x))

    def label(self, probability: float) -> str:
        """``gunshot`` at or above the shipped threshold, else ``not_gunshot``."""
        return "gunshot" if probability >= self.threshold else "not_gunshot"


def read_audio(path: str | Path) -> tuple[NDArray[np.float64], int]:
    """Read a sound file (WAV, FLAC, OGG… whatever libsndfile reads).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    samples : ndarray, shape (n,) or (n, channels)
    sample_rate_hz : int

    Raises
    ------
    AudioError
        Missing, unreadable, corrupt, truncated or unsupported file (a directory, a WAV file shorter
        than its header says: :func:`rtcc.acoustic.detect.audio_path_problem`).
    """
    problem = audio_path_problem(path)
    if problem is not None:
        raise AudioError(problem)
    try:
        x, sr = sf.read(str(path), dtype="float64", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    return np.asarray(x), int(sr)


def classify_file(path: str | Path, classifier: GunshotClassifier | None = None) -> float:
    """P(gunshot) of one sound file with the shipped model.

    Parameters
    ----------
    path : str or Path
        A sound file around an impulse (any rate, mono or multichannel).
    classifier : GunshotClassifier, optional
        Defaults to :meth:`GunshotClassifier.load`.

    Returns
    -------
    float
        Calibrated probability in [0, 1].

    Raises
    ------
    AudioError
        The file cannot be read or holds no usable audio.
    """
    clf = classifier or GunshotClassifier.load()
    x, sr = read_audio(path)
    try:
        return clf.probability(x, sr)
    except AudioError as exc:
        raise AudioError(f"{path}: {exc.message}") from exc
