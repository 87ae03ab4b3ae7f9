"""Plate text reading: a small CRNN (conv + BiLSTM, CTC) exported to ONNX.

Input is a rectified text region resized to 32 x 128 (grey, -1..1); output is one distribution over
``blank + 0-9 + A-Z`` for each of 32 horizontal steps, decoded greedily. :class:`PlateOCR` also runs
recognizers of the PP-OCRv4 kind with the same 37 classes (input ``(n, 3, 48, width)`` BGR, the
general recognizer's preparation, :func:`rec_input`; ``training/plates/finetune_ppocr.py``), told
apart by the model's input shape. The plate CRNN is trained to
read plate characters and to output nothing (blank everywhere) on text that is not a plate number
(dealer frames, state names, date stamps), so an empty read means "not a plate".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from rtcc.plates.backend import Backend, ModelSession, ort_session, session
from rtcc.plates.detect import MODEL_DIR

REC_MODEL = MODEL_DIR / "plate_crnn.onnx"
SECOND_MODEL = MODEL_DIR / "plate_ppocr.onnx"
"""The fine-tuned PP-OCRv4 plate recognizer (3-channel, ``training/plates/finetune_ppocr.py``, session 7):
the default second reader of :meth:`rtcc.plates.recognize.PlateReader.load`."""
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
INPUT_H, INPUT_W = 32, 128
REC_H, REC_MAX_W = 48, 320
"""Input height and largest width (pixels) of the PP-OCRv4-style recognizers (3-channel input)."""
REC_PAD = 32
"""Width multiple (pixels) that :class:`PlateOCR` right-pads a 3-channel model's input to (with 0, mid
grey in -1..1), as ``training/plates/finetune_ppocr.py`` pads every training crop (session 7): the
SVTR neck attends over the whole width, so training and reading must see the same padding."""


def rectify(image: npt.NDArray[np.uint8], quad: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Warp the quad (tl, tr, br, bl) of a BGR image to an upright rectangle of its own size."""
    w = round(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))
    h = round(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    w, h = max(w, 2), max(h, 2)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    out = cv2.warpPerspective(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.uint8)


def prepare(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Turn a BGR crop into the recognizer's (1, 32, 128) float input."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    resized = cv2.resize(grey, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
    x = resized.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / max(hi - lo, 1.0) * 2.0 - 1.0
    return x[None]


def rec_input(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """One BGR crop as a PP-OCRv4-style recognizer's input ``(3, REC_H, w)``: height :data:`REC_H`,
    width ``ceil(REC_H * w / h)`` within 16-:data:`REC_MAX_W` px, scaled to -1..1 (no padding)."""
    bgr = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.ndim == 2 else crop
    w = min(REC_MAX_W, max(16, int(np.ceil(REC_H * bgr.shape[1] / bgr.shape[0]))))
    r = cv2.resize(bgr, (w, REC_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.ascontiguousarray((r / 127.5 - 1.0).transpose(2, 0, 1))


def rec_padded(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """:func:`rec_input`, right-padded with 0 to the next multiple of :data:`REC_PAD` px (at most
    :data:`REC_MAX_W`): the input of a fine-tuned 3-channel plate recognizer, in training and reading."""
    x = rec_input(crop)
    w = x.shape[2]
    padded = min(REC_MAX_W, -(-w // REC_PAD) * REC_PAD)
    if padded == w:
        return x
    out = np.zeros((3, REC_H, padded), np.float32)
    out[:, :, :w] = x
    return out


@dataclass(frozen=True)
class Reading:
    """Greedy CTC decoding of one crop: text and the probability of each emitted character."""

    text: str
    char_confidences: tuple[float, ...]


def decode(probs: npt.NDArray[np.float32]) -> Reading:
    """Greedy CTC decoding of ``probs`` of shape (T, 1 + len(ALPHABET)), class 0 = blank.

    The same decoding serves any model whose output is mapped onto these classes (the general
    recognizer's plate-alphabet view, :meth:`rtcc.plates.region.TextRecognizer.plate_probs`).
    """
    idx = probs.argmax(axis=1)
    chars: list[str] = []
    confs: list[float] = []
    prev = 0
    for t, k in enumerate(idx):
        k = int(k)
        if k != 0 and k != prev:
            chars.append(ALPHABET[k - 1])
            confs.append(float(probs[t, k]))
        elif k != 0 and k == prev:
            confs[-1] = max(confs[-1], float(probs[t, k]))
        prev = k
    return Reading("".join(chars), tuple(confs))


_CLASS = {c: i + 1 for i, c in enumerate(ALPHABET)}


def ctc_log_likelihood(probs: npt.NDArray[np.float32], text: str) -> float:
    r"""Log-probability of ``text`` under a CTC output, summed over all its alignments.

    Parameters
    ----------
    probs : ndarray, shape (T, 1 + len(ALPHABET))
        Per-step class probabilities, class 0 = blank, class ``k`` = ``ALPHABET[k - 1]``.
    text : str
        Non-empty string over :data:`ALPHABET`.

    Returns
    -------
    float
        :math:`\log P(\text{text} \mid \text{probs})` by the CTC forward recursion over the
        blank-extended label :math:`l'` (length :math:`2|text| + 1`):
        :math:`\alpha_t(s) = (\alpha_{t-1}(s) + \alpha_{t-1}(s-1) + [l'_s \ne b,\ l'_s \ne l'_{s-2}]\,
        \alpha_{t-1}(s-2))\, y_t(l'_s)`, in log space; :math:`-\infty` when ``text`` cannot be
        aligned to ``T`` steps.

    Raises
    ------
    ValueError
        ``text`` is empty.
    """
    if not text:
        raise ValueError("text must not be empty")
    ext = np.zeros(2 * len(text) + 1, dtype=np.intp)
    ext[1::2] = [_CLASS[c] for c in text]
    logp = np.log(np.maximum(probs, 1e-12))[:, ext]
    # positions s >= 2 that may also be reached from s - 2 (a label differing from the one before)
    skip = np.flatnonzero((ext[2:] != 0) & (ext[2:] != ext[:-2])) + 2
    alpha = np.full(len(ext), -np.inf)
    alpha[:2] = logp[0, :2]
    for t in range(1, probs.shape[0]):
        step = alpha.copy()
        step[1:] = np.logaddexp(alpha[1:], alpha[:-1])
        step[skip] = np.logaddexp(step[skip], alpha[skip - 2])
        alpha = step + logp[t]
    return float(np.logaddexp(alpha[-1], alpha[-2]))


def text_confidence(probs: Sequence[npt.NDArray[np.float32]], text: str) -> float:
    """How well the CTC outputs of several crops of one region agree with ``text``, 0-1.

    The mean over the crops of the per-character geometric mean of the string's probability,
    ``exp(log P(text) / len(text))`` (:func:`ctc_log_likelihood`): a crop read confidently as
    ``text`` scores near its mean character confidence, a crop read as something else near 0.
    """
    return float(np.mean([np.exp(ctc_log_likelihood(p, text) / len(text)) for p in probs]))


class PlateOCR:
    """A plate-text recognizer with CTC over ``blank + 0-9 + A-Z`` (ONNX Runtime, CPU).

    The model's input shape tells its kind: one channel, the plate CRNN (grey 32 x 128, one batch,
    32 steps); three channels, a PP-OCRv4-style recognizer (BGR, height 48, each crop at its own
    width padded to a multiple of :data:`REC_PAD`, :func:`rec_padded`; ``padded width / 8`` steps).

    ``backend="openvino"`` runs a 3-channel model with OpenVINO in float32: the same outputs to ~1e-5,
    1.6-2.3x less CPU for these networks on an x86 core (``rtcc/plates/models/MODEL_CARD.md``,
    session 8); the CRNN stays on ONNX Runtime, which runs it faster.
    """

    def __init__(self, model: Path | None = None, threads: int = 1, backend: Backend = "onnxruntime") -> None:
        self.sess: ModelSession = ort_session(model or REC_MODEL, threads)
        if backend != "onnxruntime" and self.sess.get_inputs()[0].shape[1] == 3:
            self.sess = session(model or REC_MODEL, threads, backend, precision="f32")
        shape = self.sess.get_inputs()[0].shape
        self.input_name = self.sess.get_inputs()[0].name
        self.colour = shape[1] == 3
        """Whether the model reads BGR crops at height :data:`REC_H` (else grey 32 x 128)."""

    def probs(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        """The CTC outputs of BGR crops: one (T, 1 + len(ALPHABET)) array per crop (T = 32 for the
        CRNN, the crop's padded width / 8 for a 3-channel model)."""
        if not crops:
            return []
        if self.colour:
            return [self.sess.run(None, {self.input_name: rec_padded(c)[None]})[0][0] for c in crops]
        x = np.stack([prepare(c) for c in crops])
        return list(self.sess.run(None, {self.input_name: x})[0])

    def plate_probs(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The CTC output of one BGR crop (as :meth:`rtcc.plates.region.TextRecognizer.plate_probs`, so
        a plate recognizer can serve as the second reader of :class:`rtcc.plates.recognize.Fusion`)."""
        return self.probs([crop])[0]

    def __call__(self, crops: list[npt.NDArray[np.uint8]]) -> list[Reading]:
        """Read a batch of BGR crops; one :class:`Reading` per crop."""
        return [decode(p) for p in self.probs(crops)]
